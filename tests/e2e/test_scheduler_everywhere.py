"""Cron jobs fire wherever a pool runs: `apply` + `worker start` fires them as `up` does, the pools
on one store elect one scheduler among themselves (a minute fires once), and `status` says
where the scheduler runs, or warns that none does.

Real `queuectl` processes on a real store; each fire appends the time to a file, so a minute
fired twice, or never, shows in the file.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_for

NEXT_MINUTE = 75.0  # a `* * * * *` job fires within a minute of the pool's start (and runs in a second)


def declare_tick(q: Queue, tmp: Path) -> Path:
    """Apply a job that appends its fire's minute to a file every minute; the file."""
    jobs = tmp / "jobs.d"
    jobs.mkdir()
    out = tmp / "fires.txt"
    (jobs / "tick.toml").write_text(f'command = "date +%s >> {out}"\ncron = "* * * * *"\ntimezone = "UTC"\n')
    q("apply", str(jobs))
    return out


def minutes(out: Path) -> Counter[int]:
    return Counter(int(t) // 60 for t in out.read_text().split()) if out.exists() else Counter()


def completed_fires(q: Queue) -> list[dict[str, Any]]:
    return [r for r in q.json("list") if r["job"] == "tick" and r["state"] == "completed"]


def stop(pool: subprocess.Popen[str]) -> str:
    pool.send_signal(signal.SIGTERM)
    output, _ = pool.communicate(timeout=60)
    assert pool.returncode == 0, output
    return output


def test_apply_then_worker_start_fires_a_cron_job_at_the_next_minute(q: Queue, tmp_path: Path) -> None:
    out = declare_tick(q, tmp_path)
    pool = q.start_pool()
    wait_for(lambda: completed_fires(q), timeout=NEXT_MINUTE, interval=0.5, what="the first fire run by the pool")
    assert sum(minutes(out).values()) == 1
    output = stop(pool)
    assert "fire      tick." in output


def two_pools_fire_each_minute_once(q: Queue, tmp_path: Path) -> None:
    out = declare_tick(q, tmp_path)
    pools = [q.start_pool() for _ in range(2)]
    # One minute's fire shows it: both pools look at the schedule every 2 s, only one may fire it.
    wait_for(lambda: completed_fires(q), timeout=NEXT_MINUTE, interval=0.5, what="the minute fired")
    outputs = [stop(pool) for pool in pools]
    fired = minutes(out)
    assert fired and set(fired.values()) == {1}, f"a minute fired twice: {fired}"
    assert [r["attempts"] for r in completed_fires(q)] == [1] * len(completed_fires(q))
    assert ["standing by" in output for output in outputs].count(True) == 1, outputs


def test_two_pools_on_one_sqlite_store_fire_each_minute_once(q: Queue, tmp_path: Path) -> None:
    two_pools_fire_each_minute_once(q, tmp_path)


def test_two_pools_on_one_postgresql_store_fire_each_minute_once(tmp_path: Path, pg_url: str) -> None:
    pq = Queue(tmp_path, db=pg_url)
    try:
        two_pools_fire_each_minute_once(pq, tmp_path)
    finally:
        pq.cleanup()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_status_says_where_the_scheduler_runs_and_warns_when_none_does(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    q = Queue(tmp_path, db=request.getfixturevalue("pg_url") if engine == "postgresql" else None)
    try:
        declare_tick(q, tmp_path)
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
