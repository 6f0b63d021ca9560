"""What is due ahead: one job's next fires (`plan`); every cron job's next one and the delayed runs (`schedule`)."""

from __future__ import annotations

import itertools
from datetime import tzinfo
from typing import NamedTuple

from queuectl import schedule
from queuectl.durations import format_duration
from queuectl.errors import QueueError
from queuectl.model import Run
from queuectl.services import jobs
from queuectl.store.contract import Store


class Fires(NamedTuple):
    """Job `job`'s next fires (epoch seconds), its schedule in words and what may surprise."""

    job: str
    words: str
    zone: tzinfo
    times: list[float]
    notes: list[str | None]  # per fire: a DST shift, or None
    warnings: list[str]
    suspended: bool = False  # nothing fires until it is resumed: `times` are the fires once resumed now


def plan(store: Store, name: str, count: int, now: float) -> Fires:
    """The next `count` fires of job `name` after `now`, with DST notes and an overlap warning."""
    job = jobs.find(store, name)
    spec = job.spec
    if spec.cron is None:
        raise QueueError(f"job {name!r} has no cron schedule (see 'queuectl show {name}')")
    zone = schedule.zone_of(spec.timezone)
    times: list[float] = []
    after = now
    while len(times) < count and (nxt := schedule.next_fire(spec.cron, zone, after)) is not None:
        times.append(nxt)
        after = nxt
    warnings = []
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if spec.timeout and gaps and spec.timeout > min(gaps):
        warnings.append(
            f"timeout {format_duration(spec.timeout)} is longer than the shortest interval "
            f"({format_duration(min(gaps))}): runs may overlap (concurrency = {spec.concurrency})"
        )
    notes = [schedule.dst_note(spec.cron, zone, t) for t in times]
    return Fires(name, schedule.describe(spec.cron, spec.timezone), zone, times, notes, warnings, job.suspended)


class NextFire(NamedTuple):
    job: str
    words: str
    zone: tzinfo
    at: float | None  # None: the expression never matches again, or the job is suspended
    suspended: bool = False


def upcoming(store: Store, now: float) -> list[NextFire]:
    """Each enabled cron job's next fire, soonest first; suspended ones last, with no next fire."""
    rows = []
    for job in store.list_jobs():
        spec = job.spec
        if spec.cron is None or not spec.enabled:
            continue
        zone = schedule.zone_of(spec.timezone)
        at = None if job.suspended else schedule.next_fire(spec.cron, zone, now)
        rows.append(NextFire(job.name, schedule.describe(spec.cron, spec.timezone), zone, at, job.suspended))
    rows.sort(key=lambda r: (r.suspended, r.at is None, r.at or 0.0, r.job))
    return rows


def ahead(store: Store, now: float, limit: int | None = None) -> list[NextFire | Run]:
    """`schedule`: each cron job's next fire and each run not yet due, soonest first; at most `limit`.

    Suspended jobs and fires that never come are last. A cron fire's run made ahead of its time
    (the scheduler's look-ahead) is shown once, as the job's next fire.
    """
    fires = upcoming(store, now)
    shown = {(f.job, f.at) for f in fires}
    runs = [r for r in store.scheduled_runs(limit) if (r.job, r.scheduled_for) not in shown]
    rows: list[NextFire | Run] = [*fires, *runs]
    rows.sort(key=_soonest)
    return rows if limit is None else rows[:limit]


def _soonest(row: NextFire | Run) -> tuple[bool, bool, float, str]:
    if isinstance(row, Run):
        return (False, False, row.run_at, row.id)
    return (row.suspended, row.at is None, row.at or 0.0, row.job)
