"""What `status` shows (and the web page's overview will): counts, pools, the scheduler, declared jobs' health."""

from __future__ import annotations

from typing import Any, NamedTuple

from queuectl import json_views
from queuectl.model import Job, SchedulerSeat
from queuectl.services.pools import PoolView, pools
from queuectl.services.pools import as_json as pools_json
from queuectl.store.contract import Store


class SchedulerView(NamedTuple):
    """Where the cron fires are scheduled: the elected pool's seat, and whether it is held now."""

    seat: SchedulerSeat | None  # the last holder (None: no pool or `up` ever scheduled here)
    alive: bool  # its lease is running: a live process schedules
    cron_jobs: int  # enabled, unsuspended cron jobs declared
    warning: str | None  # cron jobs declared and nobody schedules them


class Overview(NamedTuple):
    counts: dict[str, int]
    pools: list[PoolView]
    jobs: int
    drift: dict[str, str]  # job -> how its manifest on disk differs from what was applied
    broken: dict[str, str]  # job -> the error of its manifest (its last good version stays in force)
    location: str
    scheduler: SchedulerView


def overview(store: Store, check: bool = True) -> Overview:
    """Everything `status` says; a damaged store is an error here, not the counts it still reads.

    `check`: look the whole store over first (SQLite's quick check reads every page: 0.5-1 s at a million
    runs). The dashboard, asked again and again, looks it over once a minute (web/app.py).
    """
    if check:
        store.check_integrity()
    counts = store.counts()
    views = pools(store)
    declared = store.list_jobs()
    return Overview(
        counts=counts,
        pools=views,
        jobs=len(declared),
        drift=drift(declared),
        broken={job.name: job.error for job in declared if job.error},
        location=store.location,
        scheduler=scheduler(store, declared),
    )


def as_json(seen: Overview) -> dict[str, Any]:
    """What `status --json` prints (and the web API's /api/status answers)."""
    return {
        "counts": seen.counts,
        "workers": pools_json(seen.pools),
        "store": seen.location,
        "scheduler": json_views.scheduler_json(seen.scheduler.seat, seen.scheduler.alive, seen.scheduler.warning),
        "jobs": {"total": seen.jobs, "drift": seen.drift, "manifest_errors": seen.broken},
    }


class Queue(NamedTuple):
    """How much work waits (the dashboard's overview; /metrics says the same)."""

    depth: int  # runs due now and waiting for a worker
    oldest_wait: float | None  # seconds the earliest due run has waited; None: none is due


def queue(store: Store, counted: dict[str, int]) -> Queue:
    """The queue's depth (from `counted`, the runs per state) and the age of its oldest due run (one indexed read)."""
    due = store.next_due()  # seconds from now until the earliest waiting run is due
    return Queue(counted.get("pending", 0), None if due is None or due > 0 else -due)


class Dashboard(NamedTuple):
    """What the web page's overview shows: `status` without its integrity check and drift, plus the queue."""

    counts: dict[str, int]
    queue: Queue
    pools: list[PoolView]
    scheduler: SchedulerView
    jobs: int
    broken: dict[str, str]  # job -> the error of its manifest


def dashboard(store: Store) -> Dashboard:
    """The overview's figures: cheap enough to read again on every change (no page-by-page check, no manifest read)."""
    counted = store.counts()
    declared = store.list_jobs()
    return Dashboard(
        counts=counted,
        queue=queue(store, counted),
        pools=pools(store),
        scheduler=scheduler(store, declared),
        jobs=len(declared),
        broken={job.name: job.error for job in declared if job.error},
    )


def counts(store: Store) -> dict[str, int]:
    """Runs per state, every state named (what the banner of a bare `queuectl` shows)."""
    return store.counts()


def scheduler(store: Store, declared: list[Job]) -> SchedulerView:
    """Who schedules the cron fires, and a warning when cron jobs are declared but nobody does."""
    seat = store.scheduler_seat()
    alive = seat is not None and seat.lease_until >= store.now()
    cron = sum(1 for job in declared if job.spec.cron is not None and job.spec.enabled and not job.suspended)
    warning = None
    if cron and not alive:
        warning = (
            f"{cron} cron job(s) declared but no scheduler runs: they fire only while a pool runs "
            "(start one with 'queuectl worker start' or 'queuectl up')"
        )
    return SchedulerView(seat, alive, cron, warning)


def drift(declared: list[Job]) -> dict[str, str]:
    """Each job whose manifest on disk is no longer what was applied, and how."""
    if not declared:
        return {}
    from queuectl.apply import drift as drift_of  # the manifests' parser: only when jobs are declared

    return {job.name: reason for job in declared if (reason := drift_of(job))}
