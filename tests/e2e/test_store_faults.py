"""A pool whose store fails stays in the user's hands; a store that cannot be used is said so.

Real faults: a full tmpfs (root), a PostgreSQL server stopped with `-m immediate`, an
SQLite file with garbage written over its middle, an immutable file (root), the
store's files deleted under a running pool, a pool killed with kill -9.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Queue, group_members, is_running, wait_for

STOP_BOUND = 10.0  # seconds after the second signal within which a pool must be gone


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (mounts a tmpfs or sets a file immutable)")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs mounted for the test."""
    _needs_root()
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=True)  # a straggler still holds a file


def _fill(disk: Path) -> None:
    subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'fill'}", "bs=64k"], capture_output=True)
    assert os.statvfs(disk).f_bavail == 0


def _pid_of_group(q: Queue, run_id: str) -> int:
    """The process group of `run_id`'s attempt, once the pool has recorded it."""
    return int(wait_for(lambda: q.run(run_id).get("pgid"), what=f"{run_id} recorded running"))


def _stopped_twice(pool: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGTERM, then SIGINT once the first is taken; (seconds from the second to the exit, all output after)."""
    pool.send_signal(signal.SIGTERM)
    Queue.read_until(pool, "stopping: no new claims")
    pool.send_signal(signal.SIGINT)
    second = time.monotonic()
    try:
        output, _ = pool.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pool.kill()
        raise AssertionError("the pool was still running 60 s after the second signal") from None
    return time.monotonic() - second, output


class FailingPool:
    """A 2-slot pool running `done` (waits for a gate) and `long` (sleeps on its first attempt)."""

    def __init__(self, q: Queue, tmp_path: Path) -> None:
        command, self.gate = q.gate()
        first = tmp_path / "long-started"
        q("enqueue", "--id", "done", "--command", command)
        q("enqueue", "--id", "long", "--command", f"[ -e {first} ] || {{ touch {first}; sleep 300; }}")
        self.proc = q.start_pool("--count", "2")
        self.done = _pid_of_group(q, "done")
        self.long = _pid_of_group(q, "long")

    def finish_done(self) -> None:
        """Let `done` complete, while the store fails: its result cannot be written."""
        self.gate.touch()
        wait_for(lambda: not group_members(self.done), what="`done` finished")
        Queue.read_until(self.proc, "store error")


def _assert_stopped_naming_the_unrecorded(pool: subprocess.Popen[str], group: int) -> None:
    """Stopped twice, the pool is gone within the bound, non-zero, naming both results; its command killed."""
    took, output = _stopped_twice(pool)
    assert took <= STOP_BOUND, f"exited {took:.1f}s after the second signal: {output}"
    assert pool.returncode == 1, (pool.returncode, output)
    assert "could not record the result of 2 attempt(s)" in output, (pool.returncode, output)
    assert "done (completed)" in output and "long (" in output, output
    assert "next pool's rescue" in output, output
    assert not group_members(group), "the stopped pool left its command running"


def test_a_pool_on_a_full_disk_stops_within_seconds_of_the_second_signal(tmp_path: Path, small_disk: Path) -> None:
    q = Queue(tmp_path, db=str(small_disk / "q.db"))
    try:
        pool = FailingPool(q, tmp_path)
        _fill(small_disk)
        pool.finish_done()
        _assert_stopped_naming_the_unrecorded(pool.proc, pool.long)
        (small_disk / "fill").unlink()
        q.burst()  # the next pool's rescue puts both back; they run again
        assert {r["id"]: r["state"] for r in q.json("list")} == {"done": "completed", "long": "completed"}
    finally:
        q.cleanup()


def test_worker_stop_stops_a_pool_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    q = Queue(tmp_path, db=str(small_disk / "q.db"))
    try:
        pool = FailingPool(q, tmp_path)
        _fill(small_disk)
        pool.finish_done()
        stop = q("worker", "stop", "--force", "--timeout", str(STOP_BOUND), check=False)
        assert stop.returncode == 0 and "all pools stopped" in stop.stdout, (stop.stdout, stop.stderr)
        assert "could not ask through the store" in stop.stderr
        output, _ = pool.proc.communicate(timeout=10)
        assert pool.proc.returncode == 1 and "could not record the result of 2 attempt(s)" in output, output
    finally:
        q.cleanup()


def test_a_pool_gives_up_a_disk_that_stays_full_and_says_to_free_space(tmp_path: Path, small_disk: Path) -> None:
    q = Queue(tmp_path, db=str(small_disk / "q.db"))
    try:
        pool = FailingPool(q, tmp_path)
        _fill(small_disk)
        pool.finish_done()
        try:
            output, _ = pool.proc.communicate(timeout=90)  # no signal: the full disk lasting is enough
        except subprocess.TimeoutExpired:
            raise AssertionError("the pool retried a full disk for 90 s") from None
        assert pool.proc.returncode == 1, output
        last = output.strip().splitlines()[-1]
        assert last.startswith(f"queuectl: error: store {small_disk / 'q.db'}: database or disk is full"), output
        assert "free some space" in last, output
        assert "could not record the result of 2 attempt(s)" in output, output
        assert not group_members(pool.long)
    finally:
        q.cleanup()


def test_a_pool_waiting_for_a_busy_store_at_start_takes_a_signal(q: Queue) -> None:
    q("db", "migrate")  # creates the store
    holder = sqlite3.connect(q.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        pool = q.start_pool()
        Queue.read_until(pool, "store busy at start")
        pool.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            output, _ = pool.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the pool ignored SIGTERM while waiting for the store") from None
        assert time.monotonic() - signalled < 5, output
        assert pool.returncode == 1 and "stopped by a signal before the pool could start" in output, output
    finally:
        holder.close()


def test_a_pool_whose_postgresql_server_died_stops_within_seconds_of_the_second_signal(
    tmp_path: Path, pg_url: str, pg_server: Any
) -> None:
    q = Queue(tmp_path, db=pg_url)
    try:
        pool = FailingPool(q, tmp_path)
        pg_server.stop("immediate")
        try:
            pool.finish_done()
            _assert_stopped_naming_the_unrecorded(pool.proc, pool.long)
        finally:
            pg_server.start()
        q.burst()
        assert {r["id"]: r["state"] for r in q.json("list")} == {"done": "completed", "long": "completed"}
    finally:
        q.cleanup()


def test_a_read_only_postgresql_database_ends_a_pool_at_once_with_one_line(q: Queue, pg_url: str) -> None:
    import psycopg

    pq = Queue(q.tmp, db=pg_url)
    pq("enqueue", "--id", "a", "--command", "true")
    name = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as on a standby
        conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    started = time.monotonic()
    done = pq("worker", "start", "--burst", check=False, timeout=60)
    _one_line_error(done, "read-only transaction", "point --db at the primary")
    assert time.monotonic() - started < 10, "the pool retried a database that takes no writes"


def _corrupt_middle(db: Path) -> None:
    """Garbage over the middle third of a checkpointed store (as a bad disk or a stray write would leave it)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    pages = db.stat().st_size // 4096
    with open(db, "r+b") as f:
        for page in range(pages // 3, 2 * pages // 3):
            f.seek(page * 4096)
            f.write(os.urandom(4096))


def _enqueue_many(q: Queue, count: int) -> None:
    lines = "".join(json.dumps({"id": f"r{i:03d}", "command": f"echo {'x' * 300} {i}"}) + "\n" for i in range(count))
    q("enqueue", "--file", "-", input=lines)


def _one_line_error(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    said = ("queuectl: error: store ", "queuectl: error: cannot open store ")
    assert lines and lines[-1].startswith(said), done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in lines[-1], lines[-1]


def test_a_damaged_store_ends_a_pool_and_status_with_one_line_saying_to_restore_it(q: Queue) -> None:
    _enqueue_many(q, 200)
    _corrupt_middle(q.db)
    status = q("status", check=False)
    _one_line_error(status, str(q.db), "restore it from a backup")
    assert "pending" not in status.stdout
    started = time.monotonic()
    pool = q("worker", "start", "--burst", check=False, timeout=60)
    _one_line_error(pool, str(q.db), "restore it from a backup")
    assert time.monotonic() - started < 30


def test_a_damaged_index_that_status_does_not_read_is_still_reported_by_status(q: Queue) -> None:
    _enqueue_many(q, 200)
    conn = sqlite3.connect(q.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs_ready'").fetchone()
    conn.close()
    with open(q.db, "r+b") as f:  # the index pools claim by; counting runs by state does not read it
        f.seek((root - 1) * 4096)
        f.write(os.urandom(4096))
    _one_line_error(q("status", check=False), str(q.db), "restore it from a backup")
    _one_line_error(q("status", "--json", check=False), str(q.db), "restore it from a backup")
    _one_line_error(q("worker", "start", "--burst", check=False, timeout=60), "restore it from a backup")


@pytest.fixture
def immutable(q: Queue) -> Iterator[Path]:
    """The store file made immutable: even root cannot write it (its directory stays writable)."""
    _needs_root()
    _enqueue_many(q, 5)
    if subprocess.run(["chattr", "+i", str(q.db)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag (chattr +i)")
    try:
        yield q.db
    finally:
        subprocess.run(["chattr", "-i", str(q.db)], check=True)


def test_a_read_only_store_ends_a_pool_at_once_with_one_line_saying_to_make_it_writable(
    q: Queue, immutable: Path
) -> None:
    started = time.monotonic()
    done = q("worker", "start", "--burst", check=False, timeout=60)
    _one_line_error(done, str(immutable), "attempt to write a readonly database", "writable")
    assert time.monotonic() - started < 10, "the pool retried a store that cannot be written"
    _one_line_error(q("enqueue", "--id", "more", "--command", "true", check=False), "writable")


def test_a_pool_whose_store_was_deleted_stops_with_an_error_and_kills_its_commands(q: Queue, tmp_path: Path) -> None:
    q("config", "set", "lease-seconds", "3")  # a heartbeat each second
    q("enqueue", "--id", "long", "--command", "sleep 300")
    pool = q.start_pool()
    group = _pid_of_group(q, "long")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{q.db}{suffix}").unlink(missing_ok=True)
    try:
        output, _ = pool.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("the pool went on with its store deleted") from None
    assert pool.returncode == 1, output
    last = output.strip().splitlines()[-1]
    assert last.startswith("queuectl: error: store ") and "was deleted while in use" in last, output
    assert "could not record the result of 1 attempt(s): long (interrupted); they are lost with" in output, output
    assert not group_members(group)


def test_a_pool_killed_with_kill_9_is_dead_at_once_in_every_command(q: Queue) -> None:
    command, _ = q.gate()
    q("enqueue", "--id", "held", "--command", command)
    pool = q.start_pool()
    _pid_of_group(q, "held")
    pool.send_signal(signal.SIGKILL)
    pool.wait(timeout=10)
    assert not is_running(pool.pid)
    # at once: no waiting for a heartbeat to age
    assert [w["state"] for w in q.json("worker", "status")] == ["dead"]
    assert "no pools are running" in q("worker", "status").stdout
    status = q.json("status")
    assert [w["state"] for w in status["workers"]] == ["dead"]
    assert "pools: 0 live (0 slots), 1 dead" in q("status").stdout
    assert q("worker", "stop").stdout.strip() == "no pools are running"


def test_a_pool_elsewhere_is_judged_by_its_heartbeat_alike_in_every_command(q: Queue) -> None:
    from queuectl.model import Worker
    from queuectl.store.factory import open_store

    q("db", "migrate")
    store = open_store(str(q.db))
    an_hour_ago = open_store(str(q.db), clock=lambda: time.time() - 3600)
    try:
        now = store.now()
        fresh = Worker("far-1", "far", os.getpid(), 1, 2, now, now, False, (), "other-boot/1")
        store.register_worker(fresh)
        an_hour_ago.register_worker(fresh._replace(id="far-2"))  # its last heartbeat: an hour ago
        states = {w["id"]: w["state"] for w in q.json("worker", "status")}
        assert states == {"far-1": "alive", "far-2": "stale"}  # its pid means nothing here: not judged by it
        assert "pools: 1 live (2 slots), 1 stale" in q("status").stdout
        assert "far-1 on far: asked to stop through the store" in q("worker", "stop").stdout
        store.unregister_worker("far-1")
        stop = q("worker", "stop").stdout.strip()
        assert stop == "no pools are running (1 stale pool(s) elsewhere asked to stop)"
        assert [w.stop_requested for w in store.list_workers()] == [True]
    finally:
        store.close()
        an_hour_ago.close()


def test_a_pool_stops_when_a_newer_queuectl_upgrades_the_store_under_it(q: Queue) -> None:
    """Code that does not know the new schema would not keep what it adds (the rollups, say): it stops."""
    q("config", "set", "lease-seconds", "3")  # a heartbeat a second
    gate, path = q.gate()
    q("enqueue", "--id", "busy", "--command", gate)
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("busy") == "running", what="the run started")
    with sqlite3.connect(q.db) as conn:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        conn.execute(f"PRAGMA user_version = {version + 1}")  # what a newer queuectl's migration leaves
    Queue.read_until(pool, f"upgraded to schema {version + 1} by a newer queuectl")
    path.touch()  # the running command finishes, and is recorded, before the pool stops
    assert pool.wait(timeout=60) == 0
    with sqlite3.connect(q.db) as conn:
        conn.execute(f"PRAGMA user_version = {version}")
    assert q.state("busy") == "completed"
