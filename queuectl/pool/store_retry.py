"""A failing store: when the pool tries again, and when it gives the store up.

Given up: an error that will not pass (a damaged, read-only or deleted store), a
full disk that lasts, or a store still failing a few seconds into a stop at once.
What was not recorded then stays claimed, for the next pool's rescue.
"""

from __future__ import annotations

from queuectl.durations import format_duration
from queuectl.errors import StoreBrokenError, StoreDiskError, StoreError

STORE_RETRY_MAX = 5.0
STOPPING_RETRY_MAX = 0.5  # stopping at once, a failing store is tried this often...
STOP_STORE_PATIENCE = 5.0  # ...for this long; then the pool leaves what it could not record to the rescue
DISK_PATIENCE = 10.0  # a full or failing disk under the store that lasts this long ends the pool
FIRST_DELAY = 0.05  # the first retry's delay; it doubles with each failure in a row


class StoreRetry:
    """The pool's standing with its store: failures in a row, the next try, and why it gave up (if it did)."""

    def __init__(self) -> None:
        self.failures = 0  # in a row
        self.retry_at = 0.0  # monotonic moment before which the store is left alone
        self.failing_since: float | None = None  # monotonic moment the store began failing (None: it works)
        self.gave_up: StoreError | None = None  # why the pool stopped using its store

    def worked(self) -> None:
        self.failures = 0
        self.failing_since = None

    def failed(self, exc: StoreError, mono: float, cold_since: float | None) -> float:
        """The delay before the next try; raises (and keeps) the error when the store is given up.

        `cold_since`: the moment of a stop at once, if one is under way.
        """
        if self.failing_since is None:
            self.failing_since = mono
        lasted = mono - self.failing_since
        if isinstance(exc, StoreBrokenError):
            self.gave_up = exc
        elif isinstance(exc, StoreDiskError) and lasted >= DISK_PATIENCE:
            self.gave_up = StoreBrokenError(f"{exc}; still so after {format_duration(lasted)}")
        elif cold_since is not None and mono - cold_since >= STOP_STORE_PATIENCE:
            self.gave_up = StoreError(f"stopped at once while the store failed: {exc}")
        if self.gave_up is not None:
            raise self.gave_up
        self.failures += 1
        cap = STOPPING_RETRY_MAX if cold_since is not None else STORE_RETRY_MAX
        delay: float = min(cap, FIRST_DELAY * 2**self.failures)
        self.retry_at = mono + delay
        return delay
