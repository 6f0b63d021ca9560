"""The hand-off of settled jobs to the status-file thread, which writes their files off the pool's hot path."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from queuectl.status_files import StatusThread


class StatusHandoff:
    """Starts the thread on the first declared job that settles; a pool of plain runs never starts it."""

    def __init__(self, store_url: str, say: Callable[[str], None]) -> None:
        self.store_url = store_url
        self.say = say
        self.thread: StatusThread | None = None

    def update(self, jobs: Iterable[str]) -> None:
        """Have the status files of these jobs rewritten."""
        if self.thread is None:
            # Deferred: status_files loads the manifest parser and croniter (via schedule.py),
            # which a pool that runs no declared job never needs.
            from queuectl.status_files import StatusThread

            self.thread = StatusThread(self.store_url, self.say)
        self.thread.update(jobs)

    def close(self, timeout: float) -> None:
        """Let the thread finish the writes handed over (within `timeout` seconds)."""
        if self.thread is not None:
            self.thread.close(timeout)
