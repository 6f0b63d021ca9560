"""Runs as `list` writes them: rows and JSON, streamed, without rich (a pipe needs none of it).

JSON shapes here are a contract (see the README): add fields, never rename.
Each writer takes runs from an iterator and hands its text to `write` in batches,
so a listing of any length costs the memory of one batch.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from queuectl.durations import format_time
from queuectl.model import Run


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def utc_ms(epoch: float | None) -> str | None:
    """What durations.iso_utc says of a time (UTC ISO with milliseconds), at a fraction of its cost.

    A JSON listing formats up to five times per run. The microseconds are rounded as
    datetime.fromtimestamp rounds them (half to even), then cut to milliseconds as isoformat does.
    """
    if epoch is None:
        return None
    whole, micro = _split(epoch)
    return f"{_utc_second(whole)}.{micro // 1000:03d}Z"


def _split(epoch: float) -> tuple[int, int]:
    """(second, microsecond) of a time, rounded as datetime.fromtimestamp rounds (half to even)."""
    fraction, whole = math.modf(epoch)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    return int(whole), micro


@functools.lru_cache(maxsize=1024)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "command": run.command,
        "state": run.state.value,
        "attempts": run.attempts,
        "max_retries": run.max_retries,
        "exit_code": run.exit_code,
        "error": run.error,
        "priority": run.priority,
        "timeout": run.timeout,
        "backoff_base": run.backoff_base,
        "created_at": utc_ms(run.created_at),
        "updated_at": utc_ms(run.updated_at),
        "run_at": utc_ms(run.run_at),
        "started_at": utc_ms(run.started_at),
        "finished_at": utc_ms(run.finished_at),
        "worker": run.worker_id,
        "host": run.host,
    }


def write_json_array(write: Callable[[str], object], items: Iterable[Any]) -> None:
    """Write what `dumps(list(items))` and a newline would print, one element at a time (constant memory)."""
    first = True
    with _batched(write) as put:
        for item in items:
            put(("[\n  " if first else ",\n  ") + _element(item))
            first = False
        put("[]\n" if first else "\n]\n")


@contextlib.contextmanager
def _batched(write: Callable[[str], object], size: int = 256) -> Iterator[Callable[[str], None]]:
    """A writer that hands `write` `size` pieces at a time: one system call per batch even unbuffered."""
    pending: list[str] = []

    def put(text: str) -> None:
        pending.append(text)
        if len(pending) >= size:
            write("".join(pending))
            pending.clear()

    yield put
    if pending:
        write("".join(pending))


_SCALARS = frozenset({str, int, float, bool, type(None)})
# A flat object encoded by the C encoder with these separators reads exactly as dumps' indent of 2
# inside a list: strings never hold a raw newline, so the item separator only stands between items.
_flat = json.JSONEncoder(ensure_ascii=False, separators=(",\n    ", ": ")).encode


def _element(item: Any) -> str:
    """dumps(item) indented as an element of a list: a flat object by the C encoder, the rest by dumps.

    With an indent, json encodes in pure Python, which costs more than the rest of a listing.
    """
    if isinstance(item, dict) and item and _SCALARS.issuperset(map(type, item.values())):
        return "{\n    " + _flat(item)[1:-1] + "\n  }"
    return dumps(item).replace("\n", "\n  ")


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
        _short(r.command),
    )


def local_second(epoch: float) -> str:
    """What durations.format_time says of a time (local ISO to the second), at a fraction of its cost.

    A listing formats one time per run; datetime's zone conversion costs more than the rest of a row.
    """
    moment = time.localtime(_split(epoch)[0])
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
    with _batched(write) as put:
        put(line.format(*RUN_HEADERS))
        for cells in itertools.chain(first, (run_cells(r) for r in stream)):
            put(line.format(*cells))
            count += 1
    return count


def _short(text: str, limit: int = 60) -> str:
    """A command on one line: newlines as ⏎, other control characters escaped, cut at `limit`."""
    line = text.replace("\n", " ⏎ ")
    if not line.isprintable():
        line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line if len(line) <= limit else line[: limit - 1] + "…"
