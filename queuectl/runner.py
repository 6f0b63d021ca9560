"""Run one attempt: a process group, a log file, a timeout, an exit code.

Spawning is the hot path, so it uses os.posix_spawn (vfork + exec, no Python
in the child) and pidfds to learn of exits. Each command runs as
`/bin/sh -c CMD` in a process group of its own, so a timeout or a rescue can
kill everything it started.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Mapping

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
RUN_ID_VAR = "QUEUECTL_RUN_ID"
ATTEMPT_VAR = "QUEUECTL_ATTEMPT"
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND  # no O_TRUNC: truncating is costly here


class Process:
    """One attempt in flight (mutable: the pool updates its kill state)."""

    __slots__ = (
        "cancelled",
        "claim",
        "deadline",
        "interrupted",
        "kill_at",
        "log_path",
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
        log_path: str,
        started_at: float,
        spawned: float,
        deadline: float | None,
    ) -> None:
        self.claim = claim
        self.pid = pid
        self.pidfd = pidfd
        self.log_path = log_path
        self.started_at = started_at  # wall clock
        self.spawned = spawned  # monotonic
        self.deadline = deadline  # monotonic time at which the timeout fires
        self.kill_at: float | None = None  # monotonic time for SIGKILL after SIGTERM
        self.timed_out = False
        self.interrupted = False
        self.cancelled = False  # its run was cancelled while running (a newer fire replaced it)
        self.recorded = False  # its pgid and log are in the store


def spawn(
    claim: Claim, log_path: str, base_env: Mapping[str, str], now: float, mono: float, home_fd: int = -1
) -> Process:
    """Start `claim`'s command; OSError or ValueError when it cannot be started."""
    env = dict(base_env)
    if claim.env:
        env.update(claim.env)
    env[RUN_ID_VAR] = claim.run_id
    env[ATTEMPT_VAR] = str(claim.attempt)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, _LOG_FLAGS, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    argv = ["sh", "-c", claim.command]
    if claim.cwd:
        # posix_spawn has no chdir action before Python 3.13; the pool is
        # single-threaded, so changing its own directory around the spawn is safe.
        os.chdir(claim.cwd)
        try:
            pid = os.posix_spawn("/bin/sh", argv, env, file_actions=actions, setpgroup=0)
        finally:
            if home_fd >= 0:
                os.fchdir(home_fd)
    else:
        pid = os.posix_spawn("/bin/sh", argv, env, file_actions=actions, setpgroup=0)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        kill_group(pid, signal.SIGKILL)  # never leave a command we cannot watch
        os.waitpid(pid, 0)
        raise
    deadline = mono + claim.timeout if claim.timeout else None
    return Process(claim, pid, pidfd, log_path, now, mono, deadline)


class LogFiles:
    """Per-attempt log files, without creating a file on every spawn.

    Creating a file is the costliest step of a spawn on some file systems.
    An attempt writes into a spare (empty) file when one is left; when it
    ends, a log with output is renamed to `<run>.<attempt>.log`, and an empty
    one stays a spare for the next attempt. Attempts that print nothing thus
    cost no file system work at all.
    """

    def __init__(self, directory: str, tag: str) -> None:
        self.directory = directory
        self.tag = tag
        self._spares: list[str] = []
        self._made = 0

    def final_path(self, claim: Claim) -> str:
        return os.path.join(self.directory, f"{claim.run_id}.{claim.attempt}.log")

    def take(self, claim: Claim) -> str:
        """Where the attempt of `claim` writes while it runs (always an empty file)."""
        if self._spares:
            return self._spares.pop()
        path = self.final_path(claim)
        try:
            os.unlink(path)  # a stale log of an earlier run with this id
        except OSError:
            pass
        return path

    def give_back(self, path: str, claim: Claim, group_gone: bool) -> str | None:
        """After the attempt: the log's final path, or None when it stayed empty.

        A log is only reused when nothing of the attempt is left that could
        still write to it (`group_gone`); otherwise it is kept, even empty.
        """
        final = self.final_path(claim)
        try:
            if os.stat(path).st_size or not group_gone:
                if path != final:
                    os.rename(path, final)
                return final
            if path == final:
                self._made += 1
                spare = os.path.join(self.directory, f".spare-{self.tag}-{self._made}")
                os.rename(path, spare)
                path = spare
        except OSError:
            return None
        self._spares.append(path)
        return None

    def close(self) -> None:
        for spare in self._spares:
            try:
                os.unlink(spare)
            except OSError:
                pass
        self._spares.clear()


def reap(proc: Process) -> tuple[int | None, Outcome, str | None, bool]:
    """Collect an exited leader: (exit code, outcome, error text, whether its group is gone).

    Before reaping, anything left in its group after a timeout or a stop is
    killed; the zombie leader keeps the group id from being reused meanwhile.
    """
    if proc.timed_out or proc.interrupted or proc.cancelled:
        kill_group(proc.pid, signal.SIGKILL)
    _, status = os.waitpid(proc.pid, 0)
    os.close(proc.pidfd)
    try:
        os.killpg(proc.pid, 0)
        group_gone = False  # background processes of the command live on
    except OSError:
        group_gone = True
    code = os.waitstatus_to_exitcode(status)
    exit_code = code if code >= 0 else 128 - code
    if proc.timed_out:
        return exit_code, Outcome.TIMEOUT, f"timed out after {proc.claim.timeout:g}s", group_gone
    if proc.interrupted:
        return exit_code, Outcome.INTERRUPTED, "interrupted: the worker pool was stopped", group_gone
    if proc.cancelled:
        return exit_code, Outcome.FAILED, "cancelled while running (a newer fire replaced it)", group_gone
    if code == 0:
        return 0, Outcome.COMPLETED, None, group_gone
    return exit_code, Outcome.FAILED, describe_exit(code), group_gone


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


def _has_marker(pid: int, marker: bytes, also: bytes | None = None) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return False
    return marker in env and (also is None or also in env)


def kill_leftovers(run_id: str, pgid: int | None, proc_start: int | None, attempt: int | None = None) -> int:
    """Kill what is left of a dead pool's attempt of `run_id` on this host.

    A process counts as the attempt's when it is the recorded group leader
    (same pid and start time), or when it sits in that group, started after
    the leader, and carries the run's QUEUECTL_RUN_ID in its environment. Where
    the group is unknown (the pool died before recording it), the marker alone
    decides. Returns how many processes were killed.
    """
    marker = f"{RUN_ID_VAR}={run_id}".encode()
    attempt_marker = f"{ATTEMPT_VAR}={attempt}".encode() if attempt is not None else None
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
            if pgid is not None and proc_start is not None:
                if group != pgid:
                    continue
                if (pid == pgid and start == proc_start) or (start >= proc_start and _has_marker(pid, marker)):
                    victims.append(pid)
            elif _has_marker(pid, marker, attempt_marker):
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


def trim_log(path: str, cap: int) -> bool:
    """Keep a log under `cap` bytes by dropping its oldest output.

    The command appends (O_APPEND), so after the file is rewritten its next
    writes land at the new end. Output written during the rewrite itself may
    be lost; the file says where output was dropped.
    """
    try:
        size = os.stat(path).st_size
        if size <= cap:
            return False
        keep = cap // 2
        with open(path, "r+b") as f:
            f.seek(size - keep)
            tail = f.read(keep)
            f.seek(0)
            f.write(f"[queuectl: {size - len(tail)} bytes of earlier output dropped]\n".encode())
            f.write(tail)
            f.truncate()
        return True
    except OSError:
        return False
