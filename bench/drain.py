"""Drain benchmark: queuectl's worker pool against `xargs -P` on the same machine.

    python bench/drain.py [--jobs 2000] [--slots 2] [--rounds 3]

Each round enqueues JOBS one-off `true` runs with `queuectl enqueue --file`,
drains them with `queuectl worker start --count SLOTS --burst` (wall time of
the whole command, start-up included), and times `seq JOBS | xargs -PSLOTS
-n1 sh -c true` right beside it. It prints jobs/s for both and their ratio
(the median over rounds), plus enqueue rates: one `queuectl enqueue` process
per job, and one `enqueue --file` for all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

QUEUECTL = [sys.executable, "-m", "queuectl"]


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, input=stdin, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--single", type=int, default=200, help="jobs for the one-process-per-job enqueue rate")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        ratios, ours, theirs, file_rates = [], [], [], []
        for round_no in range(args.rounds):
            env = dict(os.environ, QUEUECTL_DB=os.path.join(tmp, f"drain{round_no}.db"))
            lines = "".join(json.dumps({"command": "true"}) + "\n" for _ in range(args.jobs)).encode()
            enqueue_s = timed([*QUEUECTL, "enqueue", "--file", "-"], env, lines)
            file_rates.append(args.jobs / enqueue_s)
            xargs_s = timed(["sh", "-c", f"seq {args.jobs} | xargs -P{args.slots} -n1 sh -c true"], env)
            drain_s = timed([*QUEUECTL, "worker", "start", "--count", str(args.slots), "--burst", "--quiet"], env)
            counts = json.loads(subprocess.run([*QUEUECTL, "status", "--json"], env=env, capture_output=True,
                                               check=True).stdout)["counts"]
            if counts["completed"] != args.jobs:
                sys.exit(f"round {round_no}: only {counts['completed']} of {args.jobs} completed: {counts}")
            ours.append(args.jobs / drain_s)
            theirs.append(args.jobs / xargs_s)
            ratios.append(xargs_s / drain_s)
            print(f"round {round_no + 1}: queuectl {ours[-1]:7.0f} jobs/s   xargs -P{args.slots} {theirs[-1]:7.0f} jobs/s"
                  f"   ratio {ratios[-1]:.2f}", flush=True)

        env = dict(os.environ, QUEUECTL_DB=os.path.join(tmp, "single.db"))
        start = time.perf_counter()
        for _ in range(args.single):
            subprocess.run([*QUEUECTL, "enqueue", "--command", "true"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        single_rate = args.single / (time.perf_counter() - start)

    print()
    print(f"drain {args.jobs} x `true` with {args.slots} slots (median of {args.rounds}):")
    print(f"  queuectl worker --burst : {statistics.median(ours):7.0f} jobs/s")
    print(f"  xargs -P{args.slots}              : {statistics.median(theirs):7.0f} jobs/s")
    print(f"  ratio                   : {statistics.median(ratios):7.2f}  (target >= 0.8)")
    print("enqueue:")
    print(f"  one process per job     : {single_rate:7.0f} jobs/s")
    print(f"  enqueue --file          : {statistics.median(file_rates):7.0f} jobs/s  (target > 5000)")


if __name__ == "__main__":
    main()
