"""A run's output for a reader that follows it from elsewhere (the web page's live view and download).

What `queuectl logs ID -f` does in one loop (follow.py), cut into steps that each open and
close what they use: where the wanted attempt's log is and whether it can still grow (one
short store read), and the bytes of that log from an offset (one short file read). A caller
that waits between steps holds no store connection and no file.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from queuectl import follow, runner
from queuectl.errors import NotFoundError, QueueError
from queuectl.model import RunState
from queuectl.services import runs
from queuectl.store.contract import Store

CHUNK = 65536  # the most one read returns


class Place(NamedTuple):
    """Where attempt `attempt` of a run writes its output, and whether more can come."""

    attempt: int  # the attempt followed (1 for a run not started yet)
    path: str | None  # its log file (None: not started, or it printed nothing)
    elsewhere: str | None  # the host that has the log, when it is not this one
    started: bool  # the attempt has started
    live: bool  # it runs now: its log may grow
    state: RunState  # the run's state
    final: bool  # the run is over: no attempt follows this one
    tail: str  # the output's tail as the store keeps it (for a log elsewhere or gone)


def place(store: Store, run_id: str, attempt: int | None = None) -> Place:
    """Attempt `attempt` of run `run_id` (the latest when None); an error for a run or attempt that is not there."""
    run = runs.find(store, run_id)
    want = attempt if attempt is not None else max(run.tries, 1)
    final = run.state in follow.FINAL
    if want > run.tries:
        return Place(want, None, None, False, False, run.state, final, "")
    try:
        n, path, host = follow.log_of(store, run, want)
    except NotFoundError:  # counted but never recorded (a store from before attempts were kept): no log
        n, path, host = want, None, None
    live = run.state is RunState.RUNNING and run.tries == want
    if n == run.tries:
        tail = run.output_tail or ""
    else:
        tail = next((a.output_tail or "" for a in store.attempts(run.id) if a.n == n), "")
    elsewhere = host if host and host != runner.HOST else None
    return Place(want, path, elsewhere, True, live, run.state, final, tail)


class Chunk(NamedTuple):
    text: str
    end: int  # the byte offset after `text`
    size: int  # the log's size when read
    cut: bool  # the log is shorter than the offset asked for: it was cut at its cap (or replaced)


def read(path: str | None, offset: int, whole: bool, limit: int = CHUNK) -> Chunk:
    """Up to `limit` bytes of a log from `offset`, as text; a character cut at the end waits for the next read.

    `whole`: the log is complete, so a cut character at its very end is shown as it is.
    """
    if path is None:
        return Chunk("", offset, 0, False)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:
                return Chunk("", size, size, True)
            f.seek(offset)
            data = f.read(limit)
    except FileNotFoundError:
        return Chunk("", offset, 0, False)
    except OSError as exc:
        raise QueueError(f"cannot read log {path}: {exc.strerror}") from None
    if not whole or offset + len(data) < size:
        data = data[: _complete(data)]
    return Chunk(data.decode("utf-8", errors="replace"), offset + len(data), size, False)


def _complete(data: bytes) -> int:
    """How many bytes of `data` end on a whole UTF-8 character (a multi-byte one cut at the end is left out)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # the lead byte of a sequence of `need` bytes
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def tail_of(path: str | None, limit: int) -> Chunk:
    """The last `limit` bytes of a log (whole characters), ending at its size: what a page shows before following."""
    if path is None:
        return Chunk("", 0, 0, False)
    try:
        size = os.stat(path).st_size
    except OSError:
        return Chunk("", 0, 0, False)
    start = max(0, size - limit)
    chunk = read(path, start, whole=False, limit=limit)
    if start and chunk.text:  # skip the partial first character or line
        text = chunk.text.lstrip("\ufffd")
        return chunk._replace(text=text)
    return chunk
