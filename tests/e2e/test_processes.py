"""Real processes and signals: pools, timeouts, crashes, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import QUEUECTL, Queue, children_of, group_members, is_running, wait_for


def test_two_pools_of_four_slots_run_200_jobs_exactly_once(q: Queue, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    lines = "".join(json.dumps({"id": f"j{i:03d}", "command": f"echo j{i:03d} >> {out}"}) + "\n" for i in range(200))
    q("enqueue", "--file", "-", input=lines)
    pools = [q.start_pool("--count", "4", "--burst", "--quiet") for _ in range(2)]
    for pool in pools:
        assert pool.wait(timeout=120) == 0
    done = out.read_text().split()
    assert sorted(done) == [f"j{i:03d}" for i in range(200)]  # every job, none twice
    assert q.json("status")["counts"]["completed"] == 200


def test_timeout_kills_the_whole_process_group(q: Queue, tmp_path: Path) -> None:
    bg = tmp_path / "bg.pid"
    q(
        "enqueue",
        "--id",
        "slow",
        "--command",
        f"sleep 300 & echo $! > {bg}; sleep 300",
        "--timeout",
        "1",
        "--retries",
        "0",
    )
    q.burst(dead=True)
    run = q.run("slow")
    assert run["state"] == "dead"
    assert run["history"][0]["outcome"] == "timeout"
    assert "timed out after 1s" in run["error"]
    grandchild = int(bg.read_text())
    wait_for(lambda: not is_running(grandchild), timeout=5, what="grandchild gone")


def test_timeout_escalates_to_sigkill_for_commands_that_ignore_sigterm(q: Queue) -> None:
    q("config", "set", "kill-grace", "0.5")
    command = "trap '' TERM; sleep 300 & sleep 300"  # a group of three, none of which minds SIGTERM
    q("enqueue", "--id", "stubborn", "--command", command, "--timeout", "0.5", "--retries", "0")
    q.burst(dead=True)
    run = q.run("stubborn")
    assert run["history"][0]["outcome"] == "timeout"
    assert run["exit_code"] == 128 + signal.SIGKILL
    assert run["pgid"] and group_members(run["pgid"]) == []  # SIGKILL reached every member, not the leader only


def _start_victim(q: Queue, tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """A pool running `sh -c 'sleep 300 & sleep 300'` as its first attempt of run `victim`."""
    mark = tmp_path / "first-attempt"
    q(
        "enqueue",
        "--id",
        "victim",
        "--retries",
        "2",
        "--command",
        f"if [ -e {mark} ]; then echo second; exit 0; fi; touch {mark}; sh -c 'sleep 300 & sleep 300'",
    )
    pool = q.start_pool("--count", "2")
    pgid = wait_for(lambda: q.run("victim").get("pgid"), what="attempt recorded")
    members = wait_for(lambda: len(group_members(pgid)) >= 3 and group_members(pgid), what="group started")
    return pool, members


def _rescued(q: Queue, members: list[int]) -> None:
    q.burst()
    run = q.run("victim")
    assert run["state"] == "completed"
    assert [a["outcome"] for a in run["history"]] == ["lost", "completed"]
    assert "second" in run["output_tail"]
    wait_for(lambda: not any(is_running(pid) for pid in members), timeout=5, what="leftovers killed")
    assert q.json("worker", "status") == []  # the dead pool was unregistered


def test_commands_die_with_their_pool_on_kill_9(q: Queue, tmp_path: Path) -> None:
    pool, members = _start_victim(q, tmp_path)
    pool.kill()  # SIGKILL: the pool cannot clean up; its guardian does
    pool.wait()
    wait_for(lambda: not any(is_running(pid) for pid in members), timeout=10, what="commands gone with the pool")
    _rescued(q, members)


def test_kill_9_of_pool_and_guardian_is_rescued_without_leftover_processes(q: Queue, tmp_path: Path) -> None:
    pool, members = _start_victim(q, tmp_path)
    guardians = [pid for pid in children_of(pool.pid) if pid not in members and os.getpgid(pid) != pid]
    assert len(guardians) == 1
    os.kill(guardians[0], signal.SIGKILL)  # as if the OOM killer took both
    pool.kill()
    pool.wait()
    assert all(is_running(pid) for pid in members)  # orphaned, still running
    _rescued(q, members)


def test_sigterm_lets_running_commands_finish(q: Queue, tmp_path: Path) -> None:
    command, gate = q.gate()
    q("enqueue", "--id", "a", "--command", f"{command}; echo finished")
    q("enqueue", "--id", "b", "--command", "true")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("a") == "running", what="a running")
    pool.send_signal(signal.SIGTERM)
    q.read_until(pool, "stopping: no new claims")
    gate.touch()
    assert pool.wait(timeout=30) == 0
    assert q.state("a") == "completed"
    assert q.state("b") == "pending"  # nothing new was claimed
    assert q.json("worker", "status") == []


def test_second_signal_stops_at_once_and_returns_the_run(q: Queue, tmp_path: Path) -> None:
    q("enqueue", "--id", "long", "--command", "sleep 300", "--retries", "0")
    pool = q.start_pool("--count", "1")
    pgid = wait_for(lambda: q.run("long").get("pgid"), what="attempt recorded")
    pool.send_signal(signal.SIGINT)
    pool.send_signal(signal.SIGTERM)
    assert pool.wait(timeout=30) == 0
    run = q.run("long")
    assert run["state"] == "pending"  # back in the queue, and not counted
    assert run["attempts"] == 0
    assert run["history"][-1]["outcome"] == "interrupted"
    assert group_members(pgid) == []


def test_idle_pool_wakes_up_when_work_arrives(q: Queue) -> None:
    q("config", "set", "worker-poll-interval", "60")  # only a wake-up can be fast
    pool = q.start_pool("--count", "1")
    q.wait_pool_registered(pool)
    q("run", "--id", "ping", "true")
    wait_for(lambda: q.state("ping") == "completed", timeout=10, what="ping completed without a poll")


def test_detach_status_and_stop(q: Queue) -> None:
    out = q("worker", "start", "--detach", "--count", "3").stdout
    assert "pid" in out
    pools = q.json("worker", "status")
    assert len(pools) == 1 and pools[0]["slots"] == 3 and pools[0]["state"] == "alive"
    pid = pools[0]["pid"]
    q("run", "--id", "bg", "sleep 0.2")
    wait_for(lambda: q.state("bg") == "completed", what="bg completed")
    status = q.json("status")
    assert status["workers"][0]["pid"] == pid
    assert "all pools stopped" in q("worker", "stop").stdout
    assert not is_running(pid)
    assert q.json("worker", "status") == []


def test_worker_stop_force_interrupts(q: Queue) -> None:
    q("enqueue", "--id", "long", "--command", "sleep 300 & sleep 300", "--retries", "0")
    q("worker", "start", "--detach")
    pgid = wait_for(lambda: q.run("long").get("pgid"), what="long started")
    wait_for(lambda: len(group_members(pgid)) >= 2, what="long's group started")
    q("worker", "stop", "--force")
    run = q.run("long")
    assert run["state"] == "pending"  # back in the queue...
    assert run["attempts"] == 0  # ...without counting the interrupted attempt (with --retries 0 it would be dead)
    assert [a["outcome"] for a in run["history"]] == ["interrupted"]
    assert group_members(pgid) == []  # the whole group was stopped, not the leader only


def test_logs_follow_prints_output_until_the_run_ends(q: Queue) -> None:
    q("enqueue", "--id", "quiet", "--command", "true")  # leaves an empty log file to be reused
    command, gate = q.gate()
    q("enqueue", "--id", "talk", "--command", f"echo line1; {command}; echo line2; echo line3")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("talk") == "running", what="talk running")
    follow = subprocess.Popen(
        [*QUEUECTL, "logs", "talk", "--follow"], env=q.env, stdout=subprocess.PIPE, text=True, cwd=q.tmp
    )
    q.procs.append(follow)
    assert follow.stdout is not None
    assert follow.stdout.readline() == "line1\n"  # the output so far, while the run goes on
    gate.touch()
    rest, _ = follow.communicate(timeout=30)  # it ends by itself when the run does
    assert rest == "line2\nline3\n" and follow.returncode == 0
    q("worker", "stop")
    pool.wait(timeout=30)


def test_log_size_is_capped_keeping_the_tail(q: Queue) -> None:
    q("config", "set", "log-max-bytes", "20000")
    q(
        "enqueue",
        "--id",
        "chatty",
        "--command",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; sleep 1.5; echo the-end",
    )
    q.burst()
    run = q.run("chatty")
    size = os.path.getsize(run["history"][0]["log_path"])
    assert size <= 20000 + 200
    text = q("logs", "chatty").stdout
    assert "bytes of earlier output dropped" in text
    assert text.rstrip().endswith("the-end")


def test_commands_get_their_env_and_cwd(q: Queue, tmp_path: Path) -> None:
    q(
        "enqueue",
        "--id",
        "envy",
        "--cwd",
        str(tmp_path),
        "--env",
        "GREETING=hi",
        "--command",
        'echo "$GREETING $QUEUECTL_RUN_ID $QUEUECTL_ATTEMPT $(pwd)"',
    )
    q.burst()
    assert q("logs", "envy").stdout.strip() == f"hi envy 1 {tmp_path}"


def test_missing_cwd_fails_the_attempt_clearly(q: Queue, tmp_path: Path) -> None:
    q("enqueue", "--id", "lost", "--cwd", str(tmp_path / "nope"), "--command", "true", "--retries", "0")
    q.burst(dead=True)
    run = q.run("lost")
    assert run["state"] == "dead"
    assert "cannot enter" in run["error"] and "nope" in run["error"]


def test_pool_exits_cleanly_on_a_store_it_cannot_open(q: Queue, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    done = subprocess.run(
        [*QUEUECTL, "--db", str(bad), "worker", "start", "--burst"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("queuectl: error: cannot open store") and "Traceback" not in done.stderr


def test_pool_rides_out_a_locked_store(q: Queue) -> None:
    import sqlite3
    import threading

    command, gate = q.gate()
    q("enqueue", "--id", "r0", "--command", command)
    for i in (1, 2):
        q("enqueue", "--id", f"r{i}", "--command", "sleep 0.3")
    pool = q.start_pool("--count", "1")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(pool.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    wait_for(lambda: q.state("r0") == "running", what="r0 running")
    locker = sqlite3.connect(q.db, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the store's write lock
    gate.touch()  # r0 ends now: its result must wait for the lock
    try:
        wait_for(lambda: any("store error, retrying" in line for line in lines), what="the pool noticing the lock")
        assert pool.poll() is None  # still alive
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    wait_for(lambda: {r["state"] for r in q.json("list")} == {"completed"}, what="every run completed")
    q("worker", "stop")
    assert pool.wait(timeout=30) == 0


def test_output_of_a_command_left_running_stays_in_its_own_log(q: Queue) -> None:
    # Only a run that keeps its children leaves anything running (the pool reads its output on).
    q("enqueue", "--id", "a", "--keep-children", "--command", "(sleep 0.5; echo late-from-a) &")
    q("enqueue", "--id", "b", "--command", "sleep 1")
    q.burst("--count", "1")
    wait_for(lambda: "late-from-a" in q("logs", "a", check=False).stdout, what="a's late output in a's log")
    assert "late-from-a" not in q("logs", "b").stdout


def test_clear_removes_logs_and_a_reused_id_starts_afresh(q: Queue) -> None:
    q("enqueue", "--id", "job1", "--command", "echo first-run")
    q.burst()
    log = Path(q.run("job1")["history"][0]["log_path"])
    assert log.exists()
    q("clear", "--yes")
    assert not log.exists()
    q("enqueue", "--id", "job1", "--command", "echo second-run")
    q.burst()
    assert q("logs", "job1").stdout == "second-run\n"


def test_a_stopped_but_live_pool_is_not_taken_for_dead(q: Queue) -> None:
    q("config", "set", "lease-seconds", "1")
    q("enqueue", "--id", "j", "--command", "sleep 2; echo done-once")
    a = q.start_pool("--count", "1")
    wait_for(lambda: q.run("j").get("pgid"), what="j started")
    os.kill(a.pid, signal.SIGSTOP)  # its lease runs out while it is frozen
    try:
        wait_for(lambda: _lease_passed(q.run("j")), what="j's lease to run out")
        q("worker", "start", "--burst")  # another pool on this host: must not rescue j
    finally:
        os.kill(a.pid, signal.SIGCONT)
    wait_for(lambda: q.state("j") == "completed", what="j completed by its own pool")
    run = q.run("j")
    assert [h["outcome"] for h in run["history"]] == ["completed"]
    q("worker", "stop")
    a.wait(timeout=30)


def _lease_passed(run: dict[str, object]) -> bool:
    import time
    from datetime import datetime

    lease = str(run["lease_expires"]).replace("Z", "+00:00")
    return datetime.fromisoformat(lease).timestamp() < time.time()
