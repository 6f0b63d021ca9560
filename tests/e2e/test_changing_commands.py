"""The CLI's rules as a user meets them: --json on every command that changes something, -y, -w,
durations everywhere, a not-found hint that names the listing command, suspending twice."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Queue


def test_suspend_resume_and_trigger_print_json_and_suspending_twice_says_so(q: Queue) -> None:
    q("apply", str(q.write_job("later", 'command = "echo later"\nrun_at = "+1h"\n')))
    first = q.json("suspend", "later")
    assert first["job"] == "later" and first["suspended"] is True and first["already"] is False
    assert len(first["cancelled"]) == 1
    again = q("suspend", "later").stdout
    assert "later is already suspended" in again and "cancelled" not in again
    assert q.json("suspend", "later") == {"job": "later", "suspended": True, "already": True, "cancelled": []}
    assert q.json("resume", "later") == {"job": "later", "suspended": False}
    assert q.json("show", "later")["suspended"] is False


def test_a_missing_job_or_run_names_the_command_that_lists_them(q: Queue) -> None:
    q("db", "migrate")
    for args in (["trigger", "ghost"], ["suspend", "ghost"], ["show", "ghost"]):
        missing = q(*args, check=False)
        assert missing.returncode == 1, args
        assert "'queuectl list --jobs'" in missing.stderr, (args, missing.stderr)


def test_queue_commands_print_json_and_take_y(q: Queue) -> None:
    q("enqueue", "--id", "bad", "--command", "exit 3", "--retries", "0")
    q("enqueue", "--id", "good", "--command", "true")
    q.burst(dead=True)
    assert q.json("dlq", "retry", "bad") == {"retried": ["bad"]}
    q.burst(dead=True)
    assert q.json("dlq", "clear", "-y") == {"deleted": 1}
    assert q.json("clear", "-y", "--state", "completed") == {"deleted": 1}
    assert q.json("config", "set", "job-timeout", "90") == {"key": "job-timeout", "value": 90}
    info = q.json("db", "migrate")
    assert info == q.json("db", "info") and isinstance(info["schema_version"], int)
    stop = q.json("worker", "stop", "--timeout", "1m")
    assert stop == {"signalled": [], "asked": [], "stale": 0, "stopped": False}
    created = q.json("init", "fresh.d")
    assert Path(q.tmp, created["created"]).is_file()


def test_durations_and_slots_read_alike_everywhere(q: Queue) -> None:
    q("enqueue", "--id", "later", "--command", "true", "--timeout", "1h30m", "--delay", "5m")
    assert q.json("show", "later")["timeout"] == 5400
    bad = q("worker", "stop", "--timeout", "soon", check=False)
    assert bad.returncode == 2 and "invalid --timeout 'soon'" in bad.stderr
    q("enqueue", "--id", "now", "--command", "true")
    assert q("worker", "start", "-w", "2", "--burst").returncode == 0
    assert q.state("now") == "completed"
