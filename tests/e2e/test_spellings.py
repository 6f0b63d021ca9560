"""Spellings users of the other queue tools type: they work here too (issue 14)."""

from __future__ import annotations

import json

from tests.conftest import Queue, wait_for
from tests.e2e.test_tables import plain, terminal


def test_processing_is_running_and_state_names_take_any_case(q: Queue) -> None:
    gate, opened = q.gate()
    q("enqueue", json.dumps({"id": "busy", "command": gate}))
    q("enqueue", json.dumps({"id": "later", "command": "true", "delay": 3600}))
    pool = q.start_pool()
    wait_for(lambda: q.state("busy") == "running", what="busy running")
    for spelled in ("processing", "PROCESSING", "Running"):
        assert [r["id"] for r in q.json("list", "--state", spelled)] == ["busy"], spelled
    assert [r["id"] for r in q.json("list", "-s", "Scheduled")] == ["later"]  # delayed: scheduled till due
    refused = q("clear", "--state", "Processing", "-y", check=False)
    assert refused.returncode != 0 and "running runs cannot be cleared" in refused.stderr
    assert q.json("clear", "--state", "SCHEDULED", "-y")["deleted"] == 1
    assert q.state("busy") == "running"
    bad = q("list", "--state", "busy-ish", check=False)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "processing" in bad.stderr
    opened.touch()
    wait_for(lambda: q.state("busy") == "completed", what="busy completed")
    pool.terminate()
    pool.wait(timeout=30)


def test_add_is_run(q: Queue) -> None:
    run_id = q("add", "echo added").stdout.strip()
    q.burst()
    assert q.run(run_id)["state"] == "completed"
    assert q("logs", run_id).stdout == "added\n"


def test_config_list_and_config_get_without_a_key_show_every_setting(q: Queue) -> None:
    q("config", "set", "max-retries", "7")
    listed = q("config", "list").stdout
    assert q("config", "show").stdout == listed
    assert q("config", "get").stdout == listed
    assert "max-retries" in listed and "7" in listed and "job-timeout" in listed
    assert q.json("config", "list")["max-retries"] == 7
    assert q("config", "get", "max-retries").stdout == "7\n"


def test_worker_start_foreground_and_c_for_count(q: Queue) -> None:
    q("db", "migrate")
    pool = q.start_pool("--foreground", "-c", "3")
    q.wait_pool_registered(pool)
    assert [w["slots"] for w in q.json("worker", "status")] == [3]
    pool.terminate()
    assert pool.wait(timeout=30) == 0
    both = q("worker", "start", "--foreground", "--detach", check=False)
    assert both.returncode == 2 and both.stderr.count("\n") == 1 and "--detach or --foreground" in both.stderr
    q("enqueue", '{"id":"one","command":"true"}')
    assert q("worker", "start", "--foreground", "--burst", "--count", "2").returncode == 0
    assert q.state("one") == "completed"


def test_metrics_detailed_per_job_and_overall(q: Queue) -> None:
    q("enqueue", '{"id":"ok","command":"sleep 0.3"}')
    q("enqueue", '{"id":"bad","command":"exit 1","max_retries":0}')
    q.burst(dead=True)
    found = q.json("metrics", "--detailed")
    every = found["overall"]
    assert (every["counts"]["completed"], every["counts"]["dead"], every["attempts"]) == (1, 1, 2)
    assert every["success_rate"] == every["success_rate_24h"] == 0.5
    assert 0.3 <= every["duration"]["max"] < 5 and every["duration"]["min"] < 0.3
    assert every["queue_wait"]["min"] >= 0 and every["runs_per_minute"] == round(1 / 60, 4)
    assert [j["job"] for j in found["jobs"]] == [None]
    assert found["utilisation"]["ratio"] is None  # the burst pool has gone: no slots registered now
    shown = q("metrics", "--detailed").stdout
    assert "worker utilisation, last hour: -" in shown
    row = next(line for line in shown.splitlines() if line.startswith("(all)"))
    assert "1 completed, 1 dead" in row and "50.0%" in row


def test_metrics_detailed_on_a_narrow_terminal_is_a_block_per_job(q: Queue) -> None:
    for name in ("alpha-backup-nightly", "beta", "gamma-reports-with-a-long-name"):
        q.write_job(name, 'command = "true"\n')
    q("apply", str(q.tmp / "jobs.d"))
    q.burst()
    code, wide = terminal(q, "metrics", "--detailed", columns=200)
    assert code == 0 and "DURATION MIN/MEAN/P50/P95/MAX" in wide  # the table, where it fits
    code, narrow = terminal(q, "metrics", "--detailed", columns=80)
    lines = plain(narrow).splitlines()
    assert code == 0 and max(len(line) for line in lines) <= 80  # it used to be a 120-column table, folded
    jobs = [line.split(None, 1)[1] for line in lines if line.startswith("job ")]
    assert jobs == ["(all)", "alpha-backup-nightly", "beta", "gamma-reports-with-a-long-name"]
    assert any(line.startswith("runs      3 completed") for line in lines)
    assert any(line.startswith("duration  min ") and ", max " in line for line in lines)


def test_a_pool_claims_with_priority_aging_on(q: Queue) -> None:
    q("enqueue", '{"id":"low","command":"true","priority":"low"}')
    q("enqueue", '{"id":"high","command":"true","priority":"high"}')
    assert q("config", "get", "priority-aging").stdout == "0\n"  # off by default
    assert q.json("config", "set", "priority-aging", "5m")["value"] == 300
    q.burst("--workers", "1")
    assert [q.state(r) for r in ("low", "high")] == ["completed", "completed"]
    order = sorted(("low", "high"), key=lambda r: q.run(r)["started_at"])
    assert order == ["high", "low"]  # neither has waited 5 minutes: priority decides
    assert q.json("config", "set", "priority-aging", "off")["value"] == 0  # as its help says: 0 or off
