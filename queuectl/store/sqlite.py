"""The embedded engine: one SQLite file in WAL mode.

Every verb is one `BEGIN IMMEDIATE` transaction (or part of a `batch()`), so
a crash of any process at any moment leaves the file consistent. Statements
live in sql/sqlite/queries.sql; the schema in numbered migrations beside it.
The verbs themselves are in sqlbase.py and its roles (sql_*.py), shared with PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any

from queuectl import wake
from queuectl.errors import (
    DuplicateRunError,
    NotFoundError,
    StoreBrokenError,
    StoreBusyError,
    StoreDiskError,
    StoreError,
    StoreGoneError,
)
from queuectl.model import SchedulerSeat
from queuectl.paths import make_private_dir
from queuectl.store.contract import Clock
from queuectl.store.queries import load, migrations
from queuectl.store.sql_core import Row
from queuectl.store.sqlbase import SQLStore

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
        """A StoreError of the kind that tells a caller whether trying again can help (see _kind)."""
        return _kind(exc)(f"store {self.location}: {_reason(exc)}")

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

    def change_token(self) -> object:
        """The file's and its WAL's size and time: every commit, by any connection, writes the WAL.

        (PRAGMA data_version only tells a change from the last call on the same connection.)
        """
        marks: list[tuple[int, int, int] | None] = []
        for name in (self.location, self.location + "-wal"):
            try:
                st = os.stat(name)
            except OSError:  # no WAL yet, or an in-memory store
                marks.append(None)
                continue
            marks.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return (tuple(marks), self._db.total_changes)

    def lock_jobs(self) -> None:
        """Inside a batch: a no-op here, since the batch holds the file's one write lock."""

    def lead_scheduling(self, seat: SchedulerSeat, lease: float) -> bool:
        """A lease row: kept by its holder while it renews it, taken by another once it ran out."""
        return self._take_seat(seat, lease)

    # -- health -------------------------------------------------------------
    _identity: tuple[int, int] | None = None  # (device, inode) of the file this connection has open

    def check_identity(self) -> None:
        """Raise StoreGoneError when the path no longer names the file open here (deleted or replaced).

        Writes into a deleted file succeed and are lost: a long-running pool
        calls this on its heartbeat so that it stops rather than work for nobody.
        """
        if self.location == ":memory:":
            return
        if self._identity is None:
            self._identity = _open_file(self.location)
        try:
            st = os.stat(self.location)
            now: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            now = None
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise StoreGoneError(
                f"store {self.location} was {what} while in use: nothing more can be recorded in it; "
                "start the command again on the store that is there now (the runs it held are lost with it)"
            )

    def check_integrity(self) -> None:
        """Raise StoreBrokenError when the file is damaged (reads every page: a few ms per MB)."""
        try:
            rows = self._db.execute("PRAGMA quick_check(1)").fetchall()
        except _ERRORS as exc:
            raise self._error(exc) from None
        if rows and str(rows[0][0]) != "ok":
            found = " ".join(str(rows[0][0]).replace("*** in database main ***", "").split())
            raise StoreBrokenError(f"store {self.location}: {found}; {_BROKEN['SQLITE_CORRUPT']}")

    # -- wake-ups -------------------------------------------------------
    def wake_pools(self) -> None:
        """Wake this machine's idle pools (a datagram each); pools elsewhere poll."""
        host = socket.gethostname()
        pids = [w.pid for w in self.list_workers() if w.host == host]
        if pids:
            wake.notify(self.location, pids)

    def work_signal(self, pid: int) -> wake.Signal:
        return wake.DatagramSignal(self.location, pid)


def _open_file(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at `path` as this process has it open (it may since be gone), else as it is now."""
    real = os.path.realpath(path)
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target in (real, f"{real} (deleted)"):
                st = os.fstat(int(fd))
                return (st.st_dev, st.st_ino)
        except OSError:
            continue
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _make_or_find(path: str, create: bool) -> None:
    """Create an absent store file (0600) and its directories (0700), or say there is none."""
    if os.path.exists(path):
        _close_to_others(path)
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


def _close_to_others(path: str) -> None:
    """Make an older store's files (0644 before queuectl made them private) the owner's only, where they are ours."""
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            info = os.stat(name)
            if info.st_uid == os.geteuid() and info.st_mode & 0o077:
                os.chmod(name, info.st_mode & 0o700)
        except OSError:
            pass  # absent, or not ours to change: SQLite says what it cannot open


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


# SQLite's result codes (their names' first part) that trying again will not cure, with what to do instead.
_BROKEN = {
    "SQLITE_CORRUPT": "the file is damaged: restore it from a backup (or move it away to start an empty store)",
    "SQLITE_NOTADB": "it is not a queuectl store: check --db / QUEUECTL_DB, or restore the file from a backup",
    "SQLITE_READONLY": "it cannot be written: make the file, its -wal and -shm files and its directory writable",
    "SQLITE_CANTOPEN": "check that its directory exists and that the file and directory are readable and writable",
    "SQLITE_PERM": "check the permissions of the file and its directory",
}
_MOVED = "the file was deleted or replaced while in use: start the command again on the store that is there now"
_NOT_OURS = "it is not a queuectl store or its tables were changed: check --db, or restore the file from a backup"
_DISK = "the file system is full or failing: free some space (df) and check the system log"


def _code(exc: BaseException) -> str:
    """SQLite's result code name, extended (SQLITE_READONLY_DBMOVED), or "" for other errors."""
    return str(getattr(exc, "sqlite_errorname", "") or "")


def _family(code: str) -> str:
    """The primary result code of an extended one: SQLITE_IOERR_SHMSIZE -> SQLITE_IOERR."""
    return "_".join(code.split("_")[:2])


def _kind(exc: BaseException) -> type[StoreError]:
    """Busy (another writer holds the lock) passes; a full or failing disk may pass; the rest of _BROKEN will not."""
    code, text = _code(exc), str(exc)
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (not code and ("locked" in text or "busy" in text)):
        return StoreBusyError
    if code.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return StoreDiskError
    if _family(code) in _BROKEN or text.startswith("no such "):
        return StoreBrokenError
    return StoreError


def _advice(exc: BaseException) -> str:
    code = _code(exc)
    if code == "SQLITE_READONLY_DBMOVED":
        return _MOVED
    if code.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        return _DISK
    if str(exc).startswith("no such "):
        return _NOT_OURS
    return _BROKEN.get(_family(code), "")


def _reason(exc: BaseException) -> str:
    """What went wrong, and for an error that will not pass by itself, what to do about it."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    advice = _advice(exc)
    return f"{text}; {advice}" if advice else text
