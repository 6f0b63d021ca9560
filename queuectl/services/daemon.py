"""`up` as a background service: `up --detach`, `down`, `up --status` (and `scheduler start|stop|status|logs`).

A service is one `queuectl up DIR` started in the background. What identifies it
is the pair (jobs directory, store): the directory resolved (its real path, links
followed) and the store (a SQLite file's real path; a PostgreSQL URL without its
password). A second start on the same pair while one runs is refused; the same
directory on another store, or another directory on the same store, is another
service. Its pid file and log file are in the state directory, named by a digest
of the pair (`up-<digest>.pid`, `up-<digest>.log`), both 0600.

The pid file holds the pid and the process's start time: a pid file whose
process is gone, or whose pid now belongs to a process that started at another
time, is stale, and is removed when read; such a pid is never signalled.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from queuectl import runner
from queuectl.durations import format_time
from queuectl.errors import QueueError, StoreError, UsageError
from queuectl.model import Service
from queuectl.paths import state_dir
from queuectl.services import pools
from queuectl.services.jobs import DEFAULT_DIR
from queuectl.store.contract import Store
from queuectl.store.urls import is_server_url, mask_url

if TYPE_CHECKING:
    import subprocess

START_WAIT = 30.0  # seconds the background `up` has to apply its directory and register its pool
POLL = 0.05
FOLLOW_POLL = 0.2
KILL_WAIT = 5.0  # a start that failed: how long its process has to end after SIGTERM before SIGKILL


class ServiceView(NamedTuple):
    service: Service
    pools: list[pools.PoolView]  # the pools it registered (one): slots and runs in flight


class Found(NamedTuple):
    running: list[Service]
    stale: list[Service]  # pid files whose process was gone (or its pid reused): removed


def store_key(store: Store | str) -> str:
    """What names `store` in a pid file: a SQLite file's real path, a server URL without its password.

    A location (str) is a store that could not be opened (a server down): its services are still found.
    """
    if isinstance(store, str):
        return mask_url(store) if is_server_url(store) else os.path.realpath(os.path.expanduser(store))
    return os.path.realpath(store.location) if store.engine == "sqlite" else store.location


def resolve(directory: str) -> str:
    """A jobs directory as it identifies a service: its real path; a usage error when it is no directory."""
    path = os.path.realpath(directory)
    if not os.path.isdir(path):
        raise UsageError(f"not a directory: {os.path.abspath(directory)} (up serves a jobs directory)")
    return path


def named(directory: str) -> str:
    """A jobs directory as a service records it: its real path, whether or not it is still there (`down DIR`
    stops an up whose directory was removed since)."""
    return os.path.realpath(directory)


def _base(directory: str, key: str) -> str:
    import hashlib  # loads OpenSSL (3 ms): only for the service commands

    digest = hashlib.sha256(f"{key}\0{directory}".encode()).hexdigest()[:16]
    return os.path.join(state_dir(), f"up-{digest}")


def log_path(store: Store, directory: str) -> str:
    """The log file of the service of (`directory`, `store`), whether or not it runs."""
    return _base(named(directory), store_key(store)) + ".log"


def _read(path: str) -> Service | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return Service(
            int(data["pid"]),
            int(data["proc_start"]),
            float(data["started_at"]),
            str(data["directory"]),
            str(data["store"]),
            str(data["log"]),
            path,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # gone meanwhile, or not a pid file of ours


def _remove(service: Service) -> None:
    """Remove `service`'s pid file unless it now names another process (a start since)."""
    again = _read(service.pid_path)
    if again is not None and (again.pid, again.proc_start) != (service.pid, service.proc_start):
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(service.pid_path)


def release(store: Store, directory: str) -> None:
    """At the end of `up DIRECTORY`: remove the pid file of (DIRECTORY, store) if it names this process
    (the background up stopped by `down --no-wait`, or by a signal, leaves none behind)."""
    path = _base(os.path.realpath(directory), store_key(store)) + ".pid"
    service = _read(path)
    if service is not None and service.pid == os.getpid():
        _remove(service)


def find(store: Store | str, directory: str | None = None) -> Found:
    """The services of `store` (of `directory` only, when given); stale pid files are removed."""
    key = store_key(store)
    wanted = None if directory is None else named(directory)
    running, stale = [], []
    for path in sorted(glob.glob(os.path.join(glob.escape(state_dir()), "up-*.pid"))):
        service = _read(path)
        if service is None or service.store != key or wanted not in (None, service.directory):
            continue
        if runner.is_alive(service.pid, service.proc_start):
            running.append(service)
        else:
            _remove(service)
            stale.append(service)
    if directory is not None and not running and not stale:
        resolve(directory)  # a directory no service has: a usage error unless it is one
    return Found(running, stale)


def start(store: Store, directory: str, slots: int, options: list[str], wait: float = START_WAIT) -> Service:
    """Start `queuectl up DIRECTORY` in the background; return once it applied the directory and its pool
    registered. Refused while one runs on the same (directory, store)."""
    resolved = resolve(directory)
    pools.make_private_dir_or_fail(state_dir(), "up in the background")
    with _one_start_at_a_time():
        service, child = _spawn_and_claim(store, resolved, slots, options)
    try:
        started = pools.await_registered(store, child, service.log_path, "up", wait)
    except QueueError:
        _end(child)
        _remove(service)
        raise
    if started.finished:  # `up` (not a burst) ends only when stopped: stopped before it served
        _remove(service)
        raise QueueError(f"up exited before it served (log: {service.log_path})")
    return service


@contextlib.contextmanager
def _one_start_at_a_time() -> Iterator[None]:
    """Starts on this machine one at a time (a lock on the state directory), from the look for a running up
    to its pid file written: two starts at once never both spawn an up, nor rotate each other's log."""
    import fcntl  # the lock: only for a start

    fd = os.open(state_dir(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and the lock with it


def _spawn_and_claim(
    store: Store, resolved: str, slots: int, options: list[str]
) -> tuple[Service, subprocess.Popen[bytes]]:
    found = find(store, resolved)
    if found.running:
        raise QueueError(_already(found.running[0]))
    base = _base(resolved, store_key(store))
    if _read(base + ".pid") is None:  # none, or damaged (it is never half-written: see _claim)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base + ".pid")
    with contextlib.suppress(FileNotFoundError):
        os.replace(base + ".log", base + ".log.1")  # the last service's log, kept once
    args = ["up", resolved, "--workers", str(slots), *options]
    child = pools.spawn(store, args, base + ".log", "up in the background")
    service = Service(
        child.pid, runner.proc_start_time(child.pid) or 0, time.time(), resolved, store_key(store), base + ".log", ""
    )
    service = service._replace(pid_path=base + ".pid")
    try:
        _claim(service)
    except FileExistsError:  # another start won the race (a state directory shared by machines): ours goes
        _end(child)
        other = _read(service.pid_path)
        raise QueueError(_already(other) if other else f"up is starting for {resolved} elsewhere") from None
    return service, child


def refused(service: Service) -> list[str]:
    """What the background up said of manifests it could not apply as it started (`! FILE:LINE: why`), read
    from its log (a new one per start): the lines a foreground `up` prints, which the user of --detach
    would not see."""
    try:
        with open(service.log_path, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return []
    found = []
    for line in text.splitlines():
        clock, _, said = line.partition(" ")
        if said.startswith("pool "):  # the pool started: what follows is not the start-up's apply
            break
        if clock[:1].isdigit() and said.startswith("! "):
            found.append(said[2:])
    return found


def _already(s: Service) -> str:
    return (
        f"up is already running for {s.directory} on this store: pid {s.pid}, since "
        f"{format_time(s.started_at)} ('queuectl down' stops it)"
    )


def _claim(service: Service) -> None:
    """Write `service`'s pid file (0600), atomically: FileExistsError when one is there."""
    record = {
        "pid": service.pid,
        "proc_start": service.proc_start,
        "started_at": service.started_at,
        "directory": service.directory,
        "store": service.store,
        "log": service.log_path,
    }
    temporary = f"{service.pid_path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.link(temporary, service.pid_path)  # fails when the file exists: never replaces another's
    finally:
        os.unlink(temporary)


def _end(child: subprocess.Popen[bytes]) -> None:
    """End a background `up` that did not start as it should: SIGTERM, then SIGKILL."""
    import subprocess  # the type's module: only when a start failed

    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(KILL_WAIT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def stop(store: Store | str, directory: str | None, force: bool) -> Found:
    """Signal the services of `store` (of `directory` only, when given) to stop: gracefully (SIGTERM: running
    commands finish within stop-grace), or at once with `force` (a second signal: their runs go back).
    A store that cannot be opened (its location given) is not told: the signal alone stops them."""
    found = find(store, directory)
    if not isinstance(store, str):
        _ask_pools(store, found.running)
    signals = (signal.SIGTERM, signal.SIGINT) if force else (signal.SIGTERM,)
    for s in found.running:
        runner.signal_process(s.pid, s.proc_start, signals)  # never a process that took a gone service's pid
    return found


def _ask_pools(store: Store, services: list[Service]) -> None:
    """Mark the services' pools stopping in the store, as `worker stop` does (what `worker status` shows);
    best effort: the signal is what stops them."""
    pids = {s.pid for s in services}
    try:
        ids = [w.id for w in store.list_workers() if w.pid in pids and runner.on_this_machine(w.host, w.machine)]
        if ids:
            store.request_stop(ids)
    except StoreError:
        pass  # a failing store (a full disk): the signal still reaches them


def wait_stopped(services: list[Service], seconds: float) -> None:
    """Return once every one of `services` has exited (their pid files removed); an error after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for s in services:
            if runner.is_alive(s.pid, s.proc_start):
                left.append(s)
            else:
                _remove(s)
        if not left:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    raise QueueError(f"up still running after {seconds:g}s: pid {', '.join(str(s.pid) for s in left)}")


def status(store: Store | str, directory: str | None = None) -> tuple[list[ServiceView], list[Service]]:
    """The services of `store` that run, each with its pools; and the stale pid files that were removed.
    A store that cannot be opened (its location given): the services by their pid files, no pools."""
    found = find(store, directory)
    views = pools.pools(store) if found.running and not isinstance(store, str) else []
    here = [v for v in views if runner.on_this_machine(v.worker.host, v.worker.machine)]
    return [ServiceView(s, [v for v in here if v.worker.pid == s.pid]) for s in found.running], found.stale


def log_of(store: Store, directory: str | None) -> tuple[str, Service | None]:
    """The log file `scheduler logs` reads: DIRECTORY's service's, else the one running service's."""
    if directory is not None:
        found = find(store, directory)
        if found.running:
            return found.running[0].log_path, found.running[0]
        return log_path(store, directory), None
    running = find(store).running
    if len(running) > 1:
        dirs = ", ".join(s.directory for s in running)
        raise UsageError(f"{len(running)} background ups run on this store ({dirs}): give the jobs directory")
    if running:
        return running[0].log_path, running[0]
    if os.path.isdir(DEFAULT_DIR):
        return log_path(store, DEFAULT_DIR), None
    raise QueueError("no background up runs on this store: give its jobs directory to read its log")


def tail(path: str, lines: int | None) -> tuple[bytes, int]:
    """The last `lines` lines of `path` (all of it when None), and the offset they end at (to follow from)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            if lines is None:
                f.seek(0)
                return f.read(end), end
            start, data = end, b""
            while start > 0 and data.count(b"\n") <= lines:
                step = min(65536, start)
                start -= step
                f.seek(start)
                data = f.read(step) + data
    except FileNotFoundError:
        raise QueueError(f"no log yet: {path} (up has not run in the background here)") from None
    except OSError as exc:
        raise QueueError(f"cannot read log {path}: {exc.strerror}") from None
    kept = data.splitlines(keepends=True)[-lines:] if lines else []
    return b"".join(kept), end


def follow(path: str, service: Service | None, offset: int, write: Callable[[bytes], None]) -> None:
    """Write what is appended to `path` from `offset` on, until `service` has exited (at once if None)."""
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            alive = service is not None and runner.is_alive(service.pid, service.proc_start)
            while chunk := f.read(65536):
                write(chunk)
            if not alive:
                return
            time.sleep(FOLLOW_POLL)
