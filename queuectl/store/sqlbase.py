"""The store's verbs, written once for every SQL engine: `SQLStore`, every role in one class.

Each role is a module of its own (sql_runs.py, sql_pools.py, sql_jobs.py,
sql_scheduler.py, sql_settings.py), each class declaring the protocol of
contract.py it implements, so that mypy checks it does; all stand on
sql_core.py. An engine (sqlite.py, postgres.py) subclasses `SQLStore` and
supplies the connection, the hooks of `SQLCore` and what only it can do
(wake-ups, health checks, scheduling leadership, locks).
"""

from __future__ import annotations

from queuectl.store.contract import Store
from queuectl.store.sql_jobs import SQLJobCatalogue
from queuectl.store.sql_pools import SQLPoolRegistry
from queuectl.store.sql_runs import SQLRunQueue
from queuectl.store.sql_scheduler import SQLSchedulerState
from queuectl.store.sql_settings import SQLSettings


class SQLStore(SQLRunQueue, SQLPoolRegistry, SQLJobCatalogue, SQLSchedulerState, SQLSettings, Store):
    """Every role over one engine connection; an engine subclasses it."""
