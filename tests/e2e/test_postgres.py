"""queuectl on a real PostgreSQL server: several pools, several `up`, a server restart.

Every process here is the real `queuectl` command; the pools append each run's
id to one file, so a run executed twice, or never, shows in the file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, wait_for


@pytest.fixture
def pq(tmp_path: Path, pg_url: str) -> Any:
    queue = Queue(tmp_path, db=pg_url)
    yield queue
    queue.cleanup()


def enqueue_appenders(q: Queue, ids: list[str], out: Path, before: str = "") -> None:
    """Runs that append their id to `out`, each after the command `before` (if any)."""
    pause = f"{before}; " if before else ""
    lines = "".join(json.dumps({"id": i, "command": f"{pause}echo {i} >> {out}"}) + "\n" for i in ids)
    q("enqueue", "--file", "-", input=lines)


def appended(out: Path) -> Counter[str]:
    return Counter(out.read_text().split()) if out.exists() else Counter()


def test_db_info_names_the_engine_and_masks_the_password(pq: Queue) -> None:
    assert "schema version" in pq("db", "migrate").stdout  # db info only reads: it creates no schema
    info = pq.json("db", "info")
    assert info["engine"] == "postgresql"
    assert info["schema_version"] >= 3
    with_password = re.sub(r"^postgresql://postgres@", "postgresql://postgres:s3cret@", pq.db)
    shown = pq("db", "info", "--db", with_password).stdout
    assert "s3cret" not in shown and "postgres:***@" in shown


def test_four_pools_of_four_slots_run_each_of_1000_runs_exactly_once(pq: Queue, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    ids = [f"r{i:04d}" for i in range(1000)]
    enqueue_appenders(pq, ids, out)
    pools = [pq.start_pool("--count", "4", "--burst") for _ in range(4)]
    # read every pool's output as it comes: a pool that runs most of the 1000 (as one started
    # first on a busy machine does) prints more than a pipe holds, and would block on it
    with ThreadPoolExecutor(len(pools)) as readers:
        outputs = list(readers.map(lambda pool: pool.communicate(timeout=240)[0], pools))
    for pool, output in zip(pools, outputs, strict=True):
        assert pool.returncode == 0, output
    counts = appended(out)
    assert set(counts) == set(ids)
    assert [i for i, n in counts.items() if n != 1] == []
    runs = pq.json("list")
    assert len(runs) == 1000
    assert {r["state"] for r in runs} == {"completed"}
    assert {r["attempts"] for r in runs} == {1}  # one claim each: no run was taken by two pools


def test_a_killed_pool_s_runs_are_rescued_by_the_others(pq: Queue, tmp_path: Path) -> None:
    pq("config", "set", "lease-seconds", "2")
    out = tmp_path / "out.txt"
    ids = [f"k{i:02d}" for i in range(24)]
    command, gate = pq.gate()  # no run ends before the kill: every run listed as held is still held then
    enqueue_appenders(pq, ids, out, before=command)
    victim = pq.start_pool("--count", "4")
    pq.wait_pool_registered(victim)

    def started() -> set[str] | None:  # recorded as started (a run only claimed ahead comes back uncounted)
        found = {r["id"] for r in pq.json("list", "--state", "running") if pq.run(r["id"])["pgid"]}
        return found if len(found) >= 4 else None

    held = wait_for(started, what="four runs started")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    gate.touch()
    survivors = [pq.start_pool("--count", "4") for _ in range(2)]
    wait_for(lambda: pq.json("status")["counts"]["completed"] == len(ids), timeout=120, what="all completed")
    for pool in survivors:
        pool.send_signal(signal.SIGTERM)
        pool.wait(timeout=60)
    counts = appended(out)
    assert set(counts) == set(ids)
    for run in map(pq.run, held):
        assert run["state"] == "completed"
        # the killed pool's attempt was recorded as lost, then another pool ran it
        outcomes = [a["outcome"] for a in run["history"]]
        assert outcomes[-1] == "completed" and "lost" in outcomes[:-1], outcomes
        assert run["history"][-1]["worker"] != run["history"][0]["worker"]


def test_the_pool_reconnects_after_the_database_restarts(pq: Queue, tmp_path: Path, pg_server: Any) -> None:
    out = tmp_path / "out.txt"
    first = [f"a{i:03d}" for i in range(60)]
    enqueue_appenders(pq, first, out, before="sleep 0.05")
    pool = pq.start_pool("--count", "2")
    wait_for(lambda: len(appended(out)) >= 10, what="some runs done")
    pg_server.stop("fast")  # cuts every connection, the pool's included
    pg_server.start()
    assert pool.poll() is None, "the pool died when the server went away"
    wait_for(lambda: set(appended(out)) == set(first), timeout=90, what="the first runs done")
    # after the restart the pool wakes on new work again (LISTEN is re-established)
    second = [f"b{i:03d}" for i in range(5)]
    enqueue_appenders(pq, second, out)
    wait_for(lambda: set(second) <= set(appended(out)), timeout=30, what="runs enqueued after the restart")
    pool.send_signal(signal.SIGTERM)
    output, _ = pool.communicate(timeout=60)
    assert pool.returncode == 0
    assert "reconnect" in output or "connection" in output  # the loss was reported
    counts = pq.json("status")["counts"]
    assert counts["completed"] == len(first) + len(second)
    assert counts["pending"] == counts["running"] == counts["failed"] == 0


def test_show_says_which_host_keeps_the_full_log(pq: Queue) -> None:
    pq("enqueue", "--id", "h1", "-c", "echo hello")
    pq.burst()
    host = os.uname().nodename
    assert pq.run("h1")["history"][0]["host"] == host
    assert f"(on host {host})" in pq("show", "h1").stdout
    assert "hello" in pq("logs", "h1").stdout


def test_an_idle_pool_wakes_on_notify_not_on_its_poll(pq: Queue, tmp_path: Path) -> None:
    pq("config", "set", "worker-poll-interval", "60")
    out = tmp_path / "out.txt"
    pq.start_pool("--count", "1")
    enqueue_appenders(pq, ["n0"], out)
    wait_for(lambda: "n0" in appended(out), timeout=30, what="a first run: the pool is past its start-up claim")
    wait_for(lambda: pq.state("n0") == "completed", what="the first run settled: the pool is idle")
    enqueued = time.monotonic()
    enqueue_appenders(pq, ["n1"], out)
    wait_for(lambda: "n1" in appended(out), timeout=30, what="the run done")
    assert time.monotonic() - enqueued < 10, "the pool waited for its 60 s poll instead of the NOTIFY"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:hunter2@127.0.0.1:1/x", "cannot reach database postgresql://u:***@127.0.0.1:1/x"),
        ("mysql://u@h/x", "unknown store URL scheme 'mysql'"),
    ],
)
def test_a_store_url_that_cannot_be_used_gets_one_line(q: Queue, url: str, expected: str) -> None:
    done = q("status", "--db", url, check=False)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_output_with_a_nul_byte_is_stored_and_the_pool_goes_on(pq: Queue) -> None:
    pq("enqueue", "--id", "nul", "-c", r"printf 'a\000b'")
    pq("enqueue", "--id", "after", "-c", "echo fine")
    pq.burst()  # returns only when both runs are settled
    assert pq.state("nul") == "completed" and pq.state("after") == "completed"
    assert pq.run("nul")["output_tail"] == "a\ufffdb"
