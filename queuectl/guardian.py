"""Let a pool's commands die with their pool, as PR_SET_PDEATHSIG would.

The kernel's parent-death signal needs code in the child before exec, which
would slow every spawn. Instead the pool forks one small guardian at start-up
and tells it, through a pipe, which process groups it has running. When the
pool dies (kill -9, OOM) the pipe closes, and the guardian kills every group
it still knows of, after checking that each is still the attempt's (pid
reuse), then exits. A pool that ends normally closes the pipe with nothing
registered, and the guardian simply exits.

Only commands that have run for a moment are registered (the same ones the
store records), so draining short commands costs nothing here; what the
guardian misses, the rescue by the next pool on this host kills. Processes
that left their run's group (the pool's subreaper no longer adopts them
once it is dead) are found by their run's QUEUECTL_RUN_ID and
QUEUECTL_ATTEMPT, unless the run keeps its children.
"""

from __future__ import annotations

import os
import signal

from queuectl.runner import kill_leftovers


class Guardian:
    def __init__(self, pool_id: str) -> None:
        read_end, self._write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the guardian
            try:
                os.close(self._write_end)
                _serve(read_end, pool_id)
            finally:
                os._exit(0)
        os.close(read_end)
        os.set_inheritable(self._write_end, False)

    def watch(self, pgid: int, proc_start: int, run_id: str, attempt: int, keep_children: bool) -> None:
        self._send(f"+ {pgid} {proc_start} {run_id} {attempt} {int(keep_children)}\n")

    def forget(self, pgid: int) -> None:
        self._send(f"- {pgid}\n")

    def close(self) -> None:
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass

    def _send(self, line: str) -> None:
        if self._write_end >= 0:
            try:
                os.write(self._write_end, line.encode())
            except OSError:
                self._write_end = -1  # the guardian is gone: the rescue still covers us


def _serve(read_end: int, pool_id: str) -> None:
    """The guardian's loop: track groups until the pipe closes, then kill what is left."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the pool's death ends us
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)  # do not hold the pool's output open
    groups: dict[int, tuple[int, str, int, bool]] = {}
    pending = b""
    while chunk := _read(read_end):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            parts = line.decode().split()
            if parts[:1] == ["+"] and len(parts) == 6:
                groups[int(parts[1])] = (int(parts[2]), parts[3], int(parts[4]), parts[5] == "1")
            elif parts[:1] == ["-"] and len(parts) == 2:
                groups.pop(int(parts[1]), None)
    for pgid, (proc_start, run_id, attempt, keep_children) in groups.items():
        kill_leftovers(run_id, pgid, proc_start, attempt, pool_id, escaped=not keep_children)


def _read(fd: int) -> bytes:
    while True:
        try:
            return os.read(fd, 65536)
        except InterruptedError:
            continue
