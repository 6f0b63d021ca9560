"""The store contract: everything above the store speaks these verbs, never SQL.

One protocol per role, so that a service asks only for the role it needs:

- `RunQueue`: enqueue, claim, settle, release and rescue runs; list them and their attempts.
- `PoolRegistry`: worker pools, their heartbeats and stop requests.
- `JobCatalogue`: jobs declared in manifests, their runs and their status.
- `SchedulerState`: the scheduler's bookkeeping of cron fires, suspension and leadership.
- `Settings`: the settings kept in the store (`config`).

Each role extends `StoreCore`, what every role has: where the store is, its
clock, transactions, schema, health checks and the wake-up transport.
`Store` is all of them: what `open_store` returns.

Each verb is one transaction. `batch()` groups several verbs into one
transaction (the worker pool settles finished attempts and claims new runs
in a single round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from queuectl.model import (
    Attempt,
    AttemptFigures,
    AttemptResult,
    Buckets,
    Claim,
    Expired,
    FireRun,
    Job,
    JobSource,
    JobSpec,
    JobStatus,
    NewRun,
    ProcessInfo,
    Run,
    RunState,
    SchedulerSeat,
    Worker,
)
from queuectl.wake import Signal

Clock = Callable[[], float]


class AttemptStats(NamedTuple):
    attempts: int
    succeeded: int
    failed: int
    mean_duration: float | None
    p95_duration: float | None
    completed_last_hour: int


class RunTotals(NamedTuple):
    """What the store has counted as runs settled, since it was made: never decremented (`/metrics`)."""

    finished: dict[tuple[str | None, str], int]  # (job, None: no job; outcome: completed, dead, cancelled): runs
    durations: Buckets  # settled attempts (not interrupted, cancelled or running)
    waits: Buckets  # each run's first attempt, running ones included: from its due time to its start
    last_run: dict[str, float]  # per job: its last attempt's start (a running one's too)
    last_success: dict[str, float]  # per job: when its last completed attempt finished


class MinuteCount(NamedTuple):
    """Attempts that ended in one minute (by the store's clock): completed, and failed (failed, timeout, lost)."""

    minute: float  # the minute's start, epoch seconds
    completed: int
    failed: int


class StoreCore(Protocol):
    """What every role has: location, clock, transactions, schema, health and wake-ups."""

    location: str
    """Where the store is, for people (a file path, or a URL with its password masked)."""
    url: str
    """What open_store takes to open this store again (may hold a password: never print it)."""
    engine: str
    """"sqlite" or "postgresql"."""

    def close(self) -> None: ...

    def now(self) -> float:
        """The store's time: a server database's clock, so that hosts' clock skew does not matter."""
        ...

    def schema_version(self) -> int: ...

    def batch(self) -> AbstractContextManager[None]: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a batch: on an error, undo only what was done within (the batch goes on)."""
        ...

    def check_identity(self) -> None:
        """Raise StoreBrokenError when the store opened is no longer the one its location names
        (a file deleted or replaced under a running pool); a server database: never."""

    def check_integrity(self) -> None:
        """Raise StoreBrokenError when the store is damaged; a server database checks its own pages."""

    def newer_schema(self) -> int | None:
        """The store's schema version when a newer queuectl has migrated it past what this one knows; else None.

        A pool that runs on asks on its heartbeat: code that does not know a newer schema would not keep
        what it adds (the rollups of migration 0008 were such an addition), so it stops instead.
        """
        ...

    def wake_pools(self) -> None:
        """Tell idle pools that work (or news) has arrived; best effort, they also poll."""

    def work_signal(self, pid: int) -> Signal:
        """What pool `pid` waits on for wake-ups."""
        ...

    def change_token(self) -> object:
        """A value that differs once anyone committed any change to the store (runs, attempts, pools, jobs).

        Cheap (no table is read) and meaningful across connections: a connection opened for one
        call gives a value to compare with the next one's (what a web page's live updates poll).
        It may also differ without a change that matters (a server's other databases, a checkpoint).
        """
        ...


class RunQueue(StoreCore, Protocol):
    """Runs: enqueue, claim, settle, release, rescue; list them and their attempts."""

    def enqueue(self, runs: Sequence[NewRun]) -> None:
        """Add all runs or none; DuplicateRunError names a taken id."""

    def claim_runs(
        self, worker_id: str, host: str, limit: int, lease_seconds: float, aging: float = 0.0
    ) -> list[Claim]:
        """Lease up to `limit` runnable runs, highest priority then oldest first.

        `aging` (seconds, 0: off): a waiting run counts one priority level higher per `aging` seconds
        it has waited since it was due, up to 10 (config priority-aging); its claim carries that level.
        """
        ...

    def record_processes(self, worker_id: str, infos: Sequence[ProcessInfo]) -> None:
        """Record where attempts run (only for runs `worker_id` still holds at that attempt)."""

    def finish_attempts(self, host: str, results: Sequence[AttemptResult]) -> list[RunState | None]:
        """Settle attempts; None for a run this worker no longer holds."""
        ...

    def release_runs(self, worker_id: str, held: Sequence[tuple[str, int]]) -> None:
        """Give back claimed runs, as (run id, attempt), that were never started (not counted)."""

    def held_runs(self, worker_id: str) -> list[tuple[str, int]]:
        """(run id, attempt) of every run the worker holds."""
        ...

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        """(run id, attempt) this worker holds whose cancellation was asked for."""
        ...

    def find_expired(self, dead_workers: Sequence[str], limit: int = 100) -> list[Expired]: ...

    def requeue_lost(self, expired: Expired, output_tail: str = "") -> RunState | None:
        """Put back a run whose pool died (counted as an attempt)."""
        ...

    def next_due(self) -> float | None:
        """Seconds until the earliest waiting run is due by the store's clock (<= 0: now); None: none waits."""
        ...

    def has_work(self) -> bool:
        """True while a run is runnable now or a retry is waiting."""
        ...

    def counts(self) -> dict[str, int]: ...

    def list_runs(self, state: str | None = None, limit: int | None = None) -> list[Run]:
        """Runs oldest first (created_at, id), as a list: for callers that want a few."""
        ...

    def run_ids(self, prefix: str, limit: int) -> list[str]:
        """At most `limit` run ids starting with `prefix`, by id; with no prefix, the newest first (an index walk)."""
        ...

    def iter_runs(
        self,
        state: str | None = None,
        limit: int | None = None,
        page: int = 2000,
        after: tuple[float, str] | None = None,
        job: str | None = None,
        newest_first: bool = False,
    ) -> Iterator[Run]:
        """Runs oldest first, read in pages of `page` (keyset on created_at, id): memory stays flat.

        `after`: only the runs after this (created_at, id) in the listing's order, as a page of a listing starts.
        `job`: only that job's runs, read on its index (job, created_at, id). `newest_first`: the other way.

        Each page is its own short read, so a slow reader holds no transaction open; a run
        added meanwhile with a later created_at may still appear, none appears twice.
        """
        ...

    def search_runs(
        self,
        text: str | None,
        limit: int,
        scan: int,
        state: str | None = None,
        after: tuple[float, str] | None = None,
        job: str | None = None,
        newest_first: bool = False,
    ) -> tuple[list[Run], tuple[float, str] | None]:
        """At most `limit` runs whose command or id holds `text` (as typed; None: any run), in iter_runs' order.

        Bounded: only the next `scan` runs of the listing (after `after`, of `job`, in `state`) are looked at.
        Returns the runs found and, when the scan ended before the page filled and runs remain beyond,
        the (created_at, id) of the last run looked at (a search goes on after it); else None.
        """
        ...

    def get_run(self, run_id: str) -> Run | None: ...

    def scheduled_runs(self, limit: int | None = None) -> list[Run]:
        """Runs not yet due (shown `scheduled`), soonest first (run_at, created_at, id)."""
        ...

    def attempts(self, run_id: str) -> list[Attempt]: ...

    def retry_dead(
        self,
        run_ids: Sequence[str] | None,
        reset_attempts: bool,
        retries: int | None = None,
        timeout: float | None = None,
        job: str | None = None,
    ) -> list[str]:
        """Move dead runs (all when run_ids is None; only job `job`'s when given) back to pending.

        `retries`: that many retries after the next attempt (else one attempt more);
        `timeout`: the runs' new timeout in seconds, 0 for none (else theirs stays).
        """
        ...

    def delete_dead(self, run_ids: Sequence[str] | None, job: str | None = None) -> list[str]:
        """Delete dead runs (all when run_ids is None; only job `job`'s when given) with their attempts; their ids."""
        ...

    def delete_runs(self, state: str | None) -> list[str]:
        """Delete runs (never running ones), in one state or all; their ids."""
        ...

    def cancel_runs(self, run_ids: Sequence[str], reason: str) -> tuple[list[str], list[str]]:
        """Cancel runs by id: the waiting ones at once, the running ones by asking their pools to stop them.

        Returns (cancelled, stopping): the pool holding a run in `stopping` kills its process group
        and records it cancelled. Finished runs (and unknown ids) are in neither.
        """
        ...

    def attempt_stats(self) -> AttemptStats: ...

    def metric_attempts(self) -> list[AttemptFigures]:
        """Every attempt, and each attempt running now (outcome "running", no finish), for `metrics --detailed`."""
        ...

    def job_counts(self) -> dict[str | None, dict[str, int]]:
        """Runs per job (None: runs of no job) and state."""
        ...

    def run_totals(self) -> RunTotals:
        """The rollups the settles keep (a row per job and outcome) and the runs running now: no scan of history.

        Counted in the transaction of each settle and cancel, and never decremented: deleting or retrying
        runs leaves them as they are (Prometheus counters never go backwards).
        """
        ...

    def minute_counts(self, since: float) -> list[MinuteCount]:
        """Attempts that ended per minute from `since` on (minutes with none are absent), oldest first.

        Kept for two days at least (the writer drops older minutes).
        """
        ...


class PoolRegistry(StoreCore, Protocol):
    """Worker pools: who runs where, their heartbeats and stop requests."""

    def register_worker(self, worker: Worker) -> None: ...

    def unregister_worker(self, worker_id: str) -> None: ...

    def list_workers(self) -> list[Worker]: ...

    def heartbeat(self, worker_id: str, lease_seconds: float) -> bool | None:
        """Renew the worker's leases; True when a stop was requested, None for an unknown worker."""
        ...

    def request_stop(self, worker_ids: Sequence[str]) -> None: ...


class JobCatalogue(StoreCore, Protocol):
    """Jobs declared in manifests, their runs and their status."""

    def list_jobs(self) -> list[Job]: ...

    def get_job(self, name: str) -> Job | None: ...

    def put_job(
        self,
        spec: JobSpec,
        source: str,
        file: str,
        file_hash: str,
        git_commit: str | None = None,
        git_dirty: bool = False,
        status_dir: str | None = None,
    ) -> Job:
        """Create or update a job; its error is cleared, version_at moves when what runs changed."""
        ...

    def put_jobs(self, entries: Sequence[JobSource]) -> list[Job]:
        """put_job for many, in one transaction; the jobs in the order given."""
        ...

    def delete_job(self, name: str, reason: str) -> list[str]:
        """Remove a job (its runs stay as history); cancels its runs not yet started."""
        ...

    def set_job_error(self, name: str, error: str | None) -> None: ...

    def job_status(self, name: str, counted: bool = True) -> JobStatus | None:
        """Job `name` with its last run, next run and (when `counted`) its runs per state; None: no such job."""
        ...

    def latest_job_run(self, name: str, started: bool) -> Run | None:
        """Job `name`'s run started last (`started`), or created last (a pending one too); None: no such run."""
        ...

    def data_token(self) -> object:
        """A value that differs after a change to the jobs was committed to the store (by anyone)."""
        ...

    def lock_jobs(self) -> None:
        """Inside a batch: hold off other processes' lock_jobs until the batch ends."""

    def add_job_runs(self, runs: Sequence[NewRun]) -> int:
        """Add job runs; one whose (job, scheduled_for) has a run already is skipped. How many were added."""
        ...

    def cancel_job_runs(self, name: str, reason: str) -> list[str]:
        """Cancel a job's pending and retry-waiting runs; a running one finishes."""
        ...

    def fire_runs(self, name: str, start: float, end: float, limit: int) -> list[FireRun]:
        """Job `name`'s runs whose fire (scheduled_for) is in (start, end], cancelled ones too, latest fire first.

        At most `limit`: one read on two index ranges (runs_fire, runs_fire_cancelled), for a timeline.
        """
        ...

    def unfinished_job_runs(self, name: str) -> list[tuple[str, RunState]]: ...

    def cancel_running_job_runs(self, name: str, reason: str) -> list[str]:
        """Ask the pools running the job's runs to stop them; they end cancelled."""
        ...


class SchedulerState(StoreCore, Protocol):
    """The scheduler's bookkeeping: which cron jobs are due, their fires, suspension, leadership."""

    def lead_scheduling(self, seat: SchedulerSeat, lease: float) -> bool:
        """Become (or stay) the one process that schedules cron fires on this store; False: another is.

        Inside a batch. The seat is held for `lease` seconds from the store's now
        and each call renews it (and records the look); a standing-by process
        calls again now and then, and takes over when the leader is gone.
        """
        ...

    def scheduler_seat(self) -> SchedulerSeat | None:
        """Who last held the scheduling (alive while its lease_until is ahead); None: nobody ever did."""
        ...

    def leave_scheduling(self, holder: str) -> None:
        """Give the seat up at once (a clean exit): another process may take it at its next try."""
        ...

    def cron_jobs_due(self, now: float, limit: int = 500) -> list[Job]:
        """Enabled, unsuspended cron jobs never looked at or whose next fire has come (soonest first)."""
        ...

    def next_fire(self) -> float | None:
        """The earliest moment the scheduler must look again."""
        ...

    def set_fires(
        self, name: str, last_fire: float | None, next_fire: float | None, schedule_from: float, schedule_hash: str
    ) -> None: ...

    def set_suspended(self, name: str, suspended: bool) -> bool:
        """Suspend or resume a job's schedule; False for an unknown job. Resuming skips the fires missed."""
        ...

    def add_skipped_run(self, run: NewRun, reason: str) -> bool:
        """Record a fire that was skipped (a cancelled run with the reason)."""
        ...


class Settings(StoreCore, Protocol):
    """The settings kept in the store (`queuectl config`)."""

    def config(self) -> dict[str, str]: ...

    def set_config(self, key: str, value: str) -> None: ...


class Store(RunQueue, PoolRegistry, JobCatalogue, SchedulerState, Settings, Protocol):
    """Every role: what open_store returns."""
