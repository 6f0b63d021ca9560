"""Runs as `list` writes them: rows and JSON, streamed, without rich (a pipe needs none of it).

JSON shapes here are a contract (see the README): add fields, never rename.
Each writer takes runs from an iterator and hands its text to `write` in batches,
so a listing of any length costs the memory of one batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from queuectl.durations import fire_time, format_duration, format_time
from queuectl.json_views import batched, next_of
from queuectl.model import JobStatus, Run, RunState

RUN_HEADERS = ("ID", "STATE", "PRI", "TRIES", "EXIT", "CREATED", "COMMAND")
DEAD_HEADERS = ("ID", "TRIES", "EXIT", "FINISHED", "ERROR")  # `dlq list`: each dead run's last error
DUE_HEADERS = (*RUN_HEADERS[:-1], "DUE", RUN_HEADERS[-1])  # when a listed run is due later
RUN_ROWS_MEASURED = 500  # plain rows take their column widths from this many first runs
_WAITING = (RunState.SCHEDULED, RunState.PENDING, RunState.FAILED)  # runs whose run_at says when they may start


def run_headers(due: bool) -> tuple[str, ...]:
    return DUE_HEADERS if due else RUN_HEADERS


def shows_due(runs: Iterable[Run], now: float) -> bool:
    """Whether `list` needs its DUE column: a run waits for a time still ahead (a delay or a retry)."""
    return any(r.state in _WAITING and r.run_at > now for r in runs)


def run_cells(r: Run, due: bool = False) -> tuple[str, ...]:
    """A run's row as `list` shows it. TRIES is attempts made / attempts allowed (max_retries + 1).

    With `due`, DUE before COMMAND: when a waiting run may start (its run_at); '-' for the others.
    """
    cells: tuple[str, ...] = (
        r.id,
        r.state.value,
        str(r.priority),
        f"{r.attempts}/{r.max_retries + 1}",
        "-" if r.exit_code is None else str(r.exit_code),
        format_time(r.created_at),
    )
    if due:
        cells += (format_time(r.run_at) if r.state in _WAITING else "-",)
    return (*cells, one_line(r.command))


def dead_cells(r: Run) -> tuple[str, ...]:
    """A dead run's row as `dlq list` shows it: its last error (with its output's last line) at the end."""
    return (
        r.id,
        f"{r.attempts}/{r.max_retries + 1}",
        "-" if r.exit_code is None else str(r.exit_code),
        format_time(r.finished_at),
        one_line(last_error(r)),
    )


def last_error(r: Run) -> str:
    """What ended a run's last attempt: its error (`exit 3`, `timeout after 30s`) and its output's last line."""
    said = next((line.strip() for line in reversed((r.output_tail or "").splitlines()) if line.strip()), "")
    error = r.error or ""
    return f"{error}: {said}" if error and said else error or said or "-"


def write_run_rows(write: Callable[[str], object], runs: Iterable[Run], now: float) -> int:
    """Plain aligned rows for pipes, streamed; how many were written (no header when none).

    The first RUN_ROWS_MEASURED runs decide the column widths (see write_rows) and whether a
    DUE column is shown (one of them waits for a time ahead).
    """
    stream = iter(runs)
    measured = list(itertools.islice(stream, RUN_ROWS_MEASURED))
    due = shows_due(measured, now)
    return write_rows(write, (run_cells(r, due) for r in itertools.chain(measured, stream)), run_headers(due))


def write_rows(write: Callable[[str], object], rows: Iterable[tuple[str, ...]], headers: tuple[str, ...]) -> int:
    """Plain aligned rows for pipes, streamed; how many were written (no header when none).

    Column widths come from the first RUN_ROWS_MEASURED rows and are kept: a wider
    value later pushes the rest of its own row only. Two spaces part the columns;
    the last one (a command, an error) is never padded.
    """
    stream = iter(rows)
    first = list(itertools.islice(stream, RUN_ROWS_MEASURED))
    if not first:
        return 0
    widths = [max(len(h), *(len(cells[i]) for cells in first)) for i, h in enumerate(headers[:-1])]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}\n"
    count = 0
    with batched(write) as put:
        put(line.format(*headers))
        for cells in itertools.chain(first, stream):
            put(line.format(*cells))
            count += 1
    return count


def one_line(text: str) -> str:
    """A command (or an error) on one line, whole: newlines as ⏎, other control characters escaped.

    Into a pipe nothing is cut; on a terminal the table cuts it (cli/layout.py).
    """
    line = text.replace("\n", " ⏎ ")
    if not line.isprintable():
        line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line


def when_words(status: JobStatus) -> str:
    """A job's schedule in words: cron described, a time, or once."""
    spec = status.job.spec
    if spec.cron is not None:
        from queuectl import schedule  # croniter is slow to import: only for cron jobs

        return schedule.describe(spec.cron, spec.timezone)
    if spec.run_at is not None:
        return f"once at {format_time(spec.run_at)}"
    if spec.run_after is not None:
        return f"once, {format_duration(spec.run_after)} after the first apply"
    return "once, when applied"


def next_time(status: JobStatus) -> str:
    """A job's next run: a cron fire in the job's zone with UTC beside it, else a run's time (the machine's zone)."""
    spec = status.job.spec
    if spec.cron is None:
        return format_time(next_of(status))
    from queuectl import schedule  # croniter is slow to import: only for cron jobs

    return fire_time(next_of(status), schedule.zone_of(spec.timezone))
