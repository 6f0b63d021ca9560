"""README promises that only a deliberate bug showed untested: each test here fails with that bug.

- a timeout sends SIGTERM to the whole process group, then SIGKILL;
- a rescue never kills a stranger that reuses a dead attempt's pid or process group,
  nor takes a pool whose pid was reused for alive;
- a run claimed ahead is given back after its short hold;
- an attempt that printed nothing leaves no log file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.conftest import Queue, children_of, group_members, is_running, wait_for


def test_a_timeout_gives_every_process_of_the_group_sigterm_before_sigkill(q: Queue, tmp_path: Path) -> None:
    ready, cleaned = tmp_path / "ready", tmp_path / "cleaned"
    # A background grandchild that cleans up on SIGTERM; the leader waits for it when told to stop, as a
    # well-behaved script does. Only a SIGTERM sent to the group reaches the grandchild: sent to the
    # leader alone, the leader waits for a grandchild that never stops, until SIGKILL ends both.
    grandchild = f"(trap 'echo cleaned-up > {cleaned}; exit 0' TERM; touch {ready}; while :; do sleep 0.05; done)"
    command = f"trap 'wait; exit 143' TERM; {grandchild} & until [ -e {ready} ]; do sleep 0.02; done; sleep 300 & wait"
    q("config", "set", "kill-grace", "30")  # SIGKILL only long after: what happens before it is SIGTERM's doing
    q("enqueue", "--id", "tidy", "--command", command, "--timeout", "3", "--retries", "0")
    q.burst(dead=True)
    run = q.run("tidy")
    assert run["history"][0]["outcome"] == "timeout"
    assert cleaned.read_text() == "cleaned-up\n"  # the grandchild got SIGTERM and its chance to clean up
    assert run["exit_code"] == 143  # the leader ended on SIGTERM, not on the SIGKILL of kill-grace
    assert run["pgid"] and group_members(run["pgid"]) == []


def test_a_timeout_gives_grandchildren_kill_grace_even_when_the_leader_ends_at_once(q: Queue, tmp_path: Path) -> None:
    ready, cleaned = tmp_path / "ready", tmp_path / "cleaned"
    # The grandchild's clean-up takes a moment (0.3 s, well within kill-grace); the leader does not wait for it.
    grandchild = (
        f"(trap 'sleep 0.3; echo cleaned-up > {cleaned}; exit 0' TERM; touch {ready}; while :; do sleep 0.05; done)"
    )
    q("config", "set", "kill-grace", "30")
    command = f"{grandchild} & until [ -e {ready} ]; do sleep 0.02; done; sleep 300"
    q("enqueue", "--id", "hasty", "--command", command, "--timeout", "3", "--retries", "0")
    q.burst(dead=True)
    assert q.run("hasty")["history"][0]["outcome"] == "timeout"
    wait_for(cleaned.exists, timeout=10, what="the grandchild's clean-up")


def _dead_pool_with_a_recorded_attempt(q: Queue) -> tuple[int, Path]:
    """A pool killed with kill -9 (guardian and command too) while its attempt of run `victim` ran.

    Returns the dead attempt's process group and the gate that lets the next attempt finish.
    """
    command, gate = q.gate()
    q("enqueue", "--id", "victim", "--retries", "2", "--command", f"{command}; echo second")
    pool = q.start_pool("--count", "1")
    pgid = wait_for(lambda: q.run("victim").get("pgid"), what="attempt recorded")
    guardians = [pid for pid in children_of(pool.pid) if pid != pgid]
    assert len(guardians) == 1
    os.kill(guardians[0], signal.SIGKILL)
    pool.kill()
    pool.wait()
    os.killpg(pgid, signal.SIGKILL)  # nothing of the attempt is left: its pid and group are free for reuse
    wait_for(lambda: group_members(pgid) == [], timeout=10, what="attempt gone")
    return pgid, gate


def _stranger() -> subprocess.Popen[bytes]:
    """An unrelated process group of two (a leader and its child), without queuectl's marker."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300"], process_group=0, env=env)
    wait_for(lambda: len(group_members(proc.pid)) >= 2, what="stranger's group started")
    return proc


def test_a_rescue_leaves_a_stranger_that_reuses_the_dead_attempts_pids_alone(q: Queue) -> None:
    _, gate = _dead_pool_with_a_recorded_attempt(q)
    stranger = _stranger()
    try:
        members = group_members(stranger.pid)
        # The kernel gave the dead attempt's group id, and the dead pool's pid, to the stranger (pid reuse).
        db = sqlite3.connect(q.db)
        with db:
            db.execute("UPDATE runs SET pgid = ? WHERE id = 'victim'", (stranger.pid,))
            db.execute("UPDATE workers SET pid = ?", (stranger.pid,))
        db.close()
        gate.touch()
        q.burst()
        run = q.run("victim")
        assert [a["outcome"] for a in run["history"]] == ["lost", "completed"]  # rescued all the same
        assert run["state"] == "completed" and "second" in run["output_tail"]
        assert all(is_running(pid) for pid in members)  # neither the stranger's leader nor its child was killed
        assert q.json("worker", "status") == []  # the dead pool is gone although its pid lives
    finally:
        os.killpg(stranger.pid, signal.SIGKILL)
        stranger.wait()


def test_a_run_claimed_ahead_is_given_back_to_another_pool(q: Queue) -> None:
    command, gate = q.gate()
    q("enqueue", "--id", "long", "--command", command, "--priority", "high")
    q("enqueue", "--id", "next", "--command", "echo next", "--priority", "low")
    a = q.start_pool("--count", "1")  # one slot, and before any attempt ends it claims one run ahead
    q.wait_pool_registered(a)
    a_id = next(w["id"] for w in q.json("worker", "status") if w["pid"] == a.pid)
    wait_for(lambda: q.state("long") == "running", what="long running")
    b = q.start_pool("--count", "1")
    try:
        # `next` waits behind `long` in a's only slot; held beyond half a second it goes back, and b runs it.
        wait_for(lambda: q.state("next") == "completed", timeout=30, what="next completed by the other pool")
        history = q.run("next")["history"]
        assert [h["outcome"] for h in history] == ["completed"]
        assert history[0]["worker"] != a_id
        assert q.state("long") == "running"
    finally:
        gate.touch()
        q("worker", "stop")
    assert a.wait(timeout=30) == 0 and b.wait(timeout=30) == 0


def test_an_attempt_that_printed_nothing_leaves_no_log_file(q: Queue) -> None:
    q("enqueue", "--id", "quiet", "--command", "true")
    q("enqueue", "--id", "silent-fail", "--command", "exit 3", "--retries", "0")
    q("enqueue", "--id", "loud", "--command", "echo loud")
    q.burst("--count", "1", dead=True)
    logs = Path(str(q.db)).with_name("queue-logs")
    assert sorted(os.listdir(logs)) == ["loud.1.log"]  # nor spare files left behind
    for run_id in ("quiet", "silent-fail"):
        run = q.run(run_id)
        assert run["log_path"] is None and run["history"][0]["log_path"] is None
        assert q("logs", run_id).stdout == ""
    assert q.run("silent-fail")["state"] == "dead"
