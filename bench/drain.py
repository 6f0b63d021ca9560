"""Drain benchmark: queuectl's worker pool against `xargs -P` on the same machine.

    python bench/drain.py [--jobs 2000] [--slots 2] [--rounds 5]

Each round times `seq JOBS | xargs -PSLOTS -n1 sh -c true` (the physical limit:
the same commands, spawned with no bookkeeping at all) right beside two drains of
JOBS one-off `true` runs by queuectl:

- live pool: a pool started beforehand sits idle; the runs arrive with one
  `enqueue --file`; the time is from their commit to the last one's end, as
  the store recorded them. This is the steady state of a running queue.
- burst command: `queuectl worker start --burst` on the filled queue, timed as
  a whole command, Python start-up (about 0.1-0.3 s here) included.

It prints jobs/s and the ratio to xargs for both (medians over the rounds),
and enqueue rates: one `queuectl enqueue` process per job (bounded by Python
start-up) and `enqueue --file` for all jobs in one transaction.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

QUEUECTL = [sys.executable, "-m", "queuectl"]


def run(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, input=stdin, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def xargs(jobs: int, slots: int) -> float:
    return run(["sh", "-c", f"seq {jobs} | xargs -P{slots} -n1 sh -c true"], dict(os.environ))


def completed(db: str) -> tuple[int, float | None, float | None]:
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT count(*), min(created_at), max(finished_at) FROM runs WHERE state = 'completed'")
        count, first, last = row.fetchone()
    return count, first, last


def jsonl(jobs: int) -> bytes:
    return "".join(json.dumps({"command": "true"}) + "\n" for _ in range(jobs)).encode()


def burst_round(tmp: str, n: int, jobs: int, slots: int) -> tuple[float, float]:
    """(enqueue --file seconds, burst drain seconds)."""
    db = os.path.join(tmp, f"burst{n}.db")
    env = dict(os.environ, QUEUECTL_DB=db)
    enqueue_s = run([*QUEUECTL, "enqueue", "--file", "-"], env, jsonl(jobs))
    drain_s = run([*QUEUECTL, "worker", "start", "--count", str(slots), "--burst", "--quiet"], env)
    done, _, _ = completed(db)
    if done != jobs:
        sys.exit(f"burst round {n}: only {done} of {jobs} runs completed")
    return enqueue_s, drain_s


Watching = Callable[[dict[str, str]], contextlib.AbstractContextManager[None]]


def live_round(tmp: str, n: int, jobs: int, slots: int, watching: Watching | None = None) -> float:
    """Seconds from the runs' commit to the last one's end, for an idle pool already running.

    `watching`, given the store's environment, is held open around the drain (bench/web.py: a browser).
    """
    db = os.path.join(tmp, f"live{n}.db")
    env = dict(os.environ, QUEUECTL_DB=db)
    run([*QUEUECTL, "db", "migrate"], env)  # create the store
    with watching(env) if watching else contextlib.nullcontext():
        return _drain_live(db, env, n, jobs, slots)


def _drain_live(db: str, env: dict[str, str], n: int, jobs: int, slots: int) -> float:
    pool = subprocess.Popen(
        [*QUEUECTL, "worker", "start", "--count", str(slots), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _registered(db, pool.pid):
            if time.monotonic() > deadline or pool.poll() is not None:
                sys.exit(f"live round {n}: the pool did not start")
            time.sleep(0.05)
        run([*QUEUECTL, "enqueue", "--file", "-"], env, jsonl(jobs))
        deadline = time.monotonic() + 600
        while True:
            done, first, last = completed(db)
            if done == jobs and first is not None and last is not None:
                return float(last - first)
            if time.monotonic() > deadline:
                sys.exit(f"live round {n}: only {done} of {jobs} runs completed")
            time.sleep(0.1)
    finally:
        pool.terminate()
        pool.wait(timeout=60)


def _registered(db: str, pid: int) -> bool:
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT count(*) FROM workers WHERE pid = ?", (pid,)).fetchone()[0] > 0
    except sqlite3.Error:
        return False


def single_enqueue_rate(tmp: str, count: int) -> tuple[float, float]:
    """(queuectl enqueue processes a second, bare `python -c pass` processes a second)."""
    env = dict(os.environ, QUEUECTL_DB=os.path.join(tmp, "single.db"))
    run([*QUEUECTL, "db", "migrate"], env)
    start = time.perf_counter()
    for _ in range(count):
        run([*QUEUECTL, "enqueue", "--command", "true"], env)
    ours = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(count):
        run([sys.executable, "-c", "pass"], env)
    return ours, count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--single", type=int, default=100, help="jobs for the one-process-per-job enqueue rate")
    args = parser.parse_args()
    jobs, slots = args.jobs, args.slots
    # An installed queuectl has its bytecode compiled; a checkout run with
    # PYTHONDONTWRITEBYTECODE (as here) would otherwise compile it on every start.
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "queuectl")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)

    live_ratio, burst_ratio, live_rate, burst_rate, xargs_rate, file_rate = [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        for n in range(args.rounds):
            x1 = xargs(jobs, slots)
            live_s = live_round(tmp, n, jobs, slots)
            x2 = xargs(jobs, slots)
            enqueue_s, burst_s = burst_round(tmp, n, jobs, slots)
            xargs_rate += [jobs / x1, jobs / x2]
            live_rate.append(jobs / live_s)
            burst_rate.append(jobs / burst_s)
            live_ratio.append(x1 / live_s)
            burst_ratio.append(x2 / burst_s)
            file_rate.append(jobs / enqueue_s)
            print(
                f"round {n + 1}: xargs {jobs / x1:5.0f} / {jobs / x2:5.0f} jobs/s   "
                f"live pool {live_rate[-1]:5.0f} jobs/s (x{live_ratio[-1]:.2f})   "
                f"burst command {burst_rate[-1]:5.0f} jobs/s (x{burst_ratio[-1]:.2f})",
                flush=True,
            )
        single, bare = single_enqueue_rate(tmp, args.single)

    med = statistics.median
    print()
    print(f"drain {jobs} x `true` with {slots} slots, medians of {args.rounds} rounds:")
    print(f"  xargs -P{slots}                 {med(xargs_rate):6.0f} jobs/s")
    print(f"  queuectl, live pool         {med(live_rate):6.0f} jobs/s   ratio {med(live_ratio):.2f}  (target >= 0.8)")
    print(
        f"  queuectl, burst command     {med(burst_rate):6.0f} jobs/s   ratio {med(burst_ratio):.2f}"
        "  (Python start-up included)"
    )
    print("enqueue:")
    print(f"  one process per job         {single:6.0f} jobs/s   (bare `python -c pass`: {bare:.0f} processes/s)")
    print(f"  enqueue --file              {med(file_rate):6.0f} jobs/s   (target > 5000)")


if __name__ == "__main__":
    main()
