"""Where queuectl keeps its files on this host: the state directory, the default store, attempt logs."""

from __future__ import annotations

import contextlib
import os
from typing import Protocol

POOL_STORE_HANDOFF = "QUEUECTL_POOL_STORE"  # how `worker start --detach` hands its store to the background pool


class StoreLocation(Protocol):
    """What logs_dir needs of a store: its engine and where it is."""

    @property
    def engine(self) -> str: ...

    @property
    def location(self) -> str: ...


def state_dir() -> str:
    """The user's state directory for queuectl (XDG)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "queuectl")


def default_location() -> str:
    return os.path.join(state_dir(), "queue.db")


def make_private_dir(path: str) -> None:
    """Make directory `path` and its missing parents, each one made here 0700 whatever the umask.

    Directories that already exist are left as they are: they are the user's.
    """
    missing = []
    head = os.path.abspath(path)
    while not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue  # made meanwhile by another process: it made it 0700 too
        os.chmod(directory, 0o700)  # the umask may have taken bits from the owner


def close_state_dir() -> None:
    """Make queuectl's own state directory 0700 (older versions made it 0755); create it so if absent."""
    directory = state_dir()
    try:
        info = os.stat(directory)
    except FileNotFoundError:
        make_private_dir(directory)
        return
    except OSError:
        return  # opening the store will say what is wrong
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)


def logs_dir(store: StoreLocation) -> str:
    """Where this host keeps the per-attempt log files of `store`'s runs."""
    if store.engine == "sqlite":
        base, _ = os.path.splitext(store.location)
        return base + "-logs"
    import hashlib  # loads OpenSSL (3 ms): only for a server store, not for every command

    digest = hashlib.sha256(store.location.encode()).hexdigest()[:12]
    return os.path.join(state_dir(), f"logs-{store.engine}-{digest}")
