"""A cron job's timeline: the fires its schedule expected over the last hours, against the runs that came of them.

Expected fires come from the pure cron math (schedule.fires_between, daylight saving included) for the
job's current cron and zone; the runs come from one bounded read of the job's runs by fire time
(store.fire_runs, on the index of (job, scheduled_for)). Each fire gets one kind:

- `on_time`: its run's first attempt started within ON_TIME seconds of when it was meant to start
  (the fire, plus the job's jitter); `late`: later than that.
- `skipped`: its run was cancelled before it started: the overlap rule skipped it (`concurrency =
  "forbid"`) or replaced it (`"replace"`), or someone cancelled it.
- `missed`: no run at all, while the job was scheduled: nothing was scheduling (or its catch-up
  policy let the fire go).
- `failed`: its run failed (a retry waiting) or is dead. `running`, `waiting` (pending): as the run is.
- `upcoming`: the fires of the next UPCOMING seconds (none while the job is suspended).

Fires before the current schedule began (the job's first look by the scheduler, a change of its cron,
zone or `enabled`, or a resume) are not expected: without a run they are left out, never `missed`. A
suspended or disabled job's fires after its last one are left out too (the page says it is suspended).
Runs at no expected fire (a `trigger`, or a former schedule's fires) are shown as their own marks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfoNotFoundError

from queuectl import schedule
from queuectl.durations import fire_time, format_duration
from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import FireRun, Job, RunState
from queuectl.scheduler import schedule_hash
from queuectl.store.contract import Store

# A run whose first attempt started this long after it was meant to is still on time. The usual path
# takes well under a second (the scheduler sleeps until the fire, or made the run ahead; a pool is woken
# at once, else polls every few seconds); cron's own step is a minute, so a start in a later minute is late.
ON_TIME = 15.0
MAX_FIRES = 2000  # fires in a window, at most: an every-minute job's day is 1,440; beyond, the latest are kept
MAX_HOURS = 7 * 24  # the longest window asked for
UPCOMING = 3600.0  # fires ahead shown as upcoming, over this many seconds ...
UPCOMING_FIRES = 60  # ... and at most this many
# Runs read, at most: one a fire, and a cancelled one beside it now and then; beyond, the window shrinks.
READ_LIMIT = 2 * (MAX_FIRES + UPCOMING_FIRES)

KINDS = ("on_time", "late", "skipped", "missed", "failed", "running", "waiting", "upcoming")
LABELS = {
    "on_time": "on time",
    "late": "late",
    "skipped": "skipped",
    "missed": "missed",
    "failed": "failed",
    "running": "running",
    "waiting": "waiting",
    "upcoming": "upcoming",
}


class Fire(NamedTuple):
    at: float  # the fire (a run's scheduled_for)
    kind: str  # one of KINDS
    run_id: str | None
    started_at: float | None  # its run's first attempt's start
    lateness: float | None  # seconds from when it was meant to start (the fire plus jitter) to that start


class Timeline(NamedTuple):
    job: str
    start: float  # the window (start, end]: fires after start, up to end (now)
    end: float
    fires: list[Fire]  # oldest first, upcoming ones last
    tolerance: float  # ON_TIME
    capped: bool  # the window held more than MAX_FIRES fires (or READ_LIMIT runs): start moved later
    suspended: bool  # suspended or disabled now: its fires since are left out
    counted_from: float  # fires before this with no run are not expected
    until: float  # the upcoming fires' end: a drawing spans (start, until]
    zone: tzinfo  # the job's: fire times are told in it

    def counts(self) -> dict[str, int]:
        """Fires per kind, every kind named (0 for none), in KINDS' order."""
        counts = dict.fromkeys(KINDS, 0)
        for fire in self.fires:
            counts[fire.kind] += 1
        return counts

    def place(self, at: float) -> float:
        """Where `at` lies across the drawing, from 0 (start) to 1 (until)."""
        return min(1.0, max(0.0, (at - self.start) / (self.until - self.start)))

    def title(self, fire: Fire) -> str:
        """One fire in words: its time in the job's zone, its kind, how late it started, its run."""
        said = f"{fire_time(fire.at, self.zone)}: {LABELS[fire.kind]}"
        if fire.lateness is not None:
            said += f", started {format_duration(fire.lateness)} after it was due"
        return f"{said} (run {fire.run_id})" if fire.run_id else said


def timeline(store: Store, name: str, now: float, hours: float = 24) -> Timeline | None:
    """Job `name`'s fires over the `hours` before `now` and the next hour's; None for a job with no cron."""
    if not 0 < hours <= MAX_HOURS:
        raise UsageError(f"invalid hours {hours!r}: expected more than 0 and at most {MAX_HOURS}")
    job = store.get_job(name)
    if job is None:
        raise NotFoundError(f"no job named {name!r} (see 'queuectl list --jobs')")
    spec = job.spec
    if spec.cron is None:
        return None  # a one-off job expects no fires: its runs are listed, not drawn against a schedule
    try:
        zone = schedule.zone_of(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # a zone this machine's tz database lacks
        raise QueueError(f"job {name!r}: time zone {spec.timezone!r} is unknown here ({exc})") from None
    start = now - hours * 3600.0
    expected = schedule.fires_between(spec.cron, zone, start, now, MAX_FIRES + 1)
    capped = len(expected) > MAX_FIRES
    if capped:
        start, expected = expected[0], expected[1:]
    suspended = job.suspended or not spec.enabled
    ahead = [] if suspended else schedule.fires_between(spec.cron, zone, now, now + UPCOMING, UPCOMING_FIRES)
    read = store.fire_runs(name, start, now + UPCOMING, READ_LIMIT)
    if len(read) == READ_LIMIT:  # latest first: the oldest fire read may have more runs unread
        capped, start = True, max(start, read[-1].scheduled_for)
        expected = [fire for fire in expected if fire > start]
    runs = _by_fire(run for run in read if run.scheduled_for > start)
    jitter = schedule.jitter_offset(name, spec.jitter)
    counted_from = _counted_from(job)
    quiet_after = max(counted_from, job.last_fire or counted_from) if suspended else None
    fires: list[Fire] = []
    for at in expected:
        run = runs.pop(at, None)
        if run is not None:
            fires.append(_fire_of(run, jitter))
        elif at > counted_from and (quiet_after is None or at <= quiet_after):
            fires.append(Fire(at, "waiting" if at > now - ON_TIME else "missed", None, None, None))
    for at in ahead:
        run = runs.pop(at, None)
        fires.append(_fire_of(run, jitter) if run is not None else Fire(at, "upcoming", None, None, None))
    fires.extend(_fire_of(run, jitter) for run in runs.values())  # at no expected fire: triggered, a former cron
    fires.sort(key=lambda fire: fire.at)
    until = now if suspended else now + UPCOMING
    return Timeline(name, start, now, fires, ON_TIME, capped, suspended, counted_from, until, zone)


def _counted_from(job: Job) -> float:
    """When the job's current schedule began: its fires count from then.

    The scheduler records it (schedule_from) when it first looks at a new or changed schedule and
    when the job is resumed; before it has looked at the current one, the job's last change counts.
    """
    if job.schedule_from is not None and job.schedule_hash == schedule_hash(job):
        return job.schedule_from
    return max(job.version_at, job.schedule_from or job.version_at)


def _by_fire(runs: Iterable[FireRun]) -> dict[float, FireRun]:
    """One run per fire: the live one (a fire has at most one), else a cancelled one that started, else any."""
    chosen: dict[float, FireRun] = {}
    for run in runs:
        held = chosen.get(run.scheduled_for)
        if held is None or _rank(run) > _rank(held):
            chosen[run.scheduled_for] = run
    return chosen


def _rank(run: FireRun) -> tuple[bool, bool, str]:
    return (run.state is not RunState.CANCELLED, run.tries > 0, run.id)


def _fire_of(run: FireRun, jitter: float) -> Fire:
    started = run.first_started_at
    lateness = None if started is None else max(0.0, started - (run.scheduled_for + jitter))
    return Fire(run.scheduled_for, _kind(run, lateness), run.id, started, lateness)


def _kind(run: FireRun, lateness: float | None) -> str:
    state = run.state
    if state is RunState.RUNNING:
        return "running"
    if state in (RunState.FAILED, RunState.DEAD):
        return "failed"
    if state in (RunState.PENDING, RunState.SCHEDULED):
        return "waiting"
    if state is RunState.CANCELLED and run.tries == 0:
        return "skipped"
    # Completed, or cancelled while it ran (a replace, a cancel): how punctually it started.
    return "late" if lateness is not None and lateness > ON_TIME else "on_time"
