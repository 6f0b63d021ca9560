"""Dashboard benchmark: page and API response times at a million runs, and the drain with a browser watching.

    python bench/web.py [--runs 1000000] [--small 10000] [--requests 100] [--rounds 3] [--skip-drain | --skip-pages]

1. Response times: two stores are filled through the store's own verbs (bench/history.py: runs
   spread over the last day, 4 % dead, 2 % waiting, most belonging to 20 declared jobs): a small one
   (SMALL runs) and a large one (RUNS). Against each, a `queuectl dashboard` process serves every page
   and API answer; one client asks each URL REQUESTS times in a row over one keep-alive connection.
   It prints p50 and p99 in milliseconds, beside /healthz (the floor: one request and one store
   open), and the ratio of the large store's p50 to the small one's: bounded queries keep it near 1.
2. The drain ratio with a browser following the live view: bench/drain.py's live round (2,000
   one-off `true` runs, 2 slots, an idle pool), once alone and once with headless Chromium
   (Debian's, through Playwright) holding the overview and the runs page open on a dashboard over
   the same store, each beside `xargs -P2` in the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx2 as httpx  # the test extra's HTTP client (Starlette's test client uses it)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from drain import live_round, xargs  # noqa: E402  (bench/ is on the path when run as a script)
from history import fill  # noqa: E402

QUEUECTL = [sys.executable, "-m", "queuectl"]
JOBS = 20
PATHS = [
    "/healthz",
    "/",
    "/jobs",
    "/jobs/job-03",
    "/runs",
    "/runs?state=dead",
    "/runs?job=job-03",
    "/runs?q=run+4242",
    "/runs/h00004242",
    "/dlq",
    "/pools",
    "/api/status",
    "/api/runs?limit=50",
    "/api/runs?limit=50&after=h00009000",  # a late page of the small store, an early one of the large
    "/api/runs?job=job-03&limit=50",
    "/api/jobs",
    "/api/dlq?limit=100",
    "/metrics",
]
LISTENING = re.compile(r"dashboard on (http://\S+?)/? ")


@contextlib.contextmanager
def dashboard(db: str) -> Iterator[str]:
    env = dict(os.environ, QUEUECTL_DB=db)
    proc = subprocess.Popen(
        [*QUEUECTL, "dashboard", "--port", "0"], env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            found = LISTENING.search(line)
            if found:
                yield found.group(1)
                return
        sys.exit(f"queuectl dashboard exited {proc.wait()} without serving")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def declare_jobs(tmp: str, db: str) -> None:
    """JOBS cron jobs named as the filled runs' jobs, applied to the store."""
    directory = os.path.join(tmp, "jobs.d")
    os.makedirs(directory, exist_ok=True)
    for n in range(JOBS):
        with open(os.path.join(directory, f"job-{n:02d}.toml"), "w") as out:
            out.write(f'command = "echo job {n}"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    subprocess.run([*QUEUECTL, "apply", directory], env=dict(os.environ, QUEUECTL_DB=db), check=True,
                   stdout=subprocess.DEVNULL)


def store_with(tmp: str, runs: int) -> str:
    db = os.path.join(tmp, f"runs{runs}.db")
    started = time.monotonic()
    fill(db, runs, jobs=JOBS)
    declare_jobs(tmp, db)
    print(f"filled a store with {runs:,} runs in {time.monotonic() - started:.0f} s", flush=True)
    return db


def times(base: str, requests: int) -> dict[str, list[float]]:
    """Milliseconds of each request to each path."""
    found: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=120) as client:
        for path in PATHS:
            for _ in range(3):  # warm: the first requests open the store and fill SQLite's page cache
                client.get(path)
            taken = []
            for _ in range(requests):
                start = time.perf_counter()
                answer = client.get(path)
                taken.append((time.perf_counter() - start) * 1000)
                if answer.status_code != 200:
                    sys.exit(f"GET {path} answered {answer.status_code}: {answer.text[:200]}")
            found[path] = taken
    return found


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def response_times(tmp: str, small: int, large: int, requests: int) -> None:
    results = {}
    for runs in (small, large):
        db = store_with(tmp, runs)
        with dashboard(db) as base:
            results[runs] = times(base, requests)
    print()
    print(f"response times, ms, {requests} requests each over one connection:")
    print(f"  {'path':36} {f'{small:,} runs p50':>16} {'p99':>7} {f'{large:,} runs p50':>19} {'p99':>7} {'ratio':>6}")
    for path in PATHS:
        a, b = results[small][path], results[large][path]
        ratio = statistics.median(b) / statistics.median(a)
        print(
            f"  {path:36} {statistics.median(a):16.1f} {p(a, 0.99):7.1f} "
            f"{statistics.median(b):19.1f} {p(b, 0.99):7.1f} {ratio:6.2f}"
        )


@contextlib.contextmanager
def browser_watching(env: dict[str, str]) -> Iterator[None]:
    """A dashboard over the store in `env` with Chromium holding its overview and runs page open."""
    from playwright.sync_api import sync_playwright  # the test extra: only this part needs it

    sys.path.insert(0, ROOT)
    from tests.browser.conftest import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        sys.exit("no Chromium found: install Debian's chromium or set QUEUECTL_CHROMIUM (or --skip-drain)")
    with dashboard(env["QUEUECTL_DB"]) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            pages = [browser.new_page() for _ in range(2)]
            for page, url in zip(pages, (f"{base}/", f"{base}/runs"), strict=True):
                page.goto(url)
                page.locator('#live[data-live="on"]').wait_for()  # its live stream is open
            pages[-1].wait_for_timeout(1000)  # the browser's own start-up work done: a page kept open, as a user does
            yield
        finally:
            browser.close()


def drain_with_browser(rounds: int, jobs: int, slots: int) -> None:
    alone, watched = [], []
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        for n in range(rounds):
            x1 = xargs(jobs, slots)
            alone.append(x1 / live_round(tmp, 2 * n, jobs, slots))
            x2 = xargs(jobs, slots)
            watched.append(x2 / live_round(tmp, 2 * n + 1, jobs, slots, watching=browser_watching))
            print(f"round {n + 1}: live pool alone x{alone[-1]:.2f}, with a browser watching x{watched[-1]:.2f}")
    med = statistics.median
    print()
    print(f"drain {jobs} x `true` with {slots} slots, ratio to xargs -P{slots}, medians of {rounds} rounds:")
    print(f"  live pool, no browser             {med(alone):.2f}")
    print(f"  live pool, a browser watching     {med(watched):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-drain", action="store_true", help="only the response times")
    parser.add_argument("--skip-pages", action="store_true", help="only the drain with a browser watching")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "queuectl")], check=True)
    if not args.skip_pages:
        with tempfile.TemporaryDirectory(prefix="queuectl-bench-web-") as tmp:
            response_times(tmp, args.small, args.runs, args.requests)
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.skip_drain:
        drain_with_browser(args.rounds, 2000, 2)


if __name__ == "__main__":
    main()
