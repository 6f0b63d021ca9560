"""Status files: one JSON file per job, rewritten atomically after each change.

`<status dir>/<job>.json` is what people and scripts read to learn how a job
is doing without a store at hand. A reader always sees a whole file, the old
one or the new one: each is written beside its final name and renamed over it.
The directory gets a `.gitignore` of its own so status never lands in commits.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from queuectl.durations import iso_utc
from queuectl.errors import QueueError
from queuectl.manifest import ManifestError, default_name
from queuectl.model import NAME_RE, JobStatus
from queuectl.schedule import next_run
from queuectl.store.contract import Store
from queuectl.store.factory import open_store

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
    """Atomically replace `<directory>/<name>.json` (0600), making the directory (0700) if need be.

    The new text goes into a temporary file of its own (threads and processes
    may write the same job's status at once), which is then renamed over the
    old one. Every step goes through the directory's descriptor and follows
    no symbolic link, so another user cannot redirect what is written.
    """
    text = json.dumps(document, sort_keys=True, ensure_ascii=False) + "\n"  # one line: the C encoder
    folder = open_dir(directory, create=True)
    try:
        temporary = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(temporary, _NEW_FILE, 0o600, dir_fd=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temporary, f"{name}.json", src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=folder)
            raise
    finally:
        os.close(folder)


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def remove(directory: str, name: str) -> None:
    try:
        folder = open_dir(directory, create=False)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{name}.json", dir_fd=folder)
    finally:
        os.close(folder)


def names_in(directory: str) -> set[str]:
    """The jobs that have a status file in `directory` (none when it is absent or refused)."""
    try:
        folder = open_dir(directory, create=False)
    except OSError:
        return set()
    try:
        return _names(folder)
    finally:
        os.close(folder)


def _names(folder: int) -> set[str]:
    return {n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")}


def prune_errors(directory: str, keep: set[str]) -> None:
    """Remove the error documents of manifests that no longer exist or have been fixed."""
    try:
        folder = open_dir(directory, create=False)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        for name in _names(folder) - keep:
            if _is_error_document(folder, name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{name}.json", dir_fd=folder)
    finally:
        os.close(folder)


def _is_error_document(folder: int, name: str) -> bool:
    try:
        fd = os.open(f"{name}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=folder)
        with os.fdopen(fd, encoding="utf-8") as handle:
            document = json.loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("spec_hash", "") is None and "manifest_error" in document


def ensure_dir(directory: str) -> None:
    os.close(open_dir(directory, create=True))


def open_dir(directory: str, create: bool) -> int:
    """A descriptor of the status directory: a real directory of ours, never reached through a symlink.

    Made 0700 (with its .gitignore) when absent and `create`; one of ours
    that others could read is closed to them. Anything else (a symlink,
    another user's directory, a file) is refused with an OSError that says so.
    """
    parent, name = os.path.split(os.path.normpath(directory))
    above = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=above)
        try:
            folder = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=above)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            kind = "a symbolic link" if os.path.islink(directory) else "not a directory"
            raise OSError(errno.EPERM, f"refused: {directory} is {kind}; remove it or give --status-dir") from None
    finally:
        os.close(above)
    try:
        _check_dir(directory, folder)
        if create:
            _write_gitignore(folder)
    except BaseException:
        os.close(folder)
        raise
    return folder


def _check_dir(directory: str, folder: int) -> None:
    info = os.fstat(folder)
    if info.st_uid != os.geteuid():
        owner = f"owned by uid {info.st_uid}, not by you"
        raise OSError(errno.EPERM, f"refused: {directory} is {owner}; remove it or give --status-dir")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(folder, 0o700)  # made by an older queuectl: status files are their owner's only


def _write_gitignore(folder: int) -> None:
    try:
        fd = os.open(".gitignore", _NEW_FILE, 0o600, dir_fd=folder)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(GITIGNORE)


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
