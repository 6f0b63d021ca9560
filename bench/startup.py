"""Start-up benchmark: how long `queuectl --help` and `queuectl status` take beside `python -c "import click"`.

    python bench/startup.py [--rounds 21]

Each round runs the three commands one after the other (so a busy moment hits
all three alike) and the medians are compared: the baseline is the cost of the
interpreter and click alone, which every queuectl command pays. `status` runs on
an empty SQLite store made beforehand. queuectl runs as the installed console
script when there is one on PATH, else as `python -m queuectl`.

The package is byte-compiled first (`compileall`), as `pip install` does: with
PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise compile every
module on every start and the figures would measure the compiler.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    import queuectl

    package = os.path.dirname(queuectl.__file__)
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True, stdout=subprocess.DEVNULL)
    script = shutil.which("queuectl")
    queuectl = [script] if script else [sys.executable, "-m", "queuectl"]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "q.db")
        subprocess.run([*queuectl, "--db", db, "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
        commands = {
            "import click": [sys.executable, "-c", "import click"],
            "queuectl --help": [*queuectl, "--help"],
            "queuectl status": [*queuectl, "--db", db, "status"],
        }
        for argv in commands.values():  # warm the page cache and the bytecode
            timed(argv)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(timed(argv))
    base = statistics.median(times["import click"])
    print(f"rounds: {args.rounds}, queuectl: {' '.join(queuectl)}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<18} {median * 1000:7.1f} ms   {median / base:5.2f}x of import click")


if __name__ == "__main__":
    main()
