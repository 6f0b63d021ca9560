"""Rollups: what `/metrics`, `status` and the dashboard's charts read, counted as runs settle, in the same transaction.

A verb that settles, cancels, retries or deletes runs fills a `Tally` with what it did and adds it with
`_add_tally` before its transaction commits: one upsert per (job, outcome) and one per minute for the
whole batch, not one per run (on PostgreSQL both in one statement: one round trip). What the tables hold
is described in migration 0008 (sql/<engine>/0008_rollups.sql), which also backfilled them from the runs
kept before it. Each store connection writes to rows of its own shard, which the reads sum.

The counters are never decremented: deleting runs (`clear`) or retrying a dead one leaves them as
they are, as Prometheus counters must; only `kept` (finished runs still in the store, per state, what
`counts()` reads) goes down. `clear` does not reset the counters: it never clears everything (running
runs stay), and what was done stays done; a fresh store starts from zero.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from queuectl.model import METRIC_BUCKETS, AttemptResult, Buckets, Outcome, RunState
from queuectl.store.contract import MinuteCount, RunTotals
from queuectl.store.sql_core import Row, SQLCore

BUCKETS = len(METRIC_BUCKETS) + 1  # the last: above every bound
FINISHED = (RunState.COMPLETED.value, RunState.DEAD.value, RunState.CANCELLED.value)
FAILED = (Outcome.FAILED, Outcome.TIMEOUT, Outcome.LOST)
UNTIMED = (Outcome.INTERRUPTED.value, Outcome.CANCELLED.value)  # not in the duration histogram
MINUTES_KEPT = 2 * 86400  # seconds of run_minutes the writer keeps
SHARDS = 16  # each store connection writes rows of one shard: pools on PostgreSQL do not queue on one row


def bucket(seconds: float) -> int:
    """The bucket of METRIC_BUCKETS that counts `seconds` (le: the first bound not below it)."""
    return bisect_left(METRIC_BUCKETS, seconds)


def wait(started_at: float, run_at: float, created_at: float) -> float:
    """Seconds a run waited from when it was due (its run_at, else its creation) to its start."""
    due = run_at if run_at <= started_at else created_at
    return max(0.0, started_at - due)


class _Sums:
    """One (job, outcome) row's additions in one transaction."""

    __slots__ = (
        "attempts",
        "d",
        "duration_sum",
        "kept",
        "last_finished",
        "last_started",
        "runs",
        "w",
        "wait_count",
        "wait_sum",
    )

    def __init__(self) -> None:
        self.runs = self.kept = self.attempts = self.wait_count = 0
        self.duration_sum = self.wait_sum = 0.0
        self.last_started: float | None = None
        self.last_finished: float | None = None
        self.d = [0] * BUCKETS
        self.w = [0] * BUCKETS

    def params(self, job: str, outcome: str, shard: int) -> dict[str, Any]:
        values: dict[str, Any] = {"job": job, "outcome": outcome, "shard": shard}
        values.update((name, getattr(self, name)) for name in _SCALARS)
        values.update(zip(_D, self.d, strict=True))
        values.update(zip(_W, self.w, strict=True))
        return values


_SCALARS = ("runs", "kept", "attempts", "duration_sum", "wait_count", "wait_sum", "last_started", "last_finished")
_D = tuple(f"d{i}" for i in range(BUCKETS))
_W = tuple(f"w{i}" for i in range(BUCKETS))


class Tally:
    """What one transaction settled: summed per (job, outcome) and per minute, added in a few upserts."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], _Sums] = {}
        self.completed = 0
        self.failed = 0

    def _sums(self, job: str | None, outcome: str) -> _Sums:
        key = (job or "", outcome)
        sums = self.totals.get(key)
        if sums is None:
            sums = self.totals[key] = _Sums()
        return sums

    def attempt(self, res: AttemptResult, run_at: float, created_at: float) -> None:
        """An attempt ended (`run_at`, `created_at`: its run's, before the settle moved them)."""
        outcome = res.outcome
        sums = self._sums(res.claim.job, outcome.value)
        started, finished = res.started_at, res.finished_at
        sums.attempts += 1
        seconds = max(0.0, finished - started)
        sums.duration_sum += seconds
        sums.d[bisect_left(METRIC_BUCKETS, seconds)] += 1
        if res.claim.attempt == 1:
            waited = wait(started, run_at, created_at)
            sums.wait_count += 1
            sums.wait_sum += waited
            sums.w[bisect_left(METRIC_BUCKETS, waited)] += 1
        if sums.last_started is None or started > sums.last_started:
            sums.last_started = started
        if sums.last_finished is None or finished > sums.last_finished:
            sums.last_finished = finished
        if outcome is Outcome.COMPLETED:
            self.completed += 1
        elif outcome in FAILED:
            self.failed += 1

    def finished(self, job: str | None, state: str, runs: int = 1) -> None:
        """Runs reached a finished state (completed, dead, cancelled); other states are not counted here."""
        if state in FINISHED and runs:
            sums = self._sums(job, state)
            sums.runs += runs
            sums.kept += runs

    def left(self, job: str | None, state: str) -> None:
        """A run in `state` was deleted or retried: one fewer kept if it had finished (the counts stay)."""
        if state in FINISHED:
            self._sums(job, state).kept -= 1

    def cancelled(self, rows: Iterable[Row]) -> None:
        """Runs cancelled before they started: rows of (id, job)."""
        for row in rows:
            self.finished(row[1], RunState.CANCELLED.value)


class SQLRollups(SQLCore):
    """Writes a transaction's tally into the rollups; reads them for `/metrics` and the charts."""

    _minutes_dropped = -1  # the minute this process last dropped old minutes in
    _shard: int | None = None  # the rows this connection adds to, drawn at its first write

    def _add_tally(self, tally: Tally, now: float) -> None:
        """Inside the transaction that did what `tally` counts."""
        if self._shard is None:
            self._shard = random.randrange(SHARDS)
        shard = self._shard
        rows = [tally.totals[key].params(*key, shard) for key in sorted(tally.totals)]
        if not (tally.completed or tally.failed):
            if rows:
                self._write_rollups(rows, None)
            return
        minute = int(now // 60) * 60
        ended = {"minute": minute, "shard": shard, "completed": tally.completed, "failed": tally.failed}
        self._write_rollups(rows, ended)
        if minute != self._minutes_dropped:
            self._write("drop_run_minutes", {"before": minute - MINUTES_KEPT})
            self._minutes_dropped = minute

    def _write_rollups(self, rows: list[dict[str, Any]], minute: dict[str, Any] | None) -> None:
        """Engine hook: add the rows to run_totals and the minute's counts to run_minutes (None: nothing ended).

        Here one statement each; PostgreSQL sends both in one (add_rollups). Rows come in key order, so two
        transactions that share a shard lock the rows they share in the same order.
        """
        if rows:
            self._write_many("add_run_totals", rows)
        if minute is not None:
            self._write("add_run_minute", minute)

    def run_totals(self) -> RunTotals:
        with self._snapshot():
            rows = self._read("run_totals")
            running = self._read("running_times")
        finished: dict[tuple[str | None, str], int] = {}
        durations, waits = [0] * BUCKETS, [0] * BUCKETS
        duration_sum = wait_sum = 0.0
        last_run: dict[str, float] = {}
        last_success: dict[str, float] = {}
        for row in rows:
            job, outcome = row["job"], row["outcome"]
            if outcome in FINISHED:
                finished[(job or None, outcome)] = finished.get((job or None, outcome), 0) + int(row["runs"])
            if outcome not in UNTIMED:
                _add(durations, row, "d")
                duration_sum += float(row["duration_sum"])
            _add(waits, row, "w")
            wait_sum += float(row["wait_sum"])
            if job and row["last_started"] is not None:
                last_run[job] = max(float(row["last_started"]), last_run.get(job, float("-inf")))
            if job and outcome == Outcome.COMPLETED.value and row["last_finished"] is not None:
                last_success[job] = max(float(row["last_finished"]), last_success.get(job, float("-inf")))
        for job, started_at, run_at, created_at, tries in running:
            if started_at is None:
                continue
            if job:
                last_run[job] = max(float(started_at), last_run.get(job, float("-inf")))
            if tries == 1:
                waited = wait(float(started_at), float(run_at), float(created_at))
                waits[bucket(waited)] += 1
                wait_sum += waited
        return RunTotals(
            finished, Buckets(tuple(durations), duration_sum), Buckets(tuple(waits), wait_sum), last_run, last_success
        )

    def minute_counts(self, since: float) -> list[MinuteCount]:
        rows = self._read("run_minutes", {"since": since})
        return [MinuteCount(float(r[0]), int(r[1]), int(r[2])) for r in rows]


def _add(counts: list[int], row: Row, prefix: str) -> None:
    for i in range(BUCKETS):
        counts[i] += int(row[f"{prefix}{i}"])
