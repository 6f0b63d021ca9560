"""The services every front end calls, in-process against a real SQLite store (no CLI in between).

The shell and the web page will call these directly: each verb must be whole on its
own, wake-ups and log files included.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import runner
from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import AttemptResult, Outcome, RunState, Worker
from queuectl.paths import logs_dir
from queuectl.services import jobs, pools, runs, schedules
from queuectl.store.contract import Store
from queuectl.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = SQLiteStore(str(tmp_path / "q.db"))
    yield opened
    opened.close()


def _listening_pool(store: Store) -> tuple[Worker, object]:
    """This process registered as a live pool, with the wake-up socket a pool listens on."""
    me = Worker(
        id="p1",
        host=runner.HOST,
        pid=os.getpid(),
        proc_start=runner.proc_start_time(os.getpid()) or 0,
        slots=1,
        started_at=store.now(),
        heartbeat_at=store.now(),
        stop_requested=False,
        machine=runner.MACHINE,
    )
    signal = store.work_signal(os.getpid())
    store.register_worker(me)
    return me, signal


def _woken(signal: object, within: float = 2.0) -> bool:
    readable, _, _ = select.select([signal], [], [], within)
    return bool(readable)


def test_adding_runs_wakes_the_idle_pools(store: Store) -> None:
    _, signal = _listening_pool(store)
    assert not _woken(signal, 0)
    added = runs.add_one(store, {"id": "a", "command": "true"})
    assert added.id == "a" and store.get_run("a") is not None
    assert _woken(signal)


def test_lines_take_the_flags_given_beside_the_file(store: Store) -> None:
    lines = ['{"id": "x", "command": "true"}', "", '{"id": "y", "command": "true", "priority": 2}']
    runs.add_lines(store, lines, "jobs.jsonl", {"priority": 9})
    assert [(r.id, r.priority) for r in sorted(store.list_runs(), key=lambda r: r.id)] == [("x", 9), ("y", 2)]
    with pytest.raises(UsageError, match="--file takes the runs from the file"):
        runs.add_lines(store, lines, "jobs.jsonl", {"command": "echo"})


def test_only_dead_runs_are_retried_and_the_pools_hear_of_it(store: Store) -> None:
    runs.add_one(store, {"id": "dead1", "command": "false", "max_retries": 0})
    runs.add_one(store, {"id": "waiting", "command": "true"})
    (claim,) = [c for c in store.claim_runs("w", runner.HOST, 2, 30) if c.run_id == "dead1"] or [None]
    assert claim is not None
    now = store.now()
    store.finish_attempts(
        runner.HOST,
        [AttemptResult(claim, "w", None, now, now, 1, Outcome.FAILED, "exit 1", "", None)],
    )
    assert store.get_run("dead1").state == RunState.DEAD  # type: ignore[union-attr]
    with pytest.raises(QueueError, match="not dead"):
        runs.retry_dead(store, ["waiting"], reset_attempts=False)
    with pytest.raises(NotFoundError):
        runs.retry_dead(store, ["nope"], reset_attempts=False)
    _, signal = _listening_pool(store)
    assert runs.retry_dead(store, ["dead1"], reset_attempts=True) == ["dead1"]
    assert store.get_run("dead1").state == RunState.PENDING  # type: ignore[union-attr]
    assert _woken(signal)


def test_deleting_runs_removes_their_logs_and_no_others(store: Store) -> None:
    runs.add_one(store, {"id": "gone", "command": "true"})
    runs.add_one(store, {"id": "kept", "command": "true"})
    directory = logs_dir(store)
    os.makedirs(directory, exist_ok=True)
    for name in ("gone.1.log", "gone.2.log", "kept.1.log", "gone-not.1.log"):
        Path(directory, name).write_text("output\n")
    with pytest.raises(UsageError, match="running runs cannot be cleared"):
        runs.delete(store, "running")
    deleted = runs.delete(store, None)
    assert sorted(deleted) == ["gone", "kept"]
    assert sorted(os.listdir(directory)) == ["gone-not.1.log"]


def _declare(store: Store, tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / "jobs.d"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    os.chmod(path, 0o644)
    plan = jobs.apply(store, [str(folder)])
    assert not plan.invalid, plan.changes


def test_trigger_suspend_resume_a_declared_job(store: Store, tmp_path: Path) -> None:
    _declare(store, tmp_path, "tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    with pytest.raises(NotFoundError, match="no job named 'nope'"):
        jobs.trigger(store, "nope")
    run = jobs.trigger(store, "tick")
    assert store.get_run(run.id) is not None and store.get_run(run.id).job == "tick"  # type: ignore[union-attr]
    suspended = jobs.suspend(store, "tick")
    assert run.id in suspended.cancelled and not suspended.already
    assert store.get_run(run.id).state == RunState.CANCELLED  # type: ignore[union-attr]
    assert jobs.suspend(store, "tick") == jobs.Suspended([], already=True)  # a second suspend changes nothing
    (held,) = schedules.upcoming(store, store.now())  # a suspended job is listed, with no next fire
    assert held.job == "tick" and held.suspended and held.at is None
    jobs.resume(store, "tick")
    (upcoming,) = schedules.upcoming(store, store.now())
    assert upcoming.job == "tick" and upcoming.at is not None and upcoming.at % 300 == 0
    assert not upcoming.suspended


def test_plan_lists_the_next_fires_and_refuses_a_job_without_cron(store: Store, tmp_path: Path) -> None:
    _declare(store, tmp_path, "hourly", 'command = "true"\ncron = "0 * * * *"\ntimezone = "UTC"\ntimeout = "2h"\n')
    _declare(store, tmp_path, "once", 'command = "true"\n')
    fires = schedules.plan(store, "hourly", 3, 0.0)
    assert fires.times == [3600.0, 7200.0, 10800.0]
    assert fires.warnings and "runs may overlap" in fires.warnings[0]
    with pytest.raises(QueueError, match="has no cron schedule"):
        schedules.plan(store, "once", 3, 0.0)


def test_stop_with_no_pool_running_asks_nobody(store: Store) -> None:
    said: list[str] = []
    stopping = pools.stop(store, force=False, say=said.append)
    assert (stopping.local, stopping.remote, stopping.stale, said) == ([], [], 0, [])


def test_a_pool_whose_process_is_gone_is_dead_and_is_not_signalled(store: Store) -> None:
    me, _ = _listening_pool(store)
    store.register_worker(me._replace(id="ghost", proc_start=(me.proc_start or 0) + 12345))
    states = {v.worker.id: v.state for v in pools.pools(store)}
    assert states == {"p1": "alive", "ghost": "dead"}
