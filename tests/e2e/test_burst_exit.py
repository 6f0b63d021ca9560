"""The exit code of a burst, which CI relies on: the real `queuectl` in a subprocess, a real store file.

`worker start --burst` and `up --burst` exit 1, after a one-line summary on stderr, when a
run they ran ended dead or (`up`) a manifest was refused; 0 when everything went well.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Queue


def summary(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if " burst: " in line]
    return line.split(" ", 1)[1]  # without the time


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    os.chmod(directory / name, 0o644)


def test_worker_burst_exits_1_and_names_the_dead_run(q: Queue) -> None:
    q("enqueue", "--id", "ok1", "--command", "true")
    q("enqueue", "--id", "ok2", "--command", "true")
    q("enqueue", "--id", "r7", "--command", "exit 3", "--retries", "1", "--backoff-base", "0")
    done = q("worker", "start", "--burst", check=False)
    assert done.returncode == 1, done.stderr
    assert summary(done.stderr) == "burst: 2 runs completed, 1 dead (r7)"
    assert q.state("r7") == "dead"


def test_worker_burst_exits_0_when_every_run_completes(q: Queue) -> None:
    q("enqueue", "--id", "flaky", "--command", f"test -e {q.tmp}/once || {{ touch {q.tmp}/once; exit 1; }}",
      "--retries", "2", "--backoff-base", "0")  # fmt: skip
    q("enqueue", "--id", "ok", "--command", "true", "--retries", "0")
    done = q("worker", "start", "--burst", "--quiet", check=False)
    assert done.returncode == 0, done.stderr
    assert summary(done.stderr) == "burst: 2 runs completed"  # flaky failed once, then completed: it counts once


def test_up_burst_exits_1_when_a_manifest_is_refused(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "good.toml", 'command = "true"\n')
    write(jobs, "bad.toml", 'comand = "true"\n')
    done = q("up", str(jobs), "--burst", check=False)
    assert done.returncode == 1, done.stderr
    assert summary(done.stderr) == "burst: 1 run completed; 1 manifest refused (jobs.d/bad.toml)"  # good.toml ran


def test_up_burst_exits_1_when_a_run_ends_dead_and_0_when_all_is_well(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "fails.toml", 'command = "exit 1"\nretries = 0\n')
    done = q("up", str(jobs), "--burst", check=False)
    assert done.returncode == 1, done.stderr
    assert "burst: 0 runs completed, 1 dead (" in done.stderr
    write(jobs, "fails.toml", 'command = "true"\nretries = 0\n')
    done = q("up", str(jobs), "--burst", check=False)
    assert done.returncode == 0, done.stderr
    assert summary(done.stderr) == "burst: 1 run completed"
