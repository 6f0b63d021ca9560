"""The store's verbs, written once for every SQL engine.

`SQLStore` holds the logic of each verb; an engine (sqlite.py, postgres.py)
supplies the connection, its transactions, its error types and a queries file
in which every statement has the same name and the same named parameters.
Each verb is one transaction, or joins the `batch()` it is called in.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from queuectl.errors import DuplicateRunError, StoreError
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
    Outcome,
    ProcessInfo,
    Run,
    RunState,
    Worker,
    settle,
)
from queuectl.store.contract import AttemptStats, Clock

LOST_ERROR = "its worker pool stopped answering (lease expired or process gone)"
LOST_UNSEEN = "its worker pool died before the attempt was seen running; not counted"

Row = Any  # an engine's row: read by column name and by position
_T = TypeVar("_T")


def chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLStore:
    """The verbs. Subclasses provide the engine hooks below the line."""

    location: str
    url: str
    clock: Clock | None

    # -- engine hooks -----------------------------------------------------
    def close(self) -> None:
        raise NotImplementedError

    def _begin(self, write: bool) -> None:
        """Start a transaction: a write one (taking what the engine needs to write) or a read-only snapshot."""
        raise NotImplementedError

    def _commit(self) -> None:
        """Commit; on failure roll back and raise StoreError."""
        raise NotImplementedError

    def _rollback(self) -> None:
        """Roll back, quietly (there may be nothing to roll back)."""
        raise NotImplementedError

    def _read(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        raise NotImplementedError

    def _write(self, name: str, params: dict[str, Any]) -> list[Row]:
        """Run a named statement; the rows it returns (RETURNING), if any."""
        raise NotImplementedError

    def _write_many(self, name: str, rows: Sequence[dict[str, Any]], duplicate_is_error: bool = False) -> int:
        """Run a named statement once per parameter set; how many rows it changed.

        With `duplicate_is_error`, a unique-key violation raises DuplicateRunError.
        """
        raise NotImplementedError

    def now(self) -> float:
        """The store's time: the injected clock, else the engine's (the database server's)."""
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def _migration_steps(self) -> list[tuple[int, str]]:
        """(version, script) of every numbered migration of the engine, in order."""
        raise NotImplementedError

    def _before_migration(self) -> None:
        """Inside the migration's transaction, first: make the version readable, keep others out."""

    def _run_script(self, script: str) -> None:
        raise NotImplementedError

    def _set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def _migrate(self) -> None:
        """Bring the schema up to date in one transaction (several processes may try at once)."""
        steps = self._migration_steps()
        latest = steps[-1][0]
        if self.schema_version() == latest:
            return
        with self.batch():
            self._before_migration()
            current = self.schema_version()
            if current > latest:
                raise StoreError(
                    f"store {self.location} has schema version {current}, newer than this "
                    f"queuectl knows ({latest}): upgrade queuectl"
                )
            for version, script in steps:
                if version > current:
                    self._run_script(script)
            self._set_schema_version(latest)

    def _now(self) -> float:
        return self.now()

    # -- transactions -------------------------------------------------------
    _depth = 0  # how many batch() levels are open: the outermost owns the transaction

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One write transaction; verbs called inside it join it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin(write=True)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a batch: on an error, undo only what was done within (the batch goes on)."""
        self._savepoints += 1
        name = f"queuectl_{self._savepoints}"
        self._execute_plain(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._execute_plain(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        self._execute_plain(f"RELEASE SAVEPOINT {name}")

    _savepoints = 0

    def _execute_plain(self, sql: str) -> None:
        """Run a fixed statement of the engine's transaction control."""
        raise NotImplementedError

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One consistent view for several reads, without blocking writers."""
        if self._depth:
            yield  # inside a transaction already
            return
        self._begin(write=False)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._rollback()  # nothing was written: ending the read is all

    # -- runs -----------------------------------------------------------
    def enqueue(self, runs: Sequence[NewRun]) -> None:
        now = self._now()
        ids = [r.id for r in runs]
        seen: set[str] = set()
        for run_id in ids:
            if run_id in seen:
                raise DuplicateRunError(f"duplicate id {run_id!r}: given twice in one batch")
            seen.add(run_id)
        with self.batch():
            for part in chunks(ids):
                taken = self._read("existing_ids", {"ids": json.dumps(list(part))})
                if taken:
                    raise DuplicateRunError(f"duplicate id {taken[0][0]!r}: a run with that id exists")
            self._write_many("insert_run", [_new_run_params(r, now) for r in runs], duplicate_is_error=True)

    def claim_runs(self, worker_id: str, host: str, limit: int, lease_seconds: float) -> list[Claim]:
        if limit <= 0:
            return []
        now = self._now()
        with self.batch():
            rows = self._write(
                "claim_runs",
                {
                    "worker_id": worker_id,
                    "host": host,
                    "lease_expires": now + lease_seconds,
                    "now": now,
                    "limit": limit,
                },
            )
        # RETURNING gives no order: restore priority, then age.
        rows.sort(key=lambda r: (-r["priority"], r["created_at"], r["id"]))
        return [_claim(r) for r in rows]

    def record_processes(self, worker_id: str, infos: Sequence[ProcessInfo]) -> None:
        if not infos:
            return
        rows = [
            {
                "run_id": info.run_id,
                "pgid": info.pgid,
                "proc_start": info.proc_start,
                "log_path": info.log_path,
                "started_at": info.started_at,
                "worker_id": worker_id,
                "n": info.attempt,
            }
            for info in infos
        ]
        with self.batch():
            self._write_many("record_process", rows)  # one pipelined round trip on PostgreSQL

    def finish_attempts(self, host: str, results: Sequence[AttemptResult]) -> list[RunState | None]:
        if not results:
            return []
        now = self._now()
        with self.batch():
            held = self._held(results)
            runs: list[dict[str, Any]] = []
            attempts: list[dict[str, Any]] = []
            states: list[RunState | None] = []
            for res in results:
                key = (res.claim.run_id, res.worker_id, res.claim.attempt)
                if key not in held:
                    states.append(None)  # rescued from under us: the rescuer recorded the attempt
                    continue
                state, run_at = settle(res.claim, res.outcome, now)
                states.append(RunState.CANCELLED if held[key] and state != RunState.COMPLETED else state)
                runs.append(_settle_params(res, state, run_at, now))
                attempts.append(_attempt_params(res, host))
            self._write_many("settle_run", runs)
            self._write_many("insert_attempt", attempts)
        return states

    def _held(self, results: Sequence[AttemptResult]) -> dict[tuple[str, str, int], bool]:
        """Which (run, worker, attempt) of `results` are still running under that worker: cancel asked?"""
        held: dict[tuple[str, str, int], bool] = {}
        by_worker: dict[str, list[str]] = {}
        for res in results:
            by_worker.setdefault(res.worker_id, []).append(res.claim.run_id)
        for worker_id, run_ids in by_worker.items():
            for part in chunks(run_ids):
                rows = self._read("held_runs", {"worker_id": worker_id, "ids": json.dumps(list(part))})
                held.update(((row[0], worker_id, row[1]), bool(row[2])) for row in rows)
        return held

    def release_runs(self, worker_id: str, held: Sequence[tuple[str, int]]) -> None:
        if not held:
            return
        now = self._now()
        rows = [{"run_id": run_id, "worker_id": worker_id, "now": now, "n": n} for run_id, n in held]
        with self.batch():
            self._write_many("release_run", rows)

    def held_runs(self, worker_id: str) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._read("held_by_worker", {"worker_id": worker_id})]

    def heartbeat(self, worker_id: str, lease_seconds: float) -> bool | None:
        now = self._now()
        with self.batch():
            self._write("extend_leases", {"worker_id": worker_id, "lease_expires": now + lease_seconds})
            rows = self._write("touch_worker", {"worker_id": worker_id, "now": now})
        return bool(rows[0][0]) if rows else None

    def find_expired(self, dead_workers: Sequence[str], limit: int = 100) -> list[Expired]:
        rows = self._read(
            "find_expired",
            {"now": self._now(), "dead_workers": json.dumps(list(dead_workers)), "limit": limit},
        )
        return [
            Expired(r["id"], r["worker_id"], r["host"], r["pgid"], r["proc_start"], r["lease_expires"], r["tries"])
            for r in rows
        ]

    def requeue_lost(self, expired: Expired, output_tail: str = "") -> RunState | None:
        now = self._now()
        with self.batch():
            seen = {"run_id": expired.run_id, "worker_id": expired.worker_id, "lease_expires": expired.lease_expires}
            rows = self._read("lost_run", seen)
            if not rows:
                return None  # finished, rescued or renewed meanwhile
            row = rows[0]
            result = AttemptResult(
                claim=_claim(row),
                worker_id=expired.worker_id or "",
                pgid=row["pgid"],
                started_at=row["started_at"] or now,
                finished_at=now,
                exit_code=None,
                outcome=Outcome.LOST,
                error=LOST_ERROR,
                output_tail=output_tail,
                log_path=row["log_path"],
            )
            if row["pgid"] is None:
                # Never seen running (claimed ahead, or gone before it was recorded):
                # back to the queue without using up a retry.
                result = result._replace(outcome=Outcome.INTERRUPTED, error=LOST_UNSEEN)
            state, run_at = settle(result.claim, result.outcome, now)
            self._write("settle_run", _settle_params(result, state, run_at, now))
            self._write("insert_attempt", _attempt_params(result, row["host"]))
            return state

    def next_due(self) -> float | None:
        row = self._read("next_due")[0]
        return None if row[0] is None else float(row[0]) - self._now()

    def has_work(self) -> bool:
        return bool(self._read("has_work", {"now": self._now()})[0][0])

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in RunState}
        for state, number in self._read("counts"):
            counts[state] = number
        return counts

    def list_runs(self, state: str | None = None, limit: int | None = None) -> list[Run]:
        return list(self.iter_runs(state, limit))

    def iter_runs(self, state: str | None = None, limit: int | None = None, page: int = 2000) -> Iterator[Run]:
        query = "list_runs_in_state" if state else "list_runs"
        after: tuple[float, str] = (float("-inf"), "")
        left = limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            params = {"state": state, "limit": size, "after_created": after[0], "after_id": after[1]}
            rows = self._read(query, params)
            yield from _runs(rows)
            if len(rows) < size:
                return
            after = (rows[-1]["created_at"], rows[-1]["id"])
            left = None if left is None else left - len(rows)

    def get_run(self, run_id: str) -> Run | None:
        rows = self._read("get_run", {"id": run_id})
        return _run(rows[0]) if rows else None

    def attempts(self, run_id: str) -> list[Attempt]:
        rows = self._read("list_attempts", {"run_id": run_id})
        return [_named(Attempt, r, outcome=Outcome(r["outcome"])) for r in rows]

    def retry_dead(self, run_ids: Sequence[str] | None, reset_attempts: bool) -> list[str]:
        params = {
            "now": self._now(),
            "reset": reset_attempts,
            "all": run_ids is None,
            "ids": json.dumps(list(run_ids or [])),
        }
        with self.batch():
            rows = self._write("retry_dead", params)
        return sorted(r[0] for r in rows)  # RETURNING has no order

    def delete_runs(self, state: str | None) -> list[str]:
        with self.batch():
            return sorted(r[0] for r in self._write("delete_runs", {"state": state}))

    def attempt_stats(self) -> AttemptStats:
        with self._snapshot():
            total, mean, ok, bad = self._read("attempt_stats")[0]
            p95 = None
            if total:
                rows = self._read("attempt_duration_at", {"offset": max(0, int(total * 0.95 + 0.5) - 1)})
                p95 = rows[0][0] if rows else None
            recent = self._read("completed_since", {"since": self._now() - 3600})[0][0]
        return AttemptStats(total, ok or 0, bad or 0, mean, p95, recent)

    # -- workers --------------------------------------------------------
    def register_worker(self, worker: Worker) -> None:
        with self.batch():
            self._write(
                "insert_worker",
                {
                    "id": worker.id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "proc_start": worker.proc_start,
                    "slots": worker.slots,
                    "machine": worker.machine,
                    "now": self._now(),
                },
            )

    def unregister_worker(self, worker_id: str) -> None:
        with self.batch():
            self._write("delete_worker", {"worker_id": worker_id})

    def list_workers(self) -> list[Worker]:
        return [
            _named(
                Worker,
                r,
                stop_requested=bool(r["stop_requested"]),
                running=tuple(json.loads(r["running"] or "[]")),
                machine=r["machine"] or "",
            )
            for r in self._read("list_workers")
        ]

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        with self.batch():
            self._write("request_stop", {"ids": json.dumps(list(worker_ids))})

    # -- jobs -----------------------------------------------------------
    def list_jobs(self) -> list[Job]:
        return [_job(r) for r in self._read("list_jobs")]

    def get_job(self, name: str) -> Job | None:
        rows = self._read("get_job", {"name": name})
        return _job(rows[0]) if rows else None

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
        return self.put_jobs([JobSource(spec, source, file, file_hash, git_commit, git_dirty, status_dir)])[0]

    def put_jobs(self, entries: Sequence[JobSource]) -> list[Job]:
        if not entries:
            return []
        now = self._now()
        rows = [
            {
                "name": e.spec.name,
                "spec": e.spec.canonical,
                "spec_hash": e.spec.spec_hash,
                "run_hash": e.spec.run_hash,
                "source": e.source,
                "file": e.file,
                "file_hash": e.file_hash,
                "git_commit": e.git_commit,
                "git_dirty": e.git_dirty,
                "status_dir": e.status_dir,
                "now": now,
            }
            for e in entries
        ]
        with self.batch():
            self._write_many("upsert_job", rows)
            times: dict[str, tuple[float, float, float, bool]] = {}
            for part in chunks([e.spec.name for e in entries]):
                for r in self._read("job_times", {"names": json.dumps(list(part))}):
                    times[r[0]] = (r[1], r[2], r[3], bool(r[4]))
        jobs = []
        for e in entries:
            created_at, updated_at, version_at, suspended = times[e.spec.name]
            job = Job(
                e.spec.name,
                e.spec.canonical,
                e.spec.spec_hash,
                e.spec.run_hash,
                e.source,
                e.file,
                e.file_hash,
                e.git_commit,
                e.git_dirty,
                e.status_dir,
                None,
                created_at,
                updated_at,
                version_at,
                suspended,
            )
            job.__dict__["spec"] = e.spec
            jobs.append(job)
        return jobs

    def delete_job(self, name: str, reason: str) -> list[str]:
        with self.batch():
            # the job's row first, its runs after: the order the scheduler locks them in (no deadlock)
            self._write("delete_job", {"name": name})
            return self.cancel_job_runs(name, reason)

    def set_job_error(self, name: str, error: str | None) -> None:
        with self.batch():
            self._write("set_job_error", {"name": name, "error": error})

    def cancel_job_runs(self, name: str, reason: str) -> list[str]:
        with self.batch():
            rows = self._write("cancel_job_runs", {"name": name, "now": self._now(), "reason": reason})
        return sorted(r[0] for r in rows)

    def add_job_runs(self, runs: Sequence[NewRun]) -> int:
        if not runs:
            return 0
        now = self._now()
        with self.batch():
            return self._write_many("insert_job_run", [_new_run_params(run, now) for run in runs])

    # -- scheduling -------------------------------------------------------
    def cron_jobs_due(self, now: float, limit: int = 500) -> list[Job]:
        return [_job(r) for r in self._read("cron_jobs_due", {"now": now, "limit": limit})]

    def next_fire(self) -> float | None:
        value = self._read("next_fire_min")[0][0]
        return None if value is None else float(value)

    def set_fires(
        self, name: str, last_fire: float | None, next_fire: float | None, schedule_from: float, schedule_hash: str
    ) -> None:
        params = {
            "name": name,
            "last_fire": last_fire,
            "next_fire": next_fire,
            "schedule_from": schedule_from,
            "schedule_hash": schedule_hash,
        }
        with self.batch():
            self._write("set_fires", params)

    def set_suspended(self, name: str, suspended: bool) -> bool:
        with self.batch():
            rows = self._write("set_suspended", {"name": name, "suspended": suspended, "now": self._now()})
            return bool(rows)

    def unfinished_job_runs(self, name: str) -> list[tuple[str, RunState]]:
        return [(r[0], RunState(r[1])) for r in self._read("unfinished_job_runs", {"name": name})]

    def cancel_running_job_runs(self, name: str, reason: str) -> list[str]:
        with self.batch():
            rows = self._write("cancel_running_job_runs", {"name": name, "now": self._now(), "reason": reason})
            return sorted(r[0] for r in rows)

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._read("cancel_requested", {"worker_id": worker_id})]

    def add_skipped_run(self, run: NewRun, reason: str) -> bool:
        params = {**_new_run_params(run, self._now()), "reason": reason}
        with self.batch():
            return bool(self._write("insert_skipped_run", params))

    def job_status(self, name: str) -> JobStatus | None:
        with self._snapshot():
            job = self.get_job(name)
            if job is None:
                return None
            last = self._read("last_job_run", {"name": name})
            next_at = self._read("next_job_run", {"name": name})[0][0]
            counts = {r[0]: r[1] for r in self._read("job_run_counts", {"name": name})}
        return JobStatus(job, _run(last[0]) if last else None, next_at, counts)

    # -- config ---------------------------------------------------------
    def config(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._read("config_all")}

    def set_config(self, key: str, value: str) -> None:
        with self.batch():
            self._write("config_set", {"key": key, "value": value})


def _text(value: str | None) -> str | None:
    """Text a command printed, storable anywhere: PostgreSQL's text cannot hold NUL."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _settle_params(res: AttemptResult, state: RunState, run_at: float, now: float) -> dict[str, Any]:
    return {
        "run_id": res.claim.run_id,
        "n": res.claim.attempt,
        "worker_id": res.worker_id,
        "state": state.value,
        "run_at": run_at,
        "started_at": res.started_at,
        "finished_at": res.finished_at,
        "now": now,
        "exit_code": res.exit_code,
        "error": _text(res.error),
        "output_tail": _text(res.output_tail),
        "uncount": 1 if res.outcome is Outcome.INTERRUPTED else 0,
        "log_path": res.log_path,
    }


def _new_run_params(r: NewRun, now: float) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "command": r.command,
        "priority": r.priority,
        "max_retries": r.max_retries,
        "backoff_base": r.backoff_base,
        "backoff_max": r.backoff_max,
        "timeout": r.timeout,
        "cwd": r.cwd,
        "env": json.dumps(r.env) if r.env else None,
        "now": now,
        "run_at": now if r.run_at is None else r.run_at,
        "scheduled_for": r.scheduled_for,
        "keep_children": r.keep_children,
    }


def _job(r: Row) -> Job:
    return Job(
        name=r["name"],
        spec_json=r["spec"],
        spec_hash=r["spec_hash"],
        run_hash=r["run_hash"],
        source=r["source"],
        file=r["file"],
        file_hash=r["file_hash"],
        git_commit=r["git_commit"],
        git_dirty=bool(r["git_dirty"]),
        status_dir=r["status_dir"],
        error=r["error"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        version_at=r["version_at"],
        suspended=bool(r["suspended"]),
        schedule_from=r["schedule_from"],
        last_fire=r["last_fire"],
        next_fire=r["next_fire"],
        schedule_hash=r["schedule_hash"],
    )


def _attempt_params(res: AttemptResult, host: str | None) -> dict[str, Any]:
    return {
        "run_id": res.claim.run_id,
        "n": res.claim.attempt,
        "worker_id": res.worker_id,
        "host": host,
        "pgid": res.pgid,
        "started_at": res.started_at,
        "finished_at": res.finished_at,
        "exit_code": res.exit_code,
        "outcome": res.outcome.value,
        "error": _text(res.error),
        "log_path": res.log_path,
        "output_tail": _text(res.output_tail),
    }


def _claim(r: Row) -> Claim:
    return Claim(
        run_id=r["id"],
        attempt=r["tries"],
        attempts=r["attempts"],
        max_retries=r["max_retries"],
        backoff_base=r["backoff_base"],
        backoff_max=r["backoff_max"],
        command=r["command"],
        timeout=r["timeout"],
        cwd=r["cwd"],
        env=json.loads(r["env"]) if r["env"] else {},
        job=r["job"],
        keep_children=bool(r["keep_children"]),
    )


def _named(kind: type[_T], r: Row, **converted: Any) -> _T:
    """A model tuple from a row whose columns carry its field names; `converted` gives the rest."""
    fields: tuple[str, ...] = kind._fields  # type: ignore[attr-defined]
    return kind(**{name: r[name] for name in fields if name not in converted}, **converted)


def _run(r: Row) -> Run:
    env = json.loads(r["env"]) if r["env"] else {}
    return _named(Run, r, state=RunState(r["state"]), env=env, keep_children=bool(r["keep_children"]))


_STATES = {s.value: s for s in RunState}
_STATE_AT, _ENV_AT = Run._fields.index("state"), Run._fields.index("env")


def _runs(rows: Sequence[Row]) -> Iterator[Run]:
    """Runs from rows of one query: columns are found once, then read by position (a listing's hot path)."""
    if not rows:
        return
    first = rows[0]
    names = list(first.keys()) if hasattr(first, "keys") else list(type(first).columns)
    pick = operator.itemgetter(*(names.index(field) for field in Run._fields))
    for r in rows:
        values = list(pick(r))
        values[_STATE_AT] = _STATES[values[_STATE_AT]]
        values[_ENV_AT] = json.loads(values[_ENV_AT]) if values[_ENV_AT] else {}
        yield Run._make(values)
