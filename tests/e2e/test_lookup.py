"""What users look up (issue 13): `logs JOB`, `show JOB` with the values in force, `show RUN` with its
job and pool, `plan` and `schedule` of a suspended job. The real `queuectl` on a real store."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from queuectl.durations import format_duration
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


# -- show JOB: the values in force -------------------------------------------------
def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.strip().partition("  ")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name!r} line in:\n{text}")


def test_show_job_gives_the_values_in_force_and_where_they_come_from(q: Queue) -> None:
    q("apply", str(_job(q, "hello", 'command = "echo hi"\ncron = "*/5 * * * *"\nretries = 1\n')))
    shown = q("show", "hello").stdout
    assert _field(shown, "timeout") == f"{format_duration(3600)} (default)"
    assert _field(shown, "retries") == "1 (from the manifest)"
    assert _field(shown, "priority") == "5 (default)"
    assert _field(shown, "backoff base") == "2 (default)"
    assert _field(shown, "concurrency") == "forbid (default)"
    assert "default" not in [_field(shown, k) for k in ("timeout", "retries", "priority")]
    q("config", "set", "job-timeout", "90s")
    q("config", "set", "max-retries", "7")
    shown = q("show", "hello").stdout
    assert _field(shown, "timeout") == f"{format_duration(90)} (from config)"
    assert _field(shown, "retries") == "1 (from the manifest)"
    in_force = q.json("show", "hello")["in_force"]
    assert in_force["timeout"] == {"value": 90, "source": "config"}
    assert in_force["retries"] == {"value": 1, "source": "manifest"}
    assert in_force["backoff_base"] == {"value": 2, "source": "default"}
    assert in_force["catchup"] == {"value": "latest", "source": "default"}
    assert q.json("list", "--jobs")[0]["in_force"] == in_force
