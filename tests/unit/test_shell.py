"""The shell's parts without a terminal: splitting lines, and what Tab offers (from click's group and a real store)."""

from __future__ import annotations

import ctypes
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from queuectl import fields, reaper
from queuectl.cli.app import cli, run
from queuectl.model import RunState
from queuectl.services import runs
from queuectl.shell import LOOKUP_LIMIT, Completions, Lookup, Shell, split_commands
from queuectl.store.factory import open_store

PR_GET_CHILD_SUBREAPER = 37  # linux/prctl.h


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("status; list --state dead", ["status", " list --state dead"]),
        ('run "echo a; echo b"; status', ['run "echo a; echo b"', " status"]),
        ("run 'a;b' ;; status ;", ["run 'a;b' ", " status "]),
        (r"run echo\;x", [r"run echo\;x"]),
        ("", []),
    ],
)
def test_a_line_is_cut_at_semicolons_outside_quotes(text: str, pieces: list[str]) -> None:
    assert split_commands(text) == pieces


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "q.db")
    store = open_store(path)
    store.close()
    return path


@pytest.fixture
def tab(db: str) -> Iterator[Completions]:
    lookup = Lookup(db)
    yield Completions(cli, lookup)
    lookup.reset()


def offered(tab: Completions, before: str) -> list[str]:
    return [word.rstrip() for word in tab.complete(before)[1]]


def test_commands_subcommands_and_builtins(tab: Completions) -> None:
    everything = offered(tab, "")
    assert {"status", "list", "dlq", "shell", "clear", "help", "exit", "quit"} <= set(everything)
    assert offered(tab, "st") == ["status"]
    assert sorted(offered(tab, "dlq ")) == ["clear", "list", "retry"]
    assert offered(tab, "help dlq r") == ["retry"]
    assert offered(tab, "status; li") == ["list"]  # the command after the last ;
    assert offered(tab, "queuectl dlq cl") == ["clear"]  # the prefix, typed out of habit


def test_options_and_their_values_from_click_and_fields(tab: Completions) -> None:
    assert {"--state", "-s", "--json", "--help"} <= set(offered(tab, "list -"))
    assert offered(tab, "list --state ") == [*(s.value for s in RunState), "processing"]  # its other name too
    assert offered(tab, "list --state PEN") == ["pending"]  # any case, as the command takes it
    assert offered(tab, "clear -s proc") == ["processing"]
    assert offered(tab, "run --priority HI") == ["high"]
    assert offered(tab, "list --state proc") == ["processing"]  # another name for running, offered too
    assert offered(tab, "list -s d") == ["dead"]
    assert offered(tab, "run --priority ") == list(fields.BY_NAME["priority"].choices)
    assert offered(tab, "list --limit ") == []  # a number: nothing to offer


def test_run_ids_and_job_names_from_the_store(tab: Completions, db: str, tmp_path: Path) -> None:
    assert offered(tab, "show ") == []
    jobs = tmp_path / "jobs.d"
    jobs.mkdir(mode=0o700)
    (jobs / "nightly.toml").write_text('command = "true"\ncron = "@daily"\n')
    assert run(["--db", db, "apply", str(jobs)]) == 0
    assert run(["--db", db, "enqueue", '{"id": "night-run", "command": "true"}']) == 0
    assert offered(tab, "show ") == []  # read once per prompt
    tab.lookup.reset()  # the next prompt
    assert offered(tab, "show nigh") == ["night-run", "nightly"]
    assert offered(tab, "trigger nigh") == ["nightly"]  # a job name only
    assert offered(tab, "dlq retry nigh") == ["night-run"]  # a run id only
    assert offered(tab, "status ") == []


def test_a_line_with_its_own_db_completes_from_that_store(tab: Completions, tmp_path: Path) -> None:
    other = str(tmp_path / "other.db")
    assert run(["--db", other, "enqueue", '{"id": "elsewhere", "command": "true"}']) == 0
    assert offered(tab, "show els") == []
    assert offered(tab, f"show --db {other} els") == ["elsewhere"]


def test_run_ids_read_are_limited(tab: Completions, db: str) -> None:
    lines = "".join(f'{{"id": "r{n:03}", "command": "true"}}\n' for n in range(LOOKUP_LIMIT + 20))
    store = open_store(db)
    runs.add_lines(store, lines.splitlines(), "test", {})
    store.close()
    assert len(offered(tab, "show r")) == LOOKUP_LIMIT


def test_no_store_offers_nothing_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"
    tab = Completions(cli, Lookup(str(missing)))
    assert offered(tab, "show ") == []
    assert not missing.exists()


def test_exit_and_errors_in_a_script(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    shell = Shell(run, cli, db)
    assert shell.script(["show nope", "list; exit", "status"]) == 0  # exit stops; list's code is the last
    assert shell.script(['run "unclosed']) == 2
    assert shell.script(["queuectl show nope"]) == 1  # the prefix typed out of habit: the same command
    assert shell.script(["queuectl"]) == 1  # nothing run: the last code stays
    err = capsys.readouterr().err
    assert "queuectl: error: No closing quotation" in err and "Traceback" not in err
    assert isinstance(cli, click.Group)


def _adopts_orphans() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    assert libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    return bool(flag.value)


def test_after_a_pool_the_shell_gets_ctrl_c_back_and_adopts_no_orphans(db: str) -> None:
    """What a pool run in the shell leaves behind (SIGINT ignored, a subreaper) is undone after it."""

    def pool_like(argv: list[str]) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        assert reaper.become_subreaper(True)
        return 0

    before = signal.getsignal(signal.SIGINT)
    assert Shell(pool_like, cli, db).script(["worker start"]) == 0
    assert signal.getsignal(signal.SIGINT) is before
    assert not _adopts_orphans()


def test_ctrl_c_in_a_command_drops_the_rest_of_the_line(db: str) -> None:
    ran: list[list[str]] = []

    def interrupted_once(argv: list[str]) -> int:
        ran.append(argv)
        return 130 if argv[-1] == "status" else 0

    shell = Shell(interrupted_once, cli, db)
    shell.line("list; status; list")
    assert [argv[-1] for argv in ran] == ["list", "status"]
    assert ran[0] == ["--db", db, "list"]  # the shell's --db before the line's words


def test_exit_n_leaves_with_n_and_a_bad_n_is_one_usage_line(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert Shell(run, cli, db).script(["list; exit 3", "status"]) == 3  # as sh's exit N
    assert Shell(run, cli, db).script(["show nope; quit 0"]) == 0
    assert Shell(run, cli, db).script(["exit nope"]) == 2
    assert Shell(run, cli, db).script(["exit 256; list"]) == 0  # refused, and the line goes on
    err = capsys.readouterr().err
    assert "queuectl: error: exit takes one exit code (0-255), not 'nope'" in err and "Traceback" not in err


def test_the_prompt_loads_what_completion_needs_in_the_background() -> None:
    """The first Tab on a run id would otherwise load the services and engines (~60 ms) while the user waits."""
    import subprocess  # a fresh interpreter: this one has loaded everything already
    import sys

    code = (
        "import sys, threading\n"
        "from queuectl import shell\n"
        "wanted = ('queuectl.services.runs', 'queuectl.services.jobs', 'queuectl.store.factory')\n"
        "assert not any(m in sys.modules for m in wanted)\n"
        "shell._warm_completion()\n"
        "[t.join(30) for t in threading.enumerate() if t.name == 'queuectl-shell-warm']\n"
        "assert all(m in sys.modules for m in wanted), [m for m in wanted if m not in sys.modules]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_help_of_a_builtin_explains_it(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert Shell(run, cli, db).script(["help exit; help quit; help help"]) == 0
    out, err = capsys.readouterr()
    assert "exit [N]: leave the shell" in out and "quit [N]" in out and "help [COMMAND" in out
    assert err == ""


def test_a_store_that_does_not_answer_costs_one_tab_not_every_tab() -> None:
    """A PostgreSQL server that is down: opening waits for it (seconds); the next Tabs do not wait again."""
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tab = Completions(cli, Lookup(f"postgresql://nobody@127.0.0.1:{port}/none"))
    assert offered(tab, "show ") == []  # waited for the server, which never answered
    began = time.monotonic()
    assert offered(tab, "show r") == [] and offered(tab, "cancel x") == []
    tab.lookup.reset()  # a new prompt: still not waited for
    assert offered(tab, "logs ") == []
    assert time.monotonic() - began < 1.0
