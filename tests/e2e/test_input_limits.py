"""Small inconsistencies of input and output: module entry, validate's streams, file names, limits, run_at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Queue


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
