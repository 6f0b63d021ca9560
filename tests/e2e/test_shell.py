"""`queuectl shell` through a real pseudo-terminal (pexpect), `shell -c` as a plain command, the bare banner.

The prompt is drawn with escape sequences (TERM=vt100), so each test types,
waits for what the terminal shows (the completed word, a command's output,
the next prompt) and only then types on: no fixed sleeps.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import QUEUECTL, Queue, wait_for

PROMPT = "queuectl>"
# A new prompt, not a redraw of the line being edited (Tab and Enter redraw it too): prompt_toolkit
# turns bracketed paste on as it starts each prompt, after the terminal is in raw mode. Keys sent
# before that could be taken by the terminal's line discipline (a Ctrl-D there is lost).
NEW_PROMPT = re.compile(re.escape("\x1b[?2004h") + "[^\n]*?" + PROMPT)
UP = "\x1b[A"
WAIT = 20  # seconds any one thing may take to appear


class Session:
    """One `queuectl shell` on a pseudo-terminal."""

    def __init__(self, q: Queue, *args: str) -> None:
        env = {**q.env, "TERM": "vt100", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "200"}
        self.child = pexpect.spawn(
            sys.executable,
            [*QUEUECTL[1:], "shell", *args],
            env=env,
            cwd=str(q.tmp),
            encoding="utf-8",
            timeout=WAIT,
            dimensions=(40, 200),
        )
        self.seen = ""
        self.expect("Ctrl-D leaves")
        self.prompt()

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)
        self.seen += self.child.before + text

    def prompt(self) -> None:
        self.child.expect(NEW_PROMPT)
        self.seen += self.child.before + PROMPT

    def command(self, line: str, shows: str) -> None:
        """Type `line` and Enter; wait for `shows` in its output, then for the next prompt."""
        self.child.send(line + "\r")
        self.expect(shows)
        self.prompt()

    def tab(self, typed: str, completes_to: str) -> None:
        """Type `typed` and Tab; wait until the terminal shows the rest of the word, `completes_to`.

        The space after a completed word is drawn as a cursor move, not a blank: not waited for.
        """
        self.child.send(typed + "\t")
        self.expect(completes_to)

    def leave(self) -> int:
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF)
        self.seen += self.child.before
        self.child.close()
        assert "Traceback" not in self.seen, self.seen
        return int(self.child.exitstatus)


@pytest.fixture
def shell(q: Queue) -> Iterator[Session]:
    session = Session(q)
    yield session
    if session.child.isalive():
        session.child.terminate(force=True)


def _declare(q: Queue, name: str) -> None:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir(mode=0o700)
    (jobs / f"{name}.toml").write_text('command = "echo declared"\ncron = "0 2 * * *"\n')
    q("apply", str(jobs))


def test_tab_completes_a_command_and_the_completed_line_runs(q: Queue, shell: Session) -> None:
    q("run", "echo hi")
    shell.tab("sta", "tus")
    shell.child.send("\r")
    shell.expect("pending    1")
    shell.prompt()
    shell.tab("dlq re", "try")  # a subcommand
    shell.child.sendcontrol("c")
    shell.prompt()
    assert shell.leave() == 0


def test_tab_completes_a_declared_job_name(q: Queue, shell: Session) -> None:
    _declare(q, "nightly-backup")
    shell.tab("trigger nig", "htly-backup")
    shell.child.send("\r")
    shell.expect("triggered nightly-backup: run nightly-backup.")
    shell.prompt()
    assert shell.leave() == 0
    assert [run["job"] for run in q.json("list")] == ["nightly-backup"]


def test_tab_completes_a_run_id_from_the_store(q: Queue, shell: Session) -> None:
    q("enqueue", json.dumps({"id": "alpha-123", "command": "echo from-alpha"}))
    q("enqueue", json.dumps({"id": "beta-456", "command": "echo from-beta"}))
    shell.tab("show al", "pha-123")
    shell.child.send("\r")
    shell.expect("echo from-alpha")
    shell.prompt()
    assert shell.leave() == 0


def test_tab_completes_option_values_from_the_commands_choices(q: Queue, shell: Session) -> None:
    q("run", "echo hi")
    shell.tab("list --state pen", "ding")
    shell.child.send("\r")
    shell.expect("echo hi")
    shell.prompt()
    shell.tab("run --priority hi", "gh")
    shell.child.send("'echo urgent'\r")
    shell.expect("run-")
    shell.prompt()
    assert shell.leave() == 0
    assert sorted(run["priority"] for run in q.json("list")) == [5, 10]


def test_history_is_kept_across_sessions_in_a_private_file(q: Queue) -> None:
    q("db", "migrate")
    first = Session(q)
    first.command("list --state dead", "no dead runs")
    assert first.leave() == 0
    history = q.tmp / "state" / "queuectl" / "shell-history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    second = Session(q)
    second.child.send(UP)
    second.expect("list --state dead")
    second.child.send("\r")
    second.expect("no dead runs")
    second.prompt()
    assert second.leave() == 0


def test_an_error_prints_one_line_and_the_prompt_comes_back(q: Queue, shell: Session) -> None:
    q("db", "migrate")
    not_a_store = q.tmp / "notes.db"
    not_a_store.write_text("this is not a database\n" * 100)
    shell.command("show nope", "queuectl: error: no run or job named 'nope'")
    shell.command(f"status --db {not_a_store}", "queuectl: error:")  # the store layer raises inside
    shell.command('run "echo unclosed', "queuectl: error: No closing quotation")
    shell.command("nosuch", "queuectl: error: No such command 'nosuch'")
    shell.command("list --state dead", "no dead runs")  # and the shell still works
    assert shell.leave() == 0
    assert "Traceback" not in shell.seen


def test_ctrl_c_cancels_the_line_and_ctrl_d_leaves_with_0(q: Queue, shell: Session) -> None:
    q("run", "echo keep-me")
    shell.child.send("clear --yes")
    shell.expect("clear --yes")
    shell.child.sendcontrol("c")
    shell.prompt()
    shell.command("list", "echo keep-me")  # the cancelled `clear` never ran
    assert shell.leave() == 0
    assert len(q.json("list")) == 1


def test_ctrl_c_stops_a_foreground_command_and_the_next_one_too(q: Queue, shell: Session) -> None:
    """A pool takes Ctrl-C for its graceful stop; afterwards Ctrl-C must still reach `logs -f`."""
    _declare(q, "nightly")
    shell.child.send("up jobs.d\r")
    shell.expect("started with")  # the pool's: it takes Ctrl-C from now on
    shell.child.sendcontrol("c")
    shell.expect("stopped after")
    shell.prompt()
    shell.child.send("worker start\r")
    shell.expect("started with")
    shell.child.sendcontrol("c")
    shell.expect("stopped after")
    shell.prompt()
    gate, opened = q.gate()
    q("enqueue", json.dumps({"id": "waits", "command": f"echo waiting-now; {gate}"}))
    pool = q.start_pool()
    wait_for(lambda: q.state("waits") == "running", what="the run to start")
    shell.child.send("logs -f waits\r")
    shell.expect("waiting-now")
    shell.child.sendcontrol("c")
    shell.prompt()
    shell.command("list --state running", "waits")  # following stopped; the run did not
    assert shell.leave() == 0
    opened.touch()
    wait_for(lambda: q.state("waits") == "completed", what="the run to finish")
    pool.terminate()


def test_help_and_help_of_a_command_and_exit(q: Queue, shell: Session) -> None:
    shell.command("help", "exit, quit")
    shell.command("help dlq retry", "Usage: queuectl dlq retry")
    shell.child.send("exit\r")
    shell.child.expect(pexpect.EOF)
    shell.child.close()
    assert shell.child.exitstatus == 0


# -- shell -c and the banner, as plain commands --------------------------------------------------


def test_shell_c_runs_each_command_and_exits_with_the_last_ones_code(q: Queue) -> None:
    q("run", "echo hi")
    done = q("shell", "-c", "status; list --state dead")
    assert "pending    1" in done.stdout and "no dead runs" in done.stdout
    assert q("shell", "-c", "list --state dead; show nope", check=False).returncode == 1
    assert q("shell", "-c", "show nope; list --state dead").returncode == 0
    done = q("shell", "-c", 'run "echo a; echo b"')  # a ; inside quotes is the command's
    assert [run["command"] for run in q.json("list")] == ["echo hi", "echo a; echo b"]


def test_shell_c_with_an_unknown_command_says_one_line_and_exits_2(q: Queue) -> None:
    q("db", "migrate")
    done = q("shell", "-c", "status; nosuch", check=False)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["queuectl: error: No such command 'nosuch'. (see 'queuectl --help')"]


def test_shell_c_needs_no_prompt_library(q: Queue) -> None:
    q("db", "migrate")
    code = (
        "import sys\n"
        "from queuectl.cli.app import run\n"
        "code = run(['shell', '-c', 'list'])\n"
        "sys.exit(10 + code if 'prompt_toolkit' in sys.modules else code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=q.env, cwd=q.tmp, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_bare_queuectl_on_a_terminal_prints_the_banner(q: Queue) -> None:
    q("run", "echo hi")
    env = {**q.env, "NO_COLOR": "1"}
    child = pexpect.spawn(sys.executable, QUEUECTL[1:], env=env, cwd=str(q.tmp), encoding="utf-8", timeout=WAIT)
    child.expect(pexpect.EOF)
    child.close()
    lines = child.before.splitlines()
    assert child.exitstatus == 0
    assert lines[0].startswith("queuectl ")
    assert lines[1] == f"store: {q.db}"
    assert "1 pending" in lines[2] and "0 dead" in lines[2]
    assert lines[3] == "type 'queuectl shell' for an interactive shell, 'queuectl --help' for the commands"


def test_a_bare_queuectl_off_a_terminal_prints_the_help(q: Queue) -> None:
    done = q()
    assert done.stdout.startswith("Usage: queuectl [OPTIONS] COMMAND [ARGS]...")
    assert "Inspect:" in done.stdout and "shell" in done.stdout


def test_a_piped_script_runs_without_a_prompt(q: Queue) -> None:
    done = q("shell", input="# a comment\nrun 'echo piped'\nlist\n")
    assert "echo piped" in done.stdout and PROMPT not in done.stdout
    assert os.path.exists(q.db)


def test_a_state_directory_that_cannot_be_made_costs_the_history_only(q: Queue) -> None:
    q("run", "echo hi")
    blocker = q.tmp / "not-a-dir"
    blocker.write_text("")
    q.env["XDG_STATE_HOME"] = str(blocker)  # the state directory would be inside a file
    session = Session(q)
    assert "warning: history is not kept: cannot write" in session.seen
    session.command("status", "pending    1")
    assert session.leave() == 0


def test_the_shell_on_postgresql_completes_and_runs_from_that_store(tmp_path: Path, pg_url: str) -> None:
    q = Queue(tmp_path, db=pg_url)
    try:
        q("enqueue", json.dumps({"id": "pg-alpha-1", "command": "echo from-pg"}))
        q.env.pop("QUEUECTL_DB")  # the store is only the one given to `shell --db`
        session = Session(q, "--db", pg_url)
        session.tab("show pg-al", "pha-1")
        session.child.send("\r")
        session.expect("echo from-pg")
        session.prompt()
        session.command("cancel pg-alpha-1", "cancelled")
        assert session.leave() == 0
    finally:
        q.cleanup()
    assert Queue(tmp_path, db=pg_url).json("list")[0]["state"] == "cancelled"


def test_a_piped_script_gives_a_command_that_reads_stdin_the_lines_after_it(q: Queue) -> None:
    """As sh: `enqueue --file -` in a script on stdin reads the script's next lines (here, to its end)."""
    runs = "".join(json.dumps({"id": f"from-script-{n}", "command": "true"}) + "\n" for n in (1, 2))
    script = "list --state dead\nenqueue --file -\n" + runs
    done = q("shell", input=script)
    assert "enqueued 2 runs" in done.stdout, done.stdout + done.stderr
    assert "No such command" not in done.stderr
    assert sorted(run["id"] for run in q.json("list")) == ["from-script-1", "from-script-2"]


def test_exit_n_at_the_prompt_leaves_with_n(q: Queue, shell: Session) -> None:
    shell.command("exit nope", "queuectl: error: exit takes one exit code (0-255), not 'nope'")  # still here
    shell.child.send("exit 3\r")
    shell.child.expect(pexpect.EOF)
    shell.child.close()
    assert shell.child.exitstatus == 3
