"""When a run ends, nothing it started survives it (unless it keeps its children)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Queue, is_running, wait_for


def processes_of(run_id: str) -> list[int]:
    """Live processes that carry `run_id` in their environment, as every process a run starts does."""
    marker = f"QUEUECTL_RUN_ID={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env and is_running(int(entry)):
            found.append(int(entry))
    return found


@pytest.fixture
def leftovers() -> Iterator[list[str]]:
    """Run ids whose processes the test kills at the end, whatever it found."""
    runs: list[str] = []
    yield runs
    for run_id in runs:
        for pid in processes_of(run_id):
            os.kill(pid, signal.SIGKILL)


def test_a_background_process_dies_with_its_completed_run(q: Queue, leftovers: list[str]) -> None:
    leftovers.append("daemonized")
    q("enqueue", "--id", "daemonized", "--command", "sleep 334 & echo daemonized")
    q.burst()
    assert q.state("daemonized") == "completed"
    assert processes_of("daemonized") == []


def test_a_process_that_left_its_session_dies_with_its_timed_out_run(q: Queue, leftovers: list[str]) -> None:
    leftovers.append("escaped")
    q("enqueue", "--id", "escaped", "--timeout", "1", "--retries", "0", "--command", "setsid sleep 332 & sleep 332")
    q.burst(dead=True)
    run = q.run("escaped")
    assert run["state"] == "dead" and "timed out" in run["error"]
    assert processes_of("escaped") == []


def test_deep_escapes_die_with_a_failed_run(q: Queue, leftovers: list[str]) -> None:
    """A double fork into a new session, and a grandchild in a new group under a surviving child."""
    leftovers.append("deep")
    command = "(setsid sh -c 'sleep 331 & sleep 331' &) ; (sh -c 'set -m; sleep 330 & wait' &) ; sleep 0.3; exit 3"
    q("enqueue", "--id", "deep", "--retries", "0", "--command", command)
    q.burst(dead=True)
    assert q.state("deep") == "dead"
    assert processes_of("deep") == []


def test_a_cold_stop_leaves_nothing_of_its_runs(q: Queue, leftovers: list[str]) -> None:
    leftovers.append("stopped")
    q("enqueue", "--id", "stopped", "--command", "setsid sleep 329 & echo up; sleep 329")
    pool = q.start_pool("--count", "1")
    q.read_until(pool, "start     stopped")
    wait_for(lambda: len(processes_of("stopped")) >= 3, what="the run's three processes")
    pool.send_signal(signal.SIGTERM)
    q.read_until(pool, "stopping")
    pool.send_signal(signal.SIGTERM)
    assert pool.wait(timeout=30) == 0
    assert q.state("stopped") == "pending"
    assert processes_of("stopped") == []


def test_keep_children_lets_a_daemon_outlive_its_run_and_its_pool(q: Queue, leftovers: list[str]) -> None:
    # a run id no other test uses: processes_of looks at the whole machine, where other tests run beside this one
    leftovers.append("kept-daemon")
    q("enqueue", "--id", "kept-daemon", "--keep-children", "--command", "setsid sleep 333 & echo started")
    q.burst()
    assert q.state("kept-daemon") == "completed"
    assert q("logs", "kept-daemon").stdout == "started\n"
    kept = processes_of("kept-daemon")
    assert len(kept) == 1 and is_running(kept[0])


def test_keep_children_in_a_manifest(q: Queue, leftovers: list[str]) -> None:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    (jobs / "kept.toml").write_text('command = "sleep 328 & echo kept"\nkeep_children = true\n')
    (jobs / "plain.toml").write_text('command = "sleep 327 & echo plain"\n')
    q("apply", str(jobs))
    q.burst()
    runs = {r["job"]: r for r in q.json("list")}
    leftovers.extend(r["id"] for r in runs.values())
    assert {r["state"] for r in runs.values()} == {"completed"}
    assert len(processes_of(runs["kept"]["id"])) == 1
    assert processes_of(runs["plain"]["id"]) == []


def test_keep_children_must_be_a_boolean(q: Queue) -> None:
    done = q("enqueue", '{"command": "true", "keep_children": "yes"}', check=False)
    assert done.returncode != 0 and "keep_children" in done.stderr and "Traceback" not in done.stderr
    assert q("enqueue", '{"command": "true", "keep_children": true}').returncode == 0


def test_a_pool_reaps_the_orphans_it_adopts(q: Queue) -> None:
    """Adopted processes that die are reaped: no zombie piles up under a long-lived pool."""
    q("enqueue", "--id", "orphans", "--keep-children", "--command", "for i in 1 2 3; do (sleep 0.2 &) ; done")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.state("orphans") == "completed", what="the run to complete")

    def zombies() -> list[str]:
        done = subprocess.run(["ps", "-o", "stat=", "--ppid", str(pool.pid)], capture_output=True, text=True)
        return [s for s in done.stdout.split() if s.startswith("Z")]

    wait_for(lambda: not processes_of("orphans"), what="the sleeps to end")
    wait_for(lambda: zombies() == [], timeout=10, what="the adopted zombies to be reaped")
    q("worker", "stop")
    assert pool.wait(timeout=30) == 0


def test_a_pool_killed_with_sigkill_leaves_nothing_of_its_runs(q: Queue, leftovers: list[str]) -> None:
    leftovers.append("orphaned")
    q("enqueue", "--id", "orphaned", "--command", "setsid sleep 326 & echo up; sleep 326")
    pool = q.start_pool("--count", "1")
    wait_for(lambda: q.run("orphaned").get("pgid"), what="the run recorded as running")
    wait_for(lambda: len(processes_of("orphaned")) >= 3, what="the run's three processes")
    pool.kill()
    pool.wait(timeout=30)
    wait_for(lambda: processes_of("orphaned") == [], timeout=10, what="the guardian to kill the escaped sleep")


def test_a_killed_pool_spares_a_run_of_the_same_id_in_another_store(
    q: Queue, tmp_path: Path, leftovers: list[str]
) -> None:
    """Run ids repeat across stores: what a dead pool's guardian kills is marked with that pool's id too."""
    leftovers.append("twin")
    (tmp_path / "other").mkdir()
    other = Queue(tmp_path / "other")
    try:
        started = []
        for queue in (q, other):
            queue("enqueue", "--id", "twin", "--command", "setsid sleep 327 & sleep 327")
            pool = queue.start_pool("--count", "1")
            wait_for(lambda queue=queue: queue.run("twin").get("pgid"), what="the run recorded as running")
            started.append(pool)
        wait_for(lambda: len(processes_of("twin")) >= 6, what="both runs' processes")
        theirs = set(processes_of("twin"))
        started[0].kill()
        started[0].wait(timeout=30)
        wait_for(lambda: len(processes_of("twin")) == 3, timeout=10, what="the killed pool's processes to go")
        assert set(processes_of("twin")) < theirs
        assert other.state("twin") == "running"
        other("worker", "stop", "--force")
    finally:
        other.cleanup()
