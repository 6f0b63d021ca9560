"""Runs as `list` writes them: rows and JSON, streamed, without rich (a pipe needs none of it).

JSON shapes here are a contract (see the README): add fields, never rename.
Each writer takes runs from an iterator and hands its text to `write` in batches,
so a listing of any length costs the memory of one batch.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable

from queuectl.durations import format_time
from queuectl.json_views import batched, split_seconds
from queuectl.model import Run

RUN_HEADERS = ("ID", "STATE", "PRI", "TRIES", "EXIT", "CREATED", "COMMAND")
RUN_ROWS_MEASURED = 500  # plain rows take their column widths from this many first runs


def run_cells(r: Run) -> tuple[str, ...]:
    """A run's row as `list` shows it. TRIES is attempts made / attempts allowed (max_retries + 1)."""
    return (
        r.id,
        r.state.value,
        str(r.priority),
        f"{r.attempts}/{r.max_retries + 1}",
        "-" if r.exit_code is None else str(r.exit_code),
        local_second(r.created_at),
        one_line(r.command),
    )


def local_second(epoch: float) -> str:
    """What durations.format_time says of a time (local ISO to the second), at a fraction of its cost.

    A listing formats one time per run; datetime's zone conversion costs more than the rest of a row.
    """
    moment = time.localtime(split_seconds(epoch)[0])
    offset = moment.tm_gmtoff
    if offset % 60:
        return format_time(epoch)  # an offset with seconds (old local mean times): datetime spells it
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f"{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}"


def write_run_rows(write: Callable[[str], object], runs: Iterable[Run]) -> int:
    """Plain aligned rows for pipes, streamed; how many were written (no header when none).

    Column widths come from the first RUN_ROWS_MEASURED runs and are kept: a wider
    value later pushes the rest of its own row only. Two spaces part the columns.
    """
    stream = iter(runs)
    first = [run_cells(r) for r in itertools.islice(stream, RUN_ROWS_MEASURED)]
    if not first:
        return 0
    widths = [max(len(h), *(len(cells[i]) for cells in first)) for i, h in enumerate(RUN_HEADERS[:-1])]
    line = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}\n"
    count = 0
    with batched(write) as put:
        put(line.format(*RUN_HEADERS))
        for cells in itertools.chain(first, (run_cells(r) for r in stream)):
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
