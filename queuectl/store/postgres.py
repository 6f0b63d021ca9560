"""The server engine: one PostgreSQL database shared by every host.

The verbs are sqlbase.py's (its roles in sql_*.py); this module gives them a psycopg 3 connection.
Statements live in sql/postgres/queries.sql under the same names as SQLite's,
the schema in numbered migrations beside it. What differs from SQLite:

- Claims take rows with `FOR UPDATE SKIP LOCKED`, so pools never wait on each other.
- Time is the database server's (`now()` of the transaction), unless a clock is
  injected (tests), so clock skew between hosts cannot expire leases early.
- Idle pools wait on LISTEN; whoever adds work sends NOTIFY.
- A lost connection is reported as a StoreError (the transaction in flight is
  rolled back by the server) and the next verb connects again; reads outside a
  transaction are retried once on a fresh connection.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import RowMaker

from queuectl.errors import (
    DuplicateRunError,
    NotFoundError,
    StoreBrokenError,
    StoreBusyError,
    StoreDiskError,
    StoreError,
)
from queuectl.model import SchedulerSeat
from queuectl.store.contract import Clock
from queuectl.store.queries import load, migrations
from queuectl.store.sql_core import Row
from queuectl.store.sqlbase import SQLStore
from queuectl.store.urls import mask_url, scrub

_SQL_DIR = os.path.join(os.path.dirname(__file__), "sql", "postgres")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
Q = {name: _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")) for name, sql in load(_SQL_DIR, "queries.sql").items()}
CHANNEL = "queuectl_work"
_PASSING = (pg_errors.DeadlockDetected, pg_errors.LockNotAvailable, pg_errors.SerializationFailure)
# Errors that trying again will not cure, with what to do instead.
_BROKEN: tuple[tuple[type[psycopg.Error], str], ...] = (
    (pg_errors.DataCorrupted, "the database is damaged: restore it from a backup"),
    (pg_errors.IndexCorrupted, "an index is damaged: REINDEX it, or restore the database from a backup"),
    (pg_errors.ReadOnlySqlTransaction, "the server takes no writes (a standby?): point --db at the primary"),
    (pg_errors.InsufficientPrivilege, "the database user lacks a privilege: grant it, or connect as the owner"),
    (pg_errors.UndefinedTable, "it is not a queuectl database or its tables were changed: check --db"),
    (pg_errors.UndefinedColumn, "it is not a queuectl database or its tables were changed: check --db"),
)
MIGRATION_LOCK = 0x71756575  # advisory lock key while the schema is migrated ("queu")
JOBS_LOCK = 0x6A6F6273  # advisory lock key while jobs are applied ("jobs")
LEADER_LOCK = 0x63726F6E  # advisory lock key held by the `up` that schedules cron fires ("cron")
CONNECT_PATIENCE = 5.0  # seconds opening a store waits for a server that is (re)starting


class _Row(tuple[Any, ...]):
    """A row read by position or by column name, like sqlite3.Row."""

    columns: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.columns[key])
        return tuple.__getitem__(self, key)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[_Row]:
    names = [d.name for d in cursor.description or []]
    row_class = type("Row", (_Row,), {"columns": {name: i for i, name in enumerate(names)}})
    return lambda values: row_class(values)


class PostgresStore(SQLStore):
    engine = "postgresql"

    def __init__(
        self, url: str, clock: Clock | None = None, busy_timeout: float = 30.0, *, create: bool = True
    ) -> None:
        self.clock = clock
        self.url = url
        self.location = mask_url(url)
        self.busy_timeout = busy_timeout
        self._conn: psycopg.Connection[_Row] | None = None
        self._tx_now: float | None = None
        self._connect(patience=CONNECT_PATIENCE)
        if not create and self.schema_version() == 0:
            self.close()
            raise NotFoundError(
                f"no queuectl store in database {self.location} yet "
                "(check --db or QUEUECTL_DB; enqueue, apply, worker start or db migrate creates one)"
            )
        self._migrate()

    # -- connection -------------------------------------------------------
    def _connect(self, patience: float = 0.0) -> psycopg.Connection[_Row]:
        """A live connection: the current one, or a new one (retried with backoff for `patience` s)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        self._drop()
        deadline = time.monotonic() + patience
        delay = 0.1
        while True:
            try:
                options = _connect_options(self.url, max(2, int(min(patience, 10))))
                self._conn = psycopg.connect(self.url, row_factory=_row_factory, **options)
                timeout_ms = int(self.busy_timeout * 1000)
                self._conn.execute(f"SET lock_timeout = {timeout_ms:d}")
                self._conn.execute(Q["server_keepalives"])
                return self._conn
            except psycopg.Error as exc:
                self._drop()  # never keep a connection that is only half set up
                if not isinstance(exc, psycopg.OperationalError) or time.monotonic() + delay > deadline:
                    raise StoreError(f"cannot reach database {self.location}: {self._why(exc)}") from None
                time.sleep(delay)  # the server may be starting: wait, then try again
                delay = min(delay * 2, 1.0)

    def _live(self) -> psycopg.Connection[_Row]:
        """The connection to use now: inside a transaction only the one it began on, never a new one."""
        if not self._depth:
            return self._connect()
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            raise StoreBusyError(
                f"lost the connection to {self.location} in a transaction (rolled back); will reconnect"
            )
        return self._conn

    def _drop(self) -> None:
        _close(self._conn)
        self._conn = None

    def close(self) -> None:
        self._drop()

    def _fail(self, exc: psycopg.Error) -> StoreError:
        if self._conn is not None and (self._conn.broken or self._conn.closed):
            self._drop()  # the next verb connects again
            return StoreBusyError(f"lost the connection to {self.location}: {self._why(exc)}; will reconnect")
        if isinstance(exc, _PASSING):
            return StoreBusyError(f"store {self.location}: {self._why(exc)}")
        if isinstance(exc, pg_errors.DiskFull):
            return StoreDiskError(f"store {self.location}: {self._why(exc)}; free space on the database server")
        for kind, advice in _BROKEN:
            if isinstance(exc, kind):
                return StoreBrokenError(f"store {self.location}: {self._why(exc)}; {advice}")
        return StoreError(f"store {self.location}: {self._why(exc)}")

    def _why(self, exc: BaseException) -> str:
        """The driver's reason, without the URL's secrets (libpq may quote the URL or the password)."""
        return scrub(_reason(exc), self.url)

    def check_identity(self) -> None:
        """Nothing to check: a URL names one database for as long as the server keeps it."""

    def check_integrity(self) -> None:
        """Nothing to check: the server checks its own pages as it reads them."""

    # -- transactions -----------------------------------------------------
    def now(self) -> float:
        if self.clock is not None:
            return self.clock()
        if self._depth and self._tx_now is not None:
            return self._tx_now
        value = float(self._read("db_now")[0][0])
        if self._depth:
            self._tx_now = value  # now() is fixed for the whole transaction
        return value

    def _begin(self, write: bool) -> None:
        self._tx_now = None
        begin = "BEGIN" if write else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        try:
            self._connect().execute(begin)
        except psycopg.Error as exc:
            if not (self._conn is not None and self._conn.broken):
                raise self._fail(exc) from None
            # The connection died while idle (a server restart): nothing was done yet, so a new one may go on.
            self._drop()
            try:
                self._connect().execute(begin)
            except psycopg.Error as again:
                raise self._fail(again) from None

    def _execute_plain(self, sql: str) -> None:
        try:
            self._live().execute(sql)
        except psycopg.Error as exc:
            raise self._fail(exc) from None

    def _commit(self) -> None:
        try:
            self._live().execute("COMMIT")
        except psycopg.Error as exc:
            self._rollback()
            raise self._fail(exc) from None

    def _rollback(self) -> None:
        if self._conn is None or self._conn.broken or self._conn.closed:
            return
        try:
            self._conn.execute("ROLLBACK")
        except psycopg.Error:
            pass

    def _execute(self, sql: str, params: dict[str, Any] | None) -> list[Row]:
        conn = self._live()
        try:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            raise self._fail(exc) from None

    def _read(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        try:
            return self._execute(Q[name], params)
        except StoreError:
            if self._depth or self._conn is not None:
                raise
            return self._execute(Q[name], params)  # the connection was lost: once more on a new one

    def _write(self, name: str, params: dict[str, Any]) -> list[Row]:
        return self._execute(Q[name], params)

    def _write_many(self, name: str, rows: Sequence[dict[str, Any]], duplicate_is_error: bool = False) -> int:
        if not rows:
            return 0
        conn = self._live()
        try:
            with conn.cursor() as cur:
                cur.executemany(Q[name], rows)
                return max(cur.rowcount, 0)
        except pg_errors.UniqueViolation as exc:
            if duplicate_is_error:
                raise DuplicateRunError(f"duplicate id: {_reason(exc)}") from None
            raise self._fail(exc) from None
        except psycopg.Error as exc:
            raise self._fail(exc) from None

    def _write_rollups(self, rows: list[dict[str, Any]], minute: dict[str, Any] | None) -> None:
        # Both rollups in one statement (add_rollups): a settle already makes several round trips.
        nothing = {"minute": None, "shard": 0, "completed": 0, "failed": 0}
        self._write("add_rollups", {"totals": json.dumps(rows), **(minute or nothing)})

    # -- schema -----------------------------------------------------------
    def _migration_steps(self) -> list[tuple[int, str]]:
        return migrations(_SQL_DIR)

    def _before_migration(self) -> None:
        # one process migrates; the others wait here, then find the work done
        self._write("xact_lock", {"key": MIGRATION_LOCK})
        self._run_script("CREATE TABLE IF NOT EXISTS queuectl_schema (version integer NOT NULL)")

    def _run_script(self, script: str) -> None:
        self._execute_plain(script)

    def _set_schema_version(self, version: int) -> None:
        self._run_script("DELETE FROM queuectl_schema")
        self._write("set_schema_version", {"version": version})

    def schema_version(self) -> int:
        rows = self._read("schema_version")
        if not rows[0][0]:
            return 0
        version = self._read("schema_version_value")
        return int(version[0][0]) if version else 0

    def data_token(self) -> object:
        """Changes when a transaction that added, changed or removed a job has committed."""
        return tuple(self._read("jobs_token")[0])

    def change_token(self) -> object:
        """The server's transaction snapshot: it moves whenever a transaction that writes starts or ends."""
        return str(self._read("change_token")[0][0])

    def lock_jobs(self) -> None:
        """Inside a batch: other processes' lock_jobs wait until it ends (apply is one at a time)."""
        self._write("xact_lock", {"key": JOBS_LOCK})

    def lead_scheduling(self, seat: SchedulerSeat, lease: float) -> bool:
        """Hold a session advisory lock: released by the server when this connection ends (a dead leader).

        The leader also writes the seat's row, so that `status` can say who schedules and when it looked.
        """
        held = bool(self._read("leader_held", {"key": LEADER_LOCK})[0][0])
        if not held and not self._read("leader_take", {"key": LEADER_LOCK})[0][0]:
            return False
        self._take_seat(seat, lease)
        return True

    # -- wake-ups ---------------------------------------------------------
    def wake_pools(self) -> None:
        try:
            self._read("notify_work", {"channel": CHANNEL})
        except StoreError:
            pass  # best effort: pools poll anyway

    def work_signal(self, pid: int) -> NotifySignal:
        return NotifySignal(self.url)


class NotifySignal:
    """LISTEN on a connection of its own; readable when another process sent NOTIFY."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self.repair()

    def repair(self) -> None:
        self.close()
        try:
            self._conn = psycopg.connect(self.url, **_connect_options(self.url, 2))
            self._conn.execute(Q["server_keepalives"])
            self._conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            self.close()  # the server is away: the pool polls, and repairs this at its next heartbeat

    def broken(self) -> bool:
        return self._conn is None or self._conn.closed or self._conn.broken

    def fileno(self) -> int:
        return -1 if self._conn is None else self._conn.pgconn.socket

    def drain(self) -> None:
        if self._conn is None:
            return
        try:
            # take what arrived without blocking: notifies(timeout=0) stops once nothing is pending
            for _ in self._conn.notifies(timeout=0, stop_after=10_000):
                pass
        except psycopg.Error:
            self.close()  # the server went away: repaired at the pool's next heartbeat

    def close(self) -> None:
        _close(self._conn)
        self._conn = None


def _connect_options(url: str, timeout: int) -> dict[str, Any]:
    """Connection settings: a dead peer (a host gone, a cut network) is noticed within seconds, not hours.

    TCP keepalives on our side; the server's side is set per session (server_keepalives), so
    that a dead leader's session ends, freeing its advisory lock for another `up`.
    The URL's own settings win over these.
    """
    ours = {
        "connect_timeout": timeout,
        "application_name": "queuectl",
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }
    given = conninfo_to_dict(url)  # raises ProgrammingError for a malformed URL, said as such
    return {"autocommit": True, **{key: value for key, value in ours.items() if key not in given}}


def _close(conn: psycopg.Connection[Any] | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except psycopg.Error:
            pass  # closing what is already broken


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
