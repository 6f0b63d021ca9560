"""The store contract: everything above it speaks these verbs, never SQL.

Each verb is one transaction. `batch()` groups several verbs into one
transaction (the worker pool settles finished attempts and claims new runs
in a single round trip).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

from queuectl.errors import StoreError, UsageError
from queuectl.model import (
    Attempt,
    AttemptResult,
    Claim,
    Expired,
    Job,
    JobSource,
    JobSpec,
    JobStatus,
    NewRun,
    ProcessInfo,
    Run,
    RunState,
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


class Store(Protocol):
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

    def lead_scheduling(self) -> bool:
        """Become (or stay) the one process that schedules cron fires on this store; False: another is.

        Leadership lasts while this store's connection does; a standing-by
        process calls again now and then, and takes over when the leader is gone.
        """
        ...

    def wake_pools(self) -> None:
        """Tell idle pools that work (or news) has arrived; best effort, they also poll."""

    def work_signal(self, pid: int) -> Signal:
        """What pool `pid` waits on for wake-ups."""
        ...

    def batch(self) -> AbstractContextManager[None]: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a batch: on an error, undo only what was done within (the batch goes on)."""
        ...

    def data_token(self) -> object:
        """A value that differs after a change to the jobs was committed to the store (by anyone)."""
        ...

    def lock_jobs(self) -> None:
        """Inside a batch: hold off other processes' lock_jobs until the batch ends."""

    def check_identity(self) -> None:
        """Raise StoreBrokenError when the store opened is no longer the one its location names
        (a file deleted or replaced under a running pool); a server database: never."""

    def check_integrity(self) -> None:
        """Raise StoreBrokenError when the store is damaged; a server database checks its own pages."""

    # -- runs -----------------------------------------------------------
    def enqueue(self, runs: Sequence[NewRun]) -> None:
        """Add all runs or none; DuplicateRunError names a taken id."""

    def claim_runs(self, worker_id: str, host: str, limit: int, lease_seconds: float) -> list[Claim]:
        """Lease up to `limit` runnable runs, highest priority then oldest first."""
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

    def heartbeat(self, worker_id: str, lease_seconds: float) -> bool | None:
        """Renew the worker's leases; True when a stop was requested, None for an unknown worker."""
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

    def iter_runs(self, state: str | None = None, limit: int | None = None, page: int = 2000) -> Iterator[Run]:
        """Runs oldest first, read in pages of `page` (keyset on created_at, id): memory stays flat.

        Each page is its own short read, so a slow reader holds no transaction open; a run
        added meanwhile with a later created_at may still appear, none appears twice.
        """
        ...

    def get_run(self, run_id: str) -> Run | None: ...

    def attempts(self, run_id: str) -> list[Attempt]: ...

    def retry_dead(self, run_ids: Sequence[str] | None, reset_attempts: bool) -> list[str]:
        """Move dead runs (all when run_ids is None) back to pending."""
        ...

    def delete_runs(self, state: str | None) -> list[str]:
        """Delete runs (never running ones), in one state or all; their ids."""
        ...

    def attempt_stats(self) -> AttemptStats: ...

    # -- workers --------------------------------------------------------
    def register_worker(self, worker: Worker) -> None: ...

    def unregister_worker(self, worker_id: str) -> None: ...

    def list_workers(self) -> list[Worker]: ...

    def request_stop(self, worker_ids: Sequence[str]) -> None: ...

    # -- jobs (declared in manifests) ---------------------------------------
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

    def cancel_job_runs(self, name: str, reason: str) -> list[str]:
        """Cancel a job's pending and retry-waiting runs; a running one finishes."""
        ...

    def add_job_runs(self, runs: Sequence[NewRun]) -> int:
        """Add job runs; one whose (job, scheduled_for) has a run already is skipped. How many were added."""
        ...

    def job_status(self, name: str) -> JobStatus | None: ...

    # -- scheduling -------------------------------------------------------
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

    def unfinished_job_runs(self, name: str) -> list[tuple[str, RunState]]: ...

    def cancel_running_job_runs(self, name: str, reason: str) -> list[str]:
        """Ask the pools running the job's runs to stop them; they end cancelled."""
        ...

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        """(run id, attempt) this worker holds whose cancellation was asked for."""
        ...

    def add_skipped_run(self, run: NewRun, reason: str) -> bool:
        """Record a fire that was skipped (a cancelled run with the reason)."""
        ...

    # -- config ---------------------------------------------------------
    def config(self) -> dict[str, str]: ...

    def set_config(self, key: str, value: str) -> None: ...


def state_dir() -> str:
    """The user's state directory for queuectl (XDG)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "queuectl")


def default_location() -> str:
    return os.path.join(state_dir(), "queue.db")


MEMORY_NAMES = (":memory:", "file::memory:")


def open_store(
    location: str | None = None, clock: Clock | None = None, busy_timeout: float = 30.0, *, create: bool = True
) -> Store:
    """Open (migrating as needed) the store at `location`; create it only when `create`.

    A command that only reads passes create=False: a mistyped path then says
    there is no store there, rather than creating an empty one. `busy_timeout`
    is how long one statement waits for another process's write lock; a
    worker pool uses a short one and retries, so that its loop stays responsive.
    """
    location = location or default_location()
    if is_server_url(location):
        try:
            from queuectl.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreError(
                f"cannot use {mask_url(location)}: PostgreSQL support is not installed ({exc}); "
                "install it with: pip install 'queuectl[postgres]'"
            ) from None
        if create:
            close_state_dir()  # this host's logs of the store's runs go there
        return PostgresStore(location, clock=clock, busy_timeout=busy_timeout, create=create)
    _check_file_location(location)
    from queuectl.store.sqlite import SQLiteStore

    if create and os.path.abspath(os.path.expanduser(location)) == default_location():
        close_state_dir()
    return SQLiteStore(location, clock=clock, busy_timeout=busy_timeout, create=create)


def _check_file_location(location: str) -> None:
    """Refuse what is not a store file path (a key=value string, a mistyped URL, an in-memory database)."""
    import re

    if re.search(r"(^|\s)(host|hostaddr|dbname|user|port|password)=", location):  # not echoed: may hold a password
        raise UsageError(
            "a key=value connection string is not a store location: expected postgresql://user@host/dbname"
        )
    if re.match(r"postgres(ql)?(:|//)", location):
        raise UsageError(f"not a store URL: {mask_url(location)!r}: expected postgresql://user@host/dbname")
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise UsageError(f"unknown store URL scheme {scheme!r}: expected a file path or postgresql://…")
    if location in MEMORY_NAMES or location.startswith("file::memory:"):
        raise UsageError(
            f"cannot use {location} as the store: an in-memory store forgets every run when the command exits; "
            "expected a file path or postgresql://…"
        )


def make_private_dir(path: str) -> None:
    """Make directory `path` and its missing parents, each one made here 0700 whatever the umask.

    Directories that already exist are left as they are: they are the user's.
    """
    missing = []
    head = os.path.abspath(path)
    while not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # made meanwhile by another process: it made it 0700 too
        os.chmod(directory, 0o700)  # the umask may have taken bits from the owner


def close_state_dir() -> None:
    """Make queuectl's own state directory 0700 (older versions made it 0755); create it so if absent."""
    directory = state_dir()
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        make_private_dir(directory)
        return
    except OSError:
        return  # opening the store will say what is wrong
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)


def is_server_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


_SECRET_PARAMS = r"(?:ssl)?password"


def mask_url(url: str) -> str:
    """The URL with its password (in the authority, or a password=/sslpassword= parameter) replaced by ***."""
    import re

    scheme, sep, rest = url.partition("://")
    if sep:
        authority_end = len(rest)
        for mark in "/?#":
            at = rest.find(mark, rest.rfind("@") + 1 if "@" in rest else 0)
            if at >= 0:
                authority_end = min(authority_end, at)
        authority, tail = rest[:authority_end], rest[authority_end:]
        if "@" in authority:
            userinfo, _, hostport = authority.partition("@")  # the first @, as libpq reads it
            user, colon, _ = userinfo.partition(":")
            authority = f"{user}:***@{hostport}" if colon else f"{userinfo}@{hostport}"
        url = f"{scheme}://{authority}{tail}"
    return re.sub(rf"([?&]{_SECRET_PARAMS}=)[^&#]*", r"\1***", url)


def without_password(url: str) -> str:
    """A server URL with no password in it (a file path as it is): for what must not see one."""
    import re

    if not is_server_url(url):
        return url
    masked = mask_url(url)
    scheme, _, rest = masked.partition("://")
    authority, mark, tail = rest.partition("@")
    if mark and authority.endswith(":***"):
        rest = authority[: -len(":***")] + mark + tail
    rest = re.sub(rf"([?&]){_SECRET_PARAMS}=\*\*\*(&|(?=#)|$)", lambda m: m.group(1) if m.group(2) else "", rest)
    return f"{scheme}://{rest}".rstrip("?&")


def scrub(text: str, url: str) -> str:
    """`text` (say, a driver's error message) without the URL's secrets: the URL masked, passwords hidden."""
    import re
    from urllib.parse import unquote

    text = text.replace(url, mask_url(url))
    secrets = re.findall(rf"[?&]{_SECRET_PARAMS}=([^&#]*)", url)
    _, sep, rest = url.partition("://")
    userinfo = rest.partition("@")[0] if sep and "@" in rest.split("/")[0] else ""
    if ":" in userinfo:
        secrets.append(userinfo.partition(":")[2])
    for secret in secrets:
        for form in {secret, unquote(secret)}:
            if len(form) >= 2:
                text = text.replace(form, "***")
    return text


def logs_dir(store: Store) -> str:
    """Where this host keeps the per-attempt log files of `store`'s runs."""
    if store.engine == "sqlite":
        base, _ = os.path.splitext(store.location)
        return base + "-logs"
    import hashlib

    digest = hashlib.sha256(store.location.encode()).hexdigest()[:12]
    return os.path.join(state_dir(), f"logs-{store.engine}-{digest}")


def chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
