"""Worker pools: what state each is in, starting one in the background, stopping them."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from queuectl import config, json_views, runner
from queuectl.errors import QueueError, StoreError
from queuectl.model import Worker
from queuectl.paths import POOL_STORE_HANDOFF, logs_dir, make_private_dir
from queuectl.store.contract import Store

if TYPE_CHECKING:
    import subprocess

START_WAIT = 10.0  # seconds a background pool has to register
STOP_POLL = 0.05

Say = Callable[[str], None]


def pool_state(w: Worker, now: float, lease_seconds: float) -> str:
    """alive, stopping, stale or dead: what every command says of a registered pool.

    A pool on this machine is judged by its process, at once (dead the moment it
    is killed, alive while it lives however late its heartbeat); a pool elsewhere
    by its heartbeat, stale once that is older than a lease.
    """
    if runner.on_this_machine(w.host, w.machine):
        if not runner.is_alive(w.pid, w.proc_start):
            return "dead"
    elif now - w.heartbeat_at > lease_seconds:
        return "stale"
    return "stopping" if w.stop_requested else "alive"


def is_running(state: str) -> bool:
    """Whether a pool in `state` (see pool_state) still runs: it may hold runs and can be asked to stop."""
    return state in ("alive", "stopping")


class PoolView(NamedTuple):
    worker: Worker
    state: str


def pools(store: Store) -> list[PoolView]:
    """Every registered pool with its state."""
    lease, now = config.effective(store.config())["lease-seconds"], store.now()
    return [PoolView(w, pool_state(w, now, lease)) for w in store.list_workers()]


def as_json(views: list[PoolView]) -> list[dict[str, object]]:
    """What `worker status --json` prints (and the web API's /api/pools answers)."""
    return [json_views.worker_json(v.worker, v.state) for v in views]


class Background(NamedTuple):
    pid: int
    log_path: str
    finished: bool  # a short burst that was over before we looked


def start_background(store: Store, count: int, burst: bool, *, scheduling: bool = True) -> Background:
    """Start `worker start` in the background; return once it registered (or finished its burst well)."""
    log_path = os.path.join(logs_dir(store), f"pool-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    argv = ["worker", "start", "--count", str(count)]
    if burst:
        argv.append("--burst")
    if not scheduling:
        argv.append("--no-scheduler")
    make_private_dir_or_fail(logs_dir(store), "a background pool")
    child = spawn(store, argv, log_path, "a background pool")
    return await_registered(store, child, log_path, "the background pool")


def make_private_dir_or_fail(path: str, what: str) -> None:
    try:
        make_private_dir(path)
    except OSError as exc:
        raise QueueError(f"cannot start {what}: {exc.strerror or exc} ({path})") from None


def spawn(store: Store, args: list[str], log_path: str, what: str) -> subprocess.Popen[bytes]:
    """Start `queuectl ARGS` in a session of its own, its output appended to `log_path` (made 0600).

    The store's URL goes to it in an environment variable that it removes at
    once: never on its command line (it may hold a password), and never in its
    jobs' environment, which is the same as a foreground pool's.
    """
    import subprocess  # 3 ms to import (locale, selectors): only for a background pool

    argv = [sys.executable, "-m", "queuectl", *args]
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as out:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                env=dict(os.environ, **{POOL_STORE_HANDOFF: store.url}),
            )
    except OSError as exc:
        raise QueueError(f"cannot start {what}: {exc.strerror or exc} ({log_path})") from None


def await_registered(
    store: Store, child: subprocess.Popen[bytes], log_path: str, what: str, wait: float = START_WAIT
) -> Background:
    """Return once `child`'s pool registered in `store` (or it exited 0); else an error with its log's last line."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if any(w.pid == child.pid and runner.on_this_machine(w.host, w.machine) for w in store.list_workers()):
            return Background(child.pid, log_path, finished=False)
        if child.poll() is not None:
            break
        time.sleep(STOP_POLL)
    if child.poll() == 0:
        return Background(child.pid, log_path, finished=True)
    last = runner.read_tail(log_path, 400).strip().splitlines()
    why = last[-1] if last else f"exit status {child.returncode}" if child.returncode is not None else "no answer"
    raise QueueError(f"{what} did not start: {why} (log: {log_path})")


class Stopping(NamedTuple):
    """Which pools a stop reached: this host's were signalled (and can be waited for)."""

    local: list[Worker]
    remote: list[Worker]
    stale: int  # not running as far as we know; asked through the store should one come back


def stop(store: Store, force: bool, say: Say) -> Stopping:
    """Ask every live pool of this store to stop: through the store, and by a signal on this host."""
    views = pools(store)
    running = [v.worker for v in views if is_running(v.state)]
    local = [w for w in running if runner.on_this_machine(w.host, w.machine)]
    remote = [w for w in running if not runner.on_this_machine(w.host, w.machine)]
    if not running:
        stale = [v.worker.id for v in views if v.state == "stale"]
        if stale:  # late, perhaps not dead (suspended, cut off): should one come back, it stops
            store.request_stop(stale)
        return Stopping([], [], len(stale))
    try:
        store.request_stop([v.worker.id for v in views])
        store.wake_pools()  # pools elsewhere (PostgreSQL) look at once, not at their next heartbeat
    except StoreError as exc:  # a failing store (a full disk): the signals below still reach this host's pools
        if not local:
            raise
        say(f"could not ask through the store ({exc}); signalling the pools on this host")
        remote = []
    # a second, different signal for --force: standard signals of one kind may merge
    signals = (signal.SIGTERM, signal.SIGINT) if force else (signal.SIGTERM,)
    for w in local:
        try:
            runner.signal_process(w.pid, w.proc_start, signals)  # never a process that took a dead pool's pid
        except PermissionError:  # another user's pool: the request through the store reaches it
            say(f"pool {w.id} (pid {w.pid}) belongs to another user: asked to stop through the store")
    return Stopping(local, remote, 0)


def stop_wait(store: Store) -> float:
    """How long `worker stop` waits by default: the pools' stop grace and a margin."""
    return config.effective(store.config())["stop-grace"] + 10


def wait_stopped(workers: list[Worker], seconds: float) -> None:
    """Return once every pool of `workers` (this host's) has exited; an error after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        left = [w for w in workers if runner.is_alive(w.pid, w.proc_start)]
        if not left:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(STOP_POLL)
    raise QueueError(f"{len(left)} pool(s) still running after {seconds:g}s: {', '.join(str(w.pid) for w in left)}")
