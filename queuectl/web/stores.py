"""The store a request reads: its own connection, opened for it and closed after it.

Every handler of the dashboard (API, pages, live streams, actions) opens the store through
`opened`, so nothing is shared between the threads Starlette runs handlers in, and a slow
or stuck browser holds no connection between two requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from queuectl.store.contract import Store
from queuectl.store.factory import open_store

BUSY_TIMEOUT = 5.0  # seconds a request waits for a pool's write lock before it answers with an error


@contextmanager
def opened(location: str | None) -> Iterator[Store]:
    """The store at `location` (None: the default one), never created here, closed when the request is done."""
    store = open_store(location, busy_timeout=BUSY_TIMEOUT, create=False)
    try:
        yield store
    finally:
        store.close()
