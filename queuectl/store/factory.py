"""open_store: from a location (a file path or a PostgreSQL URL) to an open, migrated store."""

from __future__ import annotations

import os

from queuectl.errors import StoreError
from queuectl.paths import close_state_dir, default_location
from queuectl.store.contract import Clock, Store
from queuectl.store.urls import check_file_location, is_server_url, mask_url


def open_store(
    location: str | None = None, clock: Clock | None = None, busy_timeout: float = 30.0, *, create: bool = True
) -> Store:
    """Open (migrating as needed) the store at `location`; create it only when `create`.

    A command that only reads passes create=False: a mistyped path then says
    there is no store there, rather than creating an empty one. `busy_timeout`
    is how long one statement waits for another process's write lock; a
    worker pool uses a short one and retries, so that its loop stays responsive.
    """
    location = location or default_location()
    if is_server_url(location):
        try:
            from queuectl.store.postgres import PostgresStore  # deferred: psycopg is optional and heavy
        except ImportError as exc:
            raise StoreError(
                f"cannot use {mask_url(location)}: PostgreSQL support is not installed ({exc}); "
                "install it with: pip install 'queuectl[postgres]'"
            ) from None
        if create:
            close_state_dir()  # this host's logs of the store's runs go there
        return PostgresStore(location, clock=clock, busy_timeout=busy_timeout, create=create)
    check_file_location(location)
    from queuectl.store.sqlite import SQLiteStore  # deferred: sqlite3 and the queries file, only to open a store

    if create and os.path.abspath(os.path.expanduser(location)) == default_location():
        close_state_dir()
    return SQLiteStore(location, clock=clock, busy_timeout=busy_timeout, create=create)
