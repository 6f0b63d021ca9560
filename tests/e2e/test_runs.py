"""A user's view of runs: enqueue, work, inspect, retry, dead letters."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from tests.conftest import Queue, wait_for


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_job_completes_with_its_output_captured(q: Queue) -> None:
    q("enqueue", '{"id":"job1","command":"echo hello; echo oops >&2","max_retries":3,"priority":8,"timeout":30}')
    q.burst()
    run = q.run("job1")
    assert run["state"] == "completed"
    assert run["exit_code"] == 0
    assert run["attempts"] == 1
    assert run["priority"] == 8
    assert "hello" in run["output_tail"] and "oops" in run["output_tail"]
    assert q("logs", "job1").stdout == "hello\noops\n"
    assert [a["outcome"] for a in run["history"]] == ["completed"]


def test_run_prints_a_generated_id_and_runs(q: Queue) -> None:
    run_id = q("run", "echo from-run").stdout.strip()
    assert run_id.startswith("run-")
    q.burst()
    assert q.run(run_id)["state"] == "completed"
    assert "from-run" in q("logs", run_id).stdout


def test_flag_spelling_enqueue(q: Queue) -> None:
    q(
        "enqueue",
        "--id",
        "job2",
        "--command",
        "echo hi",
        "--priority",
        "8",
        "--timeout",
        "5",
        "--retries",
        "3",
        "--backoff-base",
        "2",
    )
    q("enqueue", "--id", "job3", "--command", "true", "-p", "high", "--max-retries", "1")
    job2, job3 = q.run("job2"), q.run("job3")
    assert (job2["priority"], job2["timeout"], job2["max_retries"], job2["backoff_base"]) == (8, 5, 3, 2)
    assert (job3["priority"], job3["max_retries"]) == (10, 1)
    assert q("get", "job2").returncode == 0


def test_failing_job_is_retried_with_backoff_then_dead_then_retried_from_dlq(q: Queue) -> None:
    q("enqueue", "--id", "flaky", "--command", "exit 1", "--retries", "2", "--backoff-base", "1.5")
    q.burst(dead=True)
    run = q.run("flaky")
    assert run["state"] == "dead"
    assert run["exit_code"] == 1
    history = run["history"]
    assert [a["outcome"] for a in history] == ["failed", "failed", "failed"]
    starts = [ts(a["started_at"]) for a in history]
    ends = [ts(a["finished_at"]) for a in history]
    # retry n waits backoff_base ** n seconds after attempt n ended
    for n, expected in ((1, 1.5), (2, 2.25)):
        gap = starts[n] - ends[n - 1]
        assert expected - 0.05 <= gap <= expected + 1.5, (n, gap)
    assert [r["id"] for r in q.json("dlq", "list")] == ["flaky"]

    q("dlq", "retry", "flaky")
    assert q.state("flaky") == "pending"
    q.burst(dead=True)
    run = q.run("flaky")
    assert run["state"] == "dead"  # one more chance, then dead again
    assert len(run["history"]) == 4

    q("dlq", "retry", "--all", "--reset-attempts")
    run = q.run("flaky")
    assert (run["state"], run["attempts"]) == ("pending", 0)


def test_missing_command_fails_cleanly(q: Queue) -> None:
    q("enqueue", "--id", "nope", "--command", "definitely-not-a-command-xyz", "--retries", "0")
    q.burst(dead=True)
    run = q.run("nope")
    assert run["state"] == "dead"
    assert run["exit_code"] == 127
    assert "command not found" in run["error"]
    assert "not found" in run["output_tail"]


def test_higher_priority_runs_first_then_oldest(q: Queue) -> None:
    # Each run writes its name down as it starts: the order is what the file says, not
    # started_at, whose millisecond granularity can tie two runs of `true` in a row.
    for run_id, priority in (("low", "low"), ("mid1", "5"), ("high", "high"), ("mid2", "5")):
        q("enqueue", "--id", run_id, "--command", f"echo {run_id} >> order.txt", "--priority", priority)
    q.burst("--count", "1")
    assert (q.tmp / "order.txt").read_text().split() == ["high", "mid1", "mid2", "low"]


def test_enqueue_file_adds_all_at_once(q: Queue) -> None:
    lines = "".join(json.dumps({"id": f"f{i}", "command": f"echo {i}"}) + "\n" for i in range(50))
    q("enqueue", "--file", "-", input=lines + "\n")
    assert q.json("status")["counts"]["pending"] == 50
    q.burst("--count", "4")
    assert q.json("status")["counts"]["completed"] == 50


def test_delayed_runs_wait_for_their_time(q: Queue) -> None:
    q("enqueue", "--id", "later", "--command", "true", "--delay", "1h")
    q("enqueue", "--id", "at", "--command", "true", "--run-at", "2999-01-01T00:00:00Z")
    q("enqueue", "--id", "now", "--command", "true")
    q.burst()
    assert q.state("now") == "completed"
    assert q.state("later") == "scheduled" and q.state("at") == "scheduled"
    assert q.run("at")["run_at"].startswith("2999-01-01T00:00:00")


def test_list_and_status_json_contract(q: Queue) -> None:
    q("enqueue", "--id", "a", "--command", "true")
    q("enqueue", "--id", "b", "--command", "exit 3", "--retries", "0")
    q.burst(dead=True)
    status = q.json("status")
    assert set(status) >= {"counts", "workers", "store"}
    assert status["counts"]["completed"] == 1 and status["counts"]["dead"] == 1
    assert status["store"] == str(q.db)
    runs = q.json("list")
    assert [r["id"] for r in runs] == ["a", "b"]
    for key in ("id", "job", "state", "attempts", "exit_code", "priority", "created_at", "run_at"):
        assert key in runs[0]
    assert [r["id"] for r in q.json("list", "--state", "dead")] == ["b"]
    assert len(q.json("list", "--limit", "1")) == 1
    metrics = q.json("metrics")
    assert metrics["counts"]["completed"] == 1
    assert metrics["success_rate"] == 0.5
    assert metrics["completed_last_hour"] == 1


def test_plain_output_when_not_a_terminal(q: Queue) -> None:
    q("enqueue", "--id", "a", "--command", "true")
    out = q("list").stdout
    assert "\x1b[" not in out  # no colour codes in pipes
    assert out.splitlines()[0].split()[:2] == ["ID", "STATE"]
    assert "pending" in out


def test_clear_deletes_runs_in_a_state(q: Queue) -> None:
    q("enqueue", "--id", "a", "--command", "echo a")
    q("enqueue", "--id", "b", "--command", "true", "--delay", "1h")
    q("enqueue", "--id", "d1", "--command", "echo dying; exit 3", "--retries", "0")
    q("enqueue", "--id", "d2", "--command", "echo dying too; exit 4", "--retries", "0")
    q.burst(dead=True)
    states = {r["id"]: r["state"] for r in q.json("list")}
    assert states == {"a": "completed", "b": "scheduled", "d1": "dead", "d2": "dead"}
    dead_logs = [Path(q.run(run_id)["log_path"]) for run_id in ("d1", "d2")]
    assert all(log.exists() for log in dead_logs)
    refused = q("clear", check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    q("clear", "--state", "completed", "--yes")
    assert [r["id"] for r in q.json("list")] == ["b", "d1", "d2"]
    assert "deleted 2 run(s)" in q("dlq", "clear", "--yes").stdout
    assert [r["id"] for r in q.json("list")] == ["b"]  # the dead runs went, the scheduled one stayed
    assert q.json("dlq", "list") == []
    assert not any(log.exists() for log in dead_logs)  # and their log files with them


def test_config_set_get_show(q: Queue) -> None:
    assert q("config", "set", "max_retries", "5").stdout.strip() == "max-retries = 5"
    assert q("config", "get", "max-retries").stdout.strip() == "5"
    q("config", "set", "worker-poll-interval", "0.5")
    assert q.json("config", "show")["worker-poll-interval"] == 0.5
    q("enqueue", "--id", "a", "--command", "true")
    assert q.run("a")["max_retries"] == 5  # the default comes from config


def test_jobs_survive_a_restart_of_every_process(q: Queue) -> None:
    command, gate = q.gate()  # s0 runs until the gate opens, so the stop always lands while it runs
    q("enqueue", "--id", "s0", "--command", command)
    for i in range(1, 5):
        q("enqueue", "--id", f"s{i}", "--command", "true")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("s0") == "running", what="s0 running")
    q("worker", "stop", "--no-wait")  # graceful: s0 finishes, nothing new is claimed
    q.read_until(pool, "stop")
    gate.touch()
    assert pool.wait(timeout=30) == 0
    states = {r["id"]: r["state"] for r in q.json("list")}
    assert states == {"s0": "completed", "s1": "pending", "s2": "pending", "s3": "pending", "s4": "pending"}
    q.burst()
    assert {r["state"] for r in q.json("list")} == {"completed"}


def test_a_pool_starting_while_another_process_holds_the_store_waits_for_it(q: Queue) -> None:
    import sqlite3

    q("run", "echo waited", "--id", "w1")
    holder = sqlite3.connect(q.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer (say, a scheduler's long pass) holds the store
    try:
        pool = q.start_pool("--burst")
        assert pool.stdout is not None
        for line in pool.stdout:
            if "store busy at start" in line:
                break
        else:
            raise AssertionError("the pool neither waited nor said so")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert pool.wait(timeout=60) == 0
    assert q.state("w1") == "completed"
