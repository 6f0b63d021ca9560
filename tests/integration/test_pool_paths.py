"""The pool's timeout and rescue paths, driven in-process with a real SQLite store and real processes.

Fast enough to run per mutant: a pool of one slot works in this process (`run_once`),
its commands are `sh -c` scripts that write down what happened to them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import reaper, runner
from queuectl.model import Attempt, NewRun, Outcome, ProcessInfo, Worker
from queuectl.pool import Pool
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from tests.conftest import group_members, is_running, wait_for


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "q.db"))
    yield opened
    opened.close()


def _run(store: Store, command: str, timeout: float | None = None, keep_children: bool = False) -> None:
    store.enqueue([NewRun("r1", command, 0, 0, 2.0, 60.0, timeout, keep_children=keep_children)])


def _burst(store: Store, lines: list[str] | None = None, limit: float = 30.0) -> Attempt:
    """Run the queue to its end in a burst pool of one slot; the last attempt of r1."""
    pool = Pool(store, 1, burst=True, log=(lines.append if lines is not None else None))
    pool.start()
    try:
        deadline = time.monotonic() + limit
        while pool.run_once(max_wait=0.05):
            assert time.monotonic() < deadline, "the pool did not finish"
    finally:
        pool.close()
    return store.attempts("r1")[-1]


# -- timeouts ----------------------------------------------------------------------
def test_a_timeout_terms_the_whole_group_then_kills_what_stays(tmp_path: Path, store: Store) -> None:
    """SIGTERM goes to every process of the group (a grandchild cleans up); after kill-grace, SIGKILL."""
    store.set_config("kill-grace", "1")
    note, pids = tmp_path / "note", tmp_path / "pids"
    _run(
        store,
        f"(trap 'echo grandchild got TERM >> {note}; exit 0' TERM; echo $$ >> {pids}; "
        f"while :; do sleep 0.05; done) & trap '' TERM; echo $$ >> {pids}; while :; do sleep 0.05; done",
        timeout=0.3,
    )
    lines: list[str] = []
    began = time.monotonic()
    attempt = _burst(store, lines)
    assert time.monotonic() - began >= 1.3  # the timeout, then the whole kill grace for the leader
    assert (attempt.outcome, attempt.exit_code, attempt.error) == (Outcome.TIMEOUT, 137, "timed out after 300ms")
    assert note.read_text() == "grandchild got TERM\n"
    leader = attempt.pgid
    assert leader is not None and not group_members(leader)
    assert any(line.startswith("timeout   r1 after 300ms: stopping its process group") for line in lines)


def test_a_leader_that_ends_on_term_leaves_its_group_the_kill_grace(tmp_path: Path, store: Store) -> None:
    """The pool waits for the group to empty (not for the whole grace) before it collects the attempt."""
    store.set_config("kill-grace", "20")
    note = tmp_path / "note"
    _run(
        store,
        f"(trap 'sleep 0.3; echo cleaned up >> {note}; exit 0' TERM; while :; do sleep 0.05; done) & wait",
        timeout=0.3,
    )
    began = time.monotonic()
    attempt = _burst(store)
    assert note.read_text() == "cleaned up\n"
    assert time.monotonic() - began < 15  # collected once the group was empty, well before the grace
    assert (attempt.outcome, attempt.exit_code) == (Outcome.TIMEOUT, 143)


def test_a_group_that_outlasts_the_grace_is_killed_at_its_end(tmp_path: Path, store: Store) -> None:
    store.set_config("kill-grace", "0.5")
    pids = tmp_path / "pids"
    _run(store, f"sh -c 'trap \"\" TERM; echo $$ > {pids}; while :; do sleep 0.05; done' & wait", timeout=0.2)
    began = time.monotonic()
    attempt = _burst(store)
    assert time.monotonic() - began >= 0.7
    stray = int(pids.read_text())
    assert not is_running(stray)
    assert (attempt.outcome, attempt.exit_code) == (Outcome.TIMEOUT, 143)


def test_a_kept_run_s_leader_is_collected_at_once_on_timeout(tmp_path: Path, store: Store) -> None:
    """keep_children: the rest of the group is the run's daemons, not something to wait for."""
    store.set_config("kill-grace", "20")
    pids = tmp_path / "pids"
    _run(store, f"sh -c 'trap \"\" TERM; echo $$ > {pids}; exec sleep 30' & wait", timeout=0.2, keep_children=True)
    began = time.monotonic()
    attempt = _burst(store)
    daemon = int(pids.read_text())
    try:
        assert time.monotonic() - began < 15
        assert attempt.outcome == Outcome.TIMEOUT and is_running(daemon)
    finally:
        os.kill(daemon, signal.SIGKILL)


# -- rescue ---------------------------------------------------------------------------
def _dead_pool_holding_r1(store: Store, tmp_path: Path, host: str = runner.HOST) -> int:
    """A pool that died (its pid is not alive here) while r1 ran: returns the attempt's number."""
    store.enqueue([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None)])
    then = store.now()
    machine = runner.MACHINE if host == runner.HOST else "another-boot/1"
    store.register_worker(Worker("dead", host, 2**22 + 7, 1, 1, then, then, False, machine=machine))
    [claim] = store.claim_runs("dead", host, 1, 300.0)
    return claim.attempt


def _leftover(tmp_path: Path, attempt: int, then: str = "exec sleep 30") -> tuple[subprocess.Popen[bytes], int, str]:
    """What is left of the dead pool's attempt: a group that printed a line, with the run's markers."""
    log = tmp_path / "r1.log"
    env = {"PATH": os.environ["PATH"], runner.RUN_ID_VAR: "r1", runner.ATTEMPT_VAR: str(attempt)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", f"echo last words; {then}"],
            stdout=out,
            process_group=0,
            env={**env, runner.POOL_VAR: "dead"},
        )
    wait_for(lambda: log.read_bytes() == b"last words\n", what="the leftover's line")
    start = wait_for(lambda: runner.proc_start_time(proc.pid))
    return proc, start, str(log)


def _record(store: Store, proc: subprocess.Popen[bytes], start: int, log: str, attempt: int) -> None:
    store.record_processes("dead", [ProcessInfo("r1", proc.pid, start, log, store.now(), attempt)])


def test_rescue_kills_a_dead_pool_s_leftovers_and_requeues_the_run(tmp_path: Path, store: Store) -> None:
    attempt = _dead_pool_holding_r1(store, tmp_path)
    proc, start, log = _leftover(tmp_path, attempt, "exec env -i sleep 30")  # the recorded leader: no markers needed
    _record(store, proc, start, log, attempt)
    lines: list[str] = []
    assert Pool(store, 1, log=lines.append).rescue() == 1
    assert proc.wait(timeout=5) == -signal.SIGKILL
    run = store.get_run("r1")
    assert run is not None and run.state.value == "pending"
    lost = store.attempts("r1")[-1]
    assert lost.outcome == Outcome.LOST and "last words" in (lost.output_tail or "")
    assert lines == ["rescued r1 from dead pool dead: now pending"]
    assert [w.id for w in store.list_workers()] == []


def test_rescue_of_an_unrecorded_attempt_goes_by_run_attempt_and_pool(tmp_path: Path, store: Store) -> None:
    """The pool died before recording the attempt's group: the markers alone find what is left of it."""
    attempt = _dead_pool_holding_r1(store, tmp_path)
    proc, _, _ = _leftover(tmp_path, attempt)
    base = {"PATH": os.environ["PATH"], runner.RUN_ID_VAR: "r1"}
    others = [
        subprocess.Popen(["sleep", "30"], env={**base, runner.ATTEMPT_VAR: str(attempt), runner.POOL_VAR: "other"}),
        subprocess.Popen(["sleep", "30"], env={**base, runner.ATTEMPT_VAR: str(attempt + 1), runner.POOL_VAR: "dead"}),
    ]
    try:
        for other in others:
            wait_for(lambda other=other: reaper.has_markers(other.pid, [b"QUEUECTL_RUN_ID=r1"]), what="exec'd")
        assert Pool(store, 1, log=None).rescue() == 1
        assert proc.wait(timeout=5) == -signal.SIGKILL
        assert all(is_running(other.pid) for other in others)
    finally:
        for other in others:
            other.kill()
            other.wait()


def test_rescue_spares_a_stranger_that_reused_the_recorded_pid(tmp_path: Path, store: Store) -> None:
    attempt = _dead_pool_holding_r1(store, tmp_path)
    stranger = subprocess.Popen(["sleep", "30"], process_group=0)  # no markers: not the run's
    try:
        start = wait_for(lambda: runner.proc_start_time(stranger.pid))
        _record(store, stranger, start + 1, "", attempt)  # the recorded leader started at another moment
        assert Pool(store, 1, log=None).rescue() == 1
        assert is_running(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


def test_rescue_leaves_a_live_pool_of_this_machine_alone_and_goes_on(tmp_path: Path, store: Store) -> None:
    """A pool whose process lives is not dead, however late its heartbeat and leases (suspended, a clock step)."""
    store.enqueue([NewRun("r0", "sleep 60", 0, 3, 2.0, 60.0, None)])
    now = store.now()
    me = runner.proc_start_time(os.getpid()) or 0
    store.register_worker(Worker("alive", runner.HOST, os.getpid(), me, 1, now, now, False, machine=runner.MACHINE))
    store.claim_runs("alive", runner.HOST, 1, 300.0)
    _dead_pool_holding_r1(store, tmp_path)  # listed after the live pool's run
    later = open_store(str(tmp_path / "q.db"), clock=lambda: time.time() + 1000)  # every lease has expired
    try:
        assert Pool(later, 1, log=None).rescue() == 1
        # read at the rescuer's time: at the real time, a run due 1000 s ahead shows as scheduled
        states = {r: getattr(later.get_run(r), "state", None) for r in ("r0", "r1")}
    finally:
        later.close()
    assert {r: str(s) for r, s in states.items()} == {"r0": "running", "r1": "pending"}
    assert [w.id for w in store.list_workers()] == ["alive"]


@pytest.mark.parametrize(("silent", "rescued"), [(30.0, 0), (75.0, 0), (100.0, 1)])
def test_another_host_s_pool_is_dead_after_three_leases_of_silence_and_nothing_here_is_killed(
    tmp_path: Path, store: Store, silent: float, rescued: int
) -> None:
    attempt = _dead_pool_holding_r1(store, tmp_path, host="elsewhere")
    proc, start, log = _leftover(tmp_path, attempt)
    later = open_store(str(tmp_path / "q.db"), clock=lambda: time.time() + silent)  # its last heartbeat: `silent` ago
    try:
        _record(store, proc, start, log, attempt)
        assert Pool(later, 1, log=None).rescue() == rescued  # dead after three leases of 30 s
        assert is_running(proc.pid)  # its pids are not ours to kill
        run = later.get_run("r1")  # at the rescuer's time: due now (not scheduled `silent` s ahead)
        assert run is not None and run.state.value == ("pending" if rescued else "running")
        if rescued:
            assert store.attempts("r1")[-1].output_tail == ""  # its log is on its own machine
    finally:
        later.close()
        proc.kill()
        proc.wait()


def test_rescue_looks_past_the_pool_s_own_row(tmp_path: Path, store: Store) -> None:
    pool = Pool(store, 1, log=None)
    pool._register()  # listed first: same host, started earlier
    _dead_pool_holding_r1(store, tmp_path)
    assert next(w.id for w in store.list_workers()) == pool.id
    assert pool.rescue() == 1


def test_an_old_pool_row_without_a_machine_is_judged_by_its_pid_on_its_host(tmp_path: Path, store: Store) -> None:
    """A row from before pools recorded their machine: the host name says the pid is ours to check, at once."""
    store.enqueue([NewRun("r1", "sleep 60", 0, 3, 2.0, 60.0, None)])
    now = store.now()
    store.register_worker(Worker("old", runner.HOST, 2**22 + 7, 1, 1, now, now, False, machine=""))
    store.claim_runs("old", runner.HOST, 1, 300.0)
    assert Pool(store, 1, log=None).rescue() == 1


# -- a graceful stop ----------------------------------------------------------------------
def _stop_gracefully(store: Store, command: str, lines: list[str], limit: float = 30.0) -> Attempt:
    """Start r1 in a pool, stop the pool as the first SIGTERM does once r1 runs, run the pool to its end."""
    store.enqueue([NewRun("r1", command, 0, 0, 2.0, 60.0, None)])
    pool = Pool(store, 1, log=lines.append)
    pool.start()
    try:
        deadline = time.monotonic() + limit
        while not pool.running:
            pool.run_once(max_wait=0.05)
            assert time.monotonic() < deadline, "r1 did not start"
        pool._signals += 1  # what a SIGTERM's wake-up byte counts
        while pool.run_once(max_wait=0.05):
            assert time.monotonic() < deadline, "the pool did not stop"
    finally:
        pool.close()
    return store.attempts("r1")[-1]


def test_a_graceful_stop_lets_a_command_finish_within_stop_grace(tmp_path: Path, store: Store) -> None:
    store.set_config("stop-grace", "20")
    lines: list[str] = []
    attempt = _stop_gracefully(store, "sleep 0.3; echo done", lines)
    assert (attempt.outcome, attempt.output_tail) == (Outcome.COMPLETED, "done\n")
    assert not any("stop-grace" in line for line in lines)


def test_a_command_still_running_after_stop_grace_is_stopped_and_its_run_requeued(tmp_path: Path, store: Store) -> None:
    store.set_config("stop-grace", "0.3")
    lines: list[str] = []
    began = time.monotonic()
    attempt = _stop_gracefully(store, "exec sleep 30", lines)
    assert time.monotonic() - began >= 0.3
    assert attempt.outcome == Outcome.INTERRUPTED
    assert "stop-grace of 300ms is over: stopping running commands" in lines
    run = store.get_run("r1")
    assert run is not None and run.state.value == "pending"
    assert attempt.pgid is not None and not group_members(attempt.pgid)
