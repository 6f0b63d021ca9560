"""Faults between a pool and PostgreSQL: a commit whose answer never came back."""

from __future__ import annotations

import time

from queuectl.errors import StoreError
from queuectl.model import NewRun
from queuectl.pool import Pool
from queuectl.store.postgres import PostgresStore


class LosesACommitAnswer(PostgresStore):
    """Commits the first transaction that claims runs, then reports the connection lost (as a cut network would)."""

    armed = True
    lose_next_commit = False

    def claim_runs(  # type: ignore[override]
        self, worker_id: str, host: str, limit: int, lease_seconds: float, aging: float = 0.0
    ) -> list:  # type: ignore[type-arg]
        claims = super().claim_runs(worker_id, host, limit, lease_seconds, aging)
        if self.armed and claims:
            self.armed, self.lose_next_commit = False, True
        return claims

    def _commit(self) -> None:
        super()._commit()
        if self.lose_next_commit:
            self.lose_next_commit = False
            raise StoreError("lost the connection (injected after the commit); will reconnect")


def test_runs_claimed_by_a_commit_whose_answer_was_lost_are_given_back_and_run(pg_url: str) -> None:
    store = LosesACommitAnswer(pg_url)
    try:
        store.enqueue([NewRun(f"r{i}", "true", 5, 3, 2.0, 3600.0, None) for i in range(4)])
        pool = Pool(store, 2, burst=True, log=None)
        pool.start()
        deadline = time.monotonic() + 60
        try:
            while pool.run_once(max_wait=0.1):
                assert time.monotonic() < deadline, f"still going: {store.counts()}"
        finally:
            pool.close()
        assert not store.armed  # the fault did happen
        counts = store.counts()
        assert counts["completed"] == 4 and counts["running"] == 0, counts
        assert store.held_runs(pool.id) == []
    finally:
        store.close()


def test_several_processes_opening_a_fresh_database_at_once_migrate_it_once(pg_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def open_and_read(_: int) -> int:
        store = PostgresStore(pg_url)
        try:
            return store.schema_version()
        finally:
            store.close()

    with ThreadPoolExecutor(8) as pool:
        versions = list(pool.map(open_and_read, range(8)))
    assert len(set(versions)) == 1 and versions[0] >= 4
