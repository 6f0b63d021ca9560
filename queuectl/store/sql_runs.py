"""The run queue, written once for every SQL engine: enqueue, claim, settle, release, rescue, list."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from queuectl.errors import DuplicateRunError
from queuectl.model import (
    Attempt,
    AttemptFigures,
    AttemptResult,
    Claim,
    Expired,
    NewRun,
    Outcome,
    ProcessInfo,
    Run,
    RunState,
    settle,
    stored_filter,
)
from queuectl.store.contract import AttemptStats, RunQueue
from queuectl.store.sql_core import chunks
from queuectl.store.sql_rollups import SQLRollups, Tally
from queuectl.store.sql_rows import (
    attempt_params,
    claim_from_row,
    named_from_row,
    new_run_params,
    run_from_row,
    runs_from_rows,
    settle_params,
)

LOST_ERROR = "its worker pool stopped answering (lease expired or process gone)"
LOST_UNSEEN = "its worker pool died before the attempt was seen running; not counted"


class SQLRunQueue(SQLRollups, RunQueue):
    """Runs through their life: enqueued, claimed, settled or released, rescued when a pool dies."""

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
            self._write_many("insert_run", [new_run_params(r, now) for r in runs], duplicate_is_error=True)

    def claim_runs(
        self, worker_id: str, host: str, limit: int, lease_seconds: float, aging: float = 0.0
    ) -> list[Claim]:
        if limit <= 0:
            return []
        now = self._now()
        params = {"worker_id": worker_id, "host": host, "lease_expires": now + lease_seconds, "now": now}
        with self.batch():
            if aging > 0:
                rows = self._write("claim_runs_aged", {**params, "limit": limit, "aging": aging})
            else:
                rows = self._write("claim_runs", {**params, "limit": limit})
        # RETURNING gives no order: restore priority, then age.
        rows.sort(key=lambda r: (-r["priority"], r["created_at"], r["id"]))
        return [claim_from_row(r) for r in rows]

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
            tally = Tally()
            for res in results:
                key = (res.claim.run_id, res.worker_id, res.claim.attempt)
                if key not in held:
                    states.append(None)  # rescued from under us: the rescuer recorded the attempt
                    continue
                cancel, run_at, created_at = held[key]
                state, retry_at = settle(res.claim, res.outcome, now)
                ended = _cancelled_if(cancel, state)
                states.append(ended)
                runs.append(settle_params(res, state, retry_at, now))
                attempts.append(attempt_params(res, host))
                tally.attempt(res, run_at, created_at)
                tally.finished(res.claim.job, ended.value)
            self._write_many("settle_run", runs)
            self._write_many("insert_attempt", attempts)
            self._add_tally(tally, now)
        return states

    def _held(self, results: Sequence[AttemptResult]) -> dict[tuple[str, str, int], tuple[bool, float, float]]:
        """Which (run, worker, attempt) of `results` are still running under that worker: (cancel asked?, the
        run's run_at, its created_at)."""
        held: dict[tuple[str, str, int], tuple[bool, float, float]] = {}
        by_worker: dict[str, list[str]] = {}
        for res in results:
            by_worker.setdefault(res.worker_id, []).append(res.claim.run_id)
        for worker_id, run_ids in by_worker.items():
            for part in chunks(run_ids):
                rows = self._read("held_runs", {"worker_id": worker_id, "ids": json.dumps(list(part))})
                held.update(((r[0], worker_id, r[1]), (bool(r[2]), float(r[3]), float(r[4]))) for r in rows)
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
                claim=claim_from_row(row),
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
            self._write("settle_run", settle_params(result, state, run_at, now))
            self._write("insert_attempt", attempt_params(result, row["host"]))
            tally = Tally()
            tally.attempt(result, float(row["run_at"]), float(row["created_at"]))
            # settle_run ends it cancelled if that was asked; what this returns stays the retry policy's word
            tally.finished(result.claim.job, _cancelled_if(bool(row["cancel_requested"]), state).value)
            self._add_tally(tally, now)
            return state

    def next_due(self) -> float | None:
        row = self._read("next_due")[0]
        return None if row[0] is None else float(row[0]) - self._now()

    def has_work(self) -> bool:
        return bool(self._read("has_work", {"now": self._now()})[0][0])

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in RunState}
        with self._snapshot():
            rows = self._read("counts")
            scheduled = self._read("scheduled_count", {"now": self._now()})[0][0]
        for state, number in rows:
            counts[state] = int(number)
        # pending runs not yet due are shown as scheduled (model.shown_state)
        counts[RunState.SCHEDULED.value] = scheduled
        counts[RunState.PENDING.value] -= scheduled
        return counts

    def list_runs(self, state: str | None = None, limit: int | None = None) -> list[Run]:
        return list(self.iter_runs(state, limit))

    def iter_runs(
        self,
        state: str | None = None,
        limit: int | None = None,
        page: int = 2000,
        after: tuple[float, str] | None = None,
        job: str | None = None,
        newest_first: bool = False,
    ) -> Iterator[Run]:
        query, params = self._listing(state, after, job, newest_first)
        left = limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            rows = self._read(query, {**params, "limit": size})
            yield from runs_from_rows(rows, params["now"])
            if len(rows) < size:
                return
            params.update(after_created=rows[-1]["created_at"], after_id=rows[-1]["id"])
            left = None if left is None else left - len(rows)

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
        query, params = self._listing(state, after, job, newest_first)
        with self._snapshot():
            # Where `scan` runs end, from the index alone; the search then reads the rows up to there only.
            ends = self._read(f"{query}_end", {**params, "offset": max(scan, 1) - 1})
            if ends:
                params.update(end_created=ends[0]["created_at"], end_id=ends[0]["id"])
            rows = self._read(query, {**params, "text": text, "limit": limit})
        more = len(ends) > 1 and len(rows) < limit  # the scan ran out before the page filled, and runs remain
        return list(runs_from_rows(rows, params["now"])), (ends[0]["created_at"], ends[0]["id"]) if more else None

    def _listing(
        self, state: str | None, after: tuple[float, str] | None, job: str | None, newest_first: bool
    ) -> tuple[str, dict[str, Any]]:
        """The listing query's name and its parameters (no text, no end) for these filters, from `after`."""
        now = self._now()
        stored, due_after, due_until = stored_filter(state, now)
        first, last = (float("inf"), float("-inf")) if newest_first else (float("-inf"), float("inf"))
        start = after or (first, "")
        params: dict[str, Any] = {
            "now": now,
            "job": job,
            "state": stored,
            "due_after": due_after,
            "due_until": due_until,
            "text": None,
            "after_created": start[0],
            "after_id": start[1],
            "end_created": last,
            "end_id": "",
        }
        query = "list_job_runs" if job is not None else "list_runs"
        return (f"{query}_newest" if newest_first else query), params

    def run_ids(self, prefix: str, limit: int) -> list[str]:
        if not prefix:
            return [row[0] for row in self._read("run_ids_newest", {"limit": limit})]
        rows = self._read("run_ids_from", {"low": prefix, "high": prefix + "\U0010ffff", "limit": limit})
        return [row[0] for row in rows if row[0].startswith(prefix)]

    def get_run(self, run_id: str) -> Run | None:
        rows = self._read("get_run", {"id": run_id})
        return run_from_row(rows[0], self._now()) if rows else None

    def scheduled_runs(self, limit: int | None = None) -> list[Run]:
        now = self._now()
        rows = self._read("scheduled_runs", {"now": now, "limit": limit})
        return list(runs_from_rows(rows, now))

    def attempts(self, run_id: str) -> list[Attempt]:
        rows = self._read("list_attempts", {"run_id": run_id})
        return [named_from_row(Attempt, r, outcome=Outcome(r["outcome"])) for r in rows]

    def retry_dead(
        self,
        run_ids: Sequence[str] | None,
        reset_attempts: bool,
        retries: int | None = None,
        timeout: float | None = None,
        job: str | None = None,
    ) -> list[str]:
        now = self._now()
        params = {
            "now": now,
            "reset": reset_attempts,
            "retries": retries,
            "set_timeout": timeout is not None,
            "timeout": timeout or None,  # 0: no timeout
            "all": run_ids is None,
            "ids": json.dumps(list(run_ids or [])),
            "job": job,
        }
        with self.batch():
            rows = self._write("retry_dead", params)
            tally = Tally()
            for row in rows:
                tally.left(row[1], RunState.DEAD.value)
            self._add_tally(tally, now)
        return sorted(r[0] for r in rows)  # RETURNING has no order

    def delete_dead(self, run_ids: Sequence[str] | None, job: str | None = None) -> list[str]:
        params = {"all": run_ids is None, "ids": json.dumps(list(run_ids or [])), "job": job}
        with self.batch():
            rows = self._write("delete_dead", params)
            tally = Tally()
            for row in rows:
                tally.left(row[1], RunState.DEAD.value)
            self._add_tally(tally, self._now())
        return sorted(r[0] for r in rows)

    def cancel_runs(self, run_ids: Sequence[str], reason: str) -> tuple[list[str], list[str]]:
        now = self._now()
        params = {"now": now, "reason": reason, "ids": json.dumps(list(run_ids))}
        with self.batch():
            cancelled = self._write("cancel_waiting_runs", params)
            stopping = self._write("cancel_running_runs", params)
            tally = Tally()
            tally.cancelled(cancelled)
            self._add_tally(tally, now)
        return sorted(r[0] for r in cancelled), sorted(r[0] for r in stopping)

    def delete_runs(self, state: str | None) -> list[str]:
        stored, due_after, due_until = stored_filter(state, self._now())
        params = {"state": stored, "due_after": due_after, "due_until": due_until}
        with self.batch():
            rows = self._write("delete_runs", params)
            tally = Tally()
            for row in rows:
                tally.left(row[2], row[1])
            self._add_tally(tally, self._now())
        return sorted(r[0] for r in rows)

    def attempt_stats(self) -> AttemptStats:
        with self._snapshot():
            total, mean, ok, bad = self._read("attempt_stats")[0]
            p95 = None
            if total:
                rows = self._read("attempt_duration_at", {"offset": max(0, int(total * 0.95 + 0.5) - 1)})
                p95 = rows[0][0] if rows else None
            recent = self._read("completed_since", {"since": self._now() - 3600})[0][0]
        return AttemptStats(total, ok or 0, bad or 0, mean, p95, recent)

    def metric_attempts(self) -> list[AttemptFigures]:
        return [AttemptFigures(*r) for r in self._read("metric_attempts")]

    def job_counts(self) -> dict[str | None, dict[str, int]]:
        counts: dict[str | None, dict[str, int]] = {}
        for job, state, number in self._read("job_counts", {"now": self._now()}):
            counts.setdefault(job, {})[state] = number
        return counts

    def cancel_requests(self, worker_id: str) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self._read("cancel_requested", {"worker_id": worker_id})]


def _cancelled_if(cancel_requested: bool, state: RunState) -> RunState:
    """The state settle_run leaves a run in: cancelled when that was asked and it did not complete."""
    return RunState.CANCELLED if cancel_requested and state != RunState.COMPLETED else state
