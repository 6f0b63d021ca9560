"""The store contract's roles: each verb in exactly one role, and every engine doing every verb itself."""

from __future__ import annotations

from typing import Any

import pytest

from queuectl.store.contract import JobCatalogue, PoolRegistry, RunQueue, SchedulerState, Settings, Store, StoreCore
from queuectl.store.sql_jobs import SQLJobCatalogue
from queuectl.store.sql_pools import SQLPoolRegistry
from queuectl.store.sql_runs import SQLRunQueue
from queuectl.store.sql_scheduler import SQLSchedulerState
from queuectl.store.sql_settings import SQLSettings
from queuectl.store.sqlite import SQLiteStore

ROLES: list[Any] = [StoreCore, RunQueue, PoolRegistry, JobCatalogue, SchedulerState, Settings]


def declared(protocol: Any) -> set[str]:
    """The members a protocol declares itself (not those of the protocols it extends)."""
    names = {name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")}
    return names | set(getattr(protocol, "__annotations__", {}))


def members(protocol: Any) -> set[str]:
    """Every member of a protocol, its own and those of the protocols it extends."""
    return set().union(*(declared(base) for base in protocol.__mro__ if base in (*ROLES, Store)))


def test_every_verb_of_the_store_is_in_exactly_one_role() -> None:
    seen: dict[str, Any] = {}
    for role in ROLES:
        for name in declared(role):
            assert name not in seen, f"{name} is in both {seen[name].__name__} and {role.__name__}"
            seen[name] = role
    assert declared(Store) == set()  # Store only joins the roles
    assert members(Store) == set(seen)
    assert {"location", "url", "engine"} <= set(seen)


@pytest.mark.parametrize(
    ("sql_class", "role"),
    [
        (SQLRunQueue, RunQueue),
        (SQLPoolRegistry, PoolRegistry),
        (SQLJobCatalogue, JobCatalogue),
        (SQLSchedulerState, SchedulerState),
        (SQLSettings, Settings),
    ],
)
def test_each_sql_role_declares_the_protocol_it_implements(sql_class: Any, role: Any) -> None:
    assert role in sql_class.__mro__
    assert StoreCore in sql_class.__mro__


def engines() -> list[Any]:
    found: list[Any] = [SQLiteStore]
    try:
        from queuectl.store.postgres import PostgresStore  # psycopg is optional
    except ImportError:
        return found
    return [*found, PostgresStore]


@pytest.mark.parametrize("engine", engines(), ids=lambda engine: str(engine.engine))
def test_no_verb_of_an_engine_falls_back_to_a_protocol_stub(engine: Any) -> None:
    """A verb an engine lacks would silently return None from the protocol's empty body: each is real code."""
    verbs = {name for name in members(Store) if callable(getattr(Store, name, None))}
    # 54, the scheduler's seat (2), latest_job_run, cancel_runs, metric_attempts, job_counts, run_ids, scheduled_runs,
    # delete_dead, search_runs, fire_runs, change_token, run_totals, minute_counts, newer_schema
    assert len(verbs) == 69
    for name in sorted(verbs):
        owner = next(klass for klass in engine.__mro__ if name in vars(klass))
        assert owner not in (*ROLES, Store), f"{engine.__name__}.{name} is only the protocol's {owner.__name__}"
