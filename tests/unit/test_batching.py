"""The pool's batching policy, driven in-process: a snapshot of the pool's counts and moments, and a clock.

Each test gives the policy a pool's state at a moment of an injected monotonic
clock and checks the numbers it answers: how many runs to claim, how many ready
claims to give back, whether to go to the store now, and how long to sleep.
"""

from __future__ import annotations

from typing import Any

import pytest

from queuectl.pool import batching
from queuectl.pool.batching import (
    FLUSH_BATCH,
    FLUSH_DELAY,
    MAX_PREFETCH,
    MAX_WAIT,
    READY_MAX_AGE,
    RECORD_DELAY,
    SHORT_ATTEMPT,
    Snapshot,
)
from tests.clock import Clock

T0 = 1000.0  # the injected monotonic clock's start
LATER = T0 + 30.0  # the next poll, far off: only what a test sets makes something due


def pool(**state: Any) -> Snapshot:
    """A pool of two slots with nothing running, nothing due, no hint: the fields given change that."""
    base = Snapshot(slots=2, next_poll=LATER, moments=(LATER,))
    return base._replace(**state)


# -- claims and prefetch ----------------------------------------------------------
def test_before_any_attempt_ends_it_claims_the_free_slots_and_as_many_again() -> None:
    s = pool(slots=3, hint=True)
    assert batching.prefetch(s) == 3
    assert batching.to_claim(s, T0) == 6


def test_short_attempts_claim_sixteen_per_slot_ahead_at_most_max_prefetch() -> None:
    assert batching.to_claim(pool(slots=1, hint=True, mean_duration=0.001), T0) == 1 + 16
    assert batching.to_claim(pool(slots=4, hint=True, mean_duration=SHORT_ATTEMPT), T0) == 4 + MAX_PREFETCH


def test_attempts_longer_than_short_attempt_claim_nothing_ahead() -> None:
    s = pool(slots=3, hint=True, mean_duration=SHORT_ATTEMPT + 0.001)
    assert batching.prefetch(s) == 0
    assert batching.to_claim(s, T0) == 3


def test_claims_held_and_slots_in_use_count_against_the_claim() -> None:
    long = SHORT_ATTEMPT * 10
    s = pool(slots=4, running=1, ready=(T0,), hint=True, mean_duration=long)
    assert batching.to_claim(s, T0) == 4 - 1 - 1
    full = pool(slots=2, running=1, ready=(T0,), hint=True, mean_duration=long)
    assert batching.to_claim(full, T0) == 0  # every free slot has its claim: no round trip for more


def test_without_a_hint_it_claims_at_the_poll_or_when_a_run_falls_due() -> None:
    clock = Clock(T0)
    s = pool(next_poll=T0 + 5, next_due=T0 + 2)
    assert batching.to_claim(s, clock.now) == 0
    assert not batching.sync_due(s, clock.now)
    assert batching.to_claim(s, clock.advance(2)) == 2 + 2  # the run is due
    assert batching.to_claim(pool(next_poll=T0 + 5), T0 + 2) == 0  # nothing due: waits for the poll
    assert batching.to_claim(pool(next_poll=T0 + 5), T0 + 5) == 4


def test_a_stopping_pool_claims_nothing_and_gives_every_ready_claim_back() -> None:
    s = pool(stopping=True, hint=True, ready=(T0, T0), running=0)
    assert batching.free(s) == 0
    assert batching.to_claim(s, T0) == 0
    assert batching.give_back(s, T0) == 2
    assert batching.sync_due(s, T0)


# -- giving back -------------------------------------------------------------------
def test_a_ready_claim_older_than_ready_max_age_is_given_back_and_replaced() -> None:
    clock = Clock(T0)
    s = pool(slots=1, running=1, ready=(T0, T0 + 0.2), mean_duration=1.0)
    assert batching.give_back(s, clock.advance(READY_MAX_AGE * 0.98)) == 0
    assert not batching.sync_due(s, clock.now)
    assert batching.give_back(s, clock.advance(READY_MAX_AGE * 0.04)) == 1  # the older one only
    assert batching.sync_due(s, clock.now)
    assert batching.give_back(s, T0 + 0.2 + READY_MAX_AGE * 1.02) == 2


def test_a_claim_given_back_is_replaced_in_the_same_round_trip() -> None:
    s = pool(slots=3, running=1, ready=(T0,), hint=True, mean_duration=1.0)
    assert batching.to_claim(s, T0 + READY_MAX_AGE * 1.02) == 2  # two free slots: the stale claim goes back
    assert batching.to_claim(s, T0) == 1  # the fresh claim covers one of them


# -- flushing results ----------------------------------------------------------------
def test_results_wait_for_flush_delay_while_work_goes_on() -> None:
    clock = Clock(T0)
    s = pool(slots=1, running=1, results=1, results_since=T0)
    assert not batching.flush_due(s, clock.advance(FLUSH_DELAY * 0.98))
    assert not batching.sync_due(s, clock.now)
    assert batching.flush_due(s, clock.advance(FLUSH_DELAY * 0.04))
    assert batching.sync_due(s, clock.now)


def test_results_are_flushed_at_once_when_flush_batch_pile_up() -> None:
    busy = {"slots": 1, "running": 1, "results_since": T0}
    assert not batching.flush_due(pool(results=FLUSH_BATCH - 1, **busy), T0)
    assert batching.flush_due(pool(results=FLUSH_BATCH, **busy), T0)


def test_results_are_flushed_at_once_when_the_pool_is_idle_or_stopping() -> None:
    assert batching.flush_due(pool(results=1, results_since=T0), T0)  # nothing runs, nothing is ready
    assert not batching.flush_due(pool(results=1, results_since=T0, ready=(T0,)), T0)
    assert batching.flush_due(pool(results=1, results_since=T0, running=1, stopping=True), T0)
    assert not batching.flush_due(pool(results=0, stopping=True), T0)


def test_a_process_is_recorded_record_delay_after_it_was_spawned() -> None:
    s = pool(slots=1, running=1, first_unrecorded=T0)
    assert batching.record_at(s) == T0 + RECORD_DELAY
    assert not batching.sync_due(s, T0 + RECORD_DELAY * 0.98)
    assert batching.sync_due(s, T0 + RECORD_DELAY * 1.02)


# -- waiting --------------------------------------------------------------------------
def test_the_wait_is_until_the_earliest_pending_moment() -> None:
    s = pool(
        slots=1,
        running=1,
        results=1,
        results_since=T0,
        ready=(T0 - 0.1,),
        first_unrecorded=T0 - 0.04,
        moments=(T0 + 5,),
    )
    # flush at T0 + 0.02; give back at T0 + 0.4; record at T0 + 0.01; heartbeat (a moment) at T0 + 5
    assert batching.wait_time(s, T0) == pytest.approx(RECORD_DELAY - 0.04)
    assert batching.wait_time(s._replace(first_unrecorded=None), T0) == pytest.approx(FLUSH_DELAY)
    assert batching.wait_time(s._replace(first_unrecorded=None, results=0), T0) == pytest.approx(
        READY_MAX_AGE - 0.1
    )
    assert batching.wait_time(pool(moments=(T0 + 3,), next_due=T0 + 2), T0) == pytest.approx(2.0)
    assert batching.wait_time(pool(moments=(T0 + 3,)), T0) == pytest.approx(3.0)


def test_the_wait_is_never_negative_and_at_most_max_wait() -> None:
    assert batching.wait_time(pool(slots=1, running=1, moments=(T0 - 7,)), T0) == 0.0
    assert batching.wait_time(pool(slots=1, running=1, moments=(T0 + 10 * MAX_WAIT,)), T0) == MAX_WAIT
    assert batching.wait_time(pool(hint=True), T0) == 0.0  # a claim is due: no sleep


def test_a_store_in_backoff_is_waited_for_not_spun_on() -> None:
    s = pool(next_poll=T0 - 1, store_retry_at=T0 + 0.4)  # the poll is due, the store is not ready for it
    assert batching.claim_due(s, T0)
    assert batching.wait_time(s, T0) == pytest.approx(0.4)
    assert batching.wait_time(s, T0 + 0.4) == 0.0


def test_the_poll_and_due_runs_wake_the_loop_only_when_a_slot_could_take_a_run() -> None:
    full = pool(slots=1, running=1, next_poll=T0 + 1, next_due=T0 + 0.5, moments=(T0 + 9,))
    assert batching.wait_time(full, T0) == pytest.approx(9.0)
    free = full._replace(running=0)
    assert batching.wait_time(free, T0) == pytest.approx(0.5)


def test_a_spawn_retry_wakes_the_loop_only_with_a_ready_claim_and_a_free_slot() -> None:
    s = pool(slots=2, running=1, ready=(T0,), spawn_retry_at=T0 + 0.3, moments=(T0 + 9,))
    assert batching.wait_time(s, T0) == pytest.approx(0.3)
    assert batching.wait_time(s._replace(running=2), T0) == pytest.approx(READY_MAX_AGE)


# -- the mean duration -----------------------------------------------------------------
def test_the_mean_duration_starts_at_the_first_attempt_and_leans_on_the_latest() -> None:
    first = batching.mean_duration(None, 1.0)
    assert first == 1.0
    assert batching.mean_duration(first, 0.0) == pytest.approx(0.8)
    assert batching.mean_duration(0.8, 2.0) == pytest.approx(0.8 * 0.8 + 0.2 * 2.0)
