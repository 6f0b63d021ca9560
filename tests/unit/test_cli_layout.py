"""The CLI's shape: commands load lazily, --help lists them from one table that matches the commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from queuectl.cli.app import COMMANDS, cli


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_table_says_what_each_command_says_of_itself(name: str) -> None:
    ctx = click.Context(cli)
    command = cli.get_command(ctx, name)
    assert command is not None
    assert command.get_short_help_str(limit=10**6) == COMMANDS[name][2]


def test_every_command_module_is_in_the_table() -> None:
    """A command added to a module but not to COMMANDS would be unreachable: none is."""
    ctx = click.Context(cli)
    listed = {(entry[0], entry[1]) for entry in COMMANDS.values()}
    for module in {entry[0] for entry in COMMANDS.values()}:
        loaded = sys.modules.get(f"queuectl.cli.{module}") or __import__(f"queuectl.cli.{module}", fromlist=["x"])
        top_level = {
            attr
            for attr, value in vars(loaded).items()
            if isinstance(value, click.Command) and value.__module__ == loaded.__name__
        }
        assert top_level <= {attr for mod, attr in listed if mod == module}, module
    assert all(cli.get_command(ctx, name) is not None for name in COMMANDS)


def _modules_after(args: list[str], tmp_path: Path) -> set[str]:
    """The modules a real `queuectl ARGS` imported (run in a fresh interpreter)."""
    code = (
        "import sys, json\n"
        "from queuectl.cli.app import run\n"
        "code = run(sys.argv[1:])\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module(tmp_path: Path) -> None:
    loaded = _modules_after(["--help"], tmp_path)
    assert not {m for m in loaded if m.startswith("queuectl.cli.") and m != "queuectl.cli.app"}
    assert "queuectl.store" not in loaded and "rich" not in loaded


def test_status_imports_only_what_it_uses(tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    loaded = _modules_after(["--db", db, "db", "migrate"], tmp_path)
    assert "queuectl.cli.store" in loaded
    loaded = _modules_after(["--db", db, "status"], tmp_path)
    assert "queuectl.cli.store" in loaded
    for heavy in ("rich", "tomli", "croniter", "watchdog", "psycopg", "queuectl.cli.runs", "queuectl.cli.jobs"):
        assert heavy not in loaded, heavy
