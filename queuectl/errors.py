"""One exception root for everything a user can be told about.

The CLI maps a QueueError to one line on stderr and its exit code; nothing else
reaches the user as a traceback.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
LISTS_HINT = "(see 'queuectl list' for runs, 'queuectl list --jobs' for jobs)"  # a not-found error names these


class QueueError(Exception):
    """An error with a message meant for the user and the exit code to use."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(QueueError):
    """The user asked for something malformed (bad JSON, bad value, bad key)."""

    exit_code = EXIT_USAGE


class StoreError(QueueError):
    """The store could not be opened, read or written."""


class StoreBusyError(StoreError):
    """A passing store failure (a lock wait, a deadlock, a lost connection): trying again will do."""


class StoreDiskError(StoreError):
    """The disk under the store is full or failing: it may pass once space is freed; a pool gives up if it lasts."""


class StoreBrokenError(StoreError):
    """The store cannot be used as it is (damaged, read-only, not a queuectl store, deleted): trying again
    will not help. The message names the store and says what to do."""


class StoreGoneError(StoreBrokenError):
    """The store's file was deleted or replaced while in use: what is written to it now is lost."""


class DuplicateRunError(QueueError):
    """A run with that id already exists."""


class NotFoundError(QueueError):
    """No run, worker or key by that name."""


class WrongStateError(QueueError):
    """The run is not in a state the verb applies to (retrying a run that is not dead)."""
