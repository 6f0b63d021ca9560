"""What every SQL role stands on: the engine hooks, transactions and migrations.

An engine (sqlite.py, postgres.py) supplies the connection, its transactions,
its error types and a queries file in which every statement has the same name
and the same named parameters; the roles (sql_runs.py, sql_pools.py, ...) run
those statements by name. Each verb is one transaction, or joins the `batch()`
it is called in.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from queuectl.errors import StoreError
from queuectl.store.contract import Clock, StoreCore

Row = Any  # an engine's row: read by column name and by position


def chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLCore(StoreCore):
    """Transactions and migrations over the engine hooks; subclasses provide the hooks."""

    location: str
    url: str
    clock: Clock | None

    # -- engine hooks -----------------------------------------------------
    def close(self) -> None:
        raise NotImplementedError

    def _begin(self, write: bool) -> None:
        """Start a transaction: a write one (taking what the engine needs to write) or a read-only snapshot."""
        raise NotImplementedError

    def _commit(self) -> None:
        """Commit; on failure roll back and raise StoreError."""
        raise NotImplementedError

    def _rollback(self) -> None:
        """Roll back, quietly (there may be nothing to roll back)."""
        raise NotImplementedError

    def _read(self, name: str, params: dict[str, Any] | None = None) -> list[Row]:
        raise NotImplementedError

    def _write(self, name: str, params: dict[str, Any]) -> list[Row]:
        """Run a named statement; the rows it returns (RETURNING), if any."""
        raise NotImplementedError

    def _write_many(self, name: str, rows: Sequence[dict[str, Any]], duplicate_is_error: bool = False) -> int:
        """Run a named statement once per parameter set; how many rows it changed.

        With `duplicate_is_error`, a unique-key violation raises DuplicateRunError.
        """
        raise NotImplementedError

    def now(self) -> float:
        """The store's time: the injected clock, else the engine's (the database server's)."""
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def _migration_steps(self) -> list[tuple[int, str]]:
        """(version, script) of every numbered migration of the engine, in order."""
        raise NotImplementedError

    def newer_schema(self) -> int | None:
        known = getattr(self, "_known_schema", None)
        if known is None:  # the migration files are read once a connection, not on every heartbeat
            known = self._known_schema = self._migration_steps()[-1][0]
        current = self.schema_version()
        return current if current > known else None

    def _before_migration(self) -> None:
        """Inside the migration's transaction, first: make the version readable, keep others out."""

    def _run_script(self, script: str) -> None:
        raise NotImplementedError

    def _set_schema_version(self, version: int) -> None:
        raise NotImplementedError

    def _migrate(self) -> None:
        """Bring the schema up to date in one transaction (several processes may try at once)."""
        steps = self._migration_steps()
        latest = steps[-1][0]
        if self.schema_version() == latest:
            return
        with self.batch():
            self._before_migration()
            current = self.schema_version()
            if current > latest:
                raise StoreError(
                    f"store {self.location} has schema version {current}, newer than this "
                    f"queuectl knows ({latest}): upgrade queuectl"
                )
            for version, script in steps:
                if version > current:
                    self._run_script(script)
            self._set_schema_version(latest)

    def _now(self) -> float:
        return self.now()

    # -- transactions -------------------------------------------------------
    _depth = 0  # how many batch() levels are open: the outermost owns the transaction

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One write transaction; verbs called inside it join it."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin(write=True)
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        self._commit()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a batch: on an error, undo only what was done within (the batch goes on)."""
        self._savepoints += 1
        name = f"queuectl_{self._savepoints}"
        self._execute_plain(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._execute_plain(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        self._execute_plain(f"RELEASE SAVEPOINT {name}")

    _savepoints = 0

    def _execute_plain(self, sql: str) -> None:
        """Run a fixed statement of the engine's transaction control."""
        raise NotImplementedError

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One consistent view for several reads, without blocking writers."""
        if self._depth:
            yield  # inside a transaction already
            return
        self._begin(write=False)
        self._depth = 1
        try:
            yield
        finally:
            self._depth = 0
            self._rollback()  # nothing was written: ending the read is all
