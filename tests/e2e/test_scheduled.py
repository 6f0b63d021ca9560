"""Runs held back until a time, in view: the `scheduled` state, `schedule` listing them, list's DUE column,
and a relative JSON `run_at` ("+5m")."""

from __future__ import annotations

import os
import time
from datetime import datetime

from tests.conftest import Queue, wait_for
from tests.e2e.test_tables import terminal


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _counts(q: Queue) -> dict[str, int]:
    return q.json("status")["counts"]  # type: ignore[no-any-return]


def test_a_delayed_run_is_scheduled_until_due_then_pending_and_runs(q: Queue) -> None:
    q("run", "echo later", "--id", "later", "--delay", "1h")
    q("enqueue", "--id", "at", "--command", "true", "--run-at", "2999-01-01T00:00:00Z")
    counts = _counts(q)
    assert (counts["scheduled"], counts["pending"]) == (2, 0)
    status_rows = dict(line.split()[:2] for line in q("status").stdout.splitlines()[1:8])
    assert status_rows["scheduled"] == "2" and status_rows["pending"] == "0"
    assert [r["id"] for r in q.json("list", "--state", "scheduled")] == ["later", "at"]
    assert {r["state"] for r in q.json("list")} == {"scheduled"}
    assert q.json("show", "later")["state"] == "scheduled"
    shown = dict(line.split(None, 1) for line in q("show", "later").stdout.splitlines() if line.strip())
    assert shown["state"].startswith("scheduled (not before ")
    assert q.json("metrics")["counts"]["scheduled"] == 2
    # (a run due in seconds is enqueued only now: on a loaded machine the looks above take seconds)
    q("enqueue", "--id", "soon", "--command", "echo soon", "--delay", "3s")
    assert q.state("soon") == "scheduled"
    # due in 3 s: pending with no process running to move it, then a pool runs it; the others wait on
    wait_for(lambda: q.state("soon") == "pending", what="soon due")
    assert [r["id"] for r in q.json("list", "--state", "pending")] == ["soon"]
    assert [r["id"] for r in q.json("list", "--state", "scheduled")] == ["later", "at"]
    counts = _counts(q)
    assert (counts["scheduled"], counts["pending"]) == (2, 1)
    q.burst()
    assert [q.state(run_id) for run_id in ("soon", "later", "at")] == ["completed", "scheduled", "scheduled"]


def test_clear_state_scheduled_and_pending_part_runs_by_due_time(q: Queue) -> None:
    q("run", "true", "--id", "now")
    q("run", "true", "--id", "later", "--delay", "1h")
    assert q.json("clear", "--state", "scheduled", "--yes") == {"deleted": 1}
    assert [r["id"] for r in q.json("list")] == ["now"]
    q("run", "true", "--id", "later", "--delay", "1h")
    assert q.json("clear", "--state", "pending", "--yes") == {"deleted": 1}
    assert [r["id"] for r in q.json("list")] == ["later"]


def test_a_failed_run_waiting_for_its_retry_stays_failed(q: Queue) -> None:
    q("run", "exit 3", "--id", "flaky", "--retries", "1", "--backoff-base", "600")
    q.start_pool()  # a burst would wait the 10 minutes for the retry; the test's end stops it
    wait_for(lambda: q.state("flaky") == "failed", what="first attempt failed")
    assert _counts(q)["scheduled"] == 0 and q.json("list", "--state", "scheduled") == []
    assert "DUE" in q("list").stdout.splitlines()[0]  # its retry is due later


def test_schedule_lists_delayed_runs_beside_cron_fires_soonest_first(q: Queue) -> None:
    q("run", "echo now", "--id", "now")  # due already: not in the schedule
    assert q("schedule").stdout.strip() == "no scheduled jobs or runs"
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    (jobs / "newyear.toml").write_text('command = "echo happy"\ncron = "0 0 1 1 *"\ntimezone = "UTC"\n')
    os.chmod(jobs / "newyear.toml", 0o644)
    q("apply", str(jobs))
    q("run", "echo early", "--id", "early", "--delay", "1h")
    q("enqueue", '{"id": "late", "command": "echo late", "run_at": "2999-01-01T00:00:00Z"}')
    header, *lines = q("schedule").stdout.splitlines()
    assert len(lines) == 3
    assert header.index("JOB OR RUN") == lines[0].index("early") == lines[1].index("newyear")  # aligned columns
    assert lines[0].split()[3:] == ["early", "run:", "echo", "early"]
    assert lines[1].split()[3:5] == ["newyear", "At"]
    assert lines[2].startswith("2999-01-01 ") and lines[2].split()[3:] == ["late", "run:", "echo", "late"]
    rows = q.json("schedule")
    listed = [(r["kind"], r.get("id") or r["job"]) for r in rows]
    assert listed == [("run", "early"), ("cron", "newyear"), ("run", "late")]
    early, cron, late = rows
    assert early["command"] == "echo early" and early["job"] is None and early["next_run_at"] == early["run_at"]
    assert set(cron) >= {"job", "schedule", "next_run_at", "next_fire", "suspended"}
    assert late["next_run_at"].startswith("2999-01-01T00:00:00")
    assert [r["kind"] for r in q.json("schedule", "-n", "2")] == ["run", "cron"]
    assert len(q("list", "--scheduled", "--limit", "1").stdout.splitlines()) == 2  # the header and one row


def test_list_shows_a_due_column_only_when_a_run_waits_for_a_time_ahead(q: Queue) -> None:
    q("run", "true", "--id", "now")
    assert "DUE" not in q("list").stdout.splitlines()[0]
    assert "DUE" not in terminal(q, "list", columns=200)[1]
    q("run", "true", "--id", "later", "--delay", "1h")
    header, *rows = q("list").stdout.splitlines()
    assert header.split() == ["ID", "STATE", "PRI", "TRIES", "EXIT", "CREATED", "DUE", "COMMAND"]
    due = time.strftime("%Y-%m-%d %H:%M", time.localtime(_epoch(q.run("later")["run_at"])))
    later = next(row for row in rows if row.startswith("later "))
    assert due in later and " scheduled " in later
    assert "DUE" in terminal(q, "list", columns=200)[1]
    assert "DUE" not in q("list", "--state", "pending").stdout  # only the runs listed decide


def test_json_run_at_may_be_relative_and_a_bad_one_is_one_clear_line(q: Queue) -> None:
    before = time.time()
    q("enqueue", '{"id": "rel", "command": "true", "run_at": "+5m"}')
    q("enqueue", "--file", "-", input='{"id": "rel2", "command": "true", "run_at": "+1h30m"}\n')
    q("enqueue", '{"id": "abs", "command": "true", "run_at": "2999-01-01T00:00:00Z"}')
    assert before + 300 <= _epoch(q.run("rel")["run_at"]) <= time.time() + 300
    assert before + 5400 <= _epoch(q.run("rel2")["run_at"]) <= time.time() + 5400
    assert [(r["id"], r["state"]) for r in q.json("list")] == [(i, "scheduled") for i in ("rel", "rel2", "abs")]
    for bad in ('{"command": "true", "run_at": "+5x"}', '{"command": "true", "run_at": "+"}'):
        refused = q("enqueue", bad, check=False)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.strip().splitlines() == [
            f"queuectl: error: invalid run_at {bad.split(': ')[-1][1:-2]!r}: "
            'expected a relative time like "+30m" or "+1h30m"'
        ]
    refused = q("enqueue", "--file", "-", input='{"command": "true", "run_at": "+2q"}\n', check=False)
    assert refused.returncode == 2 and "line 1: invalid run_at '+2q'" in refused.stderr
    assert len(q.json("list")) == 3
