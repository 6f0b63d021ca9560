"""The embedded engine: one SQLite file in WAL mode.

Every verb is one `BEGIN IMMEDIATE` transaction (or part of a `batch()`), so
a crash of any process at any moment leaves the file consistent. Statements
live in sql/sqlite/queries.sql; the schema in numbered migrations beside it.
The verbs themselves are in sqlbase.py, shared with PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

from queuectl import wake
from queuectl.errors import DuplicateRunError, NotFoundError, StoreBusyError, StoreError
from queuectl.store import Clock
from queuectl.store.queries import load, migrations
from queuectl.store.sqlbase import Row, SQLStore

_SQL_DIR = os.path.join(os.path.dirname(__file__), "sql", "sqlite")
Q = load(_SQL_DIR, "queries.sql")
_ERRORS = (sqlite3.Error, OverflowError, UnicodeError)


class SQLiteStore(SQLStore):
    engine = "sqlite"

    def __init__(
        self, path: str, clock: Clock | None = None, busy_timeout: float = 30.0, *, create: bool = True
    ) -> None:
        """Open the store file at `path`; when `create`, make it (0600, in 0700 directories) if absent.

        SQLite gives the -wal and -shm files the mode of the database file, so
        making that one 0600 before SQLite opens it keeps all three private.
        """
        self.clock = clock
        memory = path == ":memory:"  # for tests that want a throwaway store; the CLI refuses it
        self.location = path if memory else os.path.abspath(os.path.expanduser(path))
        self.url = self.location
        try:
            if not memory:
                _make_or_find(self.location, create)
            self._db = sqlite3.connect(
                self.location, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if not memory and str(mode).lower() != "wal":
                raise StoreError(f"cannot open store {self.location}: WAL mode unavailable ({mode})")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.location}: {_reason(exc)}") from None

    # -- plumbing -------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def _error(self, exc: BaseException) -> StoreError:
        """A StoreError; one that says the file is busy (another writer) passes and may be tried again."""
        busy = isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc))
        return (StoreBusyError if busy else StoreError)(f"store {self.location}: {_reason(exc)}")

    def now(self) -> float:
        return self.clock() if self.clock is not None else time.time()

    def _begin(self, write: bool) -> None:
        try:
            # IMMEDIATE takes the file's write lock at once; DEFERRED reads without blocking writers (WAL)
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
        except _ERRORS as exc:
            raise self._error(exc) from None

    def _execute_plain(self, sql: str) -> None:
        try:
            self._db.execute(sql)
        except _ERRORS as exc:
            raise self._error(exc) from None

    def _commit(self) -> None:
        try:
            self._db.execute("COMMIT")
        except _ERRORS as exc:
            self._rollback()
            raise self._error(exc) from None

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left to roll back

    def _read(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        try:
            return self._db.execute(Q[name], params or {}).fetchall()
        except _ERRORS as exc:
            raise self._error(exc) from None

    def _write(self, name: str, params: dict[str, Any]) -> list[Row]:
        return self._read(name, params)

    def _write_many(self, name: str, rows: Sequence[dict[str, Any]], duplicate_is_error: bool = False) -> int:
        if not rows:
            return 0
        try:
            return self._db.executemany(Q[name], rows).rowcount
        except sqlite3.IntegrityError as exc:
            if duplicate_is_error:
                raise DuplicateRunError(f"duplicate id: {_reason(exc)}") from None
            raise self._error(exc) from None
        except _ERRORS as exc:
            raise self._error(exc) from None

    def _migration_steps(self) -> list[tuple[int, str]]:
        return migrations(_SQL_DIR)

    def _run_script(self, script: str) -> None:
        for statement in _statements(script):
            self._db.execute(statement)

    def _set_schema_version(self, version: int) -> None:
        self._db.execute(f"PRAGMA user_version = {version:d}")

    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def data_token(self) -> object:
        """Changes whenever any connection has committed a change to the store since the last call."""
        try:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        return (version, self._db.total_changes)

    def lock_jobs(self) -> None:
        """Inside a batch: a no-op here, since the batch holds the file's one write lock."""

    def lead_scheduling(self) -> bool:
        """Always: on one machine every `up` may schedule; a fire still makes one run (unique per time)."""
        return True

    # -- wake-ups -------------------------------------------------------
    def wake_pools(self) -> None:
        """Wake this machine's idle pools (a datagram each); pools elsewhere poll."""
        host = socket.gethostname()
        pids = [w.pid for w in self.list_workers() if w.host == host]
        if pids:
            wake.notify(self.location, pids)

    def work_signal(self, pid: int) -> wake.Signal:
        return wake.DatagramSignal(self.location, pid)

def _make_or_find(path: str, create: bool) -> None:
    """Create an absent store file (0600) and its directories (0700), or say there is none."""
    from queuectl.store import make_private_dir

    if os.path.exists(path):
        return
    if not create:
        raise NotFoundError(
            f"no store at {path} yet (check --db or QUEUECTL_DB; enqueue, apply or worker start creates one)"
        )
    make_private_dir(os.path.dirname(path))
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass  # another process made it meanwhile


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
