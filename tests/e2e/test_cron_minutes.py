"""Cron jobs fire at cron's real minutes, once each, wherever pools run.

These are the only tests that must wait for the wall clock's next minute, so they share it: every
store below is set up first, then one minute's fire is checked on all of them together, and one
more minute shows the PostgreSQL standby taking over. (Separately they held three xdist workers
idle for a minute each.) In-process tests with an injected clock cover the election's details
(tests/integration/test_scheduler_seat.py); these prove it with real `queuectl` processes:

- `apply` + one `worker start` fires a `* * * * *` job at the next minute (SQLite);
- two pools on one SQLite store, and two on one PostgreSQL store, fire each minute once, and
  exactly one of them says it stands by;
- two `up` processes on one PostgreSQL store fire each minute once, and when the scheduling one
  is killed, the other takes over within seconds and fires the next minute.

Each fire appends its time to a file, so a minute fired twice, or never, shows in the file.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import QUEUECTL, Queue, wait_for

NEXT_MINUTE = 75.0  # a `* * * * *` job fires within a minute of the pool's start (and runs in a second)


def declare_tick(q: Queue) -> tuple[Path, Path]:
    """A jobs directory holding a job that appends its fire's time to a file every minute; both paths."""
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    out = q.tmp / "fires.txt"
    (jobs / "tick.toml").write_text(f'command = "date +%s >> {out}"\ncron = "* * * * *"\ntimezone = "UTC"\n')
    return jobs, out


def minutes(out: Path) -> Counter[int]:
    return Counter(int(t) // 60 for t in out.read_text().split()) if out.exists() else Counter()


def completed_fires(q: Queue) -> list[dict[str, Any]]:
    return [r for r in q.json("list") if r["job"] == "tick" and r["state"] == "completed"]


def each_minute_once(out: Path) -> Counter[int]:
    fired = minutes(out)
    assert fired and set(fired.values()) == {1}, f"a minute fired twice, or none did: {fired}"
    return fired


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return output


def start_up(q: Queue, jobs: Path, log: Path) -> subprocess.Popen[str]:
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [*QUEUECTL, "up", str(jobs), "--workers", "2"],
            env=q.env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=q.tmp,
            start_new_session=True,
        )
    q.procs.append(proc)
    return proc


class Pools:
    """`apply` then N `worker start` pools on one store, firing the tick job."""

    def __init__(self, q: Queue, count: int) -> None:
        self.q = q
        jobs, self.out = declare_tick(q)
        q("apply", str(jobs))
        self.pools = [q.start_pool() for _ in range(count)]

    def fired(self) -> bool:
        return bool(completed_fires(self.q))

    def check(self) -> None:
        outputs = [stop(pool) for pool in self.pools]
        each_minute_once(self.out)
        assert [r["attempts"] for r in completed_fires(self.q)] == [1] * len(completed_fires(self.q))
        assert all("fire      tick." in o or "standing by" in o for o in outputs), outputs
        assert sum("fire      tick." in o for o in outputs) >= 1, outputs
        if len(outputs) > 1:
            assert ["standing by" in output for output in outputs].count(True) == 1, outputs


class TwoUps:
    """Two `up` processes on one store: one schedules, the other stands by and takes over."""

    def __init__(self, q: Queue) -> None:
        self.q = q
        jobs, self.out = declare_tick(q)
        self.logs = [q.tmp / f"up{i}.log" for i in range(2)]
        self.ups = [start_up(q, jobs, log) for log in self.logs]

    def settled(self) -> int:
        """Wait until both watch and one stands by; the index of the standby."""
        wait_for(lambda: all(log.exists() and "watching" in log.read_text() for log in self.logs), what="both up")
        standing = wait_for(
            lambda: [i for i, log in enumerate(self.logs) if "standing by" in log.read_text()], what="a standby"
        )
        assert len(standing) == 1, [log.read_text() for log in self.logs]
        return standing[0]

    def completed(self) -> list[dict[str, Any]]:
        return completed_fires(self.q)

    def kill_leader(self, standby: int) -> float:
        """SIGKILL the scheduling `up`; seconds until the standby says it takes over."""
        leader = self.ups[1 - standby]
        leader.send_signal(signal.SIGKILL)
        leader.wait()
        started = time.monotonic()
        wait_for(lambda: "taking over" in self.logs[standby].read_text(), timeout=30, what="takeover")
        return time.monotonic() - started


def test_cron_minutes_fire_once_wherever_pools_run_and_a_standby_takes_over(tmp_path: Path, pg_server: Any) -> None:
    stores = {name: tmp_path / name for name in ("one", "sqlite", "postgresql", "ups")}
    for path in stores.values():
        path.mkdir()
    one = Queue(stores["one"])
    two_sqlite = Queue(stores["sqlite"])
    two_pg = Queue(stores["postgresql"], db=str(pg_server.create_database()))
    ups_q = Queue(stores["ups"], db=str(pg_server.create_database()))
    try:
        single, sqlite_pair, pg_pair = Pools(one, 1), Pools(two_sqlite, 2), Pools(two_pg, 2)
        ups = TwoUps(ups_q)
        standby = ups.settled()
        # the first fire recorded as completed (not only executed): a leader killed between the two
        # would rightly have it run again (at least once), which is not what this test is about
        # the fire files first (reading a file costs nothing), then the stores (each look is a process)
        outs = [single.out, sqlite_pair.out, pg_pair.out, ups.out]
        wait_for(lambda: all(map(minutes, outs)), timeout=NEXT_MINUTE, interval=0.2, what="a fire on every store")
        wait_for(
            lambda: single.fired() and sqlite_pair.fired() and pg_pair.fired() and ups.completed(),
            what="those fires recorded as completed",
        )
        single.check()
        sqlite_pair.check()
        pg_pair.check()
        took = ups.kill_leader(standby)
        wait_for(lambda: len(minutes(ups.out)) >= 2, timeout=80, interval=0.2, what="a fire after the takeover")
        wait_for(lambda: len(ups.completed()) >= 2, what="the fire after the takeover recorded as completed")
        completed = ups.completed()
        assert [r["attempts"] for r in completed] == [1] * len(completed)
        assert sum(each_minute_once(ups.out).values()) >= len(completed)
        assert took < 10
        stop(ups.ups[standby])
    finally:
        for q in (one, two_sqlite, two_pg, ups_q):
            q.cleanup()
