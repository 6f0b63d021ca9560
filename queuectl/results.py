"""Status files: one JSON file per job, rewritten atomically after each change.

`<status dir>/<job>.json` is what people and scripts read to learn how a job
is doing without a store at hand. A reader always sees a whole file, the old
one or the new one: each is written beside its final name and renamed over it.
The directory gets a `.gitignore` of its own so status never lands in commits.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from queuectl.durations import iso_utc
from queuectl.manifest import ManifestError, default_name
from queuectl.model import NAME_RE, JobStatus
from queuectl.schedule import next_run
from queuectl.store import Store

GITIGNORE = "# written by queuectl: job status, not for commits\n*\n"


def status_document(status: JobStatus) -> dict[str, Any]:
    job, run = status.job, status.last_run
    duration = None
    if run is not None and run.started_at is not None and run.finished_at is not None:
        duration = round(max(0.0, run.finished_at - run.started_at), 3)
    return {
        "job": job.name,
        "spec_hash": job.spec_hash,
        "file": job.file,
        "file_hash": job.file_hash,
        "git_commit": job.git_commit,
        "git_dirty": job.git_dirty,
        "enabled": job.spec.enabled,
        "manifest_error": job.error,
        "run_id": run.id if run else None,
        "state": str(run.state) if run else None,
        "exit_code": run.exit_code if run else None,
        "started_at": iso_utc(run.started_at) if run else None,
        "finished_at": iso_utc(run.finished_at) if run else None,
        "duration": duration,
        "attempts": run.tries if run else 0,
        "error": run.error if run else None,
        "output_tail": run.output_tail if run else None,
        "next_run_at": iso_utc(next_run(status, time.time())),
        "runs": status.counts,
    }


def error_document(path: str, errors: Iterable[ManifestError]) -> dict[str, Any]:
    """The status of a manifest that never applied: only its errors."""
    return {
        "job": default_name(path),
        "spec_hash": None,
        "file": path,
        "manifest_error": "; ".join(str(e) for e in errors),
    }


def write(directory: str, name: str, document: dict[str, Any]) -> None:
    """Atomically replace `<directory>/<name>.json`.

    The new text goes into a temporary file of its own (threads and processes
    may write the same job's status at once), which is then renamed over the
    old one.
    """
    text = json.dumps(document, sort_keys=True, ensure_ascii=False) + "\n"  # one line: the C encoder
    try:
        _write(directory, name, text)
    except FileNotFoundError:  # the directory was removed (git clean, rm -rf): make it again
        _ready.discard(directory)
        _write(directory, name, text)


def _write(directory: str, name: str, text: str) -> None:
    ensure_dir(directory)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
        os.replace(temporary, os.path.join(directory, f"{name}.json"))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove(directory: str, name: str) -> None:
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(os.path.join(directory, f"{name}.json"))


def names_in(directory: str) -> set[str]:
    """The jobs that have a status file in `directory`."""
    try:
        return {n[:-5] for n in os.listdir(directory) if n.endswith(".json") and not n.startswith(".")}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def prune_errors(directory: str, keep: set[str]) -> None:
    """Remove the error documents of manifests that no longer exist or have been fixed."""
    for name in names_in(directory):
        if name in keep:
            continue
        path = os.path.join(directory, f"{name}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.loads(handle.read(1 << 20))
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("spec_hash", "") is None and "manifest_error" in document:
            remove(directory, name)


_ready: set[str] = set()


def ensure_dir(directory: str) -> None:
    if directory in _ready:
        return
    os.makedirs(directory, exist_ok=True)
    ignore = os.path.join(directory, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as handle:
            handle.write(GITIGNORE)
    _ready.add(directory)


class StatusWriter:
    """Writes the status files of jobs from what the store says of them.

    A status file is a report: failing to write one is said (once per
    directory), never raised.
    """

    def __init__(self, store: Store, say: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.say = say
        self._warned: set[str] = set()

    def update(self, names: Iterable[str]) -> None:
        for name in sorted(set(names)):
            status = self.store.job_status(name)
            if status is None or not status.job.status_dir or not NAME_RE.fullmatch(name):
                continue
            if not os.path.isdir(os.path.dirname(os.path.normpath(status.job.status_dir))):
                continue  # applied from a directory this host does not have (a store shared by hosts)
            self.attempt(status.job.status_dir, write, status.job.status_dir, name, status_document(status))

    def attempt(self, directory: str, step: Callable[..., None], *args: Any) -> None:
        """Run a file step for `directory`; an OSError is said once per directory, not raised."""
        try:
            step(*args)
        except OSError as exc:
            if directory not in self._warned and self.say is not None:
                self._warned.add(directory)
                self.say(f"cannot write status files in {directory}: {exc.strerror or exc}")


class StatusThread:
    """Writes status files from a thread of its own, off a worker pool's hot path.

    The pool hands over job names as their attempts settle; the thread reads
    their status through its own store connection and writes the files. Names
    handed over while a write is going on are merged, so a burst of a
    thousand attempts of one job costs one or two writes. `close()` writes
    what is left before it returns.
    """

    def __init__(self, location: str, say: Callable[[str], None] | None = None) -> None:
        self.location = location
        self.say = say
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="queuectl-status", daemon=True)
        self._thread.start()

    def update(self, names: Iterable[str]) -> None:
        with self._lock:
            self._pending.update(names)
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from queuectl.errors import QueueError
        from queuectl.store import open_store

        store = None
        try:
            store = open_store(self.location, busy_timeout=5.0)
            writer = StatusWriter(store, self.say)
            while True:
                self._wake.wait()
                self._wake.clear()
                with self._lock:
                    names, self._pending = self._pending, set()
                if names:
                    try:
                        writer.update(names)
                    except Exception as exc:  # a report must never stop: say it and go on
                        if self.say is not None:
                            self.say(f"could not write status files: {exc}")
                if self._closing and not self._pending:
                    return
        except QueueError as exc:
            if self.say is not None:
                self.say(f"status files disabled: {exc}")
        finally:
            if store is not None:
                store.close()
