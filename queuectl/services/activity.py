"""The dashboard's throughput charts: attempts completed and failed per minute over the last hour,
and per hour over the last day.

Read from the store's per-minute rollup (`minute_counts`), which the pool writes in the transaction of
each settle: at most a day of minutes (1,440 rows, a primary-key range), whatever the history kept.
A bucket counts attempts that ended in it by the store's clock: `completed`, and `failed` (failed,
timed out or lost, whether a retry follows or not); a cancelled or interrupted attempt counts in neither.
"""

from __future__ import annotations

from typing import NamedTuple

from queuectl.store.contract import RunQueue

MINUTES = 60  # per-minute buckets: the last hour
HOURS = 24  # per-hour buckets: the last day


class Bucket(NamedTuple):
    """Attempts that ended in [start, start + a minute or an hour)."""

    start: float  # epoch seconds, on a minute or hour boundary
    completed: int
    failed: int


class Activity(NamedTuple):
    per_minute: list[Bucket]  # 60, oldest first; the last is the minute `now` is in
    per_hour: list[Bucket]  # 24, oldest first; the last is the hour `now` is in


def activity(store: RunQueue, now: float) -> Activity:
    """The last hour per minute and the last day per hour, up to `now`; empty buckets included."""
    minute = now // 60 * 60
    hour = now // 3600 * 3600
    minutes = _empty(minute, 60, MINUTES)
    hours = _empty(hour, 3600, HOURS)
    for m in store.minute_counts(min(minute - 60 * (MINUTES - 1), hour - 3600 * (HOURS - 1))):
        _count(minutes, m.minute, m.completed, m.failed)
        _count(hours, m.minute // 3600 * 3600, m.completed, m.failed)
    return Activity(list(minutes.values()), list(hours.values()))


def _empty(last: float, width: int, count: int) -> dict[float, Bucket]:
    return {start: Bucket(start, 0, 0) for start in (last - width * n for n in range(count - 1, -1, -1))}


def _count(buckets: dict[float, Bucket], start: float, completed: int, failed: int) -> None:
    bucket = buckets.get(start)
    if bucket is not None:  # minutes after `now` (a clock moved back) or before the range are left out
        buckets[start] = Bucket(start, bucket.completed + completed, bucket.failed + failed)
