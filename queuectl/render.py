"""Pure rendering: data in, rich tables or JSON-ready dicts out.

JSON shapes here are a contract (see the README): add fields, never rename.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from queuectl import runner
from queuectl.durations import format_duration, format_time, iso_utc
from queuectl.listing import RUN_HEADERS, run_cells

# A run's JSON form lives in listing.py (no rich there, for a streamed `list`); front ends find it here too.
from queuectl.listing import dumps as dumps
from queuectl.listing import run_json as run_json
from queuectl.model import Attempt, JobStatus, Run, Worker

if TYPE_CHECKING:
    from queuectl.store.contract import AttemptStats

STATE_STYLE = {
    "pending": "cyan",
    "running": "yellow",
    "completed": "green",
    "failed": "magenta",
    "dead": "red",
    "cancelled": "dim",
}


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, highlight=False, no_color=True, width=100_000, soft_wrap=True)


def table(con: Console, *headers: str) -> Table:
    if con.is_terminal:
        return Table(*headers, box=box.SIMPLE_HEAD, header_style="bold")
    grid = Table(*headers, box=None, show_edge=False, pad_edge=False, header_style="")
    for column in grid.columns:
        column.no_wrap = True
    return grid


def fields_table(con: Console, lines: Iterable[tuple[str, str]]) -> Table:
    """FIELD / VALUE rows without a header, as `show` prints them."""
    grid = table(con, "FIELD", "VALUE")
    grid.show_header = False
    for key, value in lines:
        grid.add_row(key, Text(value))
    return grid


def zone_time(epoch: float | None, zone: tzinfo) -> str:
    """A moment in a job's zone, with its offset and abbreviation: 2026-03-29 03:00:00+02:00 CEST."""
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch, tz=zone)
    return f"{moment.isoformat(sep=' ', timespec='seconds')} {moment.tzname() or ''}".rstrip()


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


# -- JSON shapes ---------------------------------------------------------------
def attempt_json(a: Attempt) -> dict[str, Any]:
    duration = None if a.started_at is None or a.finished_at is None else round(a.finished_at - a.started_at, 3)
    return {
        "n": a.n,
        "outcome": a.outcome.value,
        "exit_code": a.exit_code,
        "error": a.error,
        "started_at": iso_utc(a.started_at),
        "finished_at": iso_utc(a.finished_at),
        "duration": duration,
        "worker": a.worker_id,
        "host": a.host,
        "log_path": a.log_path,
    }


def show_json(run: Run, attempts: Sequence[Attempt]) -> dict[str, Any]:
    out = run_json(run)
    out.update(
        cwd=run.cwd,
        env=run.env,
        lease_expires=iso_utc(run.lease_expires),
        pgid=run.pgid,
        log_path=run.log_path,
        output_tail=run.output_tail,
        history=[attempt_json(a) for a in attempts],
    )
    return out


def worker_json(w: Worker, now: float, lease_seconds: float) -> dict[str, Any]:
    return {
        "id": w.id,
        "host": w.host,
        "pid": w.pid,
        "slots": w.slots,
        "running": list(w.running),
        "started_at": iso_utc(w.started_at),
        "heartbeat_at": iso_utc(w.heartbeat_at),
        "state": worker_state(w, now, lease_seconds),
    }


def worker_state(w: Worker, now: float, lease_seconds: float) -> str:
    """alive, stopping, stale or dead: what every command says of a registered pool.

    A pool on this machine is judged by its process, at once (dead the moment it
    is killed, alive while it lives however late its heartbeat); a pool elsewhere
    by its heartbeat, stale once that is older than a lease.
    """
    if runner.on_this_machine(w.host, w.machine):
        if not runner.is_alive(w.pid, w.proc_start):
            return "dead"
    elif now - w.heartbeat_at > lease_seconds:
        return "stale"
    return "stopping" if w.stop_requested else "alive"


def is_running(state: str) -> bool:
    """Whether a pool in `state` (see worker_state) still runs: it may hold runs and can be asked to stop."""
    return state in ("alive", "stopping")


def metrics_json(counts: dict[str, int], stats: AttemptStats) -> dict[str, Any]:
    settled = stats.succeeded + stats.failed
    return {
        "counts": counts,
        "attempts": stats.attempts,
        "success_rate": round(stats.succeeded / settled, 4) if settled else None,
        "mean_duration": None if stats.mean_duration is None else round(stats.mean_duration, 3),
        "p95_duration": None if stats.p95_duration is None else round(stats.p95_duration, 3),
        "completed_last_hour": stats.completed_last_hour,
        "throughput_per_minute": round(stats.completed_last_hour / 60, 2),
    }


# -- tables --------------------------------------------------------------------
def runs_table(con: Console, runs: Iterable[Run], min_widths: Sequence[int] = ()) -> Table:
    grid = table(con, *RUN_HEADERS)
    for column, width in zip(grid.columns, min_widths, strict=False):
        column.min_width = width
    for r in runs:
        cells = run_cells(r)
        grid.add_row(Text(cells[0]), state_text(cells[1]), *cells[2:6], Text(cells[6]))
    return grid


def attempts_table(con: Console, attempts: Iterable[Attempt]) -> Table:
    grid = table(con, "#", "OUTCOME", "EXIT", "STARTED", "DURATION", "HOST", "ERROR")
    for a in attempts:
        duration = None if a.started_at is None or a.finished_at is None else a.finished_at - a.started_at
        grid.add_row(
            str(a.n),
            a.outcome.value,
            "-" if a.exit_code is None else str(a.exit_code),
            format_time(a.started_at),
            format_duration(duration),
            Text(a.host or "-"),
            Text(a.error or ""),
        )
    return grid


def workers_table(con: Console, workers: Iterable[Worker], lease_seconds: float, now: float) -> Table:
    grid = table(con, "POOL", "STATE", "HOST", "PID", "SLOTS", "RUNNING", "HEARTBEAT")
    for w in workers:
        grid.add_row(
            Text(w.id),
            worker_state(w, now, lease_seconds),
            Text(w.host),
            str(w.pid),
            str(w.slots),
            Text(", ".join(w.running) if w.running else "-"),
            f"{format_duration(max(0.0, now - w.heartbeat_at))} ago",
        )
    return grid


def show_lines(run: Run, attempts: Sequence[Attempt]) -> list[tuple[str, str]]:
    retry = ""
    if run.state.value in ("failed", "pending") and run.run_at > time.time():
        retry = f" (not before {format_time(run.run_at)})"
    return [
        ("id", run.id),
        ("state", run.state.value + retry),
        ("command", run.command),
        ("priority", str(run.priority)),
        ("attempts", f"{run.attempts} of {run.max_retries + 1} (max_retries {run.max_retries})"),
        ("timeout", "none" if not run.timeout else f"{run.timeout:g}s"),
        ("backoff", f"{run.backoff_base:g} ** n seconds, at most {run.backoff_max:g}s"),
        ("exit code", "-" if run.exit_code is None else str(run.exit_code)),
        ("error", run.error or "-"),
        ("created", format_time(run.created_at)),
        ("started", format_time(run.started_at)),
        ("finished", format_time(run.finished_at)),
        ("worker", f"{run.worker_id} on {run.host}" if run.worker_id else "-"),
        ("cwd", run.cwd or "-"),
        ("log", current_log(run, attempts) or "-"),
    ]


def current_log(run: Run, attempts: Sequence[Attempt]) -> str | None:
    """The log of the attempt running now, else of the last one, with the host that keeps it."""
    path, host = run.log_path, run.host
    if not path and attempts:
        path, host = attempts[-1].log_path, attempts[-1].host
    if not path:
        return None
    return f"{path} (on host {host})" if host else path


# -- jobs ---------------------------------------------------------------------
def _next_of(status: JobStatus) -> float | None:
    from queuectl import schedule

    return schedule.next_run(status, time.time())


def job_json(status: JobStatus, drift: str | None) -> dict[str, Any]:
    job = status.job
    return {
        "suspended": job.suspended,
        "next_run_at": iso_utc(_next_of(status)),
        "job": job.name,
        "spec": job.spec.to_json(),
        "spec_hash": job.spec_hash,
        "source": job.source,
        "file": job.file,
        "file_hash": job.file_hash,
        "git_commit": job.git_commit,
        "git_dirty": job.git_dirty,
        "status_dir": job.status_dir,
        "manifest_error": job.error,
        "drift": drift,
        "created_at": iso_utc(job.created_at),
        "updated_at": iso_utc(job.updated_at),
        "runs": status.counts,
        "last_run": run_json(status.last_run) if status.last_run else None,
    }


def job_lines(status: JobStatus, drift: str | None) -> list[tuple[str, str]]:
    job, spec, run = status.job, status.job.spec, status.last_run
    when = None
    if spec.cron is not None:
        from queuectl import schedule

        when = schedule.describe(spec.cron, spec.timezone) + f"  [{spec.cron}]"
    elif spec.run_at is not None:
        when = format_time(spec.run_at)
    if when is None and spec.run_after is not None:
        when = f"{format_duration(spec.run_after)} after the first apply"
    commit = "-"
    if job.git_commit:
        commit = job.git_commit[:12] + (" (file differed from it: uncommitted changes)" if job.git_dirty else "")
    lines = [
        ("job", job.name + ("" if spec.enabled else " (disabled)") + (" (suspended)" if job.suspended else "")),
        ("command", spec.command),
        ("description", spec.description or "-"),
        ("when", when or when_words(status)),
        ("priority", str(spec.priority)),
        ("timeout", "default" if spec.timeout is None else f"{spec.timeout:g}s"),
        ("retries", "default" if spec.retries is None else str(spec.retries)),
        ("manifest", job.file),
        ("file hash", job.file_hash[:16]),
        ("spec hash", job.spec_hash[:16]),
        ("git commit", commit),
        ("drift", drift or "none: the store matches the file"),
        ("manifest error", job.error or "-"),
        ("updated", format_time(job.updated_at)),
        ("next run", format_time(_next_of(status))),
        ("runs", ", ".join(f"{n} {state}" for state, n in sorted(status.counts.items())) or "none yet"),
    ]
    if run is not None:
        took = format_duration(run.finished_at - run.started_at) if run.finished_at and run.started_at else "-"
        code = "-" if run.exit_code is None else str(run.exit_code)
        lines.append(("last run", f"{run.id}: {run.state.value}, exit code {code}, took {took}"))
    return lines


def when_words(status: JobStatus) -> str:
    """A job's schedule in words: cron described, a time, or once."""
    spec = status.job.spec
    if spec.cron is not None:
        from queuectl import schedule

        return schedule.describe(spec.cron, spec.timezone)
    if spec.run_at is not None:
        return f"once at {format_time(spec.run_at)}"
    if spec.run_after is not None:
        return f"once, {format_duration(spec.run_after)} after the first apply"
    return "once, when applied"


def jobs_table(con: Console, statuses: Sequence[JobStatus]) -> Table:
    grid = table(con, "JOB", "SCHEDULE", "NEXT", "LAST RUN", "STATE", "EXIT")
    for status in statuses:
        job, run = status.job, status.last_run
        name = job.name + (" (suspended)" if job.suspended else "") + ("" if job.spec.enabled else " (disabled)")
        grid.add_row(
            name,
            when_words(status),
            format_time(_next_of(status)),
            run.id if run else "-",
            state_text(run.state.value) if run else Text("-"),
            "-" if run is None or run.exit_code is None else str(run.exit_code),
        )
    return grid
