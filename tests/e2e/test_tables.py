"""Tables never hide what users copy, and colour only on a terminal (docs/runs.md, "Tables and colour").

The real `queuectl` in a pseudo-terminal (COLUMNS set, as a user's terminal would) and into a pipe:
ids, job names and paths stay whole on one line at any width; into a pipe nothing is cut; on a narrow
terminal the command column wraps onto at most one more line, then ends in an ellipsis.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import Queue, wait_for

LONG_ID = "r" * 30 + "-" + "x" * 29  # 60 characters, with a hyphen a wrapping table could break at
COMMAND = "echo " + " ".join(f"word{n}" for n in range(40))  # about 250 characters
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def terminal(q: Queue, *args: str, columns: int = 60, **env: str) -> tuple[int, str]:
    """Exit code and what `queuectl ARGS` writes (stdout and stderr) on a terminal `columns` wide."""
    return q.on_terminal(*args, COLUMNS=str(columns), LINES="50", TERM="xterm-256color", **{"NO_COLOR": None, **env})


def plain(text: str) -> str:
    return ANSI.sub("", text)


def rows_of(shown: str, run_id: str) -> list[str]:
    """The row of `run_id` and the lines that follow it up to the next row (its wrapped cells)."""
    lines = plain(shown).splitlines()
    start = next(i for i, line in enumerate(lines) if run_id in line)
    following = []
    for line in lines[start + 1 :]:
        if not line.startswith(" ") or not line.strip():  # a row starts with its id; a blank line ends the table
            break
        following.append(line)
    return [lines[start], *following]


def enqueue_long(q: Queue) -> None:
    q("enqueue", "--id", LONG_ID, "--command", COMMAND)
    q("enqueue", "--id", "short", "--command", "true")


def test_into_a_pipe_no_column_is_cut(q: Queue) -> None:
    enqueue_long(q)
    lines = q("list").stdout.splitlines()
    assert len(lines) == 3  # the header and one line per run
    [row] = [line for line in lines if LONG_ID in line]
    assert row.endswith(COMMAND) and "…" not in row
    assert re.match(rf"{LONG_ID}\s+pending\s", row)
    header = lines[0]
    assert lines[2].index("pending") == row.index("pending") == header.index("STATE")  # aligned columns


def test_into_a_pipe_no_line_ends_in_padding(q: Queue) -> None:
    run_id = q("run", "true").stdout.strip()  # its attempt's ERROR column is empty
    q.burst()
    jobs = q.write_job("hello", 'command = "true"\n')
    q("apply", str(jobs))
    for args in (["show", run_id], ["list", "--jobs"], ["config", "show"], ["dlq", "list"], ["list"]):
        lines = q(*args).stdout.splitlines()
        assert lines and all(line == line.rstrip() for line in lines), (args, lines)


def test_a_narrow_terminal_keeps_ids_whole_and_wraps_the_command_once(q: Queue) -> None:
    enqueue_long(q)
    for columns in (60, 80, 120):
        code, shown = terminal(q, "list", columns=columns)
        assert code == 0
        [row, *more] = rows_of(shown, LONG_ID)
        assert row.startswith(LONG_ID) and row.rstrip().endswith(("echo", "word0"))
        assert len(more) == 1 and more[0].rstrip().endswith("…")  # wrapped once, then cut
        assert "short" in plain(shown)


def test_with_short_ids_the_table_fits_the_terminal(q: Queue) -> None:
    run_id = q("enqueue", "--command", COMMAND).stdout.strip()
    code, shown = terminal(q, "list", columns=80)
    assert code == 0
    lines = plain(shown).splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines)
    [row, more] = rows_of(shown, run_id)
    assert row.startswith(run_id) and more.rstrip().endswith("…")


def test_dlq_and_show_s_attempts_keep_ids_and_paths_whole(q: Queue) -> None:
    cwd = q.tmp / ("d" * 50) / ("e" * 40)
    cwd.mkdir(parents=True)
    q("enqueue", "--id", LONG_ID, "--retries", "0", "--cwd", str(cwd), "--command", f"echo out; exit 3 # {COMMAND}")
    q.burst(dead=True)
    code, shown = terminal(q, "dlq", "list")
    assert code == 0
    [row, *more] = rows_of(shown, LONG_ID)
    assert row.startswith(LONG_ID) and "exit" in row and len(more) <= 1  # its last error, not its state
    code, shown = terminal(q, "show", LONG_ID)
    assert code == 0
    lines = plain(shown).splitlines()
    assert any(line.split() == ["cwd", str(cwd)] for line in lines)  # whole, on one line
    log = q.run(LONG_ID)["history"][0]["log_path"]
    assert any(line.split()[:2] == ["log", log] for line in lines)
    assert any(line.split() == ["id", LONG_ID] for line in lines)


def test_show_name_and_list_jobs_keep_the_name_and_the_manifest_path_whole(q: Queue) -> None:
    name = "n" * 30 + "-" + "m" * 29
    jobs = q.tmp / ("j" * 60)
    jobs.mkdir()
    (jobs / f"{name}.toml").write_text(f'command = "{COMMAND}"\ncron = "0 3 * * *"\n')
    q("apply", str(jobs))
    code, shown = terminal(q, "show", name)
    assert code == 0
    assert any(line.split() == ["manifest", str(jobs / f"{name}.toml")] for line in plain(shown).splitlines())
    code, shown = terminal(q, "list", "--jobs")
    assert code == 0
    assert any(line.startswith(name) for line in plain(shown).splitlines())


def write_jobs(q: Queue) -> Path:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir(exist_ok=True)
    (jobs / "hello.toml").write_text('command = "true"\n')
    return jobs


def test_apply_diff_validate_are_coloured_on_a_terminal_only(q: Queue) -> None:
    jobs = write_jobs(q)
    coloured = {args: terminal(q, *args, columns=100) for args in [("diff", "jobs.d"), ("validate", "jobs.d")]}
    bare = {args: terminal(q, *args, columns=100, NO_COLOR="1") for args in coloured}
    for args, (code, shown) in coloured.items():
        assert ANSI.search(shown), args
        assert bare[args][0] == code and bare[args][1] == plain(shown)  # the same text, without the escapes
        assert not ANSI.search(bare[args][1])
        piped = q(*args, check=False)
        assert not ANSI.search(piped.stdout + piped.stderr)
    assert "\x1b[32m+ hello: to create" in coloured[("diff", "jobs.d")][1]
    code, shown = terminal(q, "apply", "jobs.d")
    assert code == 0 and "\x1b[32m+ hello: created" in shown
    (jobs / "hello.toml").write_text('command = "false"\n')
    code, shown = terminal(q, "apply", "jobs.d")
    assert "\x1b[33m~ hello: updated" in shown
    (jobs / "broken.toml").write_text("comand = 1\n")
    code, shown = terminal(q, "validate", "jobs.d")
    assert code == 1 and re.search(r"\x1b\[31m[^\n]*broken\.toml", shown)
    code, shown = terminal(q, "apply", "jobs.d", NO_COLOR="1")
    assert code == 1 and "! " in shown and not ANSI.search(shown)


def test_the_up_log_is_coloured_on_a_terminal_only(q: Queue) -> None:
    write_jobs(q)
    code, shown = terminal(q, "up", "jobs.d", "--burst", columns=100)
    assert code == 0 and "\x1b[32m+ hello: created" in shown and "\x1b[32mcompleted" in shown
    code, shown = terminal(q, "up", "jobs.d", "--burst", columns=100, NO_COLOR="1")
    assert code == 0 and not ANSI.search(shown)
    piped = q("up", "jobs.d", "--burst")
    assert "applied" in piped.stderr and not ANSI.search(piped.stdout + piped.stderr)


def test_no_color_turns_off_status_and_list_too(q: Queue) -> None:
    enqueue_long(q)
    for args in [("status",), ("list",), ("list", "--jobs"), ("show", "short")]:
        code, shown = terminal(q, *args, columns=200)
        assert code == 0
        code, bare = terminal(q, *args, columns=200, NO_COLOR="1")
        assert code == 0 and not ANSI.search(bare), args
        if args[0] in ("status", "list") and args != ("list", "--jobs"):
            assert ANSI.search(shown), args  # pending is cyan


def test_worker_status_keeps_the_pool_and_the_runs_it_runs_whole(q: Queue) -> None:
    command, gate = q.gate()
    other = "o" * 59 + "-2"
    for run_id in (LONG_ID, other):
        q("enqueue", "--id", run_id, "--command", command)
    pool = q.start_pool("--workers", "2")
    wait_for(lambda: {r["state"] for r in q.json("list")} == {"running"}, what="both runs running")
    [view] = q.json("worker", "status")
    code, shown = terminal(q, "worker", "status")
    gate.touch()
    q("worker", "stop")
    assert pool.wait(timeout=30) == 0
    assert code == 0
    lines = plain(shown).splitlines()
    assert any(line.startswith(view["id"]) for line in lines)
    words = [word for line in lines for word in line.replace(",", " ").split()]
    assert LONG_ID in words and other in words  # each run id whole, on one line


def test_schedule_keeps_the_job_name_whole(q: Queue) -> None:
    name = "s" * 40 + "-" + "t" * 40
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    (jobs / f"{name}.toml").write_text('command = "true"\ncron = "0 3 * * *"\n')
    q("apply", "jobs.d")
    code, shown = terminal(q, "schedule")
    assert code == 0
    assert name in plain(shown).split()
    assert name in q("schedule").stdout.split()
