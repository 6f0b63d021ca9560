"""When the pool goes to its store, and what it asks for: claims, prefetch, flushes, give-backs, waits.

Pure: every function takes a `Snapshot` (the pool's counts and the moments that
matter, on the monotonic clock) and `now`; the loop takes a snapshot, asks, and does
what the answer says. While attempts are short, the pool claims a few runs ahead and
writes finished attempts in small batches, so that one store round trip serves
several runs; a claim not started soon is given back for another pool to run.
"""

from __future__ import annotations

from typing import NamedTuple

RECORD_DELAY = 0.05  # a process is recorded (pgid, log) once it has run this long
FLUSH_DELAY = 0.02  # finished attempts are written within this many seconds...
FLUSH_BATCH = 64  # ...or once this many have piled up
SHORT_ATTEMPT = 0.05  # below this mean duration, claim ahead to save round trips
PREFETCH_PER_SLOT = 16  # while attempts are short, claims held ahead per slot...
MAX_PREFETCH = 32  # ...and at most this many in all
READY_MAX_AGE = 0.5  # a claim not started within this long is given back
MAX_WAIT = 60.0  # the loop looks around at least this often


class Snapshot(NamedTuple):
    """What the policy looks at; moments are on the monotonic clock.

    A named tuple: the loop takes a few of these per turn, and a tuple is built fastest.
    """

    slots: int
    running: int = 0  # attempts in flight
    ready: tuple[float, ...] = ()  # when each claim not yet started was taken, oldest first
    results: int = 0  # finished attempts not yet written to the store
    results_since: float = 0.0  # when the first of them finished
    mean_duration: float | None = None  # of the attempts so far (None: none has ended)
    stopping: bool = False
    hint: bool = False  # work may be waiting: claim without waiting for a poll
    next_poll: float = 0.0  # when to look for work without a hint
    next_due: float | None = None  # when the earliest waiting run is due
    first_unrecorded: float | None = None  # when the oldest process not yet recorded was spawned
    spawn_retry_at: float = 0.0  # the pool was short of a resource to start a claim: try again then
    store_retry_at: float = 0.0  # the store failed: the next round trip waits until then
    moments: tuple[float, ...] = ()  # the loop's other moments: heartbeat, timeouts, kill graces, stop-grace


def mean_duration(previous: float | None, took: float) -> float:
    """The running mean of attempt durations, weighted towards the latest."""
    return took if previous is None else 0.8 * previous + 0.2 * took


def free(s: Snapshot) -> int:
    """Slots that may start a run: none once stopping."""
    return 0 if s.stopping else s.slots - s.running


def prefetch(s: Snapshot) -> int:
    """Runs to hold claimed beyond the free slots: only while attempts are short.

    Before any attempt has ended, a little: a burst of due runs (a minute's cron
    fires) then needs fewer round trips before the mean duration is known.
    """
    if s.stopping:
        return 0
    if s.mean_duration is None:
        return s.slots
    if s.mean_duration > SHORT_ATTEMPT:
        return 0
    return min(PREFETCH_PER_SLOT * s.slots, MAX_PREFETCH)


def claim_due(s: Snapshot, now: float) -> bool:
    """A slot would be left without a run, and there may be work: a hint, the poll, or a run falling due."""
    if free(s) <= len(s.ready):
        return False
    if s.hint or now >= s.next_poll:
        return True
    return s.next_due is not None and now >= s.next_due


def give_back(s: Snapshot, now: float) -> int:
    """How many of the ready claims (the oldest) to release: all when stopping, else the stale ones."""
    return sum(1 for at in s.ready if s.stopping or now - at >= READY_MAX_AGE)


def to_claim(s: Snapshot, now: float) -> int:
    """How many runs the next round trip claims: free slots and prefetch, less what is held after give-backs."""
    if not claim_due(s, now):
        return 0
    return free(s) + prefetch(s) - len(s.ready) + give_back(s, now)


def record_at(s: Snapshot) -> float | None:
    """When the oldest unrecorded process should be recorded, if any."""
    return None if s.first_unrecorded is None else s.first_unrecorded + RECORD_DELAY


def flush_due(s: Snapshot, now: float) -> bool:
    """Finished attempts go to the store: the pool is idle or stopping, the batch is full, or it waited long enough."""
    if not s.results:
        return False
    idle = not s.running and not s.ready
    return idle or s.stopping or s.results >= FLUSH_BATCH or now - s.results_since >= FLUSH_DELAY


def sync_due(s: Snapshot, now: float) -> bool:
    """Whether a round trip is due now: to flush, give back, record a process or claim."""
    if flush_due(s, now):
        return True
    if s.ready and (s.stopping or now - s.ready[0] >= READY_MAX_AGE):
        return True  # give back claims we will not start soon
    record = record_at(s)
    return (record is not None and now >= record) or claim_due(s, now)


def wait_time(s: Snapshot, now: float) -> float:
    """How long the loop may sleep: until the earliest pending moment (0 if due now, at most MAX_WAIT).

    A store in backoff is waited for, not spun on.
    """
    if claim_due(s, now) and now >= s.store_retry_at:
        return 0.0
    moments = list(s.moments)
    could_claim = free(s) > len(s.ready)
    if could_claim:
        moments.append(s.next_poll)
    if s.results:
        moments.append(s.results_since + FLUSH_DELAY)
    if s.ready:
        moments.append(s.ready[0] + READY_MAX_AGE)
    record = record_at(s)
    if record is not None:
        moments.append(record)
    if s.ready and free(s) > 0:
        moments.append(s.spawn_retry_at)
    if s.next_due is not None and could_claim:
        moments.append(s.next_due)
    earliest = min(moments, default=now + MAX_WAIT)
    return max(0.0, min(max(earliest, s.store_retry_at) - now, MAX_WAIT))
