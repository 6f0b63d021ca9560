"""`/metrics` at scale: a whole `queuectl metrics --prometheus` over a store of many settled runs.

    python bench/metrics_scrape.py [--runs 1000000] [--rounds 3] [--baseline COMMIT]

Fills a fresh SQLite store through the store's own verbs, in batches of 10,000 (enqueue, claim,
finish_attempts: one attempt per run, over 10 jobs and runs of no job, 1 in 10 failing into the
dead-letter queue), as a pool would have, then times `queuectl metrics --prometheus` (and `queuectl status`) as a whole
command (Python start-up included) and takes the median of the rounds.

`--baseline COMMIT` fills the store with the package as it was at COMMIT (extracted with `git archive`),
times the scrape with it, then opens the same store with this tree's package (timing its migration,
which backfills the rollups from the runs kept) and times the scrape again: a before/after on one store.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run in a child with the package under test first on its path: fills the store through its verbs.
_FILL = """
import sys
from queuectl.model import AttemptResult, NewRun, Outcome
from queuectl.store.sqlite import SQLiteStore

total, path, batch = int(sys.argv[1]), sys.argv[2], 10_000
store = SQLiteStore(path)
done = 0
while done < total:
    size = min(batch, total - done)
    runs = [
        NewRun(id=f"r{done + i:08d}", command="true", priority=5, max_retries=0, backoff_base=2.0,
               backoff_max=3600.0, timeout=None, job=None if (done + i) % 11 == 0 else f"job{(done + i) % 10}")
        for i in range(size)
    ]
    store.enqueue(runs)
    claims = store.claim_runs("bench", "host", size, 3600.0)
    now = store.now()
    results = [
        AttemptResult(claim=c, worker_id="bench", pgid=1, started_at=now, finished_at=now + (n % 97) * 0.37,
                      exit_code=1 if n % 10 == 0 else 0, outcome=Outcome.FAILED if n % 10 == 0 else Outcome.COMPLETED,
                      error=None, output_tail="")
        for n, c in enumerate(claims)
    ]
    store.finish_attempts("host", results)
    done += size
store.close()
"""

_OPEN = "import sys; from queuectl.store.sqlite import SQLiteStore; SQLiteStore(sys.argv[1]).close()"


def extract(commit: str, into: str) -> str:
    os.makedirs(into)
    archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "queuectl"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def python(package_root: str, *argv: str) -> float:
    """Seconds a child Python took, with `package_root` first on its path."""
    env = {**os.environ, "PYTHONPATH": package_root}
    start = time.perf_counter()
    # From the store's directory: `python -m` and `-c` put the current directory first on the path.
    cwd = os.path.dirname(argv[-1]) if argv[-1].endswith(".db") else tempfile.gettempdir()
    subprocess.run([sys.executable, *argv], env=env, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - start


def scrape(package_root: str, path: str, rounds: int, what: tuple[str, ...] = ("metrics", "--prometheus")) -> float:
    argv = ("-m", "queuectl", *what, "--db", path)
    times = [python(package_root, *argv) for _ in range(rounds)]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="COMMIT", help="fill and scrape with COMMIT's package first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as tmp:
        path = os.path.join(tmp, "q.db")
        filler = extract(args.baseline, os.path.join(tmp, "baseline")) if args.baseline else ROOT
        took = python(filler, "-c", _FILL, str(args.runs), path)
        print(f"filled {args.runs} runs (one attempt each) in {took:.1f} s", flush=True)
        if args.baseline:
            before = scrape(filler, path, args.rounds)
            print(f"scrape at {args.baseline}: {before:.2f} s (median of {args.rounds})", flush=True)
            status = scrape(filler, path, args.rounds, ("status",))
            print(f"`status` at {args.baseline}: {status:.2f} s", flush=True)
            migrated = python(ROOT, "-c", _OPEN, path)
            print(f"first open with this tree (migration, backfill): {migrated:.2f} s", flush=True)
            fresh = os.path.join(tmp, "fresh.db")
            took = python(ROOT, "-c", _FILL, str(args.runs), fresh)
            print(f"filled {args.runs} runs with this tree (rollups as they settle) in {took:.1f} s", flush=True)
        after = scrape(ROOT, path, args.rounds)
        start_up = statistics.median(python(ROOT, "-c", "pass") for _ in range(args.rounds))
        print(f"scrape with this tree: {after:.2f} s (median of {args.rounds}; bare python start-up {start_up:.2f} s)")
        print(f"`status` with this tree: {scrape(ROOT, path, args.rounds, ('status',)):.2f} s")


if __name__ == "__main__":
    main()
