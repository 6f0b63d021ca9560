"""`queuectl list` streams: keyset pages from the store, plain rows into pipes, a page on a terminal."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from queuectl import json_views
from queuectl.durations import format_time, iso_utc
from queuectl.model import NewRun
from queuectl.store.contract import Store
from queuectl.store.sqlite import SQLiteStore
from tests.conftest import QUEUECTL, Queue


def fill(q: Queue, count: int, **fields: Any) -> None:
    lines = "".join(json.dumps({"command": f"echo {n}", **fields}) + "\n" for n in range(count))
    q("enqueue", "--file", "-", input=lines)


def new_run(run_id: str, priority: int = 5) -> NewRun:
    return NewRun(
        id=run_id, command="true", priority=priority, max_retries=0, backoff_base=2.0, backoff_max=60.0, timeout=None
    )


CLOCK = [1_800_000_000.0]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "postgres":
        from queuectl.store.postgres import PostgresStore

        return PostgresStore(request.getfixturevalue("pg_url"), clock=lambda: CLOCK[0])
    return SQLiteStore(str(tmp_path / "q.db"), clock=lambda: CLOCK[0])


def test_iter_runs_reads_keyset_pages_in_order_without_repeats(store: Store) -> None:
    store.enqueue([new_run(f"r{n:03d}") for n in range(23)])  # one batch: every created_at is equal
    CLOCK[0] += 1
    store.enqueue([new_run(f"a{n:03d}") for n in range(5)])  # a later batch, though its ids sort first
    everything = [r.id for r in store.iter_runs(page=4)]
    assert everything == [f"r{n:03d}" for n in range(23)] + [f"a{n:03d}" for n in range(5)]
    assert [r.id for r in store.iter_runs(page=1000)] == everything
    assert [r.id for r in store.iter_runs(limit=9, page=4)] == everything[:9]
    assert [r.id for r in store.iter_runs(limit=4, page=4)] == everything[:4]
    assert [r.id for r in store.iter_runs(state="pending", limit=30, page=7)] == everything
    assert list(store.iter_runs(state="dead", page=3)) == []
    assert store.list_runs(limit=2) == list(store.iter_runs(limit=2, page=1))


def test_json_array_is_written_element_by_element_in_dumps_exact_form() -> None:
    cases: list[list[Any]] = [
        [],
        [{}],
        [{"id": 'x\n"é\u2028', "n": None, "t": True, "f": False, "i": 2**70, "x": 1.5, "nan": float("nan")}],
        [{"nested": {"a": [1, 2]}}, [1, {"b": None}], "s", 3, None],
    ]
    for items in cases:
        out = io.StringIO()
        json_views.write_array(out.write, iter(items))
        assert out.getvalue() == json_views.dumps(items) + "\n"


def test_fast_time_formats_say_what_the_slow_ones_say() -> None:
    rng = random.Random(11)
    moments = [0.0, 0.9995, 0.9999995, 1_800_000_000.0004999, 1_764_430_000.123456, -1.5]
    moments += [rng.uniform(-1e9, 4e9) for _ in range(20_000)]
    for moment in moments:
        assert json_views.utc_ms(moment) == iso_utc(moment)
        local = datetime.fromtimestamp(moment).astimezone()  # the slow way: datetime's local zone
        assert format_time(moment) == local.strftime("%Y-%m-%d %H:%M:%S %Z")


def test_plain_rows_into_a_pipe_and_json_in_its_contract_form(q: Queue) -> None:
    fill(q, 3)
    q("enqueue", "--id", "long-id-of-a-run", "--command", "printf 'a\\tb\\rc'\necho two")
    out = q("list").stdout
    lines = out.splitlines()
    assert len(lines) == 5 and lines[0].split() == ["ID", "STATE", "PRI", "TRIES", "EXIT", "CREATED", "COMMAND"]
    assert "\x1b[" not in out and "─" not in out
    starts = {line.index("pending") for line in lines[1:]}
    assert starts == {lines[0].index("STATE")}  # one column, aligned
    assert lines[-1].startswith("long-id-of-a-run  pending") and "\\t" in lines[-1] and "⏎" in lines[-1]
    text = q("list", "--json").stdout
    runs = json.loads(text)
    assert text == json.dumps(runs, indent=2, ensure_ascii=False) + "\n"
    assert len(runs) == 4 and runs[-1]["id"] == "long-id-of-a-run"
    fields = ["id", "job", "command", "state", "attempts", "max_retries", "exit_code", "error", "priority"]
    fields += ["timeout", "backoff_base", "created_at", "updated_at", "run_at", "started_at", "finished_at"]
    assert list(runs[0]) == [*fields, "worker", "host"]
    assert q("list", "--state", "dead").stdout == "no dead runs\n"
    assert q("list", "--state", "dead", "--json").stdout == "[]\n"


# Runs a command and says its peak RSS. A process's peak survives fork and exec, so the command
# must be started by a small process, not by pytest (whose size it would otherwise report).
_LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[1:])
sys.stderr.write(f"\\npeak-kib {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(code)
"""


def run_measured(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes, str, int]:
    """(exit code, stdout, stderr, peak RSS in bytes) of a command."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL
    )
    err, _, peak = done.stderr.decode().rstrip("\n").rpartition("\npeak-kib ")
    return done.returncode, done.stdout, err, int(peak) * 1024


def test_many_runs_into_a_pipe_stream_in_flat_memory(q: Queue) -> None:
    fill(q, 30_000, env={"A": "1"})
    _, _, _, bare = run_measured([sys.executable, "-c", "import queuectl.cli"], q.env, q.tmp)
    for extra in ([], ["--json"]):
        code, out, err, peak = run_measured([*QUEUECTL, "list", *extra], q.env, q.tmp)
        assert code == 0, err
        assert out.count(b"\n") == (30_001 if not extra else 30_000 * 20 + 2)  # [, 20 lines a run, ]
        assert peak < bare + 24 * 1024 * 1024, f"list {extra}: peak {peak:,}, a bare import {bare:,}"


def read_terminal(q: Queue, *args: str) -> str:
    """What `queuectl ARGS` shows on a terminal (a pseudo-terminal, 120 columns)."""
    code, text = q.on_terminal(*args, COLUMNS="200", LINES="50", TERM="dumb")
    assert code == 0, text
    return text


def test_a_terminal_gets_one_page_and_how_many_more(q: Queue) -> None:
    fill(q, 1_234)
    shown = read_terminal(q, "list")
    rows = [line for line in shown.splitlines() if "pending" in line]
    assert len(rows) == 50
    assert "… 1,184 more: use --limit N or pipe the output" in shown
    limited = read_terminal(q, "list", "--limit", "700")
    assert len([line for line in limited.splitlines() if "pending" in line]) == 700
    assert "more:" not in limited and limited.count("COMMAND") == 1
