"""Run one attempt: a process group, its output, a timeout, an exit code.

Spawning is the hot path, so it uses os.posix_spawn (vfork + exec, no Python
in the child) and pidfds to learn of exits. Each command runs as
`/bin/sh -c CMD` in a process group of its own, its stdout and stderr a pipe
the pool copies into a capped log (capture.py). When the attempt ends, its
group is killed, and so is every process of it that left the group: the
pool is a child subreaper (reaper.py), so such processes become its own
children, and their QUEUECTL_RUN_ID / QUEUECTL_ATTEMPT markers tell whose
they are. `keep_children` runs opt out, for commands that start daemons.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

from queuectl import reaper
from queuectl.capture import Output
from queuectl.durations import format_duration
from queuectl.model import Claim, Outcome

HOST = socket.gethostname()


def _machine() -> str:
    """What tells this machine (and pid namespace) from others of the same host name: pids mean something here."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        return f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


MACHINE = _machine()


def on_this_machine(host: str, machine: str) -> bool:
    """Whether a pool that registered as (host, machine) runs where our pids are its pids."""
    return machine == MACHINE if machine and MACHINE else host == HOST


TAIL_BYTES = 4000
DRAIN_READS = 256  # at the end of an attempt: what a writer that escaped the sweep cannot stretch
RUN_ID_VAR = "QUEUECTL_RUN_ID"
ATTEMPT_VAR = "QUEUECTL_ATTEMPT"
POOL_VAR = "QUEUECTL_POOL"  # the pool's id: run ids repeat across stores, pool ids do not


class Process:
    """One attempt in flight (mutable: the pool updates its kill state)."""

    __slots__ = (
        "cancelled",
        "claim",
        "deadline",
        "interrupted",
        "kill_at",
        "leader_gone",
        "log_path",
        "output",
        "pid",
        "pidfd",
        "recorded",
        "spawned",
        "started_at",
        "timed_out",
    )

    def __init__(
        self,
        claim: Claim,
        pid: int,
        pidfd: int,
        output: Output,
        started_at: float,
        spawned: float,
        deadline: float | None,
    ) -> None:
        self.claim = claim
        self.pid = pid
        self.pidfd = pidfd
        self.output = output
        self.log_path = output.path
        self.started_at = started_at  # wall clock
        self.spawned = spawned  # monotonic
        self.deadline = deadline  # monotonic time at which the timeout fires
        self.kill_at: float | None = None  # monotonic time for SIGKILL after SIGTERM
        self.timed_out = False
        self.interrupted = False
        self.cancelled = False  # its run was cancelled while running (`cancel`, suspend, a newer fire replacing it)
        self.recorded = False  # its pgid and log are in the store
        self.leader_gone = False  # the leader exited during its kill grace; the rest of its group still runs


def spawn(
    claim: Claim,
    log_path: str,
    log_cap: int,
    base_env: Mapping[str, str],
    now: float,
    mono: float,
    home_fd: int = -1,
) -> Process:
    """Start `claim`'s command; OSError or ValueError when it cannot be started."""
    env = dict(base_env)
    if claim.env:
        env.update(claim.env)
    env[RUN_ID_VAR] = claim.run_id
    env[ATTEMPT_VAR] = str(claim.attempt)
    if POOL_VAR in base_env:  # the markers are the pool's to set: a run's own env cannot forge them
        env[POOL_VAR] = base_env[POOL_VAR]
    read_end, write_end = os.pipe2(os.O_CLOEXEC)  # dup2 clears close-on-exec on the child's 1 and 2
    try:
        os.set_blocking(read_end, False)  # the pool's end only: the command's writes block when it is full
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, write_end, 1),
            (os.POSIX_SPAWN_DUP2, write_end, 2),
        ]
        pid = _posix_spawn(claim, env, actions, home_fd)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os.close(read_end)
        kill_group(pid, signal.SIGKILL)  # never leave a command we cannot watch
        os.waitpid(pid, 0)
        raise
    deadline = mono + claim.timeout if claim.timeout else None
    return Process(claim, pid, pidfd, Output(read_end, log_path, log_cap), now, mono, deadline)


def _posix_spawn(claim: Claim, env: dict[str, str], actions: list[tuple[Any, ...]], home_fd: int) -> int:
    argv = ["sh", "-c", claim.command]
    if not claim.cwd:
        return os.posix_spawn("/bin/sh", argv, env, file_actions=actions, setpgroup=0)
    # posix_spawn has no chdir action before Python 3.13; the pool is
    # single-threaded, so changing its own directory around the spawn is safe.
    os.chdir(claim.cwd)
    try:
        return os.posix_spawn("/bin/sh", argv, env, file_actions=actions, setpgroup=0)
    finally:
        if home_fd >= 0:
            os.fchdir(home_fd)


def log_path(directory: str, claim: Claim) -> str:
    return os.path.join(directory, f"{claim.run_id}.{claim.attempt}.log")


def remove_logs(directory: str, run_ids: Iterable[str]) -> None:
    """Remove the log files (`<id>.<attempt>.log`, see log_path) of deleted runs from `directory`."""
    gone = set(run_ids)
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith(".log") and entry.name.rsplit(".", 2)[0] in gone:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def reap(proc: Process, known: Container[int], pool_id: str) -> tuple[int | None, Outcome, str | None]:
    """Collect an exited leader: (exit code, outcome, error text).

    Unless the run keeps its children, everything it started is killed
    first: its group while the zombie leader still holds the group id (so
    the id cannot have been reused), then whatever left the group and came
    to the pool as an orphan (`known`: the pool's own children, spared).
    The output still in the pipe is copied to the log; with the writers dead
    the pipe is at its end.
    """
    keep = proc.claim.keep_children
    if not keep:
        kill_group(proc.pid, signal.SIGKILL)
    _, status = os.waitpid(proc.pid, 0)
    os.close(proc.pidfd)
    if not keep:
        reaper.sweep(markers(proc.claim.run_id, proc.claim.attempt, pool_id), known)
        proc.output.pump(reads=DRAIN_READS)
    code = os.waitstatus_to_exitcode(status)
    exit_code = code if code >= 0 else 128 - code
    if proc.timed_out:
        return exit_code, Outcome.TIMEOUT, f"timed out after {format_duration(proc.claim.timeout)}"
    if proc.interrupted:
        return exit_code, Outcome.INTERRUPTED, "interrupted: the worker pool was stopped"
    if proc.cancelled:
        return exit_code, Outcome.CANCELLED, "cancelled while running"  # why: the run's own error
    if code == 0:
        return 0, Outcome.COMPLETED, None
    return exit_code, Outcome.FAILED, describe_exit(code)


def markers(run_id: str, attempt: int | None, pool_id: str | None) -> list[bytes]:
    """The environment entries that mark a process as started by this attempt of `run_id` in pool `pool_id`."""
    found = [f"{RUN_ID_VAR}={run_id}".encode()]
    if attempt is not None:
        found.append(f"{ATTEMPT_VAR}={attempt}".encode())
    if pool_id:
        found.append(f"{POOL_VAR}={pool_id}".encode())
    return found


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    if code == 127:
        return "exit 127: command not found"
    if code == 126:
        return "exit 126: command not executable"
    return f"exit {code}"


def signal_process(pid: int, proc_start: int, signals: Sequence[int]) -> bool:
    """Send `signals` to `pid` only while it is the process that started at `proc_start`; False when gone.

    A pidfd pins the process before its start time is checked, so a pid that
    was reused meanwhile never gets the signal. PermissionError: not ours.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if proc_start_time(pid) != proc_start:
            return False
        for sig in signals:
            signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def group_lives_on(pgid: int) -> bool:
    """Whether a process other than the (exited) leader still runs in group `pgid` (a /proc scan: rare path)."""
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != pgid:
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[0] == pgid:
                return True
    return False


def kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone (or was never ours)


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(process group, start time in clock ticks) of a live process, else None.

    A zombie counts as gone: it runs nothing and cannot be killed.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[2]), int(fields[19])


def proc_start_time(pid: int) -> int | None:
    stat = proc_stat(pid)
    return stat[1] if stat else None


def is_alive(pid: int, proc_start: int) -> bool:
    """True when `pid` is still the process that started at `proc_start`."""
    return proc_start_time(pid) == proc_start


def kill_leftovers(
    run_id: str,
    pgid: int | None,
    proc_start: int | None,
    attempt: int | None = None,
    pool_id: str | None = None,
    *,
    escaped: bool = True,
) -> int:
    """Kill what is left of a dead pool's attempt of `run_id` on this host.

    A process counts as the attempt's when it is the recorded group leader
    (same pid and start time: a reused pid never matches), or when it carries
    the attempt's markers in its environment: the run's id, its attempt and the
    pool's id (QUEUECTL_POOL), so that a run of the same id in another store on
    this machine is never taken for it. A group id alone proves nothing (pids,
    and so group ids, are reused). With `escaped` False, only marked processes
    still in the recorded group count (a run that keeps its children: what left
    the group is its daemons). Returns how many processes were killed.
    """
    ours = markers(run_id, attempt, pool_id)
    killed = 0
    for _ in range(5):  # members may fork while we kill: look again
        victims = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid == os.getpid():
                continue
            stat = proc_stat(pid)
            if stat is None:
                continue
            group, start = stat
            if pid == pgid and proc_start and start == proc_start:
                victims.append(pid)  # the recorded leader itself
            elif (escaped or group == pgid) and start >= (proc_start or 0) and reaper.has_markers(pid, ours):
                victims.append(pid)
        if not victims:
            break
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)  # let the kernel deliver before looking again
    return killed


def read_tail(path: str | None, limit: int = TAIL_BYTES) -> str:
    """The last `limit` bytes of a log file as text ('' when unreadable)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read(limit)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > limit and "\n" in text:
        text = text[text.index("\n") + 1 :]  # drop the cut-off first line
    return text
