"""What users look up (issue 13): `logs JOB`, `show JOB` with the values in force, `show RUN` with its
job and pool, `plan` and `schedule` of a suspended job. The real `queuectl` on a real store."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from queuectl.durations import format_duration
from tests.conftest import QUEUECTL, Queue


# -- logs JOB ------------------------------------------------------------------
def test_logs_of_a_job_shows_its_latest_run(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo first"\n')
    q("apply", str(jobs))
    q.burst()
    assert q("logs", "hello").stdout == "first\n"
    q.write_job("hello", 'command = "echo second"\n')
    q("apply", str(jobs))  # a new version of a one-off: a second run
    q.burst()
    assert q("logs", "hello").stdout == "second\n"
    assert q("logs", "hello", "-f", timeout=30).stdout == "second\n"  # the run is over: follow prints and ends


def test_a_run_id_wins_over_a_job_of_the_same_name(q: Queue) -> None:
    q("apply", str(q.write_job("twin", 'command = "echo from-the-job"\n')))
    q("enqueue", "--id", "twin", "--command", "echo from-the-run")
    q.burst()
    assert q("logs", "twin").stdout == "from-the-run\n"


def test_logs_of_a_job_with_no_runs_yet_is_one_line_and_exit_1(q: Queue) -> None:
    q("apply", str(q.write_job("later", 'command = "echo later"\nrun_at = "+1h"\n')))
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
    q("apply", str(q.write_job("slow", f'command = "echo begun; {gate}; echo ended"\n')))
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
    q("apply", str(q.write_job("hello", 'command = "echo hi"\ncron = "*/5 * * * *"\nretries = 1\n')))
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


# -- show RUN: its job, and the pool that ran it ----------------------------------------
def _run_of(q: Queue, job: str) -> dict[str, Any]:
    (run,) = [r for r in q.json("list") if r["job"] == job]
    return q.json("show", run["id"])  # type: ignore[no-any-return]


def test_show_run_names_its_job_and_keeps_the_pool_that_ran_it(each_engine: Queue) -> None:
    q = each_engine
    q("apply", str(q.write_job("hello", 'command = "echo hi"\n')))
    q("enqueue", "--id", "broken", "--command", "exit 3", "--retries", "0")
    q.burst(dead=True)
    for run_id, state in ((_run_of(q, "hello")["id"], "completed"), ("broken", "dead")):
        shown = q.json("show", run_id)
        ran_by = shown["history"][-1]["worker"]
        assert shown["state"] == state and ran_by
        assert shown["pool"] == ran_by and shown["worker"] is None  # no pool holds it now
        text = q("show", run_id).stdout
        assert _field(text, "pool").startswith(f"{ran_by} on "), text
    assert _field(q("show", _run_of(q, "hello")["id"]).stdout, "job") == "hello"
    assert _field(q("show", "broken").stdout, "job").startswith("- ")
    assert _run_of(q, "hello")["job"] == "hello"
    assert q("logs", "hello").stdout == "hi\n"  # the job's latest run, on either engine


def _back_to_schema_6(q: Queue) -> None:
    """The store as queuectl before the pool was kept on a run left it: no column, no rollups, schema version 6."""
    undo = ["ALTER TABLE runs DROP COLUMN last_pool", "DROP TABLE run_totals", "DROP TABLE run_minutes"]
    if isinstance(q.db, Path):
        with sqlite3.connect(q.db) as db:
            for statement in undo:
                db.execute(statement)
            db.execute("PRAGMA user_version = 6")
        return
    import psycopg  # only for the PostgreSQL case

    with psycopg.connect(q.db, autocommit=True) as db:
        for statement in undo:
            db.execute(statement)
        db.execute("UPDATE queuectl_schema SET version = 6")


def test_the_migration_gives_finished_runs_the_pool_of_their_last_attempt(each_engine: Queue) -> None:
    q = each_engine
    q("enqueue", "--id", "old", "--command", "echo old")
    q.burst()
    ran_by = q.json("show", "old")["history"][-1]["worker"]
    _back_to_schema_6(q)
    assert q.json("db", "migrate")["schema_version"] == 10  # 0008-0010 (rollups, listings, waiting runs) after 0007
    assert q.json("status")["counts"]["completed"] == 1  # counted from the rollups the migration filled
    shown = q.json("show", "old")
    assert shown["pool"] == ran_by and shown["state"] == "completed"


# -- plan and schedule of a suspended job --------------------------------------------
def test_plan_and_schedule_show_a_suspended_job_as_suspended(q: Queue) -> None:
    jobs = q.write_job("hello", 'command = "echo hi"\ncron = "*/5 * * * *"\n')
    q.write_job("tick", 'command = "echo tick"\ncron = "* * * * *"\n')
    q("apply", str(jobs))
    assert q.json("plan", "hello", "-n", "2")["suspended"] is False
    assert "suspended" not in q("plan", "hello").stdout
    q("suspend", "hello")
    plan = q("plan", "hello", "-n", "2").stdout.splitlines()
    assert plan[1].startswith("suspended: nothing fires until 'queuectl resume hello'")
    assert "resumed now, it would fire at:" in plan[1] and len(plan) == 4
    planned = q.json("plan", "hello", "-n", "2")
    assert planned["suspended"] is True and len(planned["fires"]) == 2
    header, *listed = q("schedule").stdout.splitlines()
    assert header.split() == ["NEXT", "JOB", "OR", "RUN", "WHAT"]
    assert len(listed) == 2 and "tick" in listed[0]
    assert listed[1].split()[:2] == ["suspended", "hello"]
    rows = q.json("schedule")
    assert [(r["job"], r["suspended"]) for r in rows] == [("tick", False), ("hello", True)]
    assert rows[1]["next_fire"] is None and rows[0]["next_fire"] is not None
    q("resume", "hello")
    assert [r["suspended"] for r in q.json("schedule")] == [False, False]
