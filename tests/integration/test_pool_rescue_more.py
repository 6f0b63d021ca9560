"""More of the pool's rescue: a run held by no pool id, a declared job's status file, the claim right after.

Like test_pool_paths.py, fast enough to run per mutant: a real SQLite store, real processes,
a `Pool` in this process (`rescue()` or `run_once`).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import runner
from queuectl.model import JobSpec, NewRun, ProcessInfo, RunState, Worker
from queuectl.pool import Pool
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from tests.conftest import group_members, is_running, wait_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "q.db"))
    yield opened
    opened.close()


def _claimed_by(store: Store, worker: str, machine: str = runner.MACHINE, pid: int = 2**22 + 7, start: int = 1) -> int:
    """Register `worker` on this host (by default a dead pid) and let it claim r1: the attempt's number."""
    now = store.now()
    store.register_worker(Worker(worker, runner.HOST, pid, start, 1, now, now, False, machine=machine))
    [claim] = store.claim_runs(worker, runner.HOST, 1, 300.0)
    return claim.attempt


def _leftover_group(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int, str]:
    """A group that printed a line: a leader and a child of its group, both carrying `env`; (leader, start, log)."""
    log, pids = tmp_path / "r1.log", tmp_path / "pids"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", f"echo last words; sleep 30 & echo $! > {pids}; exec sleep 30"],
            stdout=out,
            process_group=0,
            env={"PATH": os.environ["PATH"], **env},
        )
    wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"), what="the leftover's child")
    wait_for(lambda: log.read_bytes() == b"last words\n", what="the leftover's line")
    return proc, wait_for(lambda: runner.proc_start_time(proc.pid)), str(log)


def test_a_running_run_held_by_no_pool_on_this_host_has_its_leftovers_killed(tmp_path: Path, store: Store) -> None:
    """A run whose row names no pool (written before runs named theirs) but this host: its group here is killed."""
    store.enqueue([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None)])
    attempt = _claimed_by(store, "gone")
    markers = {runner.RUN_ID_VAR: "r1", runner.ATTEMPT_VAR: str(attempt)}
    proc, start, log = _leftover_group(tmp_path, markers)
    child = int((tmp_path / "pids").read_text())
    try:
        store.record_processes("gone", [ProcessInfo("r1", proc.pid, start, log, store.now(), attempt)])
        store.unregister_worker("gone")
        with sqlite3.connect(tmp_path / "q.db") as db:  # the row as an older queuectl left it: no pool id
            db.execute("UPDATE runs SET worker_id = NULL, lease_expires = 1 WHERE id = 'r1'")
        assert Pool(store, 1, log=None).rescue() == 1
        assert store.get_run("r1").state == RunState.PENDING  # type: ignore[union-attr]
        assert proc.wait(timeout=5) == -signal.SIGKILL
        wait_for(lambda: not is_running(child), timeout=5, what="the leftover's child killed")
        assert not group_members(proc.pid)
        assert "last words" in (store.attempts("r1")[-1].output_tail or "")
    finally:
        for pid in (proc.pid, child):
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_a_dead_pool_of_a_same_named_host_leaves_this_machine_s_processes_alone(tmp_path: Path, store: Store) -> None:
    """Same host name, another machine, silent for three leases: its run comes back, our processes live on."""
    store.enqueue([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None)])
    attempt = _claimed_by(store, "twin", machine="another-boot/4026531836")
    markers = {runner.RUN_ID_VAR: "r1", runner.ATTEMPT_VAR: str(attempt), runner.POOL_VAR: "twin"}
    proc, start, log = _leftover_group(tmp_path, markers)  # what a pid here that matches it all looks like
    child = int((tmp_path / "pids").read_text())
    later = open_store(str(tmp_path / "q.db"), clock=lambda: time.time() + 100)  # its heartbeat: 100 s ago
    try:
        store.record_processes("twin", [ProcessInfo("r1", proc.pid, start, log, store.now(), attempt)])
        assert Pool(later, 1, log=None).rescue() == 1
        assert is_running(proc.pid) and is_running(child)  # its pids are its own machine's
        run = later.get_run("r1")  # at the rescuer's time: due now (not scheduled 100 s ahead)
        assert run is not None and run.state.value == "pending"
        assert store.attempts("r1")[-1].output_tail == ""  # its log is on its own machine
    finally:
        later.close()
        for pid in (proc.pid, child):
            os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_rescue_writes_the_lost_attempt_into_its_job_s_status_file(tmp_path: Path, store: Store) -> None:
    status_dir = tmp_path / "jobs.d" / ".status"
    status_dir.parent.mkdir()
    store.put_job(
        JobSpec(name="nightly", command="sleep 60"),
        str(status_dir.parent),
        str(status_dir.parent / "nightly.toml"),
        "h1",
        status_dir=str(status_dir),
    )
    store.add_job_runs([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None, job="nightly", scheduled_for=1.0)])
    _claimed_by(store, "dead")
    pool = Pool(store, 1, log=None)
    assert pool.rescue() == 1
    assert pool._statuses is not None
    pool._statuses.close()  # what the pool's close does: the writes handed over are done
    document = json.loads((status_dir / "nightly.json").read_text())
    assert (document["run_id"], document["state"]) == ("r1", "pending")
    assert document["error"] == "its worker pool died before the attempt was seen running; not counted"


def test_a_rescued_run_is_claimed_at_once_not_at_the_next_poll(tmp_path: Path, store: Store) -> None:
    """An idle pool polls every 30 s here; a run it rescues at a heartbeat starts in the same turn."""
    store.set_config("worker-poll-interval", "30")
    store.set_config("lease-seconds", "0.6")  # a heartbeat, and so a look for dead pools, every 0.2 s
    store.enqueue([NewRun("r1", "sleep 30", 0, 3, 2.0, 60.0, None)])
    other = subprocess.Popen(["sleep", "30"])  # the pool that holds r1, alive until the test kills it
    lines: list[str] = []
    pool = Pool(store, 1, log=lines.append)
    try:
        _claimed_by(store, "other", pid=other.pid, start=wait_for(lambda: runner.proc_start_time(other.pid)))
        pool.start()
        pool.run_once(max_wait=0.05)  # its first poll finds nothing to claim: the next is 30 s away
        assert not pool.running
        other.kill()
        other.wait()
        deadline = time.monotonic() + 10
        rescued_at = None
        while not pool.running:
            pool.run_once(max_wait=0.05)
            if rescued_at is None and "rescued r1 from dead pool other: now pending" in lines:
                rescued_at = time.monotonic()
            assert time.monotonic() < deadline, "the rescued run did not start"
        assert rescued_at is not None and time.monotonic() - rescued_at < 1.0
        assert [p.claim.run_id for p in pool.running.values()] == ["r1"]
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
        pool.close()


def test_a_running_attempt_s_process_group_and_log_are_in_the_store(tmp_path: Path, store: Store) -> None:
    """What `show` prints, and what a rescue needs should the pool die: recorded while the attempt runs."""
    store.enqueue([NewRun("r1", "echo started; exec sleep 30", 0, 0, 2.0, 60.0, None)])
    pool = Pool(store, 1, log=None)
    try:
        pool.start()
        deadline = time.monotonic() + 10
        while getattr(store.get_run("r1"), "pgid", None) is None:
            pool.run_once(max_wait=0.05)
            assert time.monotonic() < deadline, "the attempt was never recorded"
        [proc] = pool.running.values()
        run = store.get_run("r1")
        assert run is not None and (run.state.value, run.pgid, run.log_path) == ("running", proc.pid, proc.log_path)
    finally:
        pool.close()


def test_rescue_of_a_run_that_keeps_its_children_spares_its_daemons(tmp_path: Path, store: Store) -> None:
    """keep_children: the recorded group is killed, a marked process that left it (a daemon) lives on."""
    store.enqueue([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None, keep_children=True)])
    attempt = _claimed_by(store, "dead")
    markers = {runner.RUN_ID_VAR: "r1", runner.ATTEMPT_VAR: str(attempt), runner.POOL_VAR: "dead"}
    proc, start, log = _leftover_group(tmp_path, markers)
    child = int((tmp_path / "pids").read_text())
    daemon = subprocess.Popen(["sleep", "30"], start_new_session=True, env={"PATH": os.environ["PATH"], **markers})
    try:
        wait_for(lambda: runner.proc_start_time(daemon.pid), what="the daemon")
        store.record_processes("dead", [ProcessInfo("r1", proc.pid, start, log, store.now(), attempt)])
        assert Pool(store, 1, log=None).rescue() == 1
        assert proc.wait(timeout=5) == -signal.SIGKILL
        wait_for(lambda: not is_running(child), timeout=5, what="the group's child killed")
        assert is_running(daemon.pid)
    finally:
        for pid in (proc.pid, child, daemon.pid):
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        daemon.wait()


def test_one_rescue_puts_back_more_runs_than_one_batch(tmp_path: Path, store: Store) -> None:
    """A dead pool that held 101 runs (batches of 100): all come back at once, and its row goes."""
    store.enqueue([NewRun(f"r{i}", "sleep 60", 0, 3, 2.0, 60.0, None) for i in range(101)])
    now = store.now()
    store.register_worker(Worker("dead", runner.HOST, 2**22 + 7, 1, 1, now, now, False, machine=runner.MACHINE))
    assert len(store.claim_runs("dead", runner.HOST, 101, 300.0)) == 101
    assert Pool(store, 1, log=None).rescue() == 101
    assert store.counts().get("running", 0) == 0 and store.counts()["pending"] == 101
    assert [w.id for w in store.list_workers()] == []
