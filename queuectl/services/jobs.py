"""Declared jobs: apply manifests, check them, trigger, suspend and resume a job.

The manifests' one apply path is queuectl.apply; these verbs add what every
front end needs around it (the defaults from the store's settings, waking the
pools when runs were added).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from queuectl import apply as applying
from queuectl import config, json_views, manifest, planview
from queuectl.apply import Plan
from queuectl.errors import LISTS_HINT, NotFoundError, QueueError, UsageError
from queuectl.manifest import Manifest
from queuectl.model import Job, JobStatus, NewRun
from queuectl.store.contract import Store

DEFAULT_DIR = "jobs.d"


def job_dirs(paths: Sequence[str]) -> list[str]:
    """The paths a command was given, or ./jobs.d when none (and it exists)."""
    if paths:
        return list(paths)
    if not os.path.isdir(DEFAULT_DIR):
        raise UsageError(f"no {DEFAULT_DIR}/ here: give a jobs directory or run 'queuectl init'")
    return [DEFAULT_DIR]


def apply(store: Store, paths: Sequence[str], **options: Any) -> Plan:
    """Apply the manifests under `paths` (see apply.apply), then wake the pools when runs may have changed."""
    plan = applying.apply(store, paths, defaults=config.defaults(store), **options)
    if not options.get("dry_run") and any(c.kind in ("create", "update", "delete") for c in plan.changes):
        store.wake_pools()
    return plan


class Checked(NamedTuple):
    """What `validate` found: every manifest with its errors, and files apply would refuse."""

    manifests: list[Manifest]
    warnings: list[str]

    @property
    def errors(self) -> list[manifest.ManifestError]:
        return [e for m in self.manifests for e in m.errors]


def validate(paths: Sequence[str], insecure: bool) -> Checked:
    """Check manifests without a store; an owner or mode apply would refuse is a warning, not an error."""
    sources, _ = applying.find(job_dirs(paths))
    manifests = applying.read_all(sources, insecure=True)
    warnings = []
    directories = {s.directory: None if insecure else manifest.check_directory(s.directory) for s in sources}
    for source in sources:
        problem = manifest.check_owner(source.info) if source.info is not None and not insecure else None
        problem = directories[source.directory] or problem
        if problem:
            shown = manifest.shown_path(planview.relative(source.path))
            warnings.append(f"warning: {shown}: apply would refuse it: {problem}")
    return Checked(manifests, warnings)


def find(store: Store, name: str) -> Job:
    job = store.get_job(name)
    if job is None:
        raise NotFoundError(f"no job named {name!r} (see 'queuectl list --jobs', or apply its manifest)")
    return job


def trigger(store: Store, name: str) -> NewRun:
    """A run of job `name` now, outside its schedule."""
    job = find(store, name)
    run = applying.new_run(job, config.defaults(store), store.now())
    if not store.add_job_runs([run]):
        raise QueueError(f"job {name!r} was already triggered at this instant; try again")
    store.wake_pools()
    return run


class Suspended(NamedTuple):
    """What `suspend` did: the runs it cancelled, and whether the job was suspended already."""

    cancelled: list[str]
    already: bool


def suspend(store: Store, name: str) -> Suspended:
    """Stop job `name`'s schedule; its runs not yet started are cancelled, a running one finishes.

    Suspending a suspended job changes nothing and says so (`already`).
    """
    if find(store, name).suspended:
        return Suspended([], already=True)
    with store.batch():
        store.set_suspended(name, True)
        cancelled = store.cancel_job_runs(name, f"job {name} was suspended")
    store.wake_pools()  # `up` says it at once (its scheduler looks on a wake-up)
    return Suspended(cancelled, already=False)


def resume(store: Store, name: str) -> None:
    """Restart job `name`'s schedule from now (fires missed while suspended are skipped)."""
    find(store, name)
    with store.batch():
        store.set_suspended(name, False)
        store.add_job_runs(applying.runs_for(find(store, name), config.defaults(store)))
    store.wake_pools()


def names(store: Store, prefix: str, limit: int) -> list[str]:
    """At most `limit` declared job names that start with `prefix`, in name order."""
    return [job.name for job in store.list_jobs() if job.name.startswith(prefix)][:limit]


class JobView(NamedTuple):
    status: JobStatus
    drift: str | None
    settings: list[config.InForce]  # the values its runs take, and where each comes from


def status(store: Store, name: str) -> JobView:
    """Job `name` with its runs' counts, last run, drift and the values in force."""
    found = store.job_status(name)
    if found is None:
        raise NotFoundError(f"no run or job named {name!r} {LISTS_HINT}")
    return JobView(found, applying.drift(found.job), config.in_force(found.job.spec, store.config()))


def statuses(store: Store, limit: int | None = None) -> list[JobView]:
    """Every declared job (at most `limit`), as `status` gives one."""
    stored = store.config()
    counted = store.job_counts()  # every job's at once: bounded by the queue, not by the history
    found = (store.job_status(job.name, counted=False) for job in store.list_jobs()[:limit])
    views = []
    for status in found:
        if status is not None:
            status = status._replace(counts=counted.get(status.job.name, {}))
            views.append(JobView(status, applying.drift(status.job), config.in_force(status.job.spec, stored)))
    return views


def as_json(view: JobView) -> dict[str, Any]:
    """What `show NAME --json` prints of a job (and the web API's /api/jobs/NAME answers)."""
    return json_views.job_json(view.status, view.drift, view.settings)


def all_json(views: Sequence[JobView]) -> list[dict[str, Any]]:
    """What `list --jobs --json` prints (and the web API's /api/jobs answers)."""
    return [as_json(view) for view in views]
