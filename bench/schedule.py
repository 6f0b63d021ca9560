"""Scheduler benchmark: many cron jobs, idle cost, and how late fires start.

    python bench/schedule.py [--jobs 10000] [--idle 60] [--firing 200] [--minutes 2]

- apply: `queuectl apply DIR` of JOBS cron manifests on a fresh store, timed as
  a whole command.
- idle: `queuectl up DIR` holding those JOBS cron jobs, none of which fires in
  the window (`0 0 1 1 *`); after its first look at every job, the CPU time
  the process uses over IDLE seconds, beside an idle `queuectl worker start`
  (no scheduler, no watcher) measured for the same time as the baseline.
- lateness: `queuectl up` with FIRING jobs that fire every minute (4 slots),
  for MINUTES minute boundaries; for each fire, the time from its scheduled
  minute to its command's start, as the store recorded them. Target: p99 under
  250 ms.
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
TICK = os.sysconf("SC_CLK_TCK")


def write_jobs(directory: str, count: int, cron: str) -> None:
    os.makedirs(directory)
    for n in range(count):
        path = os.path.join(directory, f"cron{n:05d}.toml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f'command = "true {n}"\ncron = "{cron}"\ntimezone = "Europe/Berlin"\n')
        os.chmod(path, 0o644)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def query(db: str, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute(sql).fetchall()
        except sqlite3.OperationalError:  # not created yet
            return [(0,)]


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.2)


def idle_cpu(argv: list[str], env: dict[str, str], ready: object, seconds: float) -> float:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until(ready, 600, "the process to settle")
            time.sleep(2)  # let the first look's work end before measuring
            start = cpu_seconds(proc.pid)
            time.sleep(seconds)  # the measured window itself
            used = cpu_seconds(proc.pid) - start
            if proc.poll() is not None:
                log.seek(0)
                sys.exit(f"{argv[3]} exited early: {log.read().decode(errors='replace')}")
            return used
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--firing", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=2)
    args = parser.parse_args()
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "queuectl")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        many = os.path.join(tmp, "many")
        write_jobs(many, args.jobs, "0 0 1 1 *")
        db = os.path.join(tmp, "idle.db")
        env = dict(os.environ, QUEUECTL_DB=db)
        start = time.perf_counter()
        subprocess.run([*QUEUECTL, "apply", many], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"apply {args.jobs} cron manifests: {time.perf_counter() - start:.2f} s", flush=True)

        def looked_at_all() -> bool:
            return query(db, "SELECT count(*) FROM jobs WHERE next_fire IS NULL")[0][0] == 0

        up_cpu = idle_cpu([*QUEUECTL, "up", many, "--quiet"], env, looked_at_all, args.idle)
        pool_cpu = idle_cpu([*QUEUECTL, "worker", "start", "--quiet"], env, lambda: True, args.idle)
        print(
            f"idle over {args.idle:.0f} s with {args.jobs} cron jobs: up {up_cpu:.2f} s CPU "
            f"({up_cpu / args.idle:.2%}); an idle worker pool alone {pool_cpu:.2f} s ({pool_cpu / args.idle:.2%})",
            flush=True,
        )

        firing = os.path.join(tmp, "firing")
        write_jobs(firing, args.firing, "* * * * *")
        db = os.path.join(tmp, "firing.db")
        env = dict(os.environ, QUEUECTL_DB=db)
        proc = subprocess.Popen(
            [*QUEUECTL, "up", firing, "--workers", "4", "--quiet"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wanted = args.firing * args.minutes
            wait_until(
                lambda: query(db, "SELECT count(*) FROM attempts")[0][0] >= wanted,
                90 * args.minutes + 120,
                f"{wanted} fires",
            )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        rows = query(
            db,
            "SELECT a.started_at - r.scheduled_for FROM runs r JOIN attempts a ON a.run_id = r.id AND a.n = 1"
            " WHERE r.scheduled_for IS NOT NULL",
        )
        late = sorted(float(r[0]) * 1000 for r in rows)  # type: ignore[arg-type]
        p50 = late[len(late) // 2]
        p99 = late[min(len(late) - 1, round(0.99 * (len(late) - 1)))]
        print(
            f"lateness of {len(late)} fires ({args.firing} jobs every minute, 4 slots): p50 {p50:.0f} ms, "
            f"p99 {p99:.0f} ms, max {late[-1]:.0f} ms, mean {statistics.mean(late):.0f} ms  (target: p99 < 250 ms)"
        )


if __name__ == "__main__":
    main()
