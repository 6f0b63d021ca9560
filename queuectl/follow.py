"""`queuectl logs`: print an attempt's log file, and follow it while it grows.

A log is followed through its open file, not its name: an attempt's log may
be renamed when the attempt ends, and the reader keeps its place.
"""

from __future__ import annotations

import os
import sys
import time
from typing import BinaryIO

from queuectl.errors import NotFoundError, QueueError
from queuectl.model import Run, RunState
from queuectl.store.contract import Store

FOLLOW_POLL = 0.2
FINAL = (RunState.COMPLETED, RunState.DEAD, RunState.CANCELLED)


def log_of(store: Store, run: Run, attempt: int | None) -> tuple[int | None, str | None, str | None]:
    """(attempt number, log path, host) of the wanted attempt, latest by default.

    The path is None unless it names a log as a pool names it (`<id>.<attempt>.log`, runner.log_path):
    whoever can write the store (a PostgreSQL user on another host) must not make `logs` or the
    dashboard print another file of this host, such as a key.
    """
    n, path, host = _recorded(store, run, attempt)
    if path is not None and os.path.basename(path) != f"{run.id}.{n}.log":
        path = None
    return n, path, host


def _recorded(store: Store, run: Run, attempt: int | None) -> tuple[int | None, str | None, str | None]:
    running = run.state is RunState.RUNNING
    if running and (attempt is None or attempt == run.tries):
        return run.tries, run.log_path, run.host
    history = store.attempts(run.id)
    if attempt is None:
        if not history:
            return None, None, None
        return history[-1].n, history[-1].log_path, history[-1].host
    for a in history:
        if a.n == attempt:
            return a.n, a.log_path, a.host
    raise NotFoundError(f"run {run.id!r} has no attempt {attempt}")


def _open(path: str | None) -> BinaryIO | None:
    if path is None:
        return None
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QueueError(f"cannot read log {path}: {exc.strerror}") from None


def _copy(f: BinaryIO | None) -> None:
    if f is None:
        return
    while chunk := f.read(65536):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


def print_logs(store: Store, run: Run, attempt: int | None, follow: bool, host: str) -> None:
    n, path, where = log_of(store, run, attempt)
    if where and where != host and path:
        raise QueueError(f"the log of run {run.id!r} is on host {where} ({path}); 'queuectl show' has its tail")
    if not follow:
        if n is None:
            print(f"no output yet: run {run.id} is {run.state.value}", file=sys.stderr)
            return
        f = _open(path)
        if f is None:
            if path is not None:
                raise QueueError(f"log file {path} is gone; 'queuectl show {run.id}' has the output tail")
            return  # the attempt printed nothing
        with f:
            _copy(f)
        return
    current, f = n, _open(path)
    try:
        while True:
            _copy(f)
            latest = store.get_run(run.id)
            if latest is None:
                return  # deleted meanwhile
            if current is None and latest.state in FINAL and not store.attempts(run.id):
                return  # over without ever starting (cancelled): there is no output to wait for
            live = latest.state is RunState.RUNNING and latest.tries == current
            n, path, _ = log_of(store, latest, attempt)
            if not live and current is not None:
                _finish(store, run.id, current, f)  # the attempt is over: read the rest once
                if f is not None:
                    f.close()
                f = None
                if attempt is not None or latest.state in FINAL:
                    return
                if n != current:
                    current, f = n, _open(path)
                    continue
            elif n != current:
                current, f = n, _open(path)
                continue
            if f is None and path is not None and (live or current is None):
                f = _open(path)
            time.sleep(FOLLOW_POLL)
    finally:
        if f is not None:
            f.close()


def _finish(store: Store, run_id: str, n: int, f: BinaryIO | None) -> None:
    """Print the rest of attempt `n`'s log, unless it ended empty (its file may be reused)."""
    for a in store.attempts(run_id):
        if a.n == n and a.log_path is not None:
            _copy(f)
