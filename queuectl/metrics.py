"""`metrics --detailed`: figures per job and overall, computed from attempts and pools (pure; no I/O).

Durations and success rates are of attempts (an interrupted one, given back when its pool was
stopped at once, is not counted; a lost one counts as a failure). Queue wait is each run's
first attempt's wait. Worker utilisation is busy slot-seconds over available slot-seconds in
the last hour, for the pools registered now: a pool that has exited leaves no record of its slots.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from queuectl.model import AttemptFigures, Outcome, Worker

DAY = 86400.0
HOUR = 3600.0
RUNNING = "running"  # the outcome the store gives an attempt that runs now


class Spread(NamedTuple):
    """min / mean / p50 / p95 / max of some seconds (nearest rank, as `metrics` computes its p95)."""

    min: float
    mean: float
    p50: float
    p95: float
    max: float


class Figures(NamedTuple):
    counts: dict[str, int]  # runs by state
    attempts: int  # settled attempts (not interrupted, not running)
    success_rate: float | None  # completed attempts over settled ones, all time
    success_rate_24h: float | None  # ... of the attempts that ended in the last 24 hours
    duration: Spread | None
    wait: Spread | None
    runs_per_minute: float  # runs completed in the last hour, per minute


class Detailed(NamedTuple):
    overall: Figures
    jobs: dict[str | None, Figures]  # None: runs of no job (enqueued by hand)
    busy_slot_seconds: float
    available_slot_seconds: float
    window_seconds: float = HOUR  # what the busy and available slot-seconds cover

    @property
    def utilisation(self) -> float | None:
        """Busy over available slot-seconds in the last hour; None without a registered pool."""
        if self.available_slot_seconds <= 0:
            return None
        return min(1.0, self.busy_slot_seconds / self.available_slot_seconds)


def spread(values: Iterable[float]) -> Spread | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return Spread(ordered[0], sum(ordered) / len(ordered), rank(ordered, 0.5), rank(ordered, 0.95), ordered[-1])


def rank(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, min(len(ordered) - 1, int(len(ordered) * share + 0.5) - 1))]


def figures(counts: Mapping[str, int], attempts: Sequence[AttemptFigures], now: float) -> Figures:
    settled = [a for a in attempts if a.outcome not in (RUNNING, Outcome.INTERRUPTED.value, Outcome.CANCELLED.value)]
    recent = [a for a in settled if a.finished_at is not None and a.finished_at >= now - DAY]
    done_last_hour = sum(
        1 for a in settled if a.outcome == Outcome.COMPLETED.value and (a.finished_at or 0) >= now - HOUR
    )
    timed = [(a.started_at, a.finished_at) for a in settled]
    durations = (end - start for start, end in timed if start is not None and end is not None)
    return Figures(
        counts=dict(counts),
        attempts=len(settled),
        success_rate=_rate(settled),
        success_rate_24h=_rate(recent),
        duration=spread(durations),
        wait=spread(max(0.0, a.wait) for a in attempts if a.wait is not None),
        runs_per_minute=round(done_last_hour / 60, 4),
    )


def _rate(attempts: Sequence[AttemptFigures]) -> float | None:
    if not attempts:
        return None
    return sum(1 for a in attempts if a.outcome == Outcome.COMPLETED.value) / len(attempts)


def detailed(
    counts: Mapping[str | None, Mapping[str, int]],
    attempts: Sequence[AttemptFigures],
    pools: Sequence[tuple[Worker, bool]],
    now: float,
    states: Sequence[str],
) -> Detailed:
    """Figures per job and overall; `pools`: each registered pool and whether it runs now."""
    by_job: dict[str | None, list[AttemptFigures]] = {job: [] for job in counts}
    for a in attempts:
        by_job.setdefault(a.job, []).append(a)
    total = {state: sum(c.get(state, 0) for c in counts.values()) for state in states}
    jobs = {
        job: figures({s: counts.get(job, {}).get(s, 0) for s in states}, found, now)
        for job, found in sorted(by_job.items(), key=lambda item: (item[0] is None, item[0] or ""))
    }
    busy, available = utilisation(attempts, pools, now)
    return Detailed(figures(total, attempts, now), jobs, busy, available)


def utilisation(
    attempts: Sequence[AttemptFigures], pools: Sequence[tuple[Worker, bool]], now: float
) -> tuple[float, float]:
    """(busy, available) slot-seconds in the last hour of the pools registered now."""
    since = now - HOUR
    available = 0.0
    ids = set()
    for worker, running in pools:
        ids.add(worker.id)
        until = now if running else min(now, worker.heartbeat_at)
        available += worker.slots * _overlap(worker.started_at, until, since, now)
    busy = sum(
        _overlap(a.started_at, now if a.finished_at is None else a.finished_at, since, now)
        for a in attempts
        if a.worker_id in ids and a.started_at is not None
    )
    return busy, available


def _overlap(start: float, end: float, since: float, until: float) -> float:
    return max(0.0, min(end, until) - max(start, since))
