"""The Store contract: one suite, run against every backend in BACKENDS.

Time comes from a fake clock, so lease expiry and retry delays are tested by
moving the clock, never by sleeping.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from queuectl.errors import DuplicateRunError, StoreError
from queuectl.model import METRIC_BUCKETS, AttemptResult, Claim, JobSpec, NewRun, Outcome, ProcessInfo, RunState, Worker
from queuectl.store.contract import Store
from queuectl.store.sqlite import SQLiteStore
from tests.clock import Clock as FakeClock

T0 = 1_800_000_000.0
LEASE = 30.0
HOST = "host-a"


_pg_databases: dict[Path, str] = {}


def open_postgres(tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest) -> Store:
    from queuectl.store.postgres import PostgresStore

    if tmp_path not in _pg_databases:
        _pg_databases[tmp_path] = request.getfixturevalue("pg_server").create_database()
    return PostgresStore(_pg_databases[tmp_path], clock=clock)


def open_sqlite(tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest) -> Store:
    return SQLiteStore(str(tmp_path / "q.db"), clock=clock)


# Each backend: a function (tmp_path, clock, request) -> Store that opens the same
# store each time it is called with the same tmp_path.
BACKENDS: dict[str, Callable[[Path, FakeClock, pytest.FixtureRequest], Store]] = {
    "sqlite": open_sqlite,
    "postgres": open_postgres,
}

Opener = Callable[[], Store]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(params=sorted(BACKENDS))
def opener(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Opener]:
    opened: list[Store] = []

    def open_store() -> Store:
        store = BACKENDS[request.param](tmp_path, clock, request)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


def new_run(run_id: str, **fields: object) -> NewRun:
    values: dict[str, object] = {
        "id": run_id,
        "command": f"echo {run_id}",
        "priority": 5,
        "max_retries": 2,
        "backoff_base": 2.0,
        "backoff_max": 3600.0,
        "timeout": None,
    }
    values.update(fields)
    return NewRun(**values)  # type: ignore[arg-type]


def claim_one(store: Store, worker: str = "w1") -> Claim:
    claims = store.claim_runs(worker, HOST, 1, LEASE)
    assert len(claims) == 1, claims
    return claims[0]


def claim_started(store: Store, clock: FakeClock, worker: str = "w1") -> Claim:
    """Claim a run and record its process, as a pool does once the command runs."""
    claim = claim_one(store, worker)
    info = ProcessInfo(claim.run_id, 4242, 1, f"/logs/{claim.run_id}.log", clock.now, claim.attempt)
    store.record_processes(worker, [info])
    return claim


def finish(store: Store, clock: FakeClock, claim: Claim, outcome: Outcome, worker: str = "w1") -> RunState | None:
    exit_code = {Outcome.COMPLETED: 0, Outcome.FAILED: 1}.get(outcome)
    result = AttemptResult(
        claim=claim,
        worker_id=worker,
        pgid=4242,
        started_at=clock.now,
        finished_at=clock.now,
        exit_code=exit_code,
        outcome=outcome,
        error=None,
        output_tail=f"tail {outcome}",
    )
    [state] = store.finish_attempts(HOST, [result])
    return state


def state_of(store: Store, run_id: str) -> RunState:
    run = store.get_run(run_id)
    assert run is not None
    return run.state


def make_dead(store: Store, clock: FakeClock, run_id: str) -> None:
    store.enqueue([new_run(run_id, max_retries=0)])
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.DEAD


def worker(worker_id: str, host: str = HOST) -> Worker:
    return Worker(
        id=worker_id, host=host, pid=1234, proc_start=99, slots=4, started_at=T0, heartbeat_at=T0, stop_requested=False
    )


# -- enqueue ----------------------------------------------------------------------
def test_enqueue_keeps_every_field(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", priority=7, max_retries=4, timeout=60.0, cwd="/tmp", env={"K": "v"})])
    run = store.get_run("a")
    assert run is not None
    assert (run.command, run.state, run.priority, run.attempts) == ("echo a", RunState.PENDING, 7, 0)
    assert (run.max_retries, run.backoff_base, run.backoff_max, run.timeout) == (4, 2.0, 3600.0, 60.0)
    assert (run.cwd, run.env, run.created_at, run.run_at) == ("/tmp", {"K": "v"}, T0, T0)


def test_get_run_of_unknown_id_is_none(store: Store) -> None:
    assert store.get_run("nope") is None


def test_enqueue_duplicate_in_batch_adds_nothing(store: Store) -> None:
    with pytest.raises(DuplicateRunError, match="'a'"):
        store.enqueue([new_run("a"), new_run("b"), new_run("a")])
    assert store.list_runs() == []


def test_enqueue_existing_id_adds_nothing(store: Store) -> None:
    store.enqueue([new_run("a")])
    with pytest.raises(DuplicateRunError, match="'a'"):
        store.enqueue([new_run("b"), new_run("a"), new_run("c")])
    assert [r.id for r in store.list_runs()] == ["a"]


# -- claims -----------------------------------------------------------------------
def test_claim_order_is_priority_then_oldest(store: Store, clock: FakeClock) -> None:
    for run_id, priority in [("old-5", 5), ("high", 10), ("new-5", 5), ("low", 1), ("newer-high", 10)]:
        store.enqueue([new_run(run_id, priority=priority)])
        clock.advance(1)
    claimed = [c.run_id for c in store.claim_runs("w1", HOST, 10, LEASE)]
    assert claimed == ["high", "newer-high", "old-5", "new-5", "low"]


def test_claim_one_at_a_time_follows_the_same_order(store: Store, clock: FakeClock) -> None:
    for run_id, priority in [("b", 5), ("a", 5), ("c", 9)]:
        store.enqueue([new_run(run_id, priority=priority)])
        clock.advance(1)
    assert [claim_one(store).run_id for _ in range(3)] == ["c", "b", "a"]
    assert store.claim_runs("w1", HOST, 1, LEASE) == []


def test_claim_carries_what_the_attempt_needs(store: Store) -> None:
    store.enqueue([new_run("a", timeout=5.0, cwd="/tmp", env={"K": "v"}, max_retries=3, backoff_base=1.5)])
    claim = claim_one(store)
    assert (claim.run_id, claim.attempt, claim.attempts, claim.command) == ("a", 1, 1, "echo a")
    assert (claim.max_retries, claim.backoff_base, claim.timeout) == (3, 1.5, 5.0)
    assert (claim.cwd, claim.env) == ("/tmp", {"K": "v"})


def test_claim_respects_limit(store: Store) -> None:
    store.enqueue([new_run(f"r{i}") for i in range(5)])
    assert len(store.claim_runs("w1", HOST, 3, LEASE)) == 3
    assert len(store.claim_runs("w1", HOST, 0, LEASE)) == 0
    assert len(store.claim_runs("w1", HOST, 10, LEASE)) == 2


def test_delayed_run_is_not_claimed_until_run_at(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("later", run_at=T0 + 60)])
    assert store.claim_runs("w1", HOST, 1, LEASE) == []
    clock.advance(59.9)
    assert store.claim_runs("w1", HOST, 1, LEASE) == []
    clock.advance(0.1)
    assert claim_one(store).run_id == "later"


def test_claimed_run_is_not_claimed_by_another_worker(store: Store) -> None:
    store.enqueue([new_run("a")])
    claim_one(store, "w1")
    assert store.claim_runs("w2", HOST, 10, LEASE) == []
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.worker_id, run.host, run.lease_expires) == (RunState.RUNNING, "w1", HOST, T0 + LEASE)


# -- settling attempts ------------------------------------------------------------
def test_finish_completed(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    claim = claim_one(store)
    clock.advance(3)
    assert finish(store, clock, claim, Outcome.COMPLETED) is RunState.COMPLETED
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.exit_code, run.attempts, run.worker_id) == (RunState.COMPLETED, 0, 1, None)
    assert [(a.n, a.outcome, a.worker_id) for a in store.attempts("a")] == [(1, Outcome.COMPLETED, "w1")]


def test_failed_attempt_retries_after_backoff_base_to_the_attempts(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=2, backoff_base=3.0)])
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.FAILED
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.run_at, run.exit_code) == (RunState.FAILED, T0 + 3, 1)
    clock.advance(2.9)
    assert store.claim_runs("w1", HOST, 1, LEASE) == []
    clock.advance(0.1)
    claim = claim_one(store)
    assert (claim.attempt, claim.attempts) == (2, 2)
    assert finish(store, clock, claim, Outcome.TIMEOUT) is RunState.FAILED
    run = store.get_run("a")
    assert run is not None
    assert run.run_at == clock.now + 9


def test_max_retries_2_goes_dead_on_the_third_failure(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=2, backoff_base=2.0)])
    states = []
    for _ in range(3):
        states.append(finish(store, clock, claim_one(store), Outcome.FAILED))
        clock.advance(3600)
    assert states == [RunState.FAILED, RunState.FAILED, RunState.DEAD]
    assert store.claim_runs("w1", HOST, 1, LEASE) == []
    assert [a.n for a in store.attempts("a")] == [1, 2, 3]


def test_retry_delay_is_capped_by_backoff_max(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=5, backoff_base=100.0, backoff_max=50.0)])
    finish(store, clock, claim_one(store), Outcome.FAILED)
    run = store.get_run("a")
    assert run is not None
    assert run.run_at == T0 + 50


def test_interrupted_attempt_is_not_counted(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=0)])
    assert finish(store, clock, claim_one(store), Outcome.INTERRUPTED) is RunState.PENDING
    run = store.get_run("a")
    assert run is not None
    assert run.attempts == 0
    claim = claim_one(store)
    assert (claim.attempt, claim.attempts) == (2, 1)


def test_release_returns_a_claim_without_counting_an_attempt(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    claim = claim_one(store, "w1")
    assert store.held_runs("w1") == [(claim.run_id, claim.attempt)]
    store.release_runs("w1", [(claim.run_id, claim.attempt)])
    assert store.held_runs("w1") == []
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.attempts, run.worker_id) == (RunState.PENDING, 0, None)
    assert store.attempts("a") == []
    claim = claim_one(store, "w2")
    assert (claim.attempt, claim.attempts) == (1, 1)


def test_release_by_another_worker_changes_nothing(store: Store) -> None:
    store.enqueue([new_run("a")])
    claim = claim_one(store, "w1")
    store.release_runs("w2", [(claim.run_id, claim.attempt)])
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.worker_id) == (RunState.RUNNING, "w1")


# -- leases -----------------------------------------------------------------------
def test_heartbeat_extends_leases(store: Store, clock: FakeClock) -> None:
    store.register_worker(worker("w1"))
    store.enqueue([new_run("a")])
    claim_one(store, "w1")
    clock.advance(LEASE - 1)
    assert store.heartbeat("w1", LEASE) is False
    clock.advance(LEASE - 1)
    assert store.find_expired([]) == []
    run = store.get_run("a")
    assert run is not None
    assert run.lease_expires == T0 + 2 * LEASE - 1


def test_heartbeat_reports_a_stop_request(store: Store) -> None:
    store.register_worker(worker("w1"))
    store.register_worker(worker("w2"))
    store.request_stop(["w1"])
    assert store.heartbeat("w1", LEASE) is True
    assert store.heartbeat("w2", LEASE) is False
    assert {w.id: w.stop_requested for w in store.list_workers()} == {"w1": True, "w2": False}


def test_find_expired_after_the_lease_passes(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a"), new_run("b")])
    claim_one(store, "w1")
    clock.advance(LEASE + 1)
    claim_one(store, "w2")
    expired = store.find_expired([])
    assert [(e.run_id, e.worker_id, e.host) for e in expired] == [("a", "w1", HOST)]


def test_find_expired_for_dead_workers_before_the_lease_passes(store: Store) -> None:
    store.enqueue([new_run("a"), new_run("b")])
    claim_one(store, "w1")
    claim_one(store, "w2")
    assert store.find_expired([]) == []
    assert [e.run_id for e in store.find_expired(["w2", "w9"])] == ["b"]


def test_requeue_lost_counts_the_attempt(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=1)])
    claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    assert store.requeue_lost(expired, "last words") is RunState.PENDING
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.attempts, run.worker_id, run.run_at) == (RunState.PENDING, 1, None, clock.now)
    [attempt] = store.attempts("a")
    assert (attempt.n, attempt.outcome, attempt.worker_id, attempt.output_tail) == (1, Outcome.LOST, "w1", "last words")
    assert store.find_expired([]) == []


def test_requeue_lost_of_an_attempt_never_seen_running_is_not_counted(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=0)])
    claim_one(store, "w1")  # claimed ahead, never recorded as running
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    assert store.requeue_lost(expired) is RunState.PENDING
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.attempts) == (RunState.PENDING, 0)
    [attempt] = store.attempts("a")
    assert attempt.outcome is Outcome.INTERRUPTED and "not counted" in (attempt.error or "")


def test_record_processes_ignores_a_stale_attempt(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    claim = claim_one(store, "w1")
    store.record_processes("w2", [ProcessInfo("a", 7, 1, "/x.log", clock.now, claim.attempt)])
    store.record_processes("w1", [ProcessInfo("a", 8, 1, "/y.log", clock.now, claim.attempt + 1)])
    run = store.get_run("a")
    assert run is not None and run.pgid is None
    store.record_processes("w1", [ProcessInfo("a", 9, 1, "/z.log", clock.now, claim.attempt)])
    run = store.get_run("a")
    assert run is not None and (run.pgid, run.log_path) == (9, "/z.log")


def test_requeue_lost_goes_dead_when_out_of_retries(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=1)])
    for expected in (RunState.PENDING, RunState.DEAD):
        claim_started(store, clock, "w1")
        clock.advance(LEASE + 1)
        [expired] = store.find_expired([])
        assert store.requeue_lost(expired) is expected
    assert state_of(store, "a") is RunState.DEAD
    assert [a.outcome for a in store.attempts("a")] == [Outcome.LOST, Outcome.LOST]


def test_requeue_lost_of_a_run_already_finished_is_none(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    claim = claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    finish(store, clock, claim, Outcome.COMPLETED)
    assert store.requeue_lost(expired) is None
    assert state_of(store, "a") is RunState.COMPLETED
    assert [a.outcome for a in store.attempts("a")] == [Outcome.COMPLETED]


def test_finish_by_a_worker_that_lost_its_lease_changes_nothing(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    claim = claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    store.requeue_lost(expired)
    before = store.get_run("a")
    assert finish(store, clock, claim, Outcome.COMPLETED, worker="w1") is None
    assert store.get_run("a") == before
    assert [a.outcome for a in store.attempts("a")] == [Outcome.LOST]


def test_finish_by_a_worker_whose_run_was_claimed_again_changes_nothing(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    old = claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    store.requeue_lost(expired)
    claim_one(store, "w2")
    assert finish(store, clock, old, Outcome.FAILED, worker="w1") is None
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.worker_id) == (RunState.RUNNING, "w2")


def test_stale_finish_after_the_same_worker_claimed_again_changes_nothing(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    old = claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    store.requeue_lost(expired)
    new = claim_started(store, clock, "w1")
    assert finish(store, clock, old, Outcome.COMPLETED, worker="w1") is None
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.worker_id) == (RunState.RUNNING, "w1")
    assert finish(store, clock, new, Outcome.COMPLETED, worker="w1") is RunState.COMPLETED


def test_requeue_lost_after_the_lease_was_renewed_changes_nothing(store: Store, clock: FakeClock) -> None:
    store.register_worker(worker("w1"))
    store.enqueue([new_run("a")])
    claim_started(store, clock, "w1")
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    store.heartbeat("w1", LEASE)
    assert store.requeue_lost(expired) is None
    assert state_of(store, "a") is RunState.RUNNING


# -- dead-letter queue, deletion, listing ------------------------------------------
def test_retry_dead_keeps_attempts_by_default(store: Store, clock: FakeClock) -> None:
    make_dead(store, clock, "a")
    clock.advance(10)
    assert store.retry_dead(["a"], reset_attempts=False) == ["a"]
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.attempts, run.run_at) == (RunState.PENDING, 1, clock.now)
    # still out of retries: the next failure goes straight back to dead
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.DEAD


def test_retry_dead_with_reset_gives_every_retry_back(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", max_retries=1)])
    for _ in range(2):
        finish(store, clock, claim_one(store), Outcome.FAILED)
        clock.advance(3600)
    assert state_of(store, "a") is RunState.DEAD
    assert store.retry_dead(["a"], reset_attempts=True) == ["a"]
    run = store.get_run("a")
    assert run is not None
    assert (run.state, run.attempts) == (RunState.PENDING, 0)
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.FAILED


def test_retry_dead_all(store: Store, clock: FakeClock) -> None:
    make_dead(store, clock, "a")
    make_dead(store, clock, "b")
    store.enqueue([new_run("c")])
    assert sorted(store.retry_dead(None, reset_attempts=False)) == ["a", "b"]
    assert store.counts()["dead"] == 0
    assert store.counts()["pending"] == 3


def test_retry_dead_ignores_runs_that_are_not_dead(store: Store, clock: FakeClock) -> None:
    make_dead(store, clock, "a")
    store.enqueue([new_run("b")])
    assert store.retry_dead(["b", "nope"], reset_attempts=True) == []
    assert state_of(store, "a") is RunState.DEAD


def _dead_of_jobs(store: Store, clock: FakeClock) -> None:
    """Dead runs a1, a2 of job a and b1 of job b, dead run loose of no job, and a waiting run w of job a."""
    for run_id, job in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("loose", None)):
        store.enqueue([new_run(run_id, max_retries=0, job=job)])
        assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.DEAD
    store.enqueue([new_run("w", job="a")])


def test_retry_dead_of_one_job(store: Store, clock: FakeClock) -> None:
    _dead_of_jobs(store, clock)
    assert store.retry_dead(None, reset_attempts=False, job="a") == ["a1", "a2"]
    assert [r.id for r in store.list_runs("dead")] == ["b1", "loose"]
    assert store.retry_dead(["b1", "loose"], reset_attempts=False, job="a") == []  # ids of another job's
    assert store.retry_dead(None, reset_attempts=False, job="nope") == []


def test_delete_dead_by_id_all_and_of_one_job(store: Store, clock: FakeClock) -> None:
    _dead_of_jobs(store, clock)
    assert store.delete_dead(["a1", "w", "nope"]) == ["a1"]  # only dead runs: the waiting one stays
    assert store.attempts("a1") == []
    assert store.delete_dead(None, job="b") == ["b1"]
    assert [r.id for r in store.list_runs()] == ["a2", "loose", "w"]
    assert store.delete_dead(None) == ["a2", "loose"]
    assert [r.id for r in store.list_runs()] == ["w"]


def test_attempt_numbers_keep_increasing_across_retry_dead_with_reset(store: Store, clock: FakeClock) -> None:
    make_dead(store, clock, "a")
    for _ in range(2):
        store.retry_dead(["a"], reset_attempts=True)
        claim = claim_one(store)
        assert claim.attempts == 1
        assert finish(store, clock, claim, Outcome.FAILED) is RunState.DEAD
    assert [a.n for a in store.attempts("a")] == [1, 2, 3]


def test_delete_never_deletes_running_runs(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("running"), new_run("done"), new_run("waiting")])
    clock.advance(1)
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    claim_one(store)
    assert store.delete_runs(None) == ["done", "waiting"]
    assert [r.id for r in store.list_runs()] == ["running"]


def test_delete_by_state(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("done"), new_run("waiting")])
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    assert store.delete_runs("completed") == ["done"]
    assert store.delete_runs("running") == []
    assert [r.id for r in store.list_runs()] == ["waiting"]


def test_delete_removes_the_attempt_history(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a")])
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    store.delete_runs(None)
    store.enqueue([new_run("a")])
    assert store.attempts("a") == []


def test_counts_every_state(store: Store, clock: FakeClock) -> None:
    assert store.counts() == {s.value: 0 for s in RunState}
    store.enqueue([new_run("p1"), new_run("p2"), new_run("ok"), new_run("bad"), new_run("run")])
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    finish(store, clock, claim_one(store), Outcome.FAILED)
    claim_one(store)
    assert store.counts() == {**{s.value: 0 for s in RunState}, "pending": 2, "completed": 1, "failed": 1, "running": 1}


def test_list_runs_by_state_and_limit_oldest_first(store: Store, clock: FakeClock) -> None:
    for run_id in ["a", "b", "c", "d"]:
        store.enqueue([new_run(run_id)])
        clock.advance(1)
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    assert [r.id for r in store.list_runs()] == ["a", "b", "c", "d"]
    assert [r.id for r in store.list_runs(limit=2)] == ["a", "b"]
    assert [r.id for r in store.list_runs(state="pending")] == ["b", "c", "d"]
    assert [r.id for r in store.list_runs(state="pending", limit=1)] == ["b"]
    assert [r.id for r in store.list_runs(state="completed")] == ["a"]
    assert store.list_runs(state="dead") == []


def test_iter_runs_starts_after_a_keyset_cursor(store: Store, clock: FakeClock) -> None:
    for run_id in ["a", "b", "c", "d", "e"]:
        store.enqueue([new_run(run_id)])
        if run_id != "b":  # b and c share a created_at: the id breaks the tie
            clock.advance(1)
    b = store.get_run("b")
    assert b is not None
    cursor = (b.created_at, b.id)
    assert [r.id for r in store.iter_runs(after=cursor)] == ["c", "d", "e"]
    assert [r.id for r in store.iter_runs(after=cursor, limit=2, page=1)] == ["c", "d"]
    assert [r.id for r in store.iter_runs(state="pending", after=cursor, page=2)] == ["c", "d", "e"]
    last = store.get_run("e")
    assert last is not None and list(store.iter_runs(after=(last.created_at, last.id))) == []


def test_iter_runs_newest_first_walks_back_from_a_keyset_cursor(store: Store, clock: FakeClock) -> None:
    for run_id in ["a", "b", "c", "d", "e"]:
        store.enqueue([new_run(run_id)])
        if run_id != "b":  # b and c share a created_at: the id breaks the tie
            clock.advance(1)
    finish(store, clock, claim_one(store), Outcome.COMPLETED)  # a
    assert [r.id for r in store.iter_runs(newest_first=True)] == ["e", "d", "c", "b", "a"]
    assert [r.id for r in store.iter_runs(newest_first=True, limit=3, page=2)] == ["e", "d", "c"]
    c = store.get_run("c")
    assert c is not None
    cursor = (c.created_at, c.id)
    assert [r.id for r in store.iter_runs(after=cursor, newest_first=True)] == ["b", "a"]
    assert [r.id for r in store.iter_runs(state="pending", after=cursor, newest_first=True, page=1)] == ["b"]
    assert [r.id for r in store.iter_runs(state="completed", newest_first=True)] == ["a"]


def test_iter_runs_of_one_job_both_ways_from_a_keyset_cursor(store: Store, clock: FakeClock) -> None:
    for run_id, job in [("a", "j"), ("b", None), ("c", "j"), ("d", "k"), ("e", "j"), ("f", "j")]:
        store.enqueue([new_run(run_id, job=job)])
        if run_id != "e":  # e and f share a created_at: the id breaks the tie
            clock.advance(1)
    finish(store, clock, claim_one(store), Outcome.COMPLETED)  # a
    assert [r.id for r in store.iter_runs(job="j")] == ["a", "c", "e", "f"]
    assert [r.id for r in store.iter_runs(job="j", newest_first=True, page=1)] == ["f", "e", "c", "a"]
    assert [r.id for r in store.iter_runs(job="j", state="pending", newest_first=True, limit=2)] == ["f", "e"]
    assert [r.id for r in store.iter_runs(job="j", state="completed")] == ["a"]
    e = store.get_run("e")
    assert e is not None
    cursor = (e.created_at, e.id)
    assert [r.id for r in store.iter_runs(job="j", after=cursor)] == ["f"]
    assert [r.id for r in store.iter_runs(job="j", after=cursor, newest_first=True)] == ["c", "a"]
    assert list(store.iter_runs(job="nobody")) == []


def test_change_token_moves_on_any_commit_seen_from_fresh_connections(opener: Opener, clock: FakeClock) -> None:
    writer = opener()

    def token() -> object:
        reader = opener()
        try:
            return reader.change_token()
        finally:
            reader.close()

    first = token()
    assert token() == first  # nothing written: the same
    writer.enqueue([new_run("a")])
    second = token()
    assert second != first
    assert token() == second
    claim_one(writer)  # a run's state changes: no job, no new row
    assert token() != second


def test_run_ids_by_prefix_and_newest_first_within_a_limit(store: Store, clock: FakeClock) -> None:
    for run_id in ["ab1", "b", "ab2", "a_c", "abc"]:
        store.enqueue([new_run(run_id)])
        clock.advance(1)
    assert store.run_ids("", 3) == ["abc", "a_c", "ab2"]
    assert store.run_ids("ab", 10) == ["ab1", "ab2", "abc"]
    assert store.run_ids("ab", 2) == ["ab1", "ab2"]
    assert store.run_ids("a_", 10) == ["a_c"]
    assert store.run_ids("zz", 10) == []


def test_a_run_not_yet_due_is_scheduled_until_its_time(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("now"), new_run("later", run_at=T0 + 60)])
    assert store.get_run("later").state is RunState.SCHEDULED  # type: ignore[union-attr]
    assert {r.id: r.state for r in store.list_runs()} == {"now": RunState.PENDING, "later": RunState.SCHEDULED}
    assert (store.counts()["scheduled"], store.counts()["pending"]) == (1, 1)
    assert [r.id for r in store.list_runs(state="scheduled")] == ["later"]
    assert [r.id for r in store.list_runs(state="pending")] == ["now"]
    clock.advance(60)  # due now: pending, with nothing run to move it
    assert store.get_run("later").state is RunState.PENDING  # type: ignore[union-attr]
    assert (store.counts()["scheduled"], store.counts()["pending"]) == (0, 2)
    assert sorted(r.id for r in store.list_runs(state="pending")) == ["later", "now"]
    assert store.list_runs(state="scheduled") == []


def test_scheduled_runs_soonest_first(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("late", run_at=T0 + 90), new_run("now"), new_run("soon", run_at=T0 + 30)])
    assert [r.id for r in store.scheduled_runs()] == ["soon", "late"]
    assert [r.id for r in store.scheduled_runs(limit=1)] == ["soon"]
    assert {r.state for r in store.scheduled_runs()} == {RunState.SCHEDULED}
    clock.advance(30)
    assert [r.id for r in store.scheduled_runs()] == ["late"]


def test_a_failed_run_waiting_for_its_retry_stays_failed(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", backoff_base=7.0)])
    finish(store, clock, claim_one(store), Outcome.FAILED)
    run = store.get_run("a")
    assert run is not None and run.run_at > clock.now and run.state is RunState.FAILED
    assert store.counts()["scheduled"] == 0 and store.list_runs(state="scheduled") == []


def test_clearing_scheduled_or_pending_runs_parts_them_by_due_time(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("now"), new_run("later", run_at=T0 + 60), new_run("later2", run_at=T0 + 90)])
    assert store.delete_runs("scheduled") == ["later", "later2"]
    store.enqueue([new_run("later", run_at=T0 + 60)])
    assert store.delete_runs("pending") == ["now"]
    assert [r.id for r in store.list_runs()] == ["later"]


# -- config and workers -----------------------------------------------------------
def test_config_set_and_get(store: Store) -> None:
    assert store.config() == {}
    store.set_config("max-retries", "5")
    store.set_config("backoff-base", "3")
    store.set_config("max-retries", "7")
    assert store.config() == {"max-retries": "7", "backoff-base": "3"}


def test_register_list_unregister_workers(store: Store, clock: FakeClock) -> None:
    store.register_worker(worker("w1"))
    clock.advance(1)
    store.register_worker(worker("w2"))
    store.enqueue([new_run("a"), new_run("b"), new_run("c")])
    store.claim_runs("w1", HOST, 2, LEASE)
    listed = {w.id: w for w in store.list_workers()}
    assert set(listed) == {"w1", "w2"}
    assert sorted(listed["w1"].running) == ["a", "b"]
    assert listed["w2"].running == ()
    assert (listed["w1"].host, listed["w1"].pid, listed["w1"].slots, listed["w1"].started_at) == (HOST, 1234, 4, T0)
    store.unregister_worker("w1")
    assert [w.id for w in store.list_workers()] == ["w2"]


def test_running_ids_leave_the_worker_when_runs_finish(store: Store, clock: FakeClock) -> None:
    store.register_worker(worker("w1"))
    store.enqueue([new_run("a")])
    finish(store, clock, claim_one(store, "w1"), Outcome.COMPLETED)
    [listed] = store.list_workers()
    assert listed.running == ()


def test_heartbeat_records_the_time(store: Store, clock: FakeClock) -> None:
    store.register_worker(worker("w1"))
    clock.advance(12)
    store.heartbeat("w1", LEASE)
    [listed] = store.list_workers()
    assert listed.heartbeat_at == T0 + 12


# -- what is due ------------------------------------------------------------------
def test_next_due_is_the_wait_until_the_earliest_runnable_time(store: Store, clock: FakeClock) -> None:
    assert store.next_due() is None
    store.enqueue([new_run("late", run_at=T0 + 100), new_run("soon", run_at=T0 + 50)])
    assert store.next_due() == 50  # seconds from the store's now: no host clock involved
    clock.advance(60)
    assert store.next_due() == -10
    claim_one(store)
    assert store.next_due() == 40


def test_next_due_includes_a_waiting_retry(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", backoff_base=7.0), new_run("later", run_at=T0 + 100)])
    finish(store, clock, claim_one(store), Outcome.FAILED)
    assert store.next_due() == 7


def test_has_work(store: Store, clock: FakeClock) -> None:
    assert store.has_work() is False
    store.enqueue([new_run("later", run_at=T0 + 60)])
    assert store.has_work() is False
    clock.advance(60)
    assert store.has_work() is True
    claim_one(store)
    assert store.has_work() is False


def test_has_work_while_a_retry_is_waiting(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("a", backoff_base=100.0)])
    finish(store, clock, claim_one(store), Outcome.FAILED)
    assert store.claim_runs("w1", HOST, 1, LEASE) == []
    assert store.has_work() is True


def test_has_no_work_when_everything_ended(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("ok", priority=9), new_run("dead", max_retries=0)])
    assert finish(store, clock, claim_one(store), Outcome.COMPLETED) is RunState.COMPLETED
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.DEAD
    assert store.has_work() is False


# -- opening and durability ---------------------------------------------------------
def test_reopening_keeps_every_run(opener: Opener, clock: FakeClock) -> None:
    store = opener()
    store.enqueue([new_run(f"r{i}", priority=1 + i % 10) for i in range(50)])
    claim = claim_one(store)
    finish(store, clock, claim, Outcome.COMPLETED)
    store.set_config("max-retries", "9")
    before = store.list_runs()
    store.close()
    again = opener()
    assert again.list_runs() == before
    assert again.counts()["completed"] == 1
    assert [a.outcome for a in again.attempts(claim.run_id)] == [Outcome.COMPLETED]
    assert again.config() == {"max-retries": "9"}


def test_sqlite_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    path.write_bytes(b"this is not a database, just some bytes\n" * 200)
    with pytest.raises(StoreError, match="cannot open store"):
        SQLiteStore(str(path))


# -- jobs ------------------------------------------------------------------------------
def spec(name: str = "nightly", **fields: object) -> JobSpec:
    values: dict[str, object] = {"name": name, "command": f"echo {name}"}
    values.update(fields)
    return JobSpec(**values)  # type: ignore[arg-type]


def job_run(name: str, due: float, run_id: str | None = None) -> NewRun:
    return new_run(run_id or f"{name}.{int(due)}", job=name, run_at=due, scheduled_for=due)


def test_put_job_creates_then_updates_keeping_history_times(store: Store, clock: FakeClock) -> None:
    created = store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1", "abc123", False, "/jobs/.status")
    assert (created.created_at, created.updated_at, created.version_at) == (T0, T0, T0)
    assert store.get_job("nightly") == created
    assert store.get_job("nightly").spec == spec()  # type: ignore[union-attr]
    clock.advance(10)
    same = store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h2")
    assert (same.updated_at, same.version_at, same.file_hash) == (T0, T0, "h2")  # same spec: not an update
    clock.advance(10)
    described = store.put_job(spec(description="d"), "/jobs", "/jobs/nightly.toml", "h3")
    assert (described.updated_at, described.version_at) == (T0 + 20, T0)  # what runs did not change
    clock.advance(10)
    changed = store.put_job(spec(command="echo other"), "/jobs", "/jobs/nightly.toml", "h4")
    assert (changed.updated_at, changed.version_at, changed.created_at) == (T0 + 30, T0 + 30, T0)
    assert [j.name for j in store.list_jobs()] == ["nightly"]


def test_job_error_is_kept_beside_the_last_good_spec(store: Store) -> None:
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1")
    store.set_job_error("nightly", "nightly.toml:2: timeout: expected ...")
    job = store.get_job("nightly")
    assert job is not None and job.error and job.spec == spec()
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1")
    assert store.get_job("nightly").error is None  # type: ignore[union-attr]


def test_one_run_per_job_and_scheduled_time(store: Store) -> None:
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1")
    assert store.add_job_runs([job_run("nightly", T0, "a"), job_run("nightly", T0, "b")]) == 1
    assert store.add_job_runs([job_run("nightly", T0, "c")]) == 0
    assert store.add_job_runs([job_run("nightly", T0 + 60, "d")]) == 1
    assert sorted(r.id for r in store.list_runs()) == ["a", "d"]
    # A cancelled run steps aside: the same time may be scheduled again.
    assert sorted(store.cancel_job_runs("nightly", "superseded")) == ["a", "d"]
    assert store.add_job_runs([job_run("nightly", T0, "e")]) == 1
    assert store.get_run("a").state == RunState.CANCELLED  # type: ignore[union-attr]
    assert store.get_run("e").scheduled_for == T0  # type: ignore[union-attr]


def test_delete_job_cancels_waiting_runs_and_keeps_running_and_finished_ones(store: Store) -> None:
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1")
    store.add_job_runs([job_run("nightly", T0, "first"), job_run("nightly", T0 + 1, "second")])
    store.add_job_runs([job_run("nightly", T0 + 3600, "later")])
    claims = store.claim_runs("w1", HOST, 1, LEASE)
    assert [c.run_id for c in claims] == ["first"] and claims[0].job == "nightly"
    assert sorted(store.delete_job("nightly", "job nightly was deleted")) == ["later", "second"]
    assert store.get_job("nightly") is None
    states = {r.id: r.state for r in store.list_runs()}
    assert states == {"first": RunState.RUNNING, "second": RunState.CANCELLED, "later": RunState.CANCELLED}
    assert store.get_run("later").error == "job nightly was deleted"  # type: ignore[union-attr]


def test_job_status_reports_last_and_next_runs(store: Store, clock: FakeClock) -> None:
    assert store.job_status("nightly") is None
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1", status_dir="/jobs/.status")
    store.add_job_runs([job_run("nightly", T0, "now"), job_run("nightly", T0 + 3600, "later")])
    status = store.job_status("nightly")
    assert status is not None and status.next_at == T0 and status.counts == {"pending": 1, "scheduled": 1}
    assert status.last_run is not None and status.last_run.job == "nightly"
    clock.advance(1)
    (claim,) = store.claim_runs("w1", HOST, 1, LEASE)
    store.finish_attempts(HOST, [AttemptResult(claim, "w1", 123, T0 + 1, T0 + 2, 0, Outcome.COMPLETED, None, "ok\n")])
    status = store.job_status("nightly")
    assert status is not None and status.next_at == T0 + 3600
    assert status.counts == {"completed": 1, "scheduled": 1}


def test_a_pool_s_machine_is_kept_so_that_same_named_hosts_are_told_apart(store: Store) -> None:
    store.register_worker(Worker("w1", HOST, 100, 1, 2, T0, T0, False, machine="boot-a/4026531836"))
    store.register_worker(Worker("w2", HOST, 100, 1, 2, T0, T0, False))
    machines = {w.id: w.machine for w in store.list_workers()}
    assert machines == {"w1": "boot-a/4026531836", "w2": ""}


def test_cancel_runs_cancels_waiting_asks_the_pool_to_stop_running_and_leaves_finished(
    store: Store, clock: FakeClock
) -> None:
    store.enqueue([new_run("busy"), new_run("done")])
    running = claim_started(store, clock)
    assert finish(store, clock, claim_started(store, clock), Outcome.COMPLETED) is RunState.COMPLETED
    store.enqueue([new_run("waits"), new_run("later", run_at=clock.now + 3600)])
    make_dead(store, clock, "dead")
    cancelled, stopping = store.cancel_runs(["waits", "later", running.run_id, "done", "dead", "ghost"], "by hand")
    assert (cancelled, stopping) == (["later", "waits"], [running.run_id])
    assert [state_of(store, r) for r in ("waits", "later", "done", "dead")] == [
        RunState.CANCELLED,
        RunState.CANCELLED,
        RunState.COMPLETED,
        RunState.DEAD,
    ]
    assert state_of(store, running.run_id) is RunState.RUNNING
    assert store.cancel_requests("w1") == [(running.run_id, running.attempt)]
    assert finish(store, clock, running, Outcome.FAILED) is RunState.CANCELLED  # its pool killed it
    assert store.claim_runs("w1", HOST, 10, LEASE) == []


def test_retry_dead_overrides_retries_and_timeout_of_the_retried_runs(store: Store, clock: FakeClock) -> None:
    make_dead(store, clock, "d1")
    make_dead(store, clock, "d2")
    make_dead(store, clock, "d3")
    assert store.retry_dead(["d1"], False, retries=2, timeout=60) == ["d1"]
    assert store.retry_dead(["d2"], True, retries=1, timeout=0) == ["d2"]
    assert store.retry_dead(["d3"], False) == ["d3"]
    d1, d2, d3 = (store.get_run(r) for r in ("d1", "d2", "d3"))
    assert d1 is not None and d2 is not None and d3 is not None
    assert (d1.attempts, d1.max_retries, d1.timeout) == (1, 3, 60)  # the next attempt and 2 retries
    assert (d2.attempts, d2.max_retries, d2.timeout) == (0, 1, None)
    assert (d3.attempts, d3.max_retries, d3.timeout) == (1, 1, None)  # one attempt more; its own timeout


def _attempt(
    store: Store, clock: FakeClock, run_id: str, job: str | None, wait: float, seconds: float, ok: bool
) -> None:
    """A run enqueued now, claimed `wait` seconds later by w1, ending `seconds` after that."""
    store.enqueue([new_run(run_id, job=job, max_retries=0)])
    clock.advance(wait)
    claim = claim_one(store)
    started = clock.now
    clock.advance(seconds)
    outcome = Outcome.COMPLETED if ok else Outcome.FAILED
    result = AttemptResult(claim, "w1", 4242, started, clock.now, 0 if ok else 1, outcome, None, "")
    store.finish_attempts(HOST, [result])


def test_detailed_metrics_figures_from_attempts_with_known_times(store: Store, clock: FakeClock) -> None:
    from queuectl.services import metrics as service_metrics

    store.register_worker(worker("w1")._replace(slots=2))
    _attempt(store, clock, "old", "a", wait=0, seconds=7, ok=False)  # two days ago: all time only
    clock.advance(2 * 86400)
    for run_id, job, wait, seconds, ok in [
        ("a1", "a", 5, 1, True),
        ("a2", "a", 5, 2, True),
        ("a3", "a", 5, 3, True),
        ("a4", "a", 1, 10, False),
        ("b1", None, 0, 4, True),
    ]:
        store.heartbeat("w1", LEASE)
        _attempt(store, clock, run_id, job, wait, seconds, ok)
    store.enqueue([new_run("busy")])
    claim_one(store)  # runs for the 30 seconds that follow, waited 0
    clock.advance(30)
    store.heartbeat("w1", LEASE)
    found = service_metrics.detailed_metrics(store)
    every = found.overall
    assert (every.counts["completed"], every.counts["dead"], every.counts["running"], every.attempts) == (4, 2, 1, 6)
    assert (every.success_rate, every.success_rate_24h) == (pytest.approx(4 / 6), pytest.approx(4 / 5))
    assert every.duration == pytest.approx((1, 4.5, 3, 10, 10))  # min, mean, p50, p95, max of 1 2 3 4 7 10
    assert every.wait == pytest.approx((0, 16 / 7, 1, 5, 5))  # 0 0 0 1 5 5 5
    assert every.runs_per_minute == pytest.approx(4 / 60, abs=1e-4)
    assert list(found.jobs) == ["a", None]
    a = found.jobs["a"]
    assert (a.counts["completed"], a.counts["dead"], a.attempts) == (3, 2, 5)
    assert (a.success_rate, a.success_rate_24h) == (pytest.approx(3 / 5), pytest.approx(3 / 4))
    assert a.duration == pytest.approx((1, 4.6, 3, 10, 10))
    b = found.jobs[None]
    assert (b.counts["completed"], b.counts["running"], b.duration) == (1, 1, (4, 4, 4, 4, 4))
    # w1's 2 slots were there all the last hour (7200 slot-seconds); its attempts in it took 20 seconds,
    # and the one running now 30 so far
    assert (found.busy_slot_seconds, found.available_slot_seconds) == pytest.approx((50, 7200))
    assert found.utilisation == pytest.approx(50 / 7200)


def test_priority_aging_claims_an_old_low_run_before_a_newer_high_one_once_aged(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("old-low", priority=1)])
    clock.advance(240)
    store.enqueue([new_run("new-high", priority=9)])
    # not yet: after 4 minutes at 1 level per minute old-low counts as 5 (1 + 4), below 9
    assert [c.run_id for c in store.claim_runs("w1", HOST, 1, LEASE, aging=60)] == ["new-high"]
    store.enqueue([new_run("newer-high", priority=9)])
    clock.advance(600)  # 14 minutes: old-low counts as 10 (capped), newer-high as 9 + 10 = 10, and is newer
    claims = store.claim_runs("w1", HOST, 2, LEASE, aging=60)
    assert [c.run_id for c in claims] == ["old-low", "newer-high"]


def test_priority_aging_off_keeps_priority_order_and_ages_from_when_a_run_is_due(
    store: Store, clock: FakeClock
) -> None:
    store.enqueue([new_run("old-low", priority=1), new_run("later-low", priority=1, run_at=clock.now + 3600)])
    clock.advance(3600)
    store.enqueue([new_run("new-mid", priority=5)])
    assert [c.run_id for c in store.claim_runs("w1", HOST, 1, LEASE)] == ["new-mid"]  # off by default
    store.enqueue([new_run("mid2", priority=5)])
    clock.advance(60)
    # later-low was due only a minute ago: 1 + 1 = 2 < mid2's 5 + 1 = 6 < old-low's 1 + 61 (10)
    got = store.claim_runs("w1", HOST, 3, LEASE, aging=60)
    assert [c.run_id for c in got] == ["old-low", "mid2", "later-low"]


def test_counts_per_job_show_a_run_not_yet_due_as_scheduled(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("now", job="j"), new_run("later", job="j", run_at=T0 + 60), new_run("lone")])
    assert store.job_counts() == {"j": {"pending": 1, "scheduled": 1}, None: {"pending": 1}}
    clock.advance(60)
    assert store.job_counts() == {"j": {"pending": 2}, None: {"pending": 1}}


# -- a job's runs, listings newest first, bounded text searches, a cron job's fire runs ----------------------
def _runs_of_two_jobs(store: Store, clock: FakeClock) -> None:
    """a1 b1 a2 a3 b2 by age (a1 oldest; a2 and a3 share a created_at), and one run of no job."""
    store.put_job(spec("a"), "/jobs", "/jobs/a.toml", "h")
    store.put_job(spec("b"), "/jobs", "/jobs/b.toml", "h")
    for run_id, job in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"), ("b2", "b"), ("loose", None)]:
        store.enqueue([new_run(run_id, job=job, command=f"backup --part {run_id}")])
        if run_id != "a2":
            clock.advance(1)


def test_iter_runs_of_one_job_either_way_from_a_keyset_cursor(store: Store, clock: FakeClock) -> None:
    _runs_of_two_jobs(store, clock)
    assert [r.id for r in store.iter_runs(job="a")] == ["a1", "a2", "a3"]
    assert [r.id for r in store.iter_runs(job="a", newest_first=True)] == ["a3", "a2", "a1"]
    assert [r.id for r in store.iter_runs(newest_first=True, limit=3)] == ["loose", "b2", "a3"]
    a2 = store.get_run("a2")
    assert a2 is not None
    cursor = (a2.created_at, a2.id)
    assert [r.id for r in store.iter_runs(job="a", after=cursor)] == ["a3"]
    assert [r.id for r in store.iter_runs(job="a", after=cursor, newest_first=True)] == ["a1"]
    assert [r.id for r in store.iter_runs(job="b", page=1, newest_first=True)] == ["b2", "b1"]
    finish(store, clock, claim_one(store), Outcome.COMPLETED)  # a1
    assert [r.id for r in store.iter_runs("pending", job="a")] == ["a2", "a3"]
    assert list(store.iter_runs(job="nobody")) == []


def test_search_runs_finds_text_in_the_command_or_the_id(store: Store, clock: FakeClock) -> None:
    _runs_of_two_jobs(store, clock)
    found, stopped = store.search_runs("part a", 10, 1000)
    assert ([r.id for r in found], stopped) == (["a1", "a2", "a3"], None)
    assert [r.id for r in store.search_runs("oos", 10, 1000, newest_first=True)[0]] == ["loose"]  # in the id
    assert [r.id for r in store.search_runs("part", 2, 1000, job="b", newest_first=True)[0]] == ["b2", "b1"]
    assert store.search_runs("PART", 10, 1000)[0] == []  # as typed: case counts
    assert store.search_runs("50%_", 10, 1000)[0] == []  # no wildcards


def test_search_runs_looks_at_scan_runs_at_most_and_says_where_it_stopped(store: Store, clock: FakeClock) -> None:
    _runs_of_two_jobs(store, clock)
    # Newest first: loose b2 a3 a2 b1 a1. Three looked at (loose b2 a3): one found, the page not full.
    found, stopped = store.search_runs("part a", 10, 3, newest_first=True)
    a3 = store.get_run("a3")
    assert a3 is not None
    assert ([r.id for r in found], stopped) == (["a3"], (a3.created_at, "a3"))
    found, stopped = store.search_runs("part a", 10, 3, after=stopped, newest_first=True)
    assert ([r.id for r in found], stopped) == (["a2", "a1"], None)  # the rest: nothing remains beyond
    found, stopped = store.search_runs("part", 2, 3, newest_first=True)  # the page filled first
    assert ([r.id for r in found], stopped) == (["loose", "b2"], None)
    found, stopped = store.search_runs("part", 10, 6)  # exactly every run: none remains beyond
    assert (len(found), stopped) == (6, None)


def test_fire_runs_reads_a_job_s_runs_by_fire_time_cancelled_ones_too(store: Store, clock: FakeClock) -> None:
    store.put_job(spec(), "/jobs", "/jobs/nightly.toml", "h1")
    store.add_job_runs([job_run("nightly", T0, "first"), job_run("nightly", T0 + 60, "second")])
    assert store.add_skipped_run(job_run("nightly", T0 + 120, "skipped"), "skipped: the previous run is not finished")
    store.add_job_runs([job_run("nightly", T0 + 3600, "outside")])
    store.put_job(spec("other"), "/jobs", "/jobs/other.toml", "h1")
    store.add_job_runs([job_run("other", T0 + 60, "not-mine")])
    clock.advance(5)
    claim = claim_started(store, clock)
    assert claim.run_id == "first"
    clock.advance(10)
    assert finish(store, clock, claim, Outcome.FAILED) is RunState.FAILED
    clock.advance(100)
    claim = claim_started(store, clock)  # the retry of `first`: a second attempt
    fires = store.fire_runs("nightly", T0 - 1, T0 + 120, 10)
    assert [(f.id, f.scheduled_for, f.state, f.tries) for f in fires] == [
        ("skipped", T0 + 120, RunState.CANCELLED, 0),
        ("second", T0 + 60, RunState.PENDING, 0),
        ("first", T0, RunState.RUNNING, 2),
    ]
    # Its first attempt's start (`finish` records it as at its end, T0 + 15), not the retry's (T0 + 115).
    assert fires[2].first_started_at == T0 + 15
    assert fires[1].first_started_at is None
    assert [f.id for f in store.fire_runs("nightly", T0, T0 + 3600, 2)] == ["outside", "skipped"]  # latest first
    assert store.fire_runs("nobody", 0, T0 * 2, 10) == []


# -- rollups (run_totals, minute_counts): counted as runs settle, in the same transaction ------------------
def settle_at(store: Store, claim: Claim, started: float, finished: float, outcome: Outcome) -> RunState | None:
    result = AttemptResult(
        claim, "w1", 4242, started, finished, 0 if outcome is Outcome.COMPLETED else 1, outcome, None, ""
    )
    [state] = store.finish_attempts(HOST, [result])
    return state


def test_run_totals_count_finished_runs_durations_waits_and_times(store: Store, clock: FakeClock) -> None:
    store.put_job(spec("nightly"), "/jobs", "/jobs/nightly.toml", "h1")
    store.enqueue([job_run("nightly", T0, "n1"), new_run("lone", run_at=T0, max_retries=0, priority=1)])
    clock.advance(10)
    settle_at(store, claim_one(store), clock.now, clock.now + 30, Outcome.COMPLETED)  # n1: waited 10 s, ran 30 s
    settle_at(store, claim_one(store), clock.now, clock.now + 2, Outcome.FAILED)  # lone: waited 10 s, dead
    clock.advance(30)
    store.enqueue([job_run("nightly", clock.now, "n2")])
    clock.advance(2)
    claim_started(store, clock)  # running now: its start is the job's last run, its wait counts
    totals = store.run_totals()
    assert totals.finished == {("nightly", "completed"): 1, (None, "dead"): 1}
    assert totals.durations.counts[METRIC_BUCKETS.index(30.0)] == 1
    assert totals.durations.counts[METRIC_BUCKETS.index(5.0)] == 1
    assert (sum(totals.durations.counts), totals.durations.sum) == (2, 32.0)
    assert totals.waits.counts[METRIC_BUCKETS.index(15.0)] == 2  # 10 s, twice
    assert totals.waits.counts[METRIC_BUCKETS.index(5.0)] == 1  # 2 s, running
    assert (sum(totals.waits.counts), totals.waits.sum) == (3, 22.0)
    assert totals.last_success == {"nightly": T0 + 40}
    assert totals.last_run == {"nightly": T0 + 42}


def test_run_totals_count_every_way_a_run_is_cancelled(store: Store, clock: FakeClock) -> None:
    store.put_job(spec("nightly"), "/jobs", "/jobs/nightly.toml", "h1")
    store.enqueue([new_run("waiting"), new_run("running", priority=9), job_run("nightly", T0, "n1")])
    running = claim_one(store)
    assert store.cancel_runs(["waiting", "running"], "asked") == (["waiting"], ["running"])
    assert settle_at(store, running, T0, T0 + 1, Outcome.FAILED) is RunState.CANCELLED  # its pool stopped it
    assert store.cancel_job_runs("nightly", "suspended") == ["n1"]
    assert store.add_skipped_run(job_run("nightly", T0 + 60, "n2"), "overlap: forbid")
    assert store.run_totals().finished == {(None, "cancelled"): 2, ("nightly", "cancelled"): 2}


def test_run_totals_are_never_decremented(store: Store, clock: FakeClock) -> None:
    """A counter never goes backwards: retrying a dead run or deleting runs leaves what was counted."""
    make_dead(store, clock, "d1")
    assert store.retry_dead(["d1"], reset_attempts=False) == ["d1"]
    assert finish(store, clock, claim_one(store), Outcome.COMPLETED) is RunState.COMPLETED
    assert store.delete_runs(None) == ["d1"]
    totals = store.run_totals()
    assert totals.finished == {(None, "dead"): 1, (None, "completed"): 1}
    assert sum(totals.durations.counts) == 2 and sum(totals.waits.counts) == 1


def test_minute_counts_count_attempts_ended_per_minute(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("ok"), new_run("retried"), new_run("later")])
    assert finish(store, clock, claim_one(store), Outcome.COMPLETED) is RunState.COMPLETED
    clock.advance(59)
    assert finish(store, clock, claim_one(store), Outcome.FAILED) is RunState.FAILED  # a retry follows: counted
    clock.advance(1)
    assert finish(store, clock, claim_one(store), Outcome.TIMEOUT) is RunState.FAILED
    assert store.minute_counts(T0) == [(T0, 1, 1), (T0 + 60, 0, 1)]
    assert store.minute_counts(T0 + 60) == [(T0 + 60, 0, 1)]
    assert store.minute_counts(T0 + 120) == []


def test_minute_counts_drop_minutes_older_than_two_days(store: Store, clock: FakeClock) -> None:
    store.enqueue([new_run("old"), new_run("new")])
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    clock.advance(2 * 86400 + 120)
    finish(store, clock, claim_one(store), Outcome.COMPLETED)
    assert store.minute_counts(0) == [(T0 + 2 * 86400 + 120, 1, 0)]


def test_counts_of_finished_runs_follow_deletes_and_retries(store: Store, clock: FakeClock) -> None:
    """counts() reads finished runs from the rollup's `kept`: it must say what a listing of the runs says."""
    store.put_job(spec("nightly"), "/jobs", "/jobs/nightly.toml", "h1")
    store.enqueue(
        [new_run("ok", priority=9), job_run("nightly", T0, "n1"), new_run("wait"), new_run("later", run_at=T0 + 60)]
    )
    assert finish(store, clock, claim_one(store), Outcome.COMPLETED) is RunState.COMPLETED
    make_dead(store, clock, "d1")
    make_dead(store, clock, "d2")
    store.cancel_runs(["wait"], "asked")
    assert store.add_skipped_run(job_run("nightly", T0 + 120, "skipped"), "overlap: forbid")
    store.retry_dead(["d1"], reset_attempts=False)
    claim_one(store)  # running
    assert store.delete_runs("cancelled") == ["skipped", "wait"]
    assert store.delete_runs("dead") == ["d2"]
    make_dead(store, clock, "d3")
    make_dead(store, clock, "d4")
    assert store.delete_dead(["d3"]) == ["d3"]  # the DLQ's delete, by id
    assert store.delete_dead(None) == ["d4"]  # and all

    def listed() -> dict[str, int]:
        truth = {state.value: 0 for state in RunState}
        for run in store.list_runs():
            truth[run.state.value] += 1
        return truth

    assert store.counts() == listed() == {**listed(), "completed": 1, "running": 1, "pending": 1, "scheduled": 1}
    assert sum(store.counts().values()) == 4
    assert store.run_totals().finished[(None, "dead")] == 4  # the counter stays
    store.delete_runs(None)
    assert store.counts() == listed() == {**listed(), "running": 1}


def test_a_lost_run_asked_to_cancel_is_counted_cancelled(store: Store, clock: FakeClock) -> None:
    """Its pool died after the cancel was asked: the rescue ends it cancelled, and so do the counts."""
    store.enqueue([new_run("a", max_retries=3)])
    claim_started(store, clock, "w1")
    assert store.cancel_runs(["a"], "asked") == ([], ["a"])
    clock.advance(LEASE + 1)
    [expired] = store.find_expired([])
    store.requeue_lost(expired)
    assert state_of(store, "a") is RunState.CANCELLED
    assert store.run_totals().finished == {(None, "cancelled"): 1}
    assert store.counts()["cancelled"] == 1 and store.counts()["pending"] == 0


def test_rollups_of_two_connections_add_up(opener: Opener, clock: FakeClock) -> None:
    """Each connection writes rows of its own shard (pools do not queue on one row): the reads sum them."""
    first, second = opener(), opener()
    first._shard, second._shard = 3, 11  # type: ignore[attr-defined]
    first.enqueue([new_run("a", job="j"), new_run("b", job="j", priority=1)])
    settle_at(first, claim_one(first), T0, T0 + 1, Outcome.COMPLETED)
    settle_at(second, claim_one(second), T0, T0 + 2, Outcome.COMPLETED)
    for store in (first, second):
        totals = store.run_totals()
        assert totals.finished == {("j", "completed"): 2}
        assert (sum(totals.durations.counts), totals.durations.sum, totals.last_success) == (2, 3.0, {"j": T0 + 2})
        assert store.minute_counts(T0) == [(T0, 2, 0)]


def test_migration_backfills_the_rollups_from_the_runs_kept(opener: Opener, clock: FakeClock) -> None:
    """A store made before the rollups shows its history once upgraded: the same figures as counted live."""
    store = opener()
    store.put_job(spec("nightly"), "/jobs", "/jobs/nightly.toml", "h1")
    store.enqueue(
        [job_run("nightly", T0, "n1"), new_run("lone", max_retries=0, priority=1), new_run("waiting", run_at=T0 + 3600)]
    )
    clock.advance(10)
    settle_at(store, claim_one(store), clock.now, clock.now + 30, Outcome.COMPLETED)
    clock.advance(70)
    settle_at(store, claim_one(store), clock.now, clock.now, Outcome.FAILED)
    store.cancel_runs(["waiting"], "asked")
    live, minutes, counts = store.run_totals(), store.minute_counts(0), store.counts()
    latest = store.schema_version()
    assert live.finished == {("nightly", "completed"): 1, (None, "dead"): 1, (None, "cancelled"): 1}
    with store.batch():  # back to the schema before migration 0008, keeping the runs
        store._run_script("DROP TABLE run_totals")  # type: ignore[attr-defined]
        store._run_script("DROP TABLE run_minutes")  # type: ignore[attr-defined]
        store._set_schema_version(7)  # type: ignore[attr-defined]
    store.close()
    upgraded = opener()
    assert upgraded.schema_version() == latest  # 0008 and every migration after it again
    assert upgraded.run_totals() == live
    assert upgraded.minute_counts(0) == minutes
    assert upgraded.counts() == counts


# -- the rollups' `kept` against a listing, over random sequences of verbs ---------------------------------
_ids = itertools.count()
_VERBS = (
    "enqueue", "enqueue", "enqueue_later", "claim", "claim", "finish", "finish", "finish", "lose", "release",
    "cancel", "replace", "cancel_job", "delete_job", "skip", "retry_dead", "delete_runs", "delete_dead", "tick",
)  # fmt: skip


def _listed_counts(store: Store) -> tuple[dict[str, int], dict[str | None, dict[str, int]]]:
    """What a listing of every run says: runs per shown state, and per job and shown state (no zeros)."""
    counts = {state.value: 0 for state in RunState}
    per_job: dict[str | None, dict[str, int]] = {}
    for run in store.list_runs():
        counts[run.state.value] += 1
        shown = per_job.setdefault(run.job, {})
        shown[run.state.value] = shown.get(run.state.value, 0) + 1
    return counts, per_job


def _do(store: Store, clock: FakeClock, verb: str, pick: random.Random) -> None:
    jobs = ("a", "b", None)
    runs = store.list_runs()
    some = [r.id for r in runs if pick.random() < 0.5]
    if verb in ("enqueue", "enqueue_later"):
        later = verb == "enqueue_later"
        n = next(_ids)
        job = pick.choice(jobs)
        fields: dict[str, object] = {"max_retries": pick.randrange(2), "backoff_base": 0.0}
        if job is not None and pick.random() < 0.5:
            fields["scheduled_for"] = clock.now + n
        store.enqueue([new_run(f"r{n}", job=job, run_at=clock.now + (60 if later else 0), **fields)])
    elif verb == "claim":
        worker_id = pick.choice(["w1", "w2"])
        for claim in store.claim_runs(worker_id, HOST, pick.randrange(1, 4), LEASE):
            if pick.random() < 0.7:  # else its pool dies before it is seen running
                info = ProcessInfo(claim.run_id, 4242, 1, "/logs/x.log", clock.now, claim.attempt)
                store.record_processes(worker_id, [info])
    elif verb == "finish":
        for worker_id in ("w1", "w2"):
            held = store.held_runs(worker_id)
            results = []
            for run_id, n in held:
                if pick.random() < 0.6:
                    run = store.get_run(run_id)
                    assert run is not None
                    outcome = pick.choice([Outcome.COMPLETED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED])
                    claim = Claim(run_id, n, run.attempts, run.max_retries, run.backoff_base, run.backoff_max,
                                  run.command, run.timeout, run.cwd, run.env, run.job, run.keep_children,
                                  run.scheduled_for)  # fmt: skip
                    code = 0 if outcome is Outcome.COMPLETED else 1
                    results.append(
                        AttemptResult(claim, worker_id, 4242, clock.now, clock.now + 1, code, outcome, None, "")
                    )
            store.finish_attempts(HOST, results)
    elif verb == "lose":
        for expired in store.find_expired(pick.sample(["w1", "w2"], pick.randrange(3))):
            store.requeue_lost(expired)
    elif verb == "release":
        worker_id = pick.choice(["w1", "w2"])
        store.release_runs(worker_id, store.held_runs(worker_id)[:1])
    elif verb == "cancel":
        store.cancel_runs(some, "asked")
    elif verb == "replace":
        store.cancel_running_job_runs(pick.choice(["a", "b"]), "replaced")
    elif verb == "cancel_job":
        store.cancel_job_runs(pick.choice(["a", "b"]), "suspended")
    elif verb == "delete_job":
        store.delete_job(pick.choice(["a", "b"]), "its manifest is gone")
    elif verb == "skip":
        n = next(_ids)
        store.add_skipped_run(job_run(pick.choice(["a", "b"]), clock.now + n, f"s{n}"), "overlap: forbid")
    elif verb == "retry_dead":
        store.retry_dead(None if pick.random() < 0.3 else some, pick.random() < 0.5, job=pick.choice(jobs))
    elif verb == "delete_runs":
        store.delete_runs(pick.choice([None, *(s.value for s in RunState)]))
    elif verb == "delete_dead":
        store.delete_dead(None if pick.random() < 0.3 else some, job=pick.choice(jobs))
    else:
        clock.advance(pick.choice([1, 30, LEASE + 1, 61]))


@hypothesis.settings(
    max_examples=40, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(verbs=st.lists(st.sampled_from(_VERBS), min_size=1, max_size=30), seed=st.integers(0, 2**32))
def test_counts_equal_a_listing_after_any_sequence_of_verbs(
    store: Store, clock: FakeClock, verbs: list[str], seed: int
) -> None:
    """counts() and job_counts() read finished runs from the rollups' `kept`: after every verb that starts or
    ends a finished state they must say what a listing of the runs says (the store carries over examples)."""
    pick = random.Random(seed)
    for job in ("a", "b"):
        store.put_job(spec(job), "/jobs", f"/jobs/{job}.toml", "h")
    for step, verb in enumerate(verbs):
        _do(store, clock, verb, pick)
        counts, per_job = _listed_counts(store)
        assert store.counts() == counts, (step, verb, verbs)
        assert store.job_counts() == per_job, (step, verb, verbs)
        finished = store.run_totals().finished  # counted as they finished: never fewer than are kept
        assert all(finished.get((job, state), 0) >= n for job, shown in per_job.items() for state, n in shown.items()
                   if state in ("completed", "dead", "cancelled")), (step, verb, verbs)  # fmt: skip
        for job in ("a", "b"):
            status = store.job_status(job)
            assert status is None or status.counts == per_job.get(job, {}), (step, verb, verbs)


def test_migration_backfills_exactly_from_runs_in_every_state(opener: Opener, clock: FakeClock) -> None:
    """Runs in every state, with and without a job, retried, rescued, interrupted, running again: the rollups
    0008 backfills say what the verbs counted as they went (run_totals, minutes, counts per state and job)."""
    store = opener()
    store.put_job(spec("j"), "/jobs", "/jobs/j.toml", "h1")
    store.enqueue([new_run(f"{job or 'x'}{i}", job=job, max_retries=1) for i in range(6) for job in ("j", None)])
    store.enqueue([new_run("later", job="j", run_at=T0 + 7200), new_run("later2", run_at=T0 + 7200)])
    outcomes = [Outcome.COMPLETED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.INTERRUPTED, Outcome.FAILED]
    for round_ in range(3):
        for outcome in outcomes:
            clock.advance(7)
            claims = store.claim_runs("w1", HOST, 1, LEASE)
            if claims:
                # ended now: the live minute is the store's clock at the settle, the backfilled its end
                settle_at(store, claims[0], clock.now - 3 * round_ - 1, clock.now, outcome)
        clock.advance(61)
    claim_started(store, clock, "w2")  # lost with its lease: rescued, counted lost
    clock.advance(LEASE + 1)
    for expired in store.find_expired([]):
        store.requeue_lost(expired)
    store.cancel_runs(["later"], "asked")
    store.add_skipped_run(job_run("j", T0 + 60, "skipped"), "overlap: forbid")
    claim_started(store, clock, "w1")  # running at the upgrade
    live = (store.run_totals(), store.minute_counts(0), store.counts(), store.job_counts(), store.job_status("j"))
    assert {state for state, n in live[2].items() if n} >= {"scheduled", "running", "completed", "dead", "cancelled"}
    with store.batch():  # back to the schema before migration 0008, keeping the runs
        store._run_script("DROP TABLE run_totals")  # type: ignore[attr-defined]
        store._run_script("DROP TABLE run_minutes")  # type: ignore[attr-defined]
        store._set_schema_version(7)  # type: ignore[attr-defined]
    store.close()
    upgraded = opener()
    again = (upgraded.run_totals(), upgraded.minute_counts(0), upgraded.counts(), upgraded.job_counts())
    assert again == live[:4]
    assert upgraded.job_status("j") == live[4]
