"""Values of the domain: runs, attempts, workers, and the retry rule.

Everything here is immutable (NamedTuple: cheaper to define than frozen
dataclasses, which matters for a CLI's start-up) and free of I/O. A *run* is one execution of a
command that was asked for; an *attempt* is one try of a run.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, NamedTuple

from queuectl.errors import UsageError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunState(enum.StrEnum):
    # Shown, never stored: a pending run whose run_at is still ahead (see shown_state).
    SCHEDULED = "scheduled"
    PENDING = "pending"  # waiting to be claimed (stored also while run_at is ahead: shown as scheduled)
    RUNNING = "running"  # claimed under a lease by a worker pool
    COMPLETED = "completed"  # an attempt exited 0
    FAILED = "failed"  # an attempt failed; a retry is scheduled at run_at
    DEAD = "dead"  # out of retries: in the dead-letter queue
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


STATES = tuple(s.value for s in RunState)
# Other names users of other queue tools type for a state (`list --state processing`).
STATE_ALIASES = {"processing": RunState.RUNNING.value}
# States a run can be claimed from (when run_at has come).
RUNNABLE = (RunState.PENDING.value, RunState.FAILED.value)
# Far enough from any epoch time to bound a filter on run_at from one side only.
_EVER = 1e300


def shown_state(state: RunState, run_at: float, now: float) -> RunState:
    """The state a user sees: a pending run is `scheduled` until its run_at has come.

    The store keeps such a run `pending` (claims already wait for run_at), so it becomes
    pending on time with no process to move it; a failed run waiting for its retry stays failed.
    """
    return RunState.SCHEDULED if state is RunState.PENDING and run_at > now else state


def stored_filter(state: str | None, now: float) -> tuple[str | None, float, float]:
    """A shown state as the store filters it: (stored state, run_at above, run_at at most)."""
    if state == RunState.SCHEDULED.value:
        return RunState.PENDING.value, now, _EVER
    if state == RunState.PENDING.value:
        return state, -_EVER, now
    return state, -_EVER, _EVER


class Outcome(enum.StrEnum):
    """How one attempt ended."""

    COMPLETED = "completed"  # exit 0
    FAILED = "failed"  # non-zero exit or killed by a signal
    TIMEOUT = "timeout"  # killed after its timeout
    LOST = "lost"  # its pool died; rescued after the lease expired
    INTERRUPTED = "interrupted"  # the pool was stopped at once; not counted
    CANCELLED = "cancelled"  # its run was cancelled while it ran (`cancel`, suspend, replace): no failure

    def __str__(self) -> str:
        return self.value


def parse_state(name: str) -> RunState:
    """The state `name` names: any case, or another name of it (STATE_ALIASES); else UsageError."""
    key = name.strip().lower() if isinstance(name, str) else ""
    key = STATE_ALIASES.get(key, key)
    if key not in STATES:
        names = ", ".join(STATES)
        raise UsageError(f"invalid state {name!r}: expected one of {names} (or {', '.join(STATE_ALIASES)})")
    return RunState(key)


def check_name(name: str, what: str = "id") -> str:
    """Return `name` if it is a safe file name, else raise UsageError."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or not name.isascii():
        raise UsageError(
            f"invalid {what} {name!r}: expected 1-128 characters of letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


class NewRun(NamedTuple):
    """A run as asked for by enqueue: every default already resolved."""

    id: str
    command: str
    priority: int
    max_retries: int
    backoff_base: float
    backoff_max: float
    timeout: float | None
    run_at: float | None = None  # None: as soon as possible
    job: str | None = None
    cwd: str | None = None
    env: dict[str, str] = {}  # noqa: RUF012 (never mutated)
    scheduled_for: float | None = None  # a job's run: the time it was due (unique per job)
    keep_children: bool = False  # what the command starts may outlive its run (daemons)


class Run(NamedTuple):
    """A run as the store holds it."""

    id: str
    job: str | None
    command: str
    state: RunState
    priority: int
    attempts: int
    max_retries: int
    backoff_base: float
    backoff_max: float
    timeout: float | None
    created_at: float
    updated_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    error: str | None
    output_tail: str | None
    worker_id: str | None
    lease_expires: float | None
    host: str | None
    pgid: int | None
    log_path: str | None
    cwd: str | None
    env: dict[str, str]
    tries: int = 0  # attempts ever started: the number of the current or last one
    scheduled_for: float | None = None
    keep_children: bool = False
    last_pool: str | None = None  # the pool that ran its latest attempt, kept after the run settles

    @property
    def pool(self) -> str | None:
        """The pool that holds the run now, or the one that ran its latest attempt."""
        return self.worker_id or self.last_pool


class AttemptFigures(NamedTuple):
    """What `metrics --detailed` reads of one attempt (outcome "running" for one running now)."""

    job: str | None
    outcome: str
    started_at: float | None
    finished_at: float | None
    worker_id: str | None
    wait: float | None  # a run's first attempt: seconds from its run_at (else its creation) to its start


# `/metrics` histogram buckets in seconds, a tenth of a second to a day (the SQL counting into them takes 15).
METRIC_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)


class Buckets(NamedTuple):
    """Seconds counted per bucket of METRIC_BUCKETS (the last: above every bound), and their sum."""

    counts: tuple[int, ...]
    sum: float


class Claim(NamedTuple):
    """What a worker needs to start one attempt of a run it has claimed.

    It also carries the retry policy, so that the attempt's end can be
    settled without reading the run again (the lease keeps it unchanged).
    """

    run_id: str
    attempt: int  # this attempt's number in the run's history (never reset)
    attempts: int  # attempts counted toward max_retries, this one included
    max_retries: int
    backoff_base: float
    backoff_max: float
    command: str
    timeout: float | None
    cwd: str | None
    env: dict[str, str]
    job: str | None = None
    keep_children: bool = False  # leave alive what the command started when its attempt ends
    scheduled_for: float | None = None  # a cron fire's time: the pool's start line says how late it starts


class ProcessInfo(NamedTuple):
    """Where an attempt runs: enough to find and kill what is left of it."""

    run_id: str
    pgid: int
    proc_start: int  # the leader's start time in clock ticks since boot
    log_path: str
    started_at: float
    attempt: int = 0  # the attempt this process is (guards against a stale record)


class AttemptResult(NamedTuple):
    """How one attempt ended, as reported by the worker that ran it."""

    claim: Claim
    worker_id: str
    pgid: int | None
    started_at: float
    finished_at: float
    exit_code: int | None
    outcome: Outcome
    error: str | None
    output_tail: str
    log_path: str | None = None  # None: the attempt printed nothing


class Attempt(NamedTuple):
    run_id: str
    n: int
    worker_id: str | None
    host: str | None
    pgid: int | None
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    outcome: Outcome
    error: str | None
    log_path: str | None
    output_tail: str | None


class SchedulerSeat(NamedTuple):
    """Who schedules a store's cron fires (the pools elect one) and when it last looked."""

    holder: str  # unique to the scheduling process's connection
    pool_id: str | None  # the pool it runs beside (None until that pool has started)
    host: str
    pid: int
    lease_until: float = 0.0  # it is the scheduler until then (each look renews it)
    last_tick_at: float | None = None


class Worker(NamedTuple):
    """A live (or lately live) worker pool."""

    id: str
    host: str
    pid: int
    proc_start: int
    slots: int
    started_at: float
    heartbeat_at: float
    stop_requested: bool
    running: tuple[str, ...] = ()
    machine: str = ""  # boot and pid-namespace identity: same host name, other machine, is told apart


class Service(NamedTuple):
    """A background `up` (`up --detach`), as its pid file says."""

    pid: int
    proc_start: int  # clock ticks since boot: tells the process from a later one with its pid
    started_at: float
    directory: str  # the jobs directory, resolved
    store: str  # a SQLite file's real path, or a server URL without its password
    log_path: str
    pid_path: str


class Expired(NamedTuple):
    """A running run whose lease has expired or whose pool is known dead."""

    run_id: str
    worker_id: str | None
    host: str | None
    pgid: int | None
    proc_start: int | None
    lease_expires: float | None = None
    attempt: int | None = None


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry)."""
    try:
        delay = float(base) ** attempt
    except OverflowError:
        return cap
    return min(delay, cap)


def settle(claim: Claim, outcome: Outcome, now: float) -> tuple[RunState, float]:
    """The state a run goes to after an attempt, and when it may run next."""
    state = next_state(claim.attempts, claim.max_retries, outcome)
    if state is RunState.FAILED:
        return state, now + retry_delay(claim.attempts, claim.backoff_base, claim.backoff_max)
    return state, now


def next_state(attempts: int, max_retries: int, outcome: Outcome) -> RunState:
    """The state a run goes to when an attempt ends with `outcome`.

    `attempts` counts the attempt that just ended; `max_retries` counts the
    tries allowed after the first one, so max_retries=2 allows 3 attempts.
    """
    if outcome is Outcome.COMPLETED:
        return RunState.COMPLETED
    if outcome is Outcome.INTERRUPTED:
        return RunState.PENDING
    if outcome is Outcome.CANCELLED:
        return RunState.CANCELLED
    if attempts > max_retries:
        return RunState.DEAD
    return RunState.PENDING if outcome is Outcome.LOST else RunState.FAILED


@dataclass(frozen=True)
class JobSpec:
    """A job as declared: normalized, so that equal meaning gives an equal hash.

    Unset optional values stay None: they take the store's configured
    defaults when a run is created, so changing a default reaches jobs that
    never named it. `run_at` is epoch seconds; `run_after` is a relative
    "+30m" (seconds after the job's first apply).
    """

    name: str
    command: str
    description: str = ""
    priority: int = 5
    run_at: float | None = None
    run_after: float | None = None
    cron: str | None = None
    timezone: str | None = None
    timeout: float | None = None
    retries: int | None = None
    backoff_base: float | None = None
    backoff_max: float | None = None
    concurrency: str = "forbid"
    catchup: str = "latest"
    catchup_window: float | None = None
    jitter: float | None = None
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = field(default=())
    enabled: bool = True
    keep_children: bool = False

    def to_json(self) -> dict[str, Any]:
        values = self.__dict__  # the fields (and any cached hashes, which are not copied)
        data = {name: values[name] for name in _SPEC_FIELDS if name not in _OMITTED_WHEN_FALSE or values[name]}
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        values = dict(data)
        values["env"] = tuple(sorted((values.get("env") or {}).items()))
        return cls(**values)

    @cached_property
    def canonical(self) -> str:
        """The spec as compact JSON with sorted keys: equal meaning, equal text."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @cached_property
    def spec_hash(self) -> str:
        import hashlib  # loads OpenSSL (3 ms): not for the commands that only read runs

        return hashlib.sha256(self.canonical.encode()).hexdigest()

    @cached_property
    def run_hash(self) -> str:
        """Hash of what a run of this job executes: a change re-runs a one-off job.

        The description, the priority and `enabled` do not change what runs.
        """
        values = self.__dict__
        runs = tuple(
            values[name]
            for name in _SPEC_FIELDS
            if name not in ("description", "priority", "enabled") and (name not in _OMITTED_WHEN_FALSE or values[name])
        )
        import hashlib  # loads OpenSSL (3 ms): not for the commands that only read runs

        return hashlib.sha256(repr(runs).encode()).hexdigest()


_SPEC_FIELDS = tuple(f.name for f in fields(JobSpec))
# Keys added later, left out of the canonical form while unset: jobs applied before keep their hashes.
_OMITTED_WHEN_FALSE = frozenset({"keep_children"})


@dataclass(frozen=True)
class Job:
    """A job as the store holds it: the spec applied last and where it came from.

    The spec is decoded from its canonical JSON only when asked for: an apply
    that finds a file unchanged compares hashes and never needs it.
    """

    name: str
    spec_json: str  # the spec's canonical JSON
    spec_hash: str
    run_hash: str
    source: str  # the directory that owns it
    file: str
    file_hash: str
    git_commit: str | None
    git_dirty: bool
    status_dir: str | None
    error: str | None  # the manifest's current error; the spec above stays in force
    created_at: float
    updated_at: float
    version_at: float  # when what a run executes last changed
    suspended: bool = False
    schedule_from: float | None = None  # cron fires after this count (set when the schedule changes)
    last_fire: float | None = None  # the latest cron fire turned into a run, or skipped
    next_fire: float | None = None  # when the scheduler looks at the job next
    schedule_hash: str | None = None  # the cron and zone those were computed for

    @cached_property
    def spec(self) -> JobSpec:
        spec = JobSpec.from_json(json.loads(self.spec_json))
        spec.__dict__.update(canonical=self.spec_json, spec_hash=self.spec_hash, run_hash=self.run_hash)
        return spec


class JobSource(NamedTuple):
    """A spec to store, and where it came from."""

    spec: JobSpec
    source: str  # the directory that owns the job
    file: str
    file_hash: str
    git_commit: str | None = None
    git_dirty: bool = False
    status_dir: str | None = None


class FireRun(NamedTuple):
    """A run of a cron fire, as a job's timeline reads it (store.fire_runs)."""

    id: str
    scheduled_for: float  # the fire it runs
    state: RunState  # as shown at the read (a pending run not yet due: scheduled)
    tries: int  # attempts started (0: it never started)
    first_started_at: float | None  # when its first attempt started


class JobStatus(NamedTuple):
    job: Job
    last_run: Run | None
    next_at: float | None
    counts: dict[str, int]
