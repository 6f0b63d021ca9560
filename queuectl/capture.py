"""One attempt's output: a pipe the pool reads, a log file that never outgrows its cap.

A command that writes its log file itself can outrun any trimming: the pool
can only cut the file after the fact, while the command's O_APPEND writes
keep it growing. Here the command writes into a pipe, and the pool copies
the pipe into the log. A full pipe blocks the writer, so the file can hold
its cap exactly, at every moment, however fast the command writes.

Layout of a log whose output outgrew the cap: the first half of the cap as
written (the head), a fixed-width marker saying how many bytes were cut,
then the latest output (the tail region). When the tail region is full, its
last half is moved to its start in small pieces, so the pool's memory stays
one chunk and each byte is written at most about twice.

The file is created at the first byte of output: an attempt that prints
nothing costs no file system work.
"""

from __future__ import annotations

import os

CHUNK = 65536  # one read from the pipe (its default capacity)
READS_PER_WAKE = 16  # at most this many reads per readiness event: other slots get their turn
MIN_CAP = 4096  # a smaller log-max-bytes counts as this: the marker and both ends must fit
MARK_WIDTH = 96
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


def marker(cut: int) -> bytes:
    """The line that stands where output was cut (always MARK_WIDTH bytes: rewritten in place)."""
    text = f"\n[queuectl: {cut} bytes of earlier output dropped here; the end of the output follows]"
    return text.ljust(MARK_WIDTH - 1).encode() + b"\n"


class Output:
    """Copies a pipe into a capped log file (cap 0: no cap)."""

    __slots__ = ("broken", "cap", "closed", "cut", "eof", "fd", "file", "path", "size", "total")

    def __init__(self, fd: int, path: str, cap: int) -> None:
        self.fd = fd  # the pipe's read end (non-blocking)
        self.path = path
        self.cap = max(cap, MIN_CAP) if cap > 0 else 0
        self.file = -1
        self.size = 0  # bytes in the file
        self.total = 0  # bytes the command wrote
        self.cut = 0  # bytes left out of the file
        self.eof = False
        self.closed = False
        self.broken = False

    @property
    def wrote(self) -> bool:
        return self.total > 0

    def pump(self, reads: int = READS_PER_WAKE) -> bool:
        """Copy what the pipe holds (at most `reads` chunks); True once every writer has closed it."""
        if self.closed:
            return True
        for _ in range(reads):
            try:
                data = os.read(self.fd, CHUNK)
            except BlockingIOError:
                return False
            except InterruptedError:
                continue
            if not data:
                self.eof = True
                return True
            if self.broken:
                continue  # the log cannot be written (disk full): drain the pipe all the same
            try:
                self._write(data)
            except OSError:
                self.broken = True  # the command must not block on a full pipe because of it
        return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
            if self.file >= 0:
                os.close(self.file)
                self.file = -1

    def _write(self, data: bytes) -> None:
        if self.file < 0:
            self.file = os.open(self.path, _OPEN_FLAGS, 0o600)
        self.total += len(data)
        if not self.cap or self.size + len(data) <= self.cap:
            os.pwrite(self.file, data, self.size)
            self.size += len(data)
            return
        fit = self.cap - self.size  # fill the file to the cap first: the head must be whole
        if fit > 0:
            os.pwrite(self.file, data[:fit], self.size)
            self.size = self.cap
            data = data[fit:]
        self._cut(data)

    def _cut(self, data: bytes) -> None:
        """Make room: keep the head, the marker and the last half of the tail region, then `data`."""
        head = self.cap // 2
        start = head + MARK_WIDTH
        keep = (self.cap - start) // 2
        if len(data) >= keep:
            os.pwrite(self.file, data[-keep:], start)
            end = start + keep
        else:
            moved = keep - len(data)  # never more than the file holds past the head: see the cap check
            self._move(self.size - moved, start, moved)
            os.pwrite(self.file, data, start + moved)
            end = start + keep
        os.ftruncate(self.file, end)  # the file only ever shrinks here: it never passes the cap
        self.size = end
        self.cut = self.total - head - (end - start)
        os.pwrite(self.file, marker(self.cut), head)

    def _move(self, src: int, dst: int, length: int) -> None:
        """Copy bytes toward the file's start in bounded pieces (dst <= src, so forward is safe)."""
        done = 0
        while done < length:
            piece = os.pread(self.file, min(CHUNK, length - done), src + done)
            if not piece:
                break
            os.pwrite(self.file, piece, dst + done)
            done += len(piece)
