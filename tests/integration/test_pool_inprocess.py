"""`Pool` driven in this process against a real SQLite store and real processes, with injected clocks.

The pool's monotonic clock stands still unless a test moves it, so its batching
decisions (claim ahead, give back, poll) happen when the test says; the wall clock
it stamps attempts with moves only when told too, so an attempt's duration is the
test's choice. Commands that must run for a while wait for a gate file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queuectl.model import NewRun, RunState
from queuectl.pool import Pool
from queuectl.pool.batching import READY_MAX_AGE
from queuectl.store import Store, open_store


class Tick:
    """A clock that moves only when told."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "q.db"))
    yield opened
    opened.close()


def _run(run_id: str, command: str, priority: int) -> NewRun:
    return NewRun(run_id, command, priority, 0, 2.0, 60.0, None)


def _gated(gate: Path) -> str:
    """A command that runs until `gate` exists."""
    return f"while [ ! -e {gate} ]; do sleep 0.01; done"


def _turn_until(pool: Pool, condition: Callable[[], object], what: str, limit: float = 20.0) -> None:
    """Turn the pool's loop until `condition` holds (a deadline in real time, for a test that went wrong)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pool.run_once(max_wait=0.02)


def _held_by(store: Store, run_id: str) -> str | None:
    run = store.get_run(run_id)
    assert run is not None
    return run.worker_id


def _state(store: Store, run_id: str) -> RunState:
    run = store.get_run(run_id)
    assert run is not None
    return run.state


def test_a_burst_pool_drains_the_queue_and_leaves(store: Store) -> None:
    store.enqueue([_run(f"r{i}", "true", 5) for i in range(20)])
    lines: list[str] = []
    pool = Pool(store, 2, burst=True, log=lines.append, verbose=False)
    pool.run()
    assert {_state(store, f"r{i}") for i in range(20)} == {RunState.COMPLETED}
    assert pool.stats.finished == {"completed": 20}
    assert store.list_workers() == []  # it unregistered on the way out
    assert lines[-1] == f"pool {pool.id} stopped after 20 attempt(s)"


def test_a_run_claimed_ahead_goes_back_to_the_queue_when_it_waited_ready_max_age(
    tmp_path: Path, store: Store
) -> None:
    gate = tmp_path / "gate"
    store.enqueue([_run("r1", _gated(gate), 9), _run("r2", "true", 5), _run("r3", "true", 1)])
    mono, wall = Tick(1000.0), Tick(time.time())
    pool = Pool(store, 1, log=None, clock=wall, monotonic=mono)
    pool.start()
    try:
        _turn_until(pool, lambda: pool.running, "r1 to start")
        # Before any attempt has ended, one run per slot is claimed ahead: r2, not r3.
        assert _held_by(store, "r2") == pool.id
        assert _held_by(store, "r3") is None
        pool.run_once(max_wait=0.02)
        assert _held_by(store, "r2") == pool.id  # the clock stands still: r2 stays claimed
        mono.advance(READY_MAX_AGE)
        pool.run_once(max_wait=0.02)
        assert _held_by(store, "r2") is None
        assert _state(store, "r2") is RunState.PENDING
        assert [p.claim.run_id for p in pool.running.values()] == ["r1"]
        gate.touch()
        done = {RunState.COMPLETED}
        _turn_until(pool, lambda: {_state(store, r) for r in ("r1", "r2", "r3")} == done, "all three to complete")
    finally:
        pool.close()
    assert store.list_workers() == []


@pytest.mark.parametrize(("took", "claimed"), [(0.0, ["r2", "r3", "r4"]), (1.0, ["r2"])])
def test_after_short_attempts_runs_are_claimed_ahead_after_long_ones_none(
    tmp_path: Path, store: Store, took: float, claimed: list[str]
) -> None:
    """The first attempt takes `took` seconds by the pool's wall clock; then three runs come for one slot."""
    store.enqueue([_run("r1", _gated(tmp_path / "gate1"), 9)])
    mono, wall = Tick(1000.0), Tick(time.time())
    pool = Pool(store, 1, log=None, clock=wall, monotonic=mono)
    pool.start()
    try:
        _turn_until(pool, lambda: pool.running, "r1 to start")
        wall.advance(took)
        (tmp_path / "gate1").touch()
        _turn_until(pool, lambda: _state(store, "r1") is RunState.COMPLETED, "r1 to complete")
        pool.run_once(max_wait=0.02)  # nothing left: it waits for the next poll
        gate2 = tmp_path / "gate2"
        store.enqueue([_run("r2", _gated(gate2), 9), _run("r3", _gated(gate2), 5), _run("r4", _gated(gate2), 1)])
        pool.run_once(max_wait=0.02)
        assert _held_by(store, "r2") is None  # not before the poll
        mono.advance(pool.poll_interval)
        _turn_until(pool, lambda: pool.running, "r2 to start")
        assert [r for r in ("r2", "r3", "r4") if _held_by(store, r) == pool.id] == claimed
        gate2.touch()
    finally:
        pool.close()
    assert store.list_workers() == []
