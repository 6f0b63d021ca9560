"""What users look up (issue 13): `logs JOB`, `show JOB` with the values in force, `show RUN` with its
job and pool, `plan` and `schedule` of a suspended job. The real `queuectl` on a real store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import QUEUECTL, Queue


def _job(q: Queue, name: str, text: str) -> Path:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir(exist_ok=True)
    path = jobs / f"{name}.toml"
    path.write_text(text)
    os.chmod(path, 0o644)
    return jobs


# -- logs JOB ------------------------------------------------------------------
def test_logs_of_a_job_shows_its_latest_run(q: Queue) -> None:
    jobs = _job(q, "hello", 'command = "echo first"\n')
    q("apply", str(jobs))
    q.burst()
    assert q("logs", "hello").stdout == "first\n"
    _job(q, "hello", 'command = "echo second"\n')
    q("apply", str(jobs))  # a new version of a one-off: a second run
    q.burst()
    assert q("logs", "hello").stdout == "second\n"
    assert q("logs", "hello", "-f", timeout=30).stdout == "second\n"  # the run is over: follow prints and ends


def test_a_run_id_wins_over_a_job_of_the_same_name(q: Queue) -> None:
    q("apply", str(_job(q, "twin", 'command = "echo from-the-job"\n')))
    q("enqueue", "--id", "twin", "--command", "echo from-the-run")
    q.burst()
    assert q("logs", "twin").stdout == "from-the-run\n"


def test_logs_of_a_job_with_no_runs_yet_is_one_line_and_exit_1(q: Queue) -> None:
    q("apply", str(_job(q, "later", 'command = "echo later"\nrun_at = "+1h"\n')))
    done = q("logs", "later", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "job 'later' has no runs yet" in done.stderr, done.stderr
    q("suspend", "later")  # its pending run is cancelled: no run at all
    done = q("logs", "later", "-f", check=False, timeout=30)
    assert done.returncode == 1 and "job 'later' has no runs yet" in done.stderr
    missing = q("logs", "ghost", check=False)
    assert missing.returncode == 1 and "no run or job named 'ghost'" in missing.stderr


def test_logs_follow_of_a_job_waits_for_its_next_run(q: Queue) -> None:
    gate, opened = q.gate()
    q("apply", str(_job(q, "slow", f'command = "echo begun; {gate}; echo ended"\n')))
    follow = subprocess.Popen(
        [*QUEUECTL, "logs", "slow", "-f"], env=q.env, stdout=subprocess.PIPE, text=True, cwd=q.tmp
    )
    q.procs.append(follow)  # type: ignore[arg-type]
    pool = q.start_pool("--burst")
    assert follow.stdout is not None
    assert follow.stdout.readline() == "begun\n"
    opened.touch()
    assert follow.stdout.read() == "ended\n"
    assert follow.wait(timeout=30) == 0
    assert pool.wait(timeout=30) == 0
