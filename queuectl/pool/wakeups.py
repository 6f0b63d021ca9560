"""The store's wake-up signal in the loop's selector: news that there may be work (an enqueue, a resume, a stop)."""

from __future__ import annotations

import selectors
from collections.abc import Callable

from queuectl import wake


class Wakeups:
    """Registers the store's wake-up descriptor, again after the listener reconnects; tells the pool."""

    def __init__(self, selector: selectors.BaseSelector, woken: Callable[[], None]) -> None:
        self.selector = selector
        self.woken = woken  # told of each wake-up, once drained
        self.signal: wake.Signal | None = None
        self._fd = -1

    def open(self, signal: wake.Signal) -> None:
        self.signal = signal
        self.watch()

    def watch(self) -> None:
        """(Re)register the wake-up descriptor; a listener that reconnected has a new one."""
        if self.signal is None or (self._fd >= 0 and not self.signal.broken()):
            return
        if self._fd >= 0:
            self.selector.unregister(self._fd)  # before the descriptor goes away
            self._fd = -1
        if self.signal.broken():
            self.signal.repair()
        if not self.signal.broken():
            self._fd = self.signal.fileno()
            self.selector.register(self._fd, selectors.EVENT_READ, self._on_readable)

    def _on_readable(self) -> None:
        if self.signal is not None:
            self.signal.drain()
            if self.signal.broken():
                self.watch()
        self.woken()

    def close(self) -> None:
        if self.signal is not None:
            self.signal.close()
