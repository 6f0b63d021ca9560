"""The dashboard's throughput charts (services/activity.py) over runs settled in a real store, on every backend."""

from __future__ import annotations

import itertools

from queuectl.model import AttemptResult, Outcome
from queuectl.services.activity import Bucket, activity
from queuectl.store.contract import Store
from tests.clock import Clock as FakeClock
from tests.contract import test_store_contract as contract
from tests.contract.test_store_contract import HOST, T0, claim_one, new_run

# The contract suite's fixtures: a store on every backend (SQLite file, real PostgreSQL) and its fake clock.
clock, opener, store = contract.clock, contract.opener, contract.store

HOUR = 3600.0


def settle(store: Store, clock: FakeClock, run_id: str, outcome: Outcome, max_retries: int = 2) -> None:
    """Enqueue a run, claim it and end its attempt with `outcome` now (by the store's clock)."""
    store.enqueue([new_run(run_id, max_retries=max_retries, run_at=clock.now)])
    claim = claim_one(store)
    result = AttemptResult(claim, "w1", 4242, clock.now, clock.now, 0, outcome, None, "")
    store.finish_attempts(HOST, [result])


def test_buckets_count_completed_and_failed_attempts_per_minute_and_hour(store: Store, clock: FakeClock) -> None:
    assert T0 % HOUR == 0
    clock.advance(5)
    settle(store, clock, "ok", Outcome.COMPLETED)
    clock.advance(60)
    settle(store, clock, "retried", Outcome.FAILED)  # a retry follows: still a failure in the chart
    settle(store, clock, "slow", Outcome.TIMEOUT, max_retries=0)
    settle(store, clock, "stopped", Outcome.CANCELLED)  # counted in neither
    clock.now = T0 + 2 * HOUR + 10
    settle(store, clock, "later", Outcome.COMPLETED)
    got = activity(store, T0 + 2 * HOUR + 30)
    assert len(got.per_minute) == 60 and len(got.per_hour) == 24
    assert got.per_minute[-1] == Bucket(T0 + 2 * HOUR, 1, 0)
    assert got.per_minute[0] == Bucket(T0 + 2 * HOUR - 59 * 60, 0, 0)
    assert sum(b.completed + b.failed for b in got.per_minute) == 1  # the first hour's attempts are past the hour
    assert got.per_hour[-3:] == [Bucket(T0, 1, 2), Bucket(T0 + HOUR, 0, 0), Bucket(T0 + 2 * HOUR, 1, 0)]
    assert got.per_hour[0] == Bucket(T0 + 2 * HOUR - 23 * HOUR, 0, 0)
    within_the_hour = activity(store, T0 + 30 * 60)
    assert within_the_hour.per_minute[-31:-28] == [Bucket(T0, 1, 0), Bucket(T0 + 60, 0, 2), Bucket(T0 + 120, 0, 0)]


def test_buckets_are_aligned_and_contiguous_whatever_now(store: Store, clock: FakeClock) -> None:
    now = T0 + 12345.678
    got = activity(store, now)
    minutes = [b.start for b in got.per_minute]
    hours = [b.start for b in got.per_hour]
    assert all(start % 60 == 0 for start in minutes) and all(start % HOUR == 0 for start in hours)
    assert [b - a for a, b in itertools.pairwise(minutes)] == [60.0] * 59
    assert [b - a for a, b in itertools.pairwise(hours)] == [HOUR] * 23
    assert minutes[-1] <= now < minutes[-1] + 60 and hours[-1] <= now < hours[-1] + HOUR
    assert {(b.completed, b.failed) for b in [*got.per_minute, *got.per_hour]} == {(0, 0)}


def test_a_day_old_minute_is_out_of_the_hours(store: Store, clock: FakeClock) -> None:
    settle(store, clock, "old", Outcome.COMPLETED)
    clock.now = T0 + 24 * HOUR
    settle(store, clock, "new", Outcome.FAILED)
    got = activity(store, clock.now)
    assert got.per_hour[0].start == T0 + HOUR
    assert sum(b.completed for b in got.per_hour) == 0 and sum(b.failed for b in got.per_hour) == 1
