"""Wake idle pools the moment work arrives.

A pool waits on a `Signal`: something with a file descriptor that becomes
readable when work may have arrived. Each store engine provides its own (see
`Store.work_signal`): SQLite's pools listen on an abstract Unix datagram socket
named after the store and pid, and whoever adds work sends one byte to each
pool of that store on this host; PostgreSQL's use LISTEN/NOTIFY. A lost
wake-up costs at most one poll interval (the safety net).
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Iterable
from typing import Protocol


class Signal(Protocol):
    def fileno(self) -> int: ...

    def drain(self) -> None:
        """Take what arrived (after the descriptor became readable)."""

    def broken(self) -> bool:
        """True when the listening end was lost (its descriptor is then stale)."""
        ...

    def repair(self) -> None:
        """Listen again after `broken()`; the descriptor may change. Failing quietly is allowed."""

    def close(self) -> None: ...


def address(location: str, pid: int) -> str:
    digest = f"{zlib.crc32(location.encode()):08x}"
    return f"\0queuectl-{digest}-{pid}"


def listen(location: str, pid: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.bind(address(location, pid))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> None:
    try:
        while sock.recv(64):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def notify(location: str, pids: Iterable[int]) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.setblocking(False)
        for pid in pids:
            try:
                sock.sendto(b"!", address(location, pid))
            except OSError:
                pass  # that pool is gone or busy: it polls anyway


class DatagramSignal:
    """This host's wake-ups for one pool of a store: an abstract Unix datagram socket."""

    def __init__(self, location: str, pid: int) -> None:
        self._sock = listen(location, pid)

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> None:
        drain(self._sock)

    def broken(self) -> bool:
        return False  # a bound socket does not break

    def repair(self) -> None:
        pass

    def close(self) -> None:
        self._sock.close()
