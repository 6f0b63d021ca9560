"""`queuectl logs`: print an attempt's log file, and follow it while it grows."""

from __future__ import annotations

import os
import sys
import time

from queuectl.errors import NotFoundError, QueueError
from queuectl.model import Run, RunState
from queuectl.store import Store

FOLLOW_POLL = 0.2
FINAL = (RunState.COMPLETED, RunState.DEAD, RunState.CANCELLED)


def _log_of(store: Store, run: Run, attempt: int | None, host: str) -> tuple[str | None, str | None]:
    """(path, the host it is on) of the wanted attempt's log."""
    if attempt is None:
        if run.state is RunState.RUNNING and run.log_path:
            return run.log_path, run.host
        history = store.attempts(run.id)
        if not history:
            return run.log_path, run.host
        return history[-1].log_path, history[-1].host
    for a in store.attempts(run.id):
        if a.n == attempt:
            return a.log_path, a.host
    if run.state is RunState.RUNNING and run.log_path and run.log_path.endswith(f".{attempt}.log"):
        return run.log_path, run.host
    raise NotFoundError(f"run {run.id!r} has no attempt {attempt}")


def _copy(path: str, offset: int) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            while chunk := f.read(65536):
                sys.stdout.buffer.write(chunk)
                offset += len(chunk)
    except FileNotFoundError:
        return offset
    sys.stdout.buffer.flush()
    return offset


def print_logs(store: Store, run: Run, attempt: int | None, follow: bool, host: str) -> None:
    path, where = _log_of(store, run, attempt, host)
    if not follow:
        if path is None:
            print(f"no output yet: run {run.id} is {run.state.value}", file=sys.stderr)
            return
        if where and where != host:
            raise QueueError(f"the log of run {run.id!r} is on host {where} ({path}); 'queuectl show' has its tail")
        if not os.path.exists(path):
            raise QueueError(f"log file {path} is gone (cleared?); 'queuectl show {run.id}' has the output tail")
        _copy(path, 0)
        return
    offset = 0
    while True:
        if path is not None:
            offset = _copy(path, offset)
        current = store.get_run(run.id)
        if current is None:
            return  # deleted meanwhile
        new_path, _ = _log_of(store, current, attempt, host)
        if new_path != path and attempt is None:
            if path is not None:
                offset = _copy(path, offset)  # the rest of the old attempt
            path, offset = new_path, 0
            continue
        if current.state in FINAL or (attempt is not None and current.log_path != path):
            if path is not None:
                _copy(path, offset)
            return
        time.sleep(FOLLOW_POLL)
