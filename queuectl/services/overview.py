"""What `status` shows (and the web page's overview will): counts, pools, declared jobs' health, the store."""

from __future__ import annotations

from typing import NamedTuple

from queuectl.model import Job
from queuectl.services.pools import PoolView, pools
from queuectl.store.contract import Store


class Overview(NamedTuple):
    counts: dict[str, int]
    pools: list[PoolView]
    jobs: int
    drift: dict[str, str]  # job -> how its manifest on disk differs from what was applied
    broken: dict[str, str]  # job -> the error of its manifest (its last good version stays in force)
    location: str


def overview(store: Store) -> Overview:
    """Everything `status` says; a damaged store is an error here, not the counts it still reads."""
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
    )


def drift(declared: list[Job]) -> dict[str, str]:
    """Each job whose manifest on disk is no longer what was applied, and how."""
    if not declared:
        return {}
    from queuectl.apply import drift as drift_of  # the manifests' parser: only when jobs are declared

    return {job.name: reason for job in declared if (reason := drift_of(job))}
