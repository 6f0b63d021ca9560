"""Declarative-layer benchmark: apply 10,000 manifests, re-apply them, and watch latency.

    python bench/apply.py [--jobs 10000] [--files 200]

- apply: `queuectl apply DIR` on a fresh store with JOBS manifests (half cron
  jobs, half delayed one-offs, so half of them create a run), timed as a whole
  command, Python start-up included. Target: under 3 s.
- re-apply: the same command again with nothing changed. Target: under 1 s.
- latency: `queuectl up DIR` runs with an idle pool; FILES manifests are dropped
  into the directory one after another (written beside it, then renamed in, as
  editors and git do); for each, the time from the rename to its command's start
  as the pool recorded it. Target: p50 under 100 ms, p99 under 300 ms.

Each timing is printed beside a baseline measured in the same run: `python -c
pass` for the commands (the start-up every CLI call pays) and, for latency,
nothing (it is an absolute figure).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

QUEUECTL = [sys.executable, "-m", "queuectl"]


def write_manifest(directory: str, name: str, text: str) -> None:
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o644)


def manifest_text(n: int) -> str:
    when = 'cron = "*/5 * * * *"\ntimezone = "Europe/Berlin"' if n % 2 else 'run_at = "+1h"'
    return (
        f"# job {n}\n"
        f'command = "echo job {n} && date"\n'
        f"{when}\n"
        f"priority = {1 + n % 10}\n"
        f'timeout = "{1 + n % 59}m"\n'
        f"retries = {n % 4}\n"
        f'description = "benchmark job number {n}"\n'
        "[env]\n"
        f'JOB_NUMBER = "{n}"\n'
    )


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def apply_rounds(tmp: str, jobs: int) -> tuple[float, float, float]:
    directory = os.path.join(tmp, "many")
    os.mkdir(directory)
    for n in range(jobs):
        write_manifest(directory, f"job{n:05d}.toml", manifest_text(n))
    env = dict(os.environ, QUEUECTL_DB=os.path.join(tmp, "apply.db"))
    bare = min(timed([sys.executable, "-c", "pass"], env) for _ in range(5))
    first = timed([*QUEUECTL, "apply", directory], env)
    again = min(timed([*QUEUECTL, "apply", directory], env) for _ in range(3))
    with sqlite3.connect(env["QUEUECTL_DB"]) as con:
        count = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
    if count != jobs:
        sys.exit(f"only {count} of {jobs} jobs applied")
    return first, again, bare


def latency(tmp: str, files: int) -> list[float]:
    directory = os.path.join(tmp, "watched")
    staging = os.path.join(tmp, "staging")
    os.mkdir(directory)
    os.mkdir(staging)
    db = os.path.join(tmp, "up.db")
    env = dict(os.environ, QUEUECTL_DB=db)
    up = subprocess.Popen(
        [*QUEUECTL, "up", directory, "--workers", "2", "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert up.stderr is not None
        for line in up.stderr:
            if "started with" in line:
                break
        con = sqlite3.connect(db, timeout=30)
        found: list[float] = []
        for n in range(files):
            name = f"drop{n:04d}"
            write_manifest(staging, f"{name}.toml", f'command = "true {n}"\n')
            landed = time.time()
            os.rename(os.path.join(staging, f"{name}.toml"), os.path.join(directory, f"{name}.toml"))
            deadline = time.monotonic() + 10
            while True:
                row = con.execute(
                    "SELECT min(started_at) FROM attempts WHERE run_id IN (SELECT id FROM runs WHERE job = ?)", (name,)
                ).fetchone()
                if row[0] is not None:
                    found.append(row[0] - landed)
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"{name} did not start within 10 s")
                time.sleep(0.002)
        con.close()
        return found
    finally:
        up.terminate()
        up.wait(timeout=30)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    args = parser.parse_args()
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "queuectl")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)  # as an installed package
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        first, again, bare = apply_rounds(tmp, args.jobs)
        print(f"apply {args.jobs} manifests (fresh store)   {first:6.2f} s   (target < 3 s; bare python: {bare:.2f} s)")
        print(f"re-apply them unchanged                 {again:6.2f} s   (target < 1 s)")
        print(
            f"  = {args.jobs / first:,.0f} manifests/s applied, {args.jobs / again:,.0f} manifests/s checked",
            flush=True,
        )
        found = latency(tmp, args.files)
        p50, p99 = percentile(found, 50) * 1000, percentile(found, 99) * 1000
        print(
            f"file landed -> command started, {len(found)} files: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
            f"max {max(found) * 1000:.0f} ms   (targets: p50 < 100 ms, p99 < 300 ms)"
        )
        print(f"  mean {statistics.mean(found) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
