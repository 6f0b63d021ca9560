"""A store with a long history, made through the store's own verbs (the rollups a pool writes included).

    from history import fill            (bench/ on the path)
    fill(store_path, runs=1_000_000, jobs=20, now=time.time())

Runs are enqueued, claimed and settled in batches by the same verbs a pool uses, with a clock
that walks from a day before `now` up to `now`: so they spread over the last day, and every
figure the store keeps beside them (attempts, per-job counts, rollups) is what a real day
would have left. About one run in 25 fails for good (dead, in the DLQ), one in 50 waits
(pending), and every fourth belongs to no job (a one-off enqueue); the others belong to one of
`jobs` cron-less jobs named job-00, job-01, ...
"""

from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from queuectl.model import AttemptResult, NewRun, Outcome  # noqa: E402
from queuectl.store.sqlite import SQLiteStore  # noqa: E402

BATCH = 5_000
DAY = 86_400.0


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fill(path: str, runs: int, jobs: int = 20, now: float | None = None, progress: bool = True) -> None:
    """Add `runs` runs to the SQLite store at `path` (made if absent), spread over the day before `now`."""
    end = time.time() if now is None else now
    clock = _Clock(end - DAY)
    store = SQLiteStore(path, clock=clock)
    step = DAY / max(runs, 1)
    made = 0
    started = time.monotonic()
    try:
        while made < runs:
            count = min(BATCH, runs - made)
            _batch(store, clock, made, count, jobs, step)
            made += count
            if progress and made % 100_000 < BATCH:
                print(f"  {made:,} runs ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    finally:
        store.close()


def _batch(store: SQLiteStore, clock: _Clock, first: int, count: int, jobs: int, step: float) -> None:
    new = [
        NewRun(
            id=f"h{n:08d}",
            command=f"echo run {n}; sleep 0",
            priority=1 if n % 50 == 7 else 5,  # the waiting ones: claimed last, so never in this batch
            max_retries=0,
            backoff_base=2.0,
            backoff_max=3600.0,
            timeout=None,
            job=None if n % 4 == 0 else f"job-{n % jobs:02d}",
        )
        for n in range(first, first + count)
    ]
    store.enqueue(new)
    waiting = sum(1 for n in range(first, first + count) if n % 50 == 7)
    claims = store.claim_runs("bench-pool", "bench", count - waiting, 3600.0)
    results = []
    for claim in claims:
        n = int(claim.run_id[1:])
        clock.now += step
        failed = n % 25 == 3
        results.append(
            AttemptResult(
                claim=claim,
                worker_id="bench-pool",
                pgid=None,
                started_at=clock.now - step * 0.9,
                finished_at=clock.now,
                exit_code=1 if failed else 0,
                outcome=Outcome.FAILED if failed else Outcome.COMPLETED,
                error="exit code 1" if failed else None,
                output_tail=f"run {n}\n",
            )
        )
    store.finish_attempts("bench", results)
