"""Stopping: the stop signals, counted, and the pool's stop level.

Signal handlers do nothing: the interpreter writes each signal's number to a
socket the loop watches, and the loop counts them. The first SIGTERM or SIGINT
(or a stop asked through the store) stops claiming and lets running commands
finish, within stop-grace; the second stops at once: commands are killed
(SIGTERM, then SIGKILL after COLD_KILL_GRACE) and their runs go back to the queue.
"""

from __future__ import annotations

import select
import selectors
import signal
import socket
import time

COLD_KILL_GRACE = 2.0  # a stop at once SIGKILLs what its SIGTERM left after this long

WARM_LINE = "stopping: no new claims, waiting for running commands (signal again to stop at once)"
COLD_LINE = "stopping at once: killing running commands and returning their runs to the queue"


class StopSignals:
    """SIGTERM and SIGINT, counted through the signal wakeup descriptor (main thread only)."""

    def __init__(self) -> None:
        self.count = 0  # signals received and not yet taken
        self._read: socket.socket | None = None
        self._write: socket.socket | None = None
        self._old_handlers: dict[int, object] = {}

    def install(self, selector: selectors.BaseSelector) -> None:
        try:
            self._read, self._write = socket.socketpair()
            self._read.setblocking(False)
            self._write.setblocking(False)
            old_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread: no signal handling; the embedding program stops the pool
            return
        if old_fd != -1:
            signal.set_wakeup_fd(old_fd)
            return
        selector.register(self._read, selectors.EVENT_READ, self.read)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, _on_signal)

    def restore(self, owns_process: bool) -> None:
        """Put the old handlers back; a pool that owns its process leaves SIGTERM and SIGINT ignored.

        The process ends with the pool (the CLI): a late signal of a stop already taken
        (`worker stop` asks through the store, then signals) cannot kill the way out.
        """
        if self._old_handlers:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, signal.SIG_IGN if owns_process else handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(-1)

    def read(self) -> None:
        """Count the stop signals written to the wakeup socket."""
        if self._read is None:
            return
        try:
            while data := self._read.recv(64):
                self.count += sum(1 for b in data if b in (signal.SIGTERM, signal.SIGINT))
        except (BlockingIOError, InterruptedError):
            pass

    def within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if a stop signal comes; whether one came."""
        if self._read is None:
            time.sleep(seconds)
            return False
        select.select([self._read], [], [], seconds)
        self.read()
        return self.count > 0

    def close(self) -> None:
        for sock in (self._read, self._write):
            if sock is not None:
                sock.close()


def _on_signal(signum: int, frame: object) -> None:
    """Nothing: Python may merge repeated signals into one call; the wakeup bytes count them."""


class StopLevel:
    """0: working; 1: no new claims, running commands finish until `deadline`; 2: stopping at once."""

    def __init__(self) -> None:
        self.level = 0
        self.deadline: float | None = None  # monotonic end of the stop-grace (level 1)
        self.cold_since: float | None = None  # monotonic moment of the stop at once
        self._signals = 0  # stop signals taken so far

    def take_signal(self) -> tuple[int, str] | None:
        """One more stop signal: the level it asks for and the line to say, or None if it asks nothing new.

        Signals count on their own: a stop asked through the store, then the SIGTERM
        of the same `worker stop`, is one graceful stop, not two.
        """
        self._signals += 1
        level = max(self._signals, self.level)
        if level <= self.level:
            return None
        return level, WARM_LINE if level == 1 else COLD_LINE

    def begin(self, level: int, mono: float, grace: float) -> bool:
        """Raise the stop level (at most 2); True when this begins the stop at once."""
        level = min(level, 2)
        if level <= self.level:
            return False
        self.level = level
        if level == 1:
            self.deadline = mono + grace
            return False
        self.deadline = None
        self.cold_since = mono
        return True

    def grace_over(self, mono: float) -> bool:
        """The stop-grace of a graceful stop has run out."""
        return self.deadline is not None and mono >= self.deadline and self.level == 1
