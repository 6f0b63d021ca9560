"""The store: everything above it speaks the verbs of contract.py, never SQL.

- contract.py: the role protocols (RunQueue, PoolRegistry, JobCatalogue,
  SchedulerState, Settings, each over StoreCore) and `Store`, all of them.
- factory.py: `open_store`, from a location to an open, migrated store.
- urls.py: store locations, passwords masked or left out.
- sql_core.py: what every SQL role stands on (engine hooks, transactions,
  migrations); sql_runs.py, sql_pools.py, sql_jobs.py, sql_scheduler.py,
  sql_settings.py: one role each, written once for every SQL engine;
  sql_rows.py: rows to model values; sqlbase.py: `SQLStore`, all roles.
- sqlite.py, postgres.py: the engines; queries.py loads sql/<engine>/.

`Store` and `open_store` are re-exported here for callers that want the
store whole; code inside the package imports them from where they live.
"""

from queuectl.store.contract import Store
from queuectl.store.factory import open_store

__all__ = ["Store", "open_store"]
