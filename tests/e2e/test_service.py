"""`up --detach`, `down`, `up --status`, `service status` and `scheduler start|stop|status|logs`: up as a
background service, with real processes: it serves once started, stops gracefully or at once without
losing a run, refuses a second start on the same jobs directory and store, and cleans stale pid files."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl.errors import QueueError
from queuectl.model import Service
from queuectl.services import daemon, pools
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from tests.conftest import QUEUECTL, Queue, is_running, wait_for


@pytest.fixture
def q(q: Queue) -> Iterator[Queue]:
    """The suite's queue; a background up a failing test left is stopped (its process is none of q's)."""
    yield q
    q("down", "--force", check=False)


def jobs_dir(q: Queue, jobs: dict[str, str], name: str = "jobs.d") -> Path:
    directory = q.tmp / name
    directory.mkdir(mode=0o700)
    for job, command in jobs.items():
        path = directory / f"{job}.toml"
        path.write_text(f"command = {json.dumps(command)}\nretries = 0\n")
        path.chmod(0o600)
    return directory


def started_pid(out: str) -> int:
    found = re.search(r"pid (\d+), log (\S+), jobs directory (\S+)", out)
    assert found, out
    return int(found.group(1))


def service_files(q: Queue) -> list[Path]:
    return sorted((q.tmp / "state" / "queuectl").glob("up-*"))


def run_of(q: Queue, job: str) -> dict[str, object]:
    runs = [r for r in q.json("list") if r["job"] == job]
    assert len(runs) == 1, runs
    return q.run(str(runs[0]["id"]))


def test_up_detach_returns_once_serving_runs_its_jobs_and_down_stops_it(q: Queue) -> None:
    directory = jobs_dir(q, {"hello": f"echo hi > {q.tmp / 'out'}"})
    done = q("up", str(directory), "--detach", "--workers", "3")
    pid = started_pid(done.stdout)
    assert f"jobs directory {directory}" in done.stdout
    # serving on return: the directory applied and the pool registered, nothing waited for
    assert [j["job"] for j in q.json("list", "--jobs")] == ["hello"]
    assert [(w["pid"], w["slots"]) for w in q.json("worker", "status")] == [(pid, 3)]
    wait_for(lambda: (q.tmp / "out").exists() and run_of(q, "hello")["state"] == "completed", what="hello ran")
    files = service_files(q)
    assert {f.suffix for f in files} == {".pid", ".log"}
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    stopped = q("down")
    assert "stopped" in stopped.stdout
    assert not is_running(pid)
    assert [f.suffix for f in service_files(q)] == [".log"]  # the pid file went with the process
    again = q("down")  # nothing runs: said, and a success (a script's teardown)
    assert again.returncode == 0 and "no background up runs" in again.stdout


def test_a_second_up_detach_on_the_same_directory_and_store_is_refused(q: Queue) -> None:
    directory = jobs_dir(q, {})
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    os.symlink(directory, q.tmp / "link")
    for spelling in (str(directory), "jobs.d/", "link"):  # one directory, however it is written
        refused = q("up", spelling, "--detach", check=False)
        assert refused.returncode == 1, refused
        assert f"already running for {directory} on this store: pid {pid}" in refused.stderr
        assert "Traceback" not in refused.stderr
    other = jobs_dir(q, {}, "other.d")  # another directory on the same store: another service
    pid2 = started_pid(q("up", str(other), "--detach").stdout)
    assert {s["pid"] for s in q.json("up", "--status")["services"]} == {pid, pid2}
    q("down", str(other))  # DIRECTORY: that one only
    assert not is_running(pid2) and is_running(pid)
    q("down")
    assert not is_running(pid)


def test_down_while_a_run_is_in_flight_lets_it_finish(q: Queue) -> None:
    command, gate = q.gate()
    directory = jobs_dir(q, {"slow": f"{command}; echo done"})
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    wait_for(lambda: run_of(q, "slow")["state"] == "running", what="slow running")
    down = subprocess.Popen(
        [*QUEUECTL, "down"], env=q.env, cwd=q.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: [w["state"] for w in q.json("worker", "status")] == ["stopping"], what="stopping")
        assert down.poll() is None and is_running(pid)  # down waits while the command runs on
        gate.touch()
        out, err = down.communicate(timeout=30)
    finally:
        if down.poll() is None:
            down.kill()
    assert down.returncode == 0, err
    assert "running commands finish" in out and "stopped" in out
    assert not is_running(pid)
    run = run_of(q, "slow")
    assert run["state"] == "completed" and run["attempts"] == 1


def test_down_force_gives_the_run_in_flight_back_to_the_queue(q: Queue) -> None:
    command, _gate = q.gate()
    directory = jobs_dir(q, {"slow": command})
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    wait_for(lambda: run_of(q, "slow")["state"] == "running", what="slow running")
    forced = q("down", "--force", "--json")
    assert json.loads(forced.stdout) == {"signalled": [pid], "stale_removed": [], "stopped": True}
    assert not is_running(pid)
    run = run_of(q, "slow")
    assert run["state"] == "pending"  # given back, not lost, not dead (retries = 0)
    assert run["attempts"] == 0
    assert [a["outcome"] for a in run["history"]] == ["interrupted"]  # type: ignore[union-attr]


def test_a_down_that_times_out_says_so_and_a_second_down_force_stops_at_once(q: Queue) -> None:
    command, _gate = q.gate()
    directory = jobs_dir(q, {"slow": command})
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    wait_for(lambda: run_of(q, "slow")["state"] == "running", what="slow running")
    late = q("down", "--timeout", "1", check=False)
    assert late.returncode == 1 and f"up still running after 1s: pid {pid}" in late.stderr
    assert is_running(pid) and run_of(q, "slow")["state"] == "running"  # graceful: the command runs on
    assert "stopped" in q("down", "--force").stdout
    assert not is_running(pid)
    run = run_of(q, "slow")
    assert (run["state"], run["attempts"]) == ("pending", 0)


def test_up_status_and_service_status_in_text_and_json(q: Queue) -> None:
    none = q("up", "--status", check=False)
    assert none.returncode == 1 and "no background up runs on this store" in none.stdout
    assert q("service", "status", "--json", check=False).stdout.startswith("{")
    command, gate = q.gate()
    directory = jobs_dir(q, {"slow": command})
    pid = started_pid(q("up", str(directory), "--detach", "-w", "3").stdout)
    run_id = wait_for(lambda: (r := run_of(q, "slow"))["state"] == "running" and r["id"], what="slow running")
    for args in (("up", "--status"), ("service", "status")):
        text = q(*args).stdout
        assert f"up is running: pid {pid}, since " in text
        assert f"jobs directory  {directory}" in text
        assert f"3 slot(s), 1 run(s) in flight: {run_id}" in text
        shown = q.json(*args)
        assert shown["running"] is True and len(shown["services"]) == 1
        service = shown["services"][0]
        assert service["pid"] == pid and service["directory"] == str(directory)
        assert service["started_at"].endswith("Z") and service["log"].endswith(".log")
        assert [(p["slots"], p["running"]) for p in service["pools"]] == [(3, [run_id])]
    gate.touch()
    assert "not waiting" in q("down", "--no-wait").stdout
    wait_for(lambda: not is_running(pid), what="up exited")
    gone = q("service", "status", "--json", check=False)
    assert gone.returncode == 1
    assert json.loads(gone.stdout) == {"running": False, "services": [], "stale_removed": []}  # up took its pid file


def test_scheduler_start_status_logs_stop(q: Queue) -> None:
    jobs_dir(q, {"hello": "echo hello-from-the-job"})  # ./jobs.d: the default directory
    started = q.json("scheduler", "start", "--workers", "2")
    pid = started["pid"]
    assert [(p["pid"], p["slots"]) for p in started["pools"]] == [(pid, 2)]  # serving: its pool registered
    status = q.json("scheduler", "status")
    assert [(s["pid"], s["pools"][0]["slots"]) for s in status["services"]] == [(pid, 2)]
    wait_for(lambda: run_of(q, "hello")["state"] == "completed", what="hello ran")
    logs = q("scheduler", "logs").stdout
    assert "applied: 1 created" in logs and "completed hello." in logs
    assert len(q("scheduler", "logs", "-n", "1").stdout.splitlines()) == 1
    follow = subprocess.Popen(
        [*QUEUECTL, "scheduler", "logs", "-f", "-n", "1"],
        env=q.env,
        cwd=q.tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        last = follow.stdout.readline()  # the last line so far: it is following the running up
        assert last.strip(), "scheduler logs -f -n 1 printed no line"
        stopped = q("scheduler", "stop")
        assert "stopped" in stopped.stdout
        out, err = follow.communicate(timeout=30)  # -f ends once up has exited
    finally:
        if follow.poll() is None:
            follow.kill()
    assert follow.returncode == 0, err
    assert "stopped after 1 attempt(s)" in out and "applied" not in out  # what came after, not before
    assert not is_running(pid)
    assert q("scheduler", "status", check=False).returncode == 1


def test_a_stale_pid_file_is_removed_and_a_reused_pid_never_signalled(q: Queue) -> None:
    directory = jobs_dir(q, {})
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    pid_file = next(f for f in service_files(q) if f.suffix == ".pid")
    record = json.loads(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)  # a crash: the pid file stays behind
    wait_for(lambda: not is_running(pid), what="up killed")
    shown = q("up", "--status", check=False)
    assert shown.returncode == 1
    assert f"removed a stale pid file: up (pid {pid})" in shown.stderr
    assert not pid_file.exists()
    # a pid file whose pid now belongs to another process (started at another time): never signalled
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(json.dumps({**record, "pid": stranger.pid}))
        pid_file.chmod(0o600)
        done = q("down", "--force")
        assert "no background up runs" in done.stdout
        assert stranger.poll() is None  # alive: no signal reached it
        assert not pid_file.exists()
        pid_file.write_text("{damaged")  # a pid file that is not one: in nobody's way
        restarted = started_pid(q("up", str(directory), "--detach").stdout)  # the directory is free again
        q("down")
        assert not is_running(restarted)
    finally:
        stranger.kill()
        stranger.wait()


def test_a_start_that_fails_says_the_logs_error_line_and_leaves_no_pid_file(
    q: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = jobs_dir(q, {})
    monkeypatch.setenv("XDG_STATE_HOME", str(q.tmp / "state"))
    store = open_store(str(q.db))
    try:
        with pytest.raises(QueueError) as failed:
            daemon.start(store, str(directory), 1, ["--no-such-option"])  # the background up exits at once
    finally:
        store.close()
    assert "up did not start: queuectl: error: No such option '--no-such-option'" in failed.value.message
    assert [f.suffix for f in service_files(q)] == [".log"]


def test_up_detach_status_and_down_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    q = Queue(tmp_path, db=pg_url)
    try:
        directory = jobs_dir(q, {"hello": "true"})
        pid = started_pid(q("up", str(directory), "--detach").stdout)
        assert "already running" in q("up", str(directory), "--detach", check=False).stderr
        shown = q.json("up", "--status")
        assert [s["pid"] for s in shown["services"]] == [pid]
        assert shown["services"][0]["store"].startswith("postgresql://")
        wait_for(lambda: run_of(q, "hello")["state"] == "completed", what="hello ran")
        q("down")
        assert not is_running(pid)
    finally:
        q.cleanup()


def test_up_detach_on_a_directory_with_a_broken_manifest_serves_the_others_and_says_so(q: Queue) -> None:
    directory = jobs_dir(q, {"good": "true"})
    (directory / "broken.toml").write_text('command = \nretries = 0\n')
    done = q("up", str(directory), "--detach")
    pid = started_pid(done.stdout)
    assert "warning: not applied: " in done.stderr and "broken.toml:1: invalid TOML" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line per refused manifest
    assert [j["job"] for j in q.json("list", "--jobs")] == ["good"]  # the others are served
    refused = q("up", str(directory), "--detach", check=False)  # its start time in the time policy's form
    assert re.search(r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [A-Z+-]\w*", refused.stderr), refused.stderr
    q("down")
    assert not is_running(pid)


def test_down_dir_and_status_dir_find_an_up_whose_directory_was_removed(q: Queue) -> None:
    directory = jobs_dir(q, {}, "going.d")
    pid = started_pid(q("up", str(directory), "--detach").stdout)
    directory.rmdir()  # removed while its up runs
    shown = q.json("up", "going.d", "--status")
    assert [s["pid"] for s in shown["services"]] == [pid]
    assert q("scheduler", "logs", "going.d").stdout  # its log, still
    assert "stopped" in q("down", "going.d").stdout
    assert not is_running(pid)
    typo = q("down", "nosuch.d", check=False)  # a directory no service has: still a usage error
    assert typo.returncode == 2 and "not a directory" in typo.stderr


def test_status_and_down_find_the_up_of_a_postgresql_server_that_is_down(tmp_path: Path, pg_server: Any) -> None:
    """The server stopped under a running up: `down` still stops it (by its pid file), and says why."""
    q = Queue(tmp_path, db=pg_server.create_database())
    try:
        pid = started_pid(q("up", str(jobs_dir(q, {})), "--detach").stdout)
        pg_server.stop()
        try:
            shown = q("up", "--status", check=False)
            done = q("down", "--force", "--timeout", "60s", check=False)
        finally:
            pg_server.start()
        assert shown.returncode == 0, shown.stderr  # it runs: said from its pid file
        assert f"up is running: pid {pid}" in shown.stdout and "unknown: the store cannot be read" in shown.stdout
        assert "warning: cannot reach database" in shown.stderr
        assert done.returncode == 0, done.stderr
        assert "warning: cannot reach database" in done.stderr and "stopped" in done.stdout
        assert not is_running(pid)
        assert [f.suffix for f in service_files(q)] == [".log"]
    finally:
        q("down", "--force", check=False)
        q.cleanup()


def _waits_for_a_flock(pid: int) -> bool:
    """Whether a thread of process `pid` is blocked taking a flock (a `->` line of /proc/locks)."""
    return any(
        line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
    )


def test_two_starts_at_once_spawn_one_up_and_refuse_the_other(q: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first start is held as it spawns; the second, meanwhile, waits its turn, then finds it running."""
    directory = jobs_dir(q, {})
    monkeypatch.setenv("XDG_STATE_HOME", str(q.tmp / "state"))
    spawning, go = threading.Event(), threading.Event()
    spawned: list[list[str]] = []
    real_spawn = pools.spawn

    def held_spawn(store: Store, args: list[str], log_path: str, what: str) -> subprocess.Popen[bytes]:
        spawned.append(args)
        if len(spawned) == 1:
            spawning.set()
            go.wait(60)
        return real_spawn(store, args, log_path, what)

    monkeypatch.setattr(pools, "spawn", held_spawn)
    results: dict[str, object] = {}

    def start(name: str) -> None:
        store = open_store(str(q.db))
        try:
            results[name] = daemon.start(store, str(directory), 1, [])
        except QueueError as exc:
            results[name] = exc.message
        finally:
            store.close()

    first = threading.Thread(target=start, args=("first",))
    first.start()
    assert spawning.wait(60)
    second = threading.Thread(target=start, args=("second",))
    second.start()
    wait_for(lambda: len(spawned) > 1 or _waits_for_a_flock(os.getpid()), what="the second start to spawn or wait")
    go.set()
    first.join(60)
    second.join(60)
    assert len(spawned) == 1, results  # one up ever started: none applied the directory and was then killed
    assert isinstance(results["first"], Service)
    assert "up is already running for" in str(results["second"])
    assert [f.suffix for f in service_files(q)].count(".log") == 1  # nothing rotated the running up's log
