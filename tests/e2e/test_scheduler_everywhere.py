"""`status` says where the scheduler runs, or warns that none does, on both engines.

(That cron jobs fire wherever a pool runs, once a minute, is in test_cron_minutes.py: the tests that
wait for the wall clock's minutes share one.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Queue, wait_for
from tests.e2e.test_cron_minutes import declare_tick, stop


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_status_says_where_the_scheduler_runs_and_warns_when_none_does(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    q = Queue(tmp_path, db=request.getfixturevalue("pg_url") if engine == "postgresql" else None)
    try:
        jobs, _ = declare_tick(q)
        q("apply", str(jobs))
        warning = "cron job(s) declared but no scheduler runs"
        assert warning in q("status").stdout
        assert q.json("status")["scheduler"]["alive"] is False
        pool = q.start_pool()
        q.wait_pool_registered(pool)
        (pool_id,) = [w["id"] for w in q.json("worker", "status")]
        seen = wait_for(
            lambda: (s := q.json("status")["scheduler"])["pool"] == pool_id and s, what="the pool named as scheduler"
        )
        assert seen["alive"] is True and seen["warning"] is None and seen["last_tick_at"].endswith("Z")
        text = q("status").stdout
        assert f"scheduler: pool {pool_id} on " in text and "last looked" in text
        assert warning not in text
        stop(pool)
        text = q("status").stdout
        assert f"scheduler: none running (the last was pool {pool_id} on " in text
        assert warning in text
    finally:
        q.cleanup()
