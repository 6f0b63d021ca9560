"""List benchmark: `queuectl list` of many runs into a pipe, its time and peak memory.

    python bench/list.py [--runs 50000] [--rounds 3] [--baseline COMMIT]

Fills a fresh SQLite store with RUNS one-off runs (one `enqueue --file`, each with
a different command and a little environment; their creation times are then spread
37 s apart, so that each row's time is formatted on its own), then runs `queuectl list` and
`queuectl list --json` with stdout into a pipe that this script reads and throws
away, timing each as a whole command (Python start-up included) and taking its
peak resident memory and CPU time from the kernel (the rusage of that very command, started
by a small launcher: a peak survives fork and exec, so the benchmark's own size would count).
Beside them: `python -c pass` (start-up alone) and `sqlite3`'s module reading every
row of the same table in one process, the floor of reading it at all.

`--baseline COMMIT` also times the package as it was at COMMIT (extracted with
`git archive` into a temporary directory) on a store it fills the same way, for a before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A process's peak RSS survives fork and exec: each command is started by this small launcher
# (not by the benchmark, whose size it would report), which says the command's peak and CPU time.
_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:], stderr=subprocess.DEVNULL)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stderr.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime} {code}")
"""


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """(seconds, CPU seconds, peak RSS in MiB, bytes written) of one command whose stdout is a pipe read to its end."""
    start = time.perf_counter()
    # From the store's directory: `python -m` puts the current directory first on the path.
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=env["BENCH_CWD"],
    )
    assert proc.stdout is not None and proc.stderr is not None
    size = 0
    while chunk := proc.stdout.read(1 << 16):
        size += len(chunk)
    seconds = time.perf_counter() - start  # the command's end closed the pipe: the launcher's exit is not timed
    peak_kib, cpu, code = proc.stderr.read().decode().split()
    proc.wait()
    if code != "0":
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return seconds, float(cpu), int(peak_kib) / 1024, size


def fill(db: str, runs: int, package: str = ROOT) -> float:
    lines = "".join(
        json.dumps({"command": f"echo run {n} && sleep 0", "env": {"N": str(n)}, "priority": 1 + n % 10}) + "\n"
        for n in range(runs)
    ).encode()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "queuectl", "enqueue", "--file", "-"],
        cwd=os.path.dirname(db),
        env=dict(os.environ, QUEUECTL_DB=db, PYTHONPATH=package),
        input=lines,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    took = time.perf_counter() - start
    with sqlite3.connect(db) as con:  # one enqueue gives one created_at: spread them as weeks of use would
        con.execute("UPDATE runs SET created_at = created_at - rowid * 37")
    return took


def extract(commit: str, into: str) -> str:
    os.makedirs(into)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "queuectl"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def median_of(rounds: int, argv: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    results = [measure(argv, env) for _ in range(rounds)]
    wall, cpu = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    return wall, cpu, max(r[2] for r in results), results[0][3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="COMMIT", help="also time the package as it was at COMMIT")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "queuectl")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "queue.db")
        print(f"fill: {args.runs} runs with one enqueue --file in {fill(db, args.runs):.2f} s")
        env = dict(os.environ, QUEUECTL_DB=db, PYTHONPATH=ROOT, XDG_STATE_HOME=tmp, BENCH_CWD=tmp)
        env.pop("PYTHONUNBUFFERED", None)  # as a user runs it (queuectl writes in batches either way)
        queuectl = [sys.executable, "-m", "queuectl"]
        floor = f"import sqlite3; [r for r in sqlite3.connect({db!r}).execute('SELECT * FROM runs')]"
        cases = [
            ("python -c pass (start-up)", [sys.executable, "-c", "pass"], env),
            ("sqlite3: read every row", [sys.executable, "-c", floor], env),
            ("queuectl list", [*queuectl, "list"], env),
            ("queuectl list --json", [*queuectl, "list", "--json"], env),
        ]
        if args.baseline:
            package = extract(args.baseline, os.path.join(tmp, "baseline"))
            old_db = os.path.join(tmp, "baseline.db")  # its own store: an older schema than ours
            fill(old_db, args.runs, package)
            old_env = dict(env, PYTHONPATH=package, QUEUECTL_DB=old_db)
            cases += [
                (f"queuectl list at {args.baseline[:8]}", [*queuectl, "list"], old_env),
                (f"queuectl list --json at {args.baseline[:8]}", [*queuectl, "list", "--json"], old_env),
            ]
        print(f"into a pipe, {args.runs} runs, medians of {args.rounds} rounds (wall time, CPU time), peak RSS:")
        for name, argv, case_env in cases:
            seconds, cpu, peak, size = median_of(args.rounds, argv, case_env)
            print(f"  {name:34} {seconds:6.2f} s  {cpu:6.2f} s CPU  {peak:6.1f} MiB  ({size / 1e6:.1f} MB written)")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"(largest child of all, the fill included: {children:.1f} MiB)")


if __name__ == "__main__":
    main()
