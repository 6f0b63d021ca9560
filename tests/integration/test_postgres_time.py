"""With PostgreSQL, time is the database server's: a host clock that is off changes nothing."""

from __future__ import annotations

import time

import psycopg
import pytest

from queuectl.model import NewRun
from queuectl.store.postgres import PostgresStore


def test_leases_and_retry_times_follow_the_database_clock_not_the_host_s(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600.0)  # this host's clock is an hour fast
    store = PostgresStore(pg_url)
    try:
        store.enqueue([NewRun("r1", "true", 5, 3, 2.0, 3600.0, None)])
        [claim] = store.claim_runs("w1", "host-a", 1, 30.0)
        run = store.get_run(claim.run_id)
        assert run is not None and run.lease_expires is not None
        with psycopg.connect(pg_url) as conn:
            db_now = conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0]  # type: ignore[index]
        assert abs(run.lease_expires - (db_now + 30.0)) < 5.0  # not an hour late
        assert abs(run.created_at - db_now) < 5.0
        assert abs(store.now() - db_now) < 5.0
        # a pool elsewhere, by the database's clock, has not yet let the lease expire
        assert store.find_expired([]) == []
    finally:
        store.close()
