"""Runs listing benchmark: one page of /api/runs with a job filter and with a text search, at a million runs.

    python bench/runs_query.py [--runs 1000000] [--requests 30] [--db PATH] [--before]

Fills a SQLite store through the store's own verbs, in batches of BATCH runs (each batch one
transaction, a second later than the one before): runs of JOBS declared jobs (one job in JOBS
runs `pg_dump`, the others `echo`), a rare job with RARE runs among the first, and runs of no job;
most of them then run (claimed and settled as a pool would, attempts recorded), so that the table
and its attempts look like a store that has worked for a while. `--db PATH` keeps the store there
and reuses it on the next run.

Then it times requests to the dashboard's app in this process (Starlette's TestClient: routing,
the store read, the JSON), each on a connection of its own as the dashboard opens them, and prints
p50 and p99 of `--requests` requests each:

- `/api/runs?order=newest&limit=50`: the first page of the runs page.
- `?job=NAME` of a common job and of the rare one (whose newest runs are most of the table back),
  and the last page of the common job's (a cursor deep in its history: its 50 oldest runs).
- `?text=` of a text on most pages (`pg_dump`: the page fills at once), of a text found nowhere
  (the search looks at its SEARCH_SCAN runs and stops: the worst case), and with a job.

Then a cron job's timeline (the service, no HTTP): an every-minute job with a run for each of the
last day's 1,440 fires among the million.

`--before` also times the job filter as it was before it became one indexed query (every run
read, oldest first, and those of the job kept, in Python), once, for a job with no runs: the
whole table read.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
warnings.filterwarnings("ignore", message="Using `httpx`")  # Starlette's test client on httpx

from starlette.testclient import TestClient  # noqa: E402

from queuectl.model import AttemptResult, JobSpec, NewRun, Outcome  # noqa: E402
from queuectl.scheduler import schedule_hash  # noqa: E402
from queuectl.services import runs as run_service  # noqa: E402
from queuectl.services.timeline import timeline  # noqa: E402
from queuectl.store.factory import open_store  # noqa: E402
from queuectl.web.app import create_app  # noqa: E402

BATCH = 5000
JOBS = 20
RARE = 200
T0 = 1_700_000_000.0


def new_run(n: int, job: str | None, command: str) -> NewRun:
    return NewRun(f"r{n:07d}", command, 5, 0, 2.0, 60.0, None, job=job, scheduled_for=T0 + n if job else None)


def fill(path: str, total: int) -> None:
    clock = [T0]
    store = open_store(path, clock=lambda: clock[0])
    try:
        names = [f"job-{j:02d}" for j in range(JOBS)]
        for name in [*names, "rare", "idle"]:
            store.put_job(JobSpec(name=name, command="true"), "/jobs", f"/jobs/{name}.toml", "h")
        started = time.perf_counter()
        for first in range(0, total, BATCH):
            batch = []
            for n in range(first, min(first + BATCH, total)):
                if n < RARE * 1000 and n % 1000 == 0:
                    batch.append(new_run(n, "rare", f"echo rare {n}"))
                elif n % 4 == 3:
                    batch.append(new_run(n, None, f"echo by hand {n} >> /tmp/out.log"))
                else:
                    job = names[n % JOBS]
                    batch.append(new_run(n, job, "pg_dump app > /backups/app.sql" if job == names[0] else f"echo {n}"))
            store.enqueue([r for r in batch if r.job is None])
            store.add_job_runs([r for r in batch if r.job is not None])
            clock[0] += 60.0
            settle(store, len(batch) - 50, clock[0])  # most run; a few wait
            if first // BATCH % 20 == 0:
                print(f"  {first + len(batch):>9,} runs in {time.perf_counter() - started:6.1f} s", file=sys.stderr)
        minutely(store, clock)
    finally:
        store.close()


def minutely(store: Any, clock: list[float]) -> None:
    """An every-minute cron job with a run for each fire of the last day, each started a second after it."""
    spec = JobSpec(name="minutely", command="true", cron="* * * * *", timezone="UTC")
    store.put_job(spec, "/jobs", "/jobs/minutely.toml", "h")
    now = clock[0] - clock[0] % 60
    store.set_fires("minutely", now, now + 60, now - 2 * 86400, schedule_hash(store.get_job("minutely")))
    fires = [now - 60 * k for k in range(1440, -1, -1)]
    runs = [NewRun(f"m{int(f)}", "true", 10, 0, 2.0, 60.0, None, f, "minutely", scheduled_for=f) for f in fires]
    store.add_job_runs(runs)  # priority 10: claimed before the runs left waiting, fire by fire
    for fire in fires[:-1]:
        clock[0] = fire + 1
        settle(store, 1, clock[0])
    clock[0] = now + 1


def settle(store: Any, count: int, now: float) -> None:
    """Claim `count` runs and settle them completed, as a pool would (an attempt each)."""
    claims = store.claim_runs("bench", "host", count, 60.0)
    results = [AttemptResult(c, "bench", 1, now, now + 0.5, 0, Outcome.COMPLETED, None, "done\n", None) for c in claims]
    store.finish_attempts("host", results)


def timed(client: TestClient, path: str, requests: int) -> tuple[float, float, int]:
    """p50 and p99 of `requests` GETs of `path`, in ms, and how many runs the answer held."""
    times = []
    count = 0
    for _ in range(requests):
        start = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == 200, answer.text
        count = len(answer.json())
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))], count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--db", help="keep the store here (and reuse it when it is there)")
    parser.add_argument("--before", action="store_true", help="also time the job filter of before, once")
    args = parser.parse_args()
    path = args.db or os.path.join(tempfile.mkdtemp(), "runs.db")
    if not os.path.exists(path):
        print(f"filling {path} with {args.runs:,} runs ...", file=sys.stderr)
        start = time.perf_counter()
        fill(path, args.runs)
        print(f"filled in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    client = TestClient(create_app(path))
    total = client.get("/api/status").json()["counts"]
    print(f"{sum(total.values()):,} runs ({', '.join(f'{k} {v:,}' for k, v in total.items() if v)}), SQLite")
    deep = client.get("/api/runs?job=job-01&limit=51").json()[-1]["id"]  # after it, newest first: its oldest 50
    cases = [
        ("first page, newest first", "/api/runs?order=newest&limit=50"),
        ("job (common), newest first", "/api/runs?job=job-01&order=newest&limit=50"),
        ("job (rare), newest first", "/api/runs?job=rare&order=newest&limit=50"),
        ("job with no runs", "/api/runs?job=idle&limit=50"),
        ("job (common), last page", f"/api/runs?job=job-01&order=newest&limit=50&after={deep}"),
        ("text on most pages", "/api/runs?text=pg_dump&order=newest&limit=50"),
        ("text found nowhere (scan ends)", "/api/runs?text=no-such-text&order=newest&limit=50"),
        ("text and job", "/api/runs?text=rare%2019&job=rare&order=newest&limit=50"),
    ]
    print(f"{'one page of /api/runs':<34} {'p50 ms':>8} {'p99 ms':>8} {'runs':>6}   ({args.requests} requests)")
    for label, url in cases:
        p50, p99, count = timed(client, url, args.requests)
        print(f"{label:<34} {p50:8.1f} {p99:8.1f} {count:6}   {url}")
    store = open_store(path, create=False)
    try:
        now = store.get_job("minutely").last_fire + 1  # type: ignore[union-attr]
        times = []
        for _ in range(args.requests):
            start = time.perf_counter()
            tl = timeline(store, "minutely", now)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        assert tl is not None
        print(
            f"{'timeline, every-minute job, a day':<34} {statistics.median(times):8.1f} {times[-1]:8.1f} "
            f"{len(tl.fires):6}   (fires: {', '.join(f'{k} {v}' for k, v in tl.counts().items() if v)})"
        )
        if args.before:
            start = time.perf_counter()
            mine = (run for run in store.iter_runs() if run.job == "idle")  # the filter before: in Python
            found = list(itertools.islice(mine, 50))
            seconds = time.perf_counter() - start
            print(f"{'before: job with no runs, Python':<34} {seconds * 1000:8.0f} {'':>8} {len(found):6}   (once)")
    finally:
        store.close()
    print(f"a text search looks at {run_service.SEARCH_SCAN:,} runs at most per request")


if __name__ == "__main__":
    main()
