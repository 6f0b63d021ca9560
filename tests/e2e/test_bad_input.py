"""Bad input of any kind: one clear line, a non-zero exit, nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import QUEUECTL, Queue

BAD = [
    # (arguments, stdin, exit code, words the message must contain)
    (["enqueue", '{"id": "x", "command": "true"'], None, 2, ["malformed JSON"]),
    (["enqueue", "[1, 2]"], None, 2, ["JSON object"]),
    (["enqueue", '{"id": "x"}'], None, 2, ["missing command"]),
    (["enqueue", '{"id": "x", "command": "   "}'], None, 2, ["missing command"]),
    (["enqueue", '{"id": "../etc", "command": "true"}'], None, 2, ["invalid id", "'../etc'"]),
    (["enqueue", '{"command": "true", "colour": "red"}'], None, 2, ["unknown field 'colour'"]),
    (["enqueue", '{"command": "true", "priority": 11}'], None, 2, ["invalid priority", "1-10"]),
    (["enqueue", '{"command": "true", "max_retries": -1}'], None, 2, ["max_retries"]),
    (["enqueue", '{"command": "true", "timeout": "soon"}'], None, 2, ["invalid timeout", "90s"]),
    (["enqueue", "--command", "true", "--run-at", "tomorrow"], None, 2, ["invalid run_at", "ISO 8601"]),
    (["enqueue", "--command", "true", "--delay", "5x"], None, 2, ["invalid --delay"]),
    (["enqueue", "--command", "true", "--env", "NOEQUALS"], None, 2, ["NAME=VALUE"]),
    (["enqueue", '{"command": "echo a\\u0000b"}'], None, 2, ["invalid command", "NUL"]),
    (["enqueue", '{"command": "true", "env": {"A=B": "1"}}'], None, 2, ["invalid env name 'A=B'"]),
    (["enqueue", "[" * 100000], None, 2, ["malformed JSON"]),
    (["enqueue", "--command", "true", "--run-at", "0001-01-01T00:00:00+05:00"], None, 2, ["between 1970 and 9999"]),
    (["worker", "stop", "--timeout", "-1"], None, 2, ["--timeout"]),
    (["list", "--limit", "99999999999999999999"], None, 2, ["--limit"]),
    (["enqueue"], None, 2, ["nothing to enqueue"]),
    (["enqueue", "--bogus"], None, 2, ["No such option", "--bogus"]),
    (["enqueue", "--file", "-"], '{"command": "true"}\n{"command": "true"\n', 2, ["stdin line 2", "malformed JSON"]),
    (
        ["enqueue", "--file", "-"],
        '{"id": "d", "command": "true"}\n{"id": "d", "command": "true"}\n',
        1,
        ["line 2", "duplicate id 'd'", "line 1"],
    ),
    (["enqueue", "--file", "/no/such/file.jsonl"], None, 2, ["No such file"]),
    (["config", "set", "max-retires", "3"], None, 2, ["unknown config key 'max-retires'", "max-retries"]),
    (["config", "set", "lease-seconds", "abc"], None, 2, ["invalid value 'abc' for lease-seconds"]),
    (["config", "set", "max-retries", "-1"], None, 2, ["invalid value '-1' for max-retries"]),
    (["config", "get", "nope"], None, 2, ["unknown config key"]),
    (["list", "--state", "sleeping"], None, 2, ["sleeping"]),
    (["show", "ghost"], None, 1, ["no run or job named 'ghost'"]),
    (["logs", "ghost"], None, 1, ["no run or job named 'ghost'"]),
    (["dlq", "retry"], None, 2, ["--all"]),
    (["dlq", "retry", "existing"], None, 1, ["not dead"]),
    (["worker", "start", "--count", "0"], None, 2, ["--count"]),
    (["frobnicate"], None, 2, ["No such command"]),
]


@pytest.mark.parametrize(("args", "stdin", "code", "words"), BAD, ids=[" ".join(b[0])[:40] for b in BAD])
def test_bad_input_gets_one_clear_line_and_changes_nothing(
    q: Queue, args: list[str], stdin: str | None, code: int, words: list[str]
) -> None:
    q("enqueue", "--id", "existing", "--command", "true")
    before = q.json("list")
    config_before = q.json("config", "show")
    done = q(*args, input=stdin, check=False)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("queuectl: error: ")
    for word in words:
        assert word in lines[0]
    assert q.json("list") == before
    assert q.json("config", "show") == config_before


def test_duplicate_id_is_refused(q: Queue) -> None:
    q("enqueue", "--id", "job1", "--command", "true")
    done = q("enqueue", '{"id": "job1", "command": "echo again"}', check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "queuectl: error: duplicate id 'job1': a run with that id exists"
    assert q.run("job1")["command"] == "true"


def test_file_with_one_bad_line_adds_nothing(q: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps({"command": "true"}) + "\n" for _ in range(10)) + '{"command": 5}\n')
    done = q("enqueue", "--file", str(jobs), check=False)
    assert done.returncode == 2
    assert "jobs.jsonl line 11" in done.stderr
    assert q.json("list") == []


@pytest.mark.parametrize("kind", ["garbage file", "directory", "unwritable directory"])
def test_a_store_that_cannot_be_opened(tmp_path: Path, kind: str) -> None:
    if kind == "garbage file":
        db = tmp_path / "q.db"
        db.write_bytes(os.urandom(8192))
    elif kind == "directory":
        db = tmp_path / "adir"
        db.mkdir()
    else:
        if os.geteuid() == 0:
            db = Path("/proc/queuectl-cannot-be-here/q.db")  # root may write anywhere else
        else:
            locked = tmp_path / "locked"
            locked.mkdir(mode=0o500)
            db = locked / "sub" / "q.db"
    for args in (["status"], ["enqueue", "--command", "true"], ["worker", "start", "--burst"]):
        done = subprocess.run(
            [*QUEUECTL, "--db", str(db), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        said = "no store at" if kind == "unwritable directory" and args == ["status"] else "cannot open store"
        assert len(lines) == 1 and lines[0].startswith(f"queuectl: error: {said} {db}"), done.stderr


def test_help_and_version_answer(q: Queue) -> None:
    assert q("--version").stdout.startswith("queuectl, version")
    helptext = q("--help").stdout
    for command in ("enqueue", "worker", "status", "list", "show", "logs", "dlq", "config", "metrics", "clear"):
        assert command in helptext
    assert "up to 3 attempts" in q("enqueue", "--help").stdout.replace("\n", " ")
    assert q().returncode == 0  # no arguments: the help


def test_a_store_from_a_newer_queuectl_is_refused(q: Queue) -> None:
    import sqlite3

    q("db", "migrate")  # creates the store (status only reads)
    with sqlite3.connect(q.db) as con:
        con.execute("PRAGMA user_version = 999")
    done = q("status", check=False)
    assert done.returncode == 1
    assert "schema version 999, newer than this queuectl knows" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_shell_completion_through_click(q: Queue) -> None:
    env = dict(q.env, _QUEUECTL_COMPLETE="bash_complete", COMP_WORDS="queuectl worker st", COMP_CWORD="2")
    done = subprocess.run(QUEUECTL, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert {"plain,start", "plain,status", "plain,stop"} <= set(done.stdout.split())
