"""`/metrics` (and `metrics --prometheus`): the store's figures in the Prometheus text format.

One pass of store reads per scrape, through a collector of our own on a registry of our own
(never the global one). None of them scans the history kept; what each costs at 1M runs:
- `run_totals` (runs finished per job and outcome, the duration and wait histograms, last run and
  last success per job): the rollup rows the store writes in the transaction of each settle or
  cancel (a row per job, outcome and writer's shard: migration 0008, sql_rollups.py), plus the
  runs running now (runs_running index) for their waits and starts. Counters never go backwards:
  deleting runs (`clear`) or retrying dead ones does not decrement them.
- `counts` (runs per state now, queue depth): finished runs from the same rollup's `kept`
  column, waiting and running runs on their partial indexes: it follows the queue, not the history.
- `next_due` (oldest waiting run): min(run_at) on the runs_due index.
- `list_jobs`, `list_workers`: one row per job and per pool.
Measured at 1M runs and 1M attempts on SQLite (this machine, `python bench/metrics_scrape.py
--baseline main`): a whole scrape, `metrics --prometheus` start-up included, takes 0.17 s
(bare Python start-up: 0.06 s); counted from the runs and attempts it took 2.8-5.0 s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

import queuectl
from queuectl.model import METRIC_BUCKETS, STATES, Buckets, Job, RunState, Worker
from queuectl.store.contract import RunTotals, Store

FINISHED = (RunState.COMPLETED.value, RunState.DEAD.value, RunState.CANCELLED.value)


class Snapshot(NamedTuple):
    """What one scrape read of the store."""

    now: float
    counts: dict[str, int]  # runs per (shown) state
    totals: RunTotals
    due_at: float | None  # when the earliest waiting run was or will be due
    jobs: list[Job]
    workers: list[Worker]


def read(store: Store, now: float) -> Snapshot:
    due = store.next_due()  # seconds from the store's clock
    due_at = None if due is None else store.now() + due
    return Snapshot(now, store.counts(), store.run_totals(), due_at, store.list_jobs(), store.list_workers())


def exposition(store: Store, now: float) -> bytes:
    """The Prometheus text exposition of the store at `now`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Figures(read(store, now)))
    return generate_latest(registry)


class _Figures(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        yield _build_info()
        yield from _run_families(snap)
        rollup = snap.totals
        yield _histogram("queuectl_run_duration_seconds", "How long attempts ran (settled attempts).", rollup.durations)
        yield _histogram(
            "queuectl_queue_wait_seconds",
            "How long runs waited from when they were due to their first attempt's start.",
            rollup.waits,
        )
        yield from _job_families(snap)
        yield from _pool_families(snap.workers)


def _build_info() -> Metric:
    info = GaugeMetricFamily("queuectl_build_info", "The queuectl version serving these metrics.", labels=["version"])
    info.add_metric([queuectl.__version__], 1)
    return info


def _run_families(snap: Snapshot) -> Iterator[Metric]:
    runs = CounterMetricFamily(
        "queuectl_job_runs", "Runs finished, by job (empty: runs of no job) and outcome.", labels=["job", "outcome"]
    )
    per_state = GaugeMetricFamily("queuectl_runs", "Runs in each state now.", labels=["state"])
    totals = {**dict.fromkeys(STATES, 0), **snap.counts}
    finished = snap.totals.finished
    # Every declared job, and every job (or none) that has finished a run: a series from its first scrape on.
    names: set[str | None] = {job.name for job in snap.jobs}
    for job in sorted(names | {job for job, _ in finished}, key=lambda job: job or ""):
        for outcome in FINISHED:
            runs.add_metric([job or "", outcome], finished.get((job, outcome), 0))
    for state, number in totals.items():
        per_state.add_metric([state], number)
    yield runs
    yield per_state
    yield GaugeMetricFamily(
        "queuectl_queue_depth", "Runs due now and waiting for a worker.", value=totals[RunState.PENDING.value]
    )
    age = 0.0 if snap.due_at is None else max(0.0, snap.now - snap.due_at)
    yield GaugeMetricFamily(
        "queuectl_oldest_waiting_run_age_seconds", "Seconds the oldest run due (or retry due) has waited.", value=age
    )


def _histogram(name: str, documentation: str, counted: Buckets) -> Metric:
    cumulative, buckets = 0, []
    for le, number in zip([*map(str, METRIC_BUCKETS), "+Inf"], counted.counts, strict=True):
        cumulative += number
        buckets.append((le, float(cumulative)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=counted.sum)


def _job_families(snap: Snapshot) -> Iterator[Metric]:
    success = _job_gauge("last_success", "When the job's last successful attempt finished (Unix time).")
    last_run = _job_gauge("last_run", "When the job's last attempt started (Unix time).")
    next_fire = _job_gauge("next_fire", "When the scheduler next looks at the job (Unix time).")
    lateness = GaugeMetricFamily(
        "queuectl_job_schedule_lateness_seconds",
        "How far the scheduler is behind the job's next fire (0: on time; grows while no scheduler runs).",
        labels=["job"],
    )
    succeeded, started = snap.totals.last_success, snap.totals.last_run
    for job in snap.jobs:
        if job.name in succeeded:
            success.add_metric([job.name], succeeded[job.name])
        if job.name in started:
            last_run.add_metric([job.name], started[job.name])
        if job.next_fire is not None and not job.suspended:
            next_fire.add_metric([job.name], job.next_fire)
            lateness.add_metric([job.name], max(0.0, snap.now - job.next_fire))
    yield from (success, last_run, next_fire, lateness)
    yield GaugeMetricFamily("queuectl_jobs", "Jobs declared.", value=len(snap.jobs))
    yield GaugeMetricFamily(
        "queuectl_jobs_suspended", "Jobs suspended (kept, never scheduled).", value=sum(j.suspended for j in snap.jobs)
    )


def _job_gauge(what: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"queuectl_job_{what}_timestamp_seconds", documentation, labels=["job"])


def _pool_families(workers: Sequence[Worker]) -> Iterator[Metric]:
    beat = GaugeMetricFamily(
        "queuectl_pool_last_heartbeat_timestamp_seconds",
        "When each pool last said it is alive.",
        labels=["pool", "host"],
    )
    slots = GaugeMetricFamily("queuectl_pool_slots", "How many runs each pool runs at once.", labels=["pool", "host"])
    for w in workers:
        beat.add_metric([w.id, w.host], w.heartbeat_at)
        slots.add_metric([w.id, w.host], w.slots)
    yield GaugeMetricFamily("queuectl_pools", "Worker pools registered in the store.", value=len(workers))
    yield beat
    yield slots
