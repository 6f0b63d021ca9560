"""The pool as a child subreaper: what a run started cannot slip away from it.

A command's processes can leave its process group (setsid, setpgid) and its
parent can exit, so a group kill alone misses them. With
PR_SET_CHILD_SUBREAPER the kernel gives every orphaned descendant of the
pool to the pool itself instead of to init. At the end of a run the pool
kills its group (while its zombie leader still holds the group id), then
looks at its own children: an adopted child that carries the run's
QUEUECTL_RUN_ID, QUEUECTL_ATTEMPT and the pool's QUEUECTL_POOL in its
environment is killed, and zombies are reaped. Killing one adopted
child hands its own children to the pool, so the look is repeated until a
round finds nothing of the run alive.

Only adopted children are looked at: the pool's own leaders (reaped through
their pidfds) are passed in as `known`, and a zombie in the pool's own
process group (a `git` run by `up`, say) is left to whoever waits for it.
What this does not cover: a process that both left the run's group and
cleared its environment, and everything once the pool itself is killed
(its orphans then go to init; the guardian and the next pool's rescue kill
the group only).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Container, Sequence

PR_SET_CHILD_SUBREAPER = 36
SWEEP_PATIENCE = 2.0  # seconds a sweep keeps killing (a SIGKILLed process dies in microseconds)
_CHILDREN = f"/proc/self/task/{os.getpid()}/children"


def become_subreaper(on: bool = True) -> bool:
    """Adopt orphaned descendants (Linux 3.4+); False where the kernel refuses."""
    global _CHILDREN
    _CHILDREN = f"/proc/self/task/{os.getpid()}/children"  # orphans go to the main thread
    import ctypes  # 2 ms to import: only a pool, which calls this once, needs it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _read(path: str) -> bytes | None:
    """A small /proc file's bytes (raw descriptors: this runs once per attempt, and io.open costs more)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def children() -> list[int]:
    data = _read(_CHILDREN)
    return [int(pid) for pid in data.split()] if data else []


def has_markers(pid: int, markers: Sequence[bytes]) -> bool:
    """Whether `pid`'s environment holds every one of `markers` (NAME=VALUE entries)."""
    data = _read(f"/proc/{pid}/environ")
    if data is None:
        return False
    env = set(data.split(b"\0"))
    return all(marker in env for marker in markers)


def _state(pid: int) -> tuple[bytes, int] | None:
    """(state letter, process group) of `pid`, or None when it is gone."""
    data = _read(f"/proc/{pid}/stat")
    if not data:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0], int(fields[2])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def sweep(markers: Sequence[bytes], known: Container[int]) -> int:
    """Kill the adopted processes that carry a run's `markers`; reap adopted zombies.

    Returns how many kill signals were sent. Costs one read of the pool's
    children list when the run left nothing behind.
    """
    own_group = os.getpgrp()
    deadline = 0.0
    sent = 0
    killed: set[int] = set()  # an exiting process has no environment left to show its markers: wait for it
    while True:
        alive = False
        for pid in children():
            if pid in known:
                continue
            state = _state(pid)
            if state is None:
                continue
            letter, group = state
            if letter in (b"Z", b"X"):
                if group != own_group:
                    _reap(pid)
                continue
            if pid in killed or has_markers(pid, markers):  # its group was killed before its leader was reaped
                alive = True
                killed.add(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                    sent += 1
                except ProcessLookupError:
                    pass
        if not alive:
            return sent
        now = time.monotonic()
        deadline = deadline or now + SWEEP_PATIENCE
        if now > deadline:
            return sent  # unkillable (stuck in the kernel): give up rather than hang the pool
        time.sleep(0.001)


def reap_adopted(known: Container[int]) -> None:
    """Reap adopted children that have died (a kept daemon, say): no zombie piles up."""
    own_group = os.getpgrp()
    for pid in children():
        if pid not in known:
            state = _state(pid)
            if state is not None and state[0] in (b"Z", b"X") and state[1] != own_group:
                _reap(pid)
