"""Wake idle pools on this host the moment work arrives.

Each pool listens on an abstract Unix datagram socket named after its store
and pid; whoever adds work sends one byte to each pool of that store on this
host. A lost wake-up costs at most one poll interval (the safety net).
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Iterable


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
