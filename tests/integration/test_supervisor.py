"""`up`'s Supervisor in this process: a real SQLite store in a temp dir, a real jobs directory,
real commands, and an injected clock for the schedules (frozen until a test moves it).

The pool takes signals only in the main thread, so `run()` runs in the test's thread and
what the test does meanwhile runs beside it (`serve`); each wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from queuectl.model import RunState
from queuectl.store import Store, open_store
from queuectl.supervisor import Supervisor
from tests.clock import Clock
from tests.conftest import wait_for

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # a minute's start: the cron test's fire
EVERY_MINUTE = 'cron = "* * * * *"\ntimezone = "UTC"\n'
LIMIT = 30.0  # run() must end this long after it was asked to (or, in burst mode, after it began)


class World:
    """A jobs directory, a store, a clock, and what the supervisors said."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.jobs = tmp / "jobs.d"
        self.jobs.mkdir()
        self.url = str(tmp / "q.db")
        self.clock = Clock(T0 - 30)
        self.lines: list[str] = []
        self.look = open_store(self.url, clock=self.clock)  # the test's own connection
        self._opened: list[Store] = [self.look]
        self._supervisors: list[Supervisor] = []

    def supervisor(self, burst: bool = False) -> Supervisor:
        pools_store = open_store(self.url, clock=self.clock)
        self._opened.append(pools_store)
        supervisor = Supervisor(pools_store, [str(self.jobs)], 2, say=self.lines.append, burst=burst, clock=self.clock)
        self._supervisors.append(supervisor)
        return supervisor

    def write(self, name: str, text: str) -> Path:
        path = self.jobs / name
        path.write_text(text)
        os.chmod(path, 0o644)
        return path

    def said(self, *parts: str) -> bool:
        return any(all(part in line for part in parts) for line in list(self.lines))

    def states(self, job: str) -> list[RunState]:
        return [r.state for r in self.look.list_runs() if r.job == job]

    def close(self) -> None:
        for supervisor in self._supervisors:
            supervisor.close()
        for store in self._opened:
            store.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def serve(supervisor: Supervisor, action: Callable[[], None] | None = None, *, stop: bool = True) -> float:
    """`supervisor.run()` here while `action` runs beside it, then `stop()` (unless told not to).

    Returns the seconds `run()` went on after `stop()` (after its start without it). A run()
    that does not end within LIMIT fails the test: every pool of the store is then asked
    to stop through the store, so that the test ends instead of hanging.
    """
    done = threading.Event()
    problems: list[BaseException | str] = []
    asked = [time.monotonic()]

    def beside() -> None:
        try:
            if action is not None:
                action()
        except BaseException as exc:
            problems.append(exc)
        if stop:
            asked[0] = time.monotonic()
            supervisor.stop()
        if not done.wait(LIMIT):
            problems.append(f"run() did not end within {LIMIT:g}s")
            rescue = open_store(supervisor.store.url)
            rescue.request_stop([w.id for w in rescue.list_workers()])
            rescue.wake_pools()
            rescue.close()

    thread = threading.Thread(target=beside, name="beside-the-supervisor", daemon=True)
    thread.start()
    try:
        supervisor.run()
    finally:
        ended = time.monotonic()
        done.set()
        thread.join(timeout=LIMIT + 10)
    for problem in problems:
        raise problem if isinstance(problem, BaseException) else AssertionError(problem)
    return ended - asked[0]


def up_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("queuectl-scheduler", "queuectl-watcher")]


# -- applying ------------------------------------------------------------------------
def test_the_first_apply_creates_the_jobs_and_says_the_whole_plan(world: World) -> None:
    world.write("a.toml", 'command = "true"\n')
    world.write("b.toml", 'command = "true"\nrun_at = "+1h"\n')
    supervisor = world.supervisor()
    plan = supervisor.apply_once(first=True)
    assert sorted(j.name for j in world.look.list_jobs()) == ["a", "b"]
    assert world.states("a") == [RunState.PENDING]
    [b_run] = [r for r in world.look.list_runs() if r.job == "b"]
    assert b_run.run_at == T0 - 30 + 3600  # "+1h" from the injected clock's now
    assert plan.counts()["create"] == 2
    assert world.said("+ a: created") and world.said("applied: 2 created, 0 updated, 0 deleted, 0 unchanged")
    world.lines.clear()
    supervisor.apply_once()  # nothing changed: nothing said
    assert world.lines == []
    world.supervisor().apply_once(first=True)  # a restart's first apply says where it stands all the same
    assert world.lines == ["applied: 0 created, 0 updated, 0 deleted, 2 unchanged"]


def test_a_manifest_written_while_it_runs_is_applied_and_run(world: World) -> None:
    out = world.tmp / "new.out"

    def write_one() -> None:
        wait_for(lambda: world.said("watching"), what="watching")
        world.write("new.toml", f'command = "echo new > {out}"\n')
        wait_for(lambda: world.states("new") == [RunState.COMPLETED], what="new completed")

    serve(world.supervisor(), write_one)
    assert out.read_text() == "new\n"
    assert world.said("+ new: created")


def test_a_broken_manifest_is_reported_and_the_good_jobs_keep_running(world: World) -> None:
    good = world.write("good.toml", 'command = "echo good"\n')

    def break_things() -> None:
        wait_for(lambda: world.states("good") == [RunState.COMPLETED], what="good completed")
        world.write("broken.toml", "command = [\n")
        wait_for(lambda: world.said("broken.toml:", "invalid TOML"), what="broken.toml reported")
        good.write_text("command = \n")  # an edit that breaks a job in service
        wait_for(lambda: world.said("good.toml:", "keeps its last good version"), what="good.toml reported")
        world.write("later.toml", 'command = "echo later"\n')
        wait_for(lambda: world.states("later") == [RunState.COMPLETED], what="later completed: still serving")

    serve(world.supervisor(), break_things)
    job = world.look.get_job("good")
    assert job is not None and job.spec.command == "echo good"


# -- scheduling with the injected clock --------------------------------------------------
def test_a_cron_job_fires_at_the_clock_s_minute_once_however_often_the_scheduler_looks(world: World) -> None:
    world.write("tick.toml", f'command = "true"\n{EVERY_MINUTE}')
    supervisor = world.supervisor()
    supervisor.apply_once(first=True)
    assert supervisor.schedule_once() == T0  # a new job: fires count from now on
    assert world.states("tick") == []
    world.clock.now = T0 + 0.5
    assert supervisor.schedule_once() == T0 + 60
    assert supervisor.schedule_once() == T0 + 60
    [run] = [r for r in world.look.list_runs() if r.job == "tick"]
    assert (run.scheduled_for, run.run_at) == (T0, T0 + 0.5)
    assert sum(line.startswith("fire ") for line in world.lines) == 1


def test_the_scheduler_thread_fires_when_the_clock_comes_and_the_pool_runs_it(world: World) -> None:
    fired = world.tmp / "fired"
    world.write("tick.toml", f'command = "echo x >> {fired}"\n{EVERY_MINUTE}')

    def move_the_clock() -> None:
        wait_for(lambda: world.look.next_fire() == T0, what="the scheduler's first look")
        wait_for(world.look.list_workers, what="the pool registered")  # a wake-up reaches pools registered
        assert world.states("tick") == []
        world.clock.now = T0 + 0.5
        world.look.wake_pools()  # the scheduler waits for T0 by the clock: the pool's wake-up makes it look now
        wait_for(lambda: world.states("tick") == [RunState.COMPLETED], what="the fire of T0 ran")

    supervisor = world.supervisor()
    serve(supervisor, move_the_clock)
    assert supervisor.schedule_once() == T0 + 60  # and once more after the end: still the one run
    assert [(r.scheduled_for, r.state) for r in world.look.list_runs()] == [(T0, RunState.COMPLETED)]
    assert fired.read_text() == "x\n"


# -- stopping --------------------------------------------------------------------------
def test_stop_ends_run_promptly_and_leaves_no_pool_registered(world: World) -> None:
    took = serve(world.supervisor(), lambda: wait_for(world.look.list_workers, what="the pool registered"))
    assert took < 5.0, f"run() went on {took:.1f}s after stop()"
    assert world.look.list_workers() == []
    assert up_threads() == []


def test_stop_before_the_pool_started_still_ends_run(world: World) -> None:
    supervisor = world.supervisor()
    supervisor.stop()
    serve(supervisor, stop=False)
    assert world.look.list_workers() == []
    assert up_threads() == []


def test_stop_lets_a_running_command_finish(world: World) -> None:
    out = world.tmp / "slow.out"
    world.write("slow.toml", f'command = "sleep 0.5; echo done > {out}"\n')

    def wait_until_running() -> None:
        wait_for(lambda: world.states("slow") == [RunState.RUNNING], what="slow running")

    serve(world.supervisor(), wait_until_running)
    assert world.states("slow") == [RunState.COMPLETED]
    assert out.read_text() == "done\n"


# -- burst -------------------------------------------------------------------------------
def test_burst_runs_what_is_due_and_returns(world: World) -> None:
    now_out, tick_out = world.tmp / "now.out", world.tmp / "tick.out"
    world.write("now.toml", f'command = "echo now > {now_out}"\n')
    world.write("later.toml", 'command = "true"\nrun_at = "+1h"\n')
    world.write("tick.toml", f'command = "echo tick >> {tick_out}"\n{EVERY_MINUTE}')
    serve(world.supervisor(burst=True), stop=False)
    assert now_out.read_text() == "now\n"
    assert (world.states("now"), world.states("later"), world.states("tick")) == (
        [RunState.COMPLETED],
        [RunState.SCHEDULED],  # not due: burst does not wait for it
        [],  # a new cron job fires from now on
    )
    assert not world.said("watching") and up_threads() == []

    world.clock.now = T0 + 1  # the cron job's fire has come: the next burst runs it
    serve(world.supervisor(burst=True), stop=False)
    assert [(r.scheduled_for, r.state) for r in world.look.list_runs() if r.job == "tick"] == [(T0, RunState.COMPLETED)]
    assert tick_out.read_text() == "tick\n"
    assert world.states("later") == [RunState.SCHEDULED]
    assert world.look.list_workers() == []
