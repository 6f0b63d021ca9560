"""How stores are opened and created: readers never create one, writers make it private.

Every test runs the real `queuectl` command; where the umask matters, the
command runs under the loosest one (000), so that only queuectl's own modes
keep its files private.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import QUEUECTL, Queue, wait_for

READERS = [
    ["status"],
    ["list"],
    ["show", "r1"],
    ["logs", "r1"],
    ["metrics"],
    ["dlq", "list"],
    ["config", "get", "max-retries"],
    ["config", "show"],
    ["worker", "status"],
    ["db", "info"],
    ["schedule"],
    ["plan", "nightly"],
]


def queuectl(
    tmp: Path, *args: str, umask: int = 0o022, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, run in `tmp` under `umask`."""
    return subprocess.run(
        [*QUEUECTL, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        stdin=subprocess.DEVNULL,
        env=env or dict(os.environ, XDG_STATE_HOME=str(tmp / "state")),
        preexec_fn=lambda: os.umask(umask),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a))
def test_a_command_that_only_reads_never_creates_a_store(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "nightly.toml").write_text('command = "true"\n')
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    done = queuectl(tmp_path, "--db", str(db), *args)
    assert done.returncode != 0, done.stdout
    assert done.stderr.strip().splitlines() == [
        f"queuectl: error: no store at {db} yet (check --db or QUEUECTL_DB; enqueue, apply or worker start creates one)"
    ]
    assert not (tmp_path / "nonexistent").exists()  # no directory made either


def test_diff_without_a_store_compares_with_an_empty_one_and_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "jobs.d").mkdir()
    (tmp_path / "jobs.d" / "nightly.toml").write_text('command = "true"\n')
    db = tmp_path / "nonexistent" / "dir" / "x.db"
    done = queuectl(tmp_path, "--db", str(db), "diff", "jobs.d")
    assert done.returncode == 1  # something to change: everything is to create
    assert "+ nightly: to create" in done.stdout
    assert f"note: no store at {db} yet" in done.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_the_default_store_is_not_created_by_status(tmp_path: Path) -> None:
    done = queuectl(tmp_path, "status")
    assert done.returncode == 1
    assert "no store at" in done.stderr and str(tmp_path / "state" / "queuectl" / "queue.db") in done.stderr
    assert not (tmp_path / "state").exists()


def test_readers_read_a_store_once_a_writer_made_it(tmp_path: Path) -> None:
    db = tmp_path / "new" / "x.db"
    assert queuectl(tmp_path, "--db", str(db), "enqueue", "--id", "r1", "--command", "true").returncode == 0
    done = queuectl(tmp_path, "--db", str(db), "status")
    assert done.returncode == 0 and "pending" in done.stdout


@pytest.mark.parametrize("spelling", [":memory:", "file::memory:"])
def test_an_in_memory_store_is_refused(tmp_path: Path, spelling: str) -> None:
    for env in (None, dict(os.environ, QUEUECTL_DB=spelling, XDG_STATE_HOME=str(tmp_path / "state"))):
        args = ["run", "echo hi"] if env else ["--db", spelling, "run", "echo hi"]
        done = queuectl(tmp_path, *args, env=env)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "in-memory store forgets every run" in lines[0], done.stderr
        assert done.stdout == ""  # no run id acknowledged


def test_a_new_store_and_its_directories_are_private_whatever_the_umask(tmp_path: Path) -> None:
    db = tmp_path / "made" / "by" / "queuectl" / "q.db"
    assert queuectl(tmp_path, "--db", str(db), "run", "echo out", umask=0).returncode == 0
    for directory in (tmp_path / "made", tmp_path / "made" / "by", db.parent):
        assert mode(directory) == 0o700, directory
    assert mode(db) == 0o600
    pool = subprocess.Popen(
        [*QUEUECTL, "--db", str(db), "worker", "start"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(0),
    )
    try:
        wait_for(lambda: queuectl(tmp_path, "--db", str(db), "list", "--json").stdout.count("completed") == 1)
        wal, shm = Path(f"{db}-wal"), Path(f"{db}-shm")
        assert wal.exists() and shm.exists()  # a pool holds the store open
        assert mode(wal) == 0o600 and mode(shm) == 0o600
        logs = db.parent / "q-logs"
        assert mode(logs) == 0o700
        assert all(mode(p) == 0o600 for p in logs.iterdir())
    finally:
        pool.terminate()
        pool.wait(timeout=60)


def test_the_default_state_directory_is_made_private(tmp_path: Path) -> None:
    assert queuectl(tmp_path, "run", "true", umask=0).returncode == 0
    state = tmp_path / "state" / "queuectl"
    assert mode(state) == 0o700 and mode(state / "queue.db") == 0o600
    state.chmod(0o755)  # made so by an older queuectl
    assert queuectl(tmp_path, "run", "true").returncode == 0
    assert mode(state) == 0o700


def test_a_detached_burst_pool_that_finished_its_work_is_a_success(q: Queue) -> None:
    q("enqueue", "--id", "r1", "--command", "true")
    for _ in range(3):  # the pool often finishes before the starter looks: that is a success
        done = q("worker", "start", "--detach", "--burst", check=False)
        assert done.returncode == 0, done.stderr
        assert "did not start" not in done.stderr
    wait_for(lambda: q.state("r1") == "completed", what="r1 completed")


# -- a jobs directory with a file that cannot be read -------------------------------------------
def test_a_symlink_loop_is_one_files_error(q: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    (jobs / "a.toml").write_text('command = "echo a"\n')
    (jobs / "loop.toml").symlink_to("loop.toml")
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert "jobs.d/loop.toml: cannot read: Too many levels of symbolic links" in done.stdout
    assert "+ a: created" in done.stdout
    assert [j["job"] for j in q.json("list", "--jobs")] == ["a"]


def test_up_goes_on_applying_beside_a_symlink_loop(q: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    (jobs / "loop.toml").symlink_to("loop.toml")
    (jobs / "a.toml").write_text('command = "echo a"\n')
    argv = [*QUEUECTL, "up", str(jobs)]
    up = subprocess.Popen(argv, env=q.env, cwd=tmp_path, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    q.procs.append(up)

    def jobs_applied() -> list[str]:
        done = q("list", "--jobs", "--json", check=False)
        return [j["job"] for j in json.loads(done.stdout)] if done.returncode == 0 else []

    wait_for(lambda: jobs_applied() == ["a"], what="a applied")
    (jobs / "b.toml").write_text('command = "echo b"\n')
    wait_for(lambda: jobs_applied() == ["a", "b"], what="b applied beside the loop")
    up.terminate()
    up.wait(timeout=60)
    assert up.stderr is not None and "loop.toml: cannot read: Too many levels of symbolic links" in up.stderr.read()


def test_an_older_store_left_readable_by_others_is_closed_when_opened(q: Queue) -> None:
    """Stores made before queuectl made them private were 0644: opening one of yours makes it 0600."""
    q("db", "migrate")
    for name in (q.db, Path(f"{q.db}-wal"), Path(f"{q.db}-shm")):
        if name.exists():
            name.chmod(0o644)
    q("status")
    for name in (q.db, Path(f"{q.db}-wal"), Path(f"{q.db}-shm")):
        if name.exists():
            assert name.stat().st_mode & 0o777 == 0o600, name


def test_a_reader_on_an_empty_postgresql_database_creates_no_schema(tmp_path: Path, pg_url: str) -> None:
    import psycopg

    done = queuectl(tmp_path, "--db", pg_url, "status")
    assert done.returncode == 1
    assert done.stderr.startswith("queuectl: error: no queuectl store in database postgresql://"), done.stderr
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
    assert queuectl(tmp_path, "--db", pg_url, "db", "migrate").returncode == 0
    assert queuectl(tmp_path, "--db", pg_url, "status").returncode == 0
