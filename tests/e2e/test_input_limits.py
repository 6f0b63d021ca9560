"""Small inconsistencies of input and output: module entry, validate's streams, file names, limits, run_at."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import QUEUECTL, Queue
from tests.e2e.test_list_stream import run_measured


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    os.chmod(path, 0o644)
    return path


def test_python_m_queuectl_cli_runs_the_command(q: Queue) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "queuectl.cli", "--help"], env=q.env, capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0 and "Usage:" in helped.stdout and "enqueue" in helped.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "queuectl.cli", "enqueue", "--id", "m", "--command", "true"],
        env=q.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in q.json("list")] == ["m"]


def test_validate_writes_errors_and_summary_to_stderr(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "bad.toml", 'command = "x"\npriority = 0\n')
    done = q("validate", str(jobs), check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "bad.toml:2: priority:" in done.stderr and "0 valid, 1 invalid" in done.stderr


def test_a_file_name_with_a_newline_keeps_its_error_on_one_line(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "evil\nname.toml", 'command = "x"\npriority = 0\n')
    for verb in ("validate", "apply"):
        done = q(verb, str(jobs), check=False)
        assert done.returncode != 0
        output = done.stdout + done.stderr
        lines = [line for line in output.splitlines() if "priority" in line]
        assert lines and all("evil\\nname.toml:2: priority:" in line for line in lines), output
        assert not any(line.startswith("name.toml") for line in output.splitlines()), output


def test_dlq_retry_grows_the_allowance_so_tries_never_exceed_it(q: Queue) -> None:
    q("enqueue", "--id", "d", "--command", "exit 3", "--retries", "1", "--backoff-base", "0")  # no wait between tries
    q.burst(dead=True)
    assert q.state("d") == "dead"
    q("dlq", "retry", "d")
    q.burst(dead=True)
    run = q.run("d")
    assert run["state"] == "dead" and run["attempts"] == 3  # the retry gave exactly one more attempt
    assert run["attempts"] <= run["max_retries"] + 1
    row = next(line for line in q("list").stdout.splitlines() if line.startswith("d "))
    assert "3/3" in row.split(), row
    assert any("3 of 3" in line for line in q("show", "d").stdout.splitlines())
    q("dlq", "retry", "d", "--reset-attempts")
    q.burst(dead=True)
    assert q.run("d")["attempts"] == 3  # a fresh count: the allowance it had
    assert "3/3" in next(line for line in q("list").stdout.splitlines() if line.startswith("d ")).split()


def test_a_finished_delayed_run_keeps_the_run_at_it_was_given(q: Queue) -> None:
    q("enqueue", "--id", "late", "--command", "true", "--run-at", "2020-01-02T03:04:05Z")
    q("enqueue", "--id", "dies", "--command", "exit 1", "--retries", "0", "--run-at", "2020-01-02T03:04:05Z")
    q.burst(dead=True)
    for run_id, state in (("late", "completed"), ("dies", "dead")):
        run = q.run(run_id)
        assert run["state"] == state
        assert run["run_at"] == "2020-01-02T03:04:05.000Z", run


def test_cron_that_never_fires_is_refused_by_validate_and_apply(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "feb.toml", 'command = "true"\ncron = "0 0 30 2 *"\n')
    write(jobs, "wrap.toml", 'command = "true"\ncron = "1-0 * * * *"\n')
    write(jobs, "step.toml", 'command = "true"\ncron = "*/61 * * * *"\n')
    for verb in ("validate", "apply"):
        done = q(verb, str(jobs), check=False)
        assert done.returncode == 1, (verb, done.stdout, done.stderr)
        out = done.stdout + done.stderr
        assert "feb.toml:2: cron: '0 0 30 2 *' never fires" in out
        assert "wrap.toml:2: cron: minute field '1-0' is a reversed range" in out
        assert "step.toml:2: cron: minute field '*/61' has step 61" in out
    assert q.json("list", "--jobs") == []


def test_validate_names_the_bad_cron_field_and_its_range_in_one_exact_line(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "hour.toml", 'command = "true"\ndescription = "x"\ncron = "* 25 * * *"\n')
    write(jobs, "count.toml", 'command = "true"\ncron = "0 2 * * * *"\n')
    done = q("validate", str(jobs), check=False)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.splitlines() == [
        "jobs.d/count.toml:2: cron: expected 5 fields (minute hour day-of-month month day-of-week) "
        "or @hourly/@daily/@weekly/@monthly/@yearly, got 6",
        "jobs.d/hour.toml:3: cron: hour field '25' is out of range 0-23",
        "0 valid, 2 invalid manifest(s)",
    ]


SAME_RULE = [
    # (config key, manifest key, enqueue flag, too large a value, the one rule)
    ("backoff-base", "backoff_base", "--backoff-base", "1e300", "expected a number from 0 to 1000 (retry n waits"),
    ("max-retries", "retries", "--retries", "1001", "expected a whole number from 0 to 1000 (tries after the first)"),
]


@pytest.mark.parametrize(("key", "toml_key", "flag", "value", "rule"), SAME_RULE)
def test_one_rule_per_setting_wherever_it_is_given(
    q: Queue, key: str, toml_key: str, flag: str, value: str, rule: str
) -> None:
    json_key = toml_key if toml_key != "retries" else "max_retries"
    write(q.tmp / "jobs.d", "big.toml", f'command = "true"\n{toml_key} = {value}\n')
    attempts = [
        q("config", "set", key, value, check=False),
        q("enqueue", f'{{"command": "true", "{json_key}": {value}}}', check=False),
        q("enqueue", "--command", "true", flag, value, check=False),
        q("enqueue", "--file", "-", input=f'{{"command": "true", "{json_key}": {value}}}\n', check=False),
        q("validate", str(q.tmp / "jobs.d"), check=False),
    ]
    for done in attempts:
        assert done.returncode != 0 and rule in done.stderr, (done.args, done.stderr)
    assert q("config", "get", key).stdout.strip() == ("2" if key == "backoff-base" else "3")
    assert q.json("list") == []


ONE_ARGUMENT = "131,071 bytes for one argument (MAX_ARG_STRLEN)"


def test_a_command_at_the_kernels_limit_runs_and_one_byte_more_is_refused(q: Queue) -> None:
    fits = ": " + "x" * (131071 - 2)  # with its NUL, exactly MAX_ARG_STRLEN
    line = json.dumps({"id": "fits", "command": fits}) + "\n"
    q("enqueue", "--file", "-", input=line)
    q.burst()
    assert q.state("fits") == "completed"
    over = json.dumps({"id": "over", "command": fits + "x"}) + "\n"
    refused = q("enqueue", "--file", "-", input=over, check=False)
    assert refused.returncode == 2
    assert "stdin line 1: invalid command: 131,072 bytes, over the kernel's limit of " + ONE_ARGUMENT in refused.stderr
    big_env = json.dumps({"command": "true", "env": {"BIG": "y" * 131068}}) + "\n"  # BIG=...: 131,072 bytes
    refused = q("enqueue", "--file", "-", input=big_env, check=False)
    assert refused.returncode == 2 and "invalid env BIG: 131,072 bytes" in refused.stderr
    assert "environment string NAME=VALUE (MAX_ARG_STRLEN)" in refused.stderr
    together = {f"V{n}": "z" * 120_000 for n in range(20)}
    refused = q("enqueue", "--file", "-", input=json.dumps({"command": "true", "env": together}) + "\n", check=False)
    assert refused.returncode == 2 and "invalid command and env: " in refused.stderr
    assert f"ARG_MAX {os.sysconf('SC_ARG_MAX'):,} less 65,536 for the pool's own environment" in refused.stderr
    assert [r["id"] for r in q.json("list")] == ["fits"]


def test_a_huge_enqueue_line_is_refused_without_reading_it_whole(q: Queue) -> None:
    _, _, _, bare = run_measured([*QUEUECTL, "enqueue", "--command", "true"], q.env, q.tmp)
    for size, words in ((10_000_000, ONE_ARGUMENT), (40_000_000, "longer than 16,777,216 characters")):
        path = q.tmp / "huge.jsonl"
        with open(path, "w") as f:
            f.write('{"command": "')
            for _ in range(size // 1_000_000):
                f.write("x" * 1_000_000)
            f.write('"}\n')
        code, _, error, peak = run_measured([*QUEUECTL, "enqueue", "--file", str(path)], q.env, q.tmp)
        assert code == 2 and words in error, error
        read = min(size, 16 * 1024 * 1024)  # what may be read at all: the line, or MAX_LINE of it
        assert peak < bare + 3 * read, f"{size:,} bytes: a peak of {peak:,}, {bare:,} for a small enqueue"
    assert [r["command"] for r in q.json("list")] == ["true"]


def test_apply_refuses_a_command_or_env_too_large_to_start(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    write(jobs, "long.toml", 'command = "echo ' + "x" * 140_000 + '"\n')
    write(jobs, "env.toml", 'command = "true"\n[env]\nA = "' + "y" * 140_000 + '"\n')
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "long.toml:1: command: 140,005 bytes, over the kernel's limit of " + ONE_ARGUMENT in out
    assert "env.toml:3: env.A: 140,002 bytes" in out
    assert q.json("list", "--jobs") == []
