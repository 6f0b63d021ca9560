"""Rich tables and field lists for a terminal: data in, renderables out (the JSON shapes are in json_views)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from queuectl import listing
from queuectl.cli import colour
from queuectl.cli.layout import GIVE_LINES, Fields, Grid, emit
from queuectl.durations import format_duration, format_time
from queuectl.listing import next_time, one_line, run_cells, run_headers, when_words
from queuectl.model import Attempt, JobStatus, Run

__all__ = ["emit"]  # callers print grids and field lists through it

if TYPE_CHECKING:
    from queuectl.config import InForce
    from queuectl.metrics import Detailed, Figures
    from queuectl.services.pools import PoolView

PATH_FIELDS = frozenset({"cwd", "log", "manifest"})  # `show` lines never wrapped nor cut


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False, color_system="auto" if colour.wanted(stream) else None)
    return Console(file=stream, highlight=False, no_color=True, width=100_000, soft_wrap=True)


def table(con: Console, *headers: str, give: str | None = None, give_lines: int | None = GIVE_LINES) -> Grid:
    """A table for `layout.emit`: plain aligned columns into a pipe; on a terminal, column `give` gives way."""
    return Grid(headers, give=give, give_lines=give_lines)


def fields_table(con: Console, lines: Iterable[tuple[str, str]]) -> Fields:
    """FIELD  VALUE lines, as `show` prints them: paths never wrap nor are cut."""
    return Fields(lines, whole=PATH_FIELDS)


def state_text(state: str) -> Text:
    return Text(state, style=colour.rich_style(colour.STATES.get(state, {})))


# -- tables --------------------------------------------------------------------
def runs_table(con: Console, runs: Iterable[Run], min_widths: Sequence[int] = (), due: bool = False) -> Grid:
    grid = Grid(run_headers(due), give="COMMAND", min_widths=min_widths)
    for r in runs:
        cells = run_cells(r, due)
        grid.add_row(Text(cells[0]), state_text(cells[1]), *cells[2:-1], Text(cells[-1]))
    return grid


FIGURE_HEADERS = ("JOB", "RUNS", "OK 24H", "OK ALL", "DURATION MIN/MEAN/P50/P95/MAX", "WAIT P50/P95/MAX", "PER MIN")


def _figure_rows(found: Detailed) -> list[tuple[str, Figures]]:
    return [("(all)", found.overall), *(("(no job)" if job is None else job, f) for job, f in found.jobs.items())]


def _figure_cells(figures: Figures) -> tuple[str, str, str, str, str, str]:
    """A row's cells after JOB: runs by state, success rates, durations and waits (min/.../max), runs per minute."""
    runs = ", ".join(f"{number} {state}" for state, number in figures.counts.items() if number) or "-"
    duration, wait = figures.duration, figures.wait
    spread = "-" if duration is None else "/".join(format_duration(v) for v in duration)
    waits = "-" if wait is None else "/".join(format_duration(v) for v in (wait.p50, wait.p95, wait.max))
    rates = (_percent(figures.success_rate_24h), _percent(figures.success_rate))
    return runs, *rates, spread, waits, f"{figures.runs_per_minute:g}"


def figures_table(con: Console, found: Detailed) -> Grid:
    """`metrics --detailed`: a row per job and one for all runs; durations and waits as min/p50/p95/max."""
    grid = Grid(FIGURE_HEADERS, give="RUNS", give_lines=None)
    for name, figures in _figure_rows(found):
        grid.add_row(Text(name), *_figure_cells(figures))
    return grid


def figures_view(con: Console, found: Detailed) -> list[Grid | Fields]:
    """`metrics --detailed` as a table, or, on a terminal too narrow for it even with RUNS wrapped, a block per job."""
    grid = figures_table(con, found)
    widths = grid.natural_widths()
    runs_word = max((len(word) for _, f in _figure_rows(found) for word in _figure_cells(f)[0].split()), default=0)
    least = sum(widths) - widths[1] + max(runs_word, len("RUNS")) + 2 * (len(widths) - 1)
    if not con.is_terminal or least <= con.width:
        return [grid]
    names = ("runs", "ok 24h", "ok all", "duration", "wait", "per min")
    blocks: list[Grid | Fields] = []
    for name, figures in _figure_rows(found):
        cells = list(_figure_cells(figures))
        cells[3] = _labelled(("min", "mean", "p50", "p95", "max"), cells[3])
        cells[4] = _labelled(("p50", "p95", "max"), cells[4])
        blocks.append(Fields([("job", name), *zip(names, cells, strict=True)]))
    return blocks


def _labelled(labels: tuple[str, ...], cell: str) -> str:
    """'1ms/2ms/3ms' as 'min 1ms, mean 2ms, ...' (a '-' stays)."""
    return cell if cell == "-" else ", ".join(f"{label} {v}" for label, v in zip(labels, cell.split("/"), strict=True))


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def dead_table(con: Console, runs: Iterable[Run]) -> Grid:
    """`dlq list`: ids whole, each run's last error giving way on a narrow terminal."""
    grid = Grid(listing.DEAD_HEADERS, give="ERROR")
    for r in runs:
        cells = listing.dead_cells(r)
        grid.add_row(Text(cells[0]), *cells[1:4], Text(cells[4]))
    return grid


def attempts_table(con: Console, attempts: Iterable[Attempt]) -> Grid:
    grid = table(con, "#", "OUTCOME", "EXIT", "STARTED", "DURATION", "HOST", "ERROR", give="ERROR")
    for a in attempts:
        duration = None if a.started_at is None or a.finished_at is None else a.finished_at - a.started_at
        grid.add_row(
            str(a.n),
            a.outcome.value,
            "-" if a.exit_code is None else str(a.exit_code),
            format_time(a.started_at),
            format_duration(duration),
            Text(a.host or "-"),
            Text(one_line(a.error or "")),
        )
    return grid


def workers_table(con: Console, pools: Iterable[PoolView], now: float) -> Grid:
    # RUNNING names run ids: it wraps between them, never cutting one
    grid = table(con, "POOL", "STATE", "HOST", "PID", "SLOTS", "RUNNING", "HEARTBEAT", give="RUNNING", give_lines=None)
    for view in pools:
        w = view.worker
        grid.add_row(
            Text(w.id),
            view.state,
            Text(w.host),
            str(w.pid),
            str(w.slots),
            Text(", ".join(w.running) if w.running else "-"),
            f"{format_duration(max(0.0, now - w.heartbeat_at))} ago",
        )
    return grid


def show_lines(run: Run, attempts: Sequence[Attempt]) -> list[tuple[str, str]]:
    retry = ""
    if run.state.value in ("failed", "scheduled", "pending") and run.run_at > time.time():
        retry = f" (not before {format_time(run.run_at)})"
    return [
        ("id", run.id),
        ("job", run.job or "- (enqueued, not declared)"),
        ("state", run.state.value + retry),
        ("command", run.command),
        ("priority", str(run.priority)),
        ("attempts", f"{run.attempts} of {run.max_retries + 1} (max_retries {run.max_retries})"),
        ("timeout", "none" if not run.timeout else format_duration(run.timeout)),
        ("backoff", f"{run.backoff_base:g} ** n seconds, at most {format_duration(run.backoff_max)}"),
        ("exit code", "-" if run.exit_code is None else str(run.exit_code)),
        ("error", run.error or "-"),
        ("created", format_time(run.created_at)),
        ("started", format_time(run.started_at)),
        ("finished", format_time(run.finished_at)),
        ("pool", pool_words(run)),
        ("cwd", run.cwd or "-"),
        ("log", current_log(run, attempts) or "-"),
    ]


def pool_words(run: Run) -> str:
    """The pool that runs it now, or the one that ran its latest attempt (kept once it is over)."""
    if run.pool is None:
        return "-"
    where = f"{run.pool} on {run.host}" if run.host else run.pool
    return where if run.worker_id else f"{where} (ran attempt {run.tries})"


def current_log(run: Run, attempts: Sequence[Attempt]) -> str | None:
    """The log of the attempt running now, else of the last one, with the host that keeps it."""
    path, host = run.log_path, run.host
    if not path and attempts:
        path, host = attempts[-1].log_path, attempts[-1].host
    if not path:
        return None
    return f"{path} (on host {host})" if host else path


# -- jobs ---------------------------------------------------------------------
def job_lines(status: JobStatus, drift: str | None, settings: Sequence[InForce] = ()) -> list[tuple[str, str]]:
    job, spec, run = status.job, status.job.spec, status.last_run
    when = None
    if spec.cron is not None:
        from queuectl import schedule  # croniter is slow to import: only for cron jobs

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
        *(setting_line(s) for s in settings),
        ("manifest", job.file),
        ("file hash", job.file_hash[:16]),
        ("spec hash", job.spec_hash[:16]),
        ("git commit", commit),
        ("drift", drift or "none: the store matches the file"),
        ("manifest error", job.error or "-"),
        ("updated", format_time(job.updated_at)),
        ("next run", next_time(status)),
        ("runs", ", ".join(f"{n} {state}" for state, n in sorted(status.counts.items())) or "none yet"),
    ]
    if run is not None:
        took = format_duration(run.finished_at - run.started_at) if run.finished_at and run.started_at else "-"
        code = "-" if run.exit_code is None else str(run.exit_code)
        lines.append(("last run", f"{run.id}: {run.state.value}, exit code {code}, took {took}"))
    return lines


SOURCES = {"manifest": " (from the manifest)", "config": " (from config)", "default": " (default)"}
DURATION_SETTINGS = frozenset({"timeout", "backoff_max", "catchup_window", "jitter"})


def setting_line(setting: InForce) -> tuple[str, str]:
    """`timeout  1h00m (from config)`: a job's setting with the value in force and where it comes from."""
    value = setting.value
    if value is None:
        said = "none"
    elif setting.key in DURATION_SETTINGS:
        said = format_duration(value)
    elif isinstance(value, float):
        said = f"{value:g}"
    else:
        said = str(value)
    return setting.key.replace("_", " "), said + SOURCES[setting.source]


def jobs_table(con: Console, statuses: Sequence[JobStatus]) -> Grid:
    grid = table(con, "JOB", "SCHEDULE", "NEXT", "LAST RUN", "STATE", "EXIT", give="SCHEDULE")
    for status in statuses:
        job, run = status.job, status.last_run
        name = job.name + (" (suspended)" if job.suspended else "") + ("" if job.spec.enabled else " (disabled)")
        grid.add_row(
            name,
            when_words(status),
            next_time(status),
            run.id if run else "-",
            state_text(run.state.value) if run else Text("-"),
            "-" if run is None or run.exit_code is None else str(run.exit_code),
        )
    return grid
