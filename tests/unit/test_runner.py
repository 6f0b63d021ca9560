"""runner: one attempt with real processes, driven in-process (fast enough for mutation testing).

Each test spawns `sh -c ...` through runner.spawn (or a stranger through subprocess), and
checks what a user would notice: the exit code and outcome recorded, the output in the log,
and which processes are left alive afterwards.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import reaper, runner
from queuectl.model import Claim, Outcome
from tests.conftest import is_running, wait_for

POOL = "testhost-1-abcdef"


def _claim(command: str, run_id: str = "r1", **kw: object) -> Claim:
    fields: dict[str, object] = dict(
        run_id=run_id,
        attempt=2,
        attempts=1,
        max_retries=3,
        backoff_base=2.0,
        backoff_max=60.0,
        command=command,
        timeout=None,
        cwd=None,
        env={},
    )
    fields.update(kw)
    return Claim(**fields)  # type: ignore[arg-type]


def _spawn(tmp_path: Path, command: str, **kw: object) -> runner.Process:
    claim = _claim(command, **kw)
    env = {"PATH": os.environ["PATH"], runner.POOL_VAR: POOL}
    return runner.spawn(claim, runner.log_path(str(tmp_path), claim), 0, env, 1000.0, 50.0)


def _exited(proc: runner.Process, timeout: float = 10.0) -> None:
    """Wait until the leader has exited (its pidfd is readable), reading its output meanwhile."""

    def done() -> bool:
        proc.output.pump()
        return bool(select.select([proc.pidfd], [], [], 0.05)[0])

    wait_for(done, timeout=timeout, what="the leader's exit")


def _finish(proc: runner.Process, known: frozenset[int] = frozenset()) -> tuple[int | None, Outcome, str | None]:
    _exited(proc)
    result = runner.reap(proc, known, POOL)
    proc.output.close()
    return result


def _log(proc: runner.Process) -> bytes:
    return Path(proc.log_path).read_bytes() if os.path.exists(proc.log_path) else b""


def _pids(path: Path, count: int) -> list[int]:
    """The pids a command wrote into `path`, one a line, once it has written `count` of them."""
    text = wait_for(lambda: path.exists() and len(path.read_text().split()) >= count and path.read_text())
    return [int(pid) for pid in text.split()]


def _gone(pid: int) -> bool:
    return not is_running(pid)


@pytest.fixture
def subreaper() -> Iterator[None]:
    """This process adopts orphans while the test runs, as a pool does."""
    assert reaper.become_subreaper()
    yield
    reaper.become_subreaper(False)


# -- spawn ----------------------------------------------------------------
def test_a_command_gets_its_run_markers_its_env_and_no_stdin(tmp_path: Path) -> None:
    proc = _spawn(
        tmp_path,
        'echo "$QUEUECTL_RUN_ID/$QUEUECTL_ATTEMPT/$QUEUECTL_POOL/$A/$B"; cat; echo "in=$?"; echo err >&2',
        env={"A": "from-claim", "PATH": os.environ["PATH"]},
    )
    assert _finish(proc) == (0, Outcome.COMPLETED, None)
    assert _log(proc) == f"r1/2/{POOL}/from-claim/\nin=0\nerr\n".encode()
    assert proc.log_path == str(tmp_path / "r1.2.log") == proc.output.path


def test_the_command_leads_a_process_group_of_its_own(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "ps -o pgid= -p $$; echo $$")
    _finish(proc)
    pgid, pid = _log(proc).split()
    assert int(pgid) == int(pid) == proc.pid != os.getpgrp()


def test_the_claim_s_env_wins_over_the_pool_s(tmp_path: Path) -> None:
    claim = _claim('echo "$X $Y"', env={"X": "claim"})
    env = {"PATH": os.environ["PATH"], "X": "pool", "Y": "pool"}
    proc = runner.spawn(claim, str(tmp_path / "x.log"), 0, env, 0.0, 0.0)
    _finish(proc)
    assert _log(proc) == b"claim pool\n"
    assert env == {"PATH": os.environ["PATH"], "X": "pool", "Y": "pool"}  # the pool's env is not changed


def test_cwd_is_entered_and_the_pool_goes_back_home(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    here = os.getcwd()
    home = os.open(here, os.O_RDONLY)
    try:
        claim = _claim("pwd; echo $0; ps -o pgid= -p $$", cwd=str(work))
        proc = runner.spawn(claim, str(tmp_path / "x.log"), 0, {"PATH": os.environ["PATH"]}, 0.0, 0.0, home)
        assert os.getcwd() == here
        _finish(proc)
    finally:
        os.close(home)
    where, name, pgid = _log(proc).decode().split()
    assert (where, name, int(pgid)) == (str(work), "sh", proc.pid)  # a group of its own there too


def test_the_command_never_reads_the_pool_s_stdin(tmp_path: Path) -> None:
    """A pool started from a terminal or a pipe keeps its input: commands read /dev/null."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"the pool's input\n")
    os.close(write_end)
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        proc = _spawn(tmp_path, "cat; echo end")
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_end)
    _finish(proc)
    assert _log(proc) == b"end\n"


def test_a_command_that_cannot_be_watched_is_killed_and_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(24, "Too many open files")

    before_fds = len(os.listdir("/proc/self/fd"))
    before = set(reaper.children())
    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    with pytest.raises(OSError, match="Too many open files"):
        _spawn(tmp_path, "exec sleep 30")
    monkeypatch.undo()
    assert set(reaper.children()) == before  # killed, and no zombie left
    assert len(os.listdir("/proc/self/fd")) == before_fds


def test_reaping_a_running_attempt_kills_it_first(tmp_path: Path) -> None:
    """The pool's way out after an error: whatever still runs is killed, then collected."""
    proc = _spawn(tmp_path, "exec sleep 30")
    proc.interrupted = True
    assert runner.reap(proc, frozenset(), POOL) == (
        137,
        Outcome.INTERRUPTED,
        "interrupted: the worker pool was stopped",
    )
    proc.output.close()


def test_a_missing_cwd_raises_and_leaves_nothing_open(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        runner.spawn(_claim("true", cwd=str(tmp_path / "nope")), str(tmp_path / "x.log"), 0, {}, 0.0, 0.0)
    assert len(os.listdir("/proc/self/fd")) == before


def test_the_timeout_sets_a_deadline_on_the_monotonic_clock(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "true", timeout=2.5)
    assert (proc.deadline, proc.spawned, proc.started_at) == (52.5, 50.0, 1000.0)
    _finish(proc)
    assert _spawn(tmp_path, "true").deadline is None


def test_the_log_cap_is_passed_to_the_output(tmp_path: Path) -> None:
    claim = _claim("head -c 100000 /dev/zero")
    proc = runner.spawn(claim, str(tmp_path / "x.log"), 5000, {"PATH": os.environ["PATH"]}, 0.0, 0.0)
    _finish(proc)
    assert len(_log(proc)) <= 5000 and proc.output.cut > 0


# -- reap: outcomes --------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("exit 0", (0, Outcome.COMPLETED, None)),
        ("exit 3", (3, Outcome.FAILED, "exit 3")),
        ("exit 127", (127, Outcome.FAILED, "exit 127: command not found")),
        ("kill -TERM $$", (143, Outcome.FAILED, "killed by SIGTERM")),
    ],
)
def test_an_exit_becomes_an_outcome(tmp_path: Path, command: str, expected: tuple[object, ...]) -> None:
    assert _finish(_spawn(tmp_path, command)) == expected


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("timed_out", (Outcome.TIMEOUT, "timed out after 1.5s")),
        ("interrupted", (Outcome.INTERRUPTED, "interrupted: the worker pool was stopped")),
        ("cancelled", (Outcome.CANCELLED, "cancelled while running")),
    ],
)
def test_a_stopped_attempt_says_why_it_was_stopped(tmp_path: Path, flag: str, expected: tuple[object, ...]) -> None:
    proc = _spawn(tmp_path, "kill -KILL $$", timeout=1.5)
    setattr(proc, flag, True)
    assert _finish(proc) == (137, *expected)


def test_timed_out_wins_over_interrupted_and_cancelled(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "exit 0", timeout=1.5)
    proc.timed_out = proc.interrupted = proc.cancelled = True
    assert _finish(proc) == (0, Outcome.TIMEOUT, "timed out after 1.5s")
    proc = _spawn(tmp_path, "exit 0")
    proc.interrupted = proc.cancelled = True
    assert _finish(proc)[1] == Outcome.INTERRUPTED


# -- reap: nothing the attempt started survives it --------------------------
def test_reaping_kills_what_stays_in_the_group(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, f"sleep 30 & echo $! > {tmp_path / 'pids'}")
    [child] = _pids(tmp_path / "pids", 1)
    _finish(proc)
    wait_for(lambda: _gone(child), timeout=5, what="the background child killed")


def test_reaping_kills_what_left_the_group_and_spares_the_pool_s_own(tmp_path: Path, subreaper: None) -> None:
    pids = tmp_path / "pids"
    proc = _spawn(tmp_path, f"setsid sh -c 'echo $$ >> {pids}; exec sleep 30' &")
    [escaped] = _pids(pids, 1)
    mine = subprocess.Popen(["sleep", "30"], start_new_session=True)  # the pool's own child (a guardian, say)
    try:
        _finish(proc, known=frozenset({mine.pid}))
        wait_for(lambda: _gone(escaped), timeout=5, what="the escaped child killed")
        assert is_running(mine.pid)
    finally:
        mine.kill()
        mine.wait()


def test_reaping_drains_the_output_left_in_the_pipe(tmp_path: Path) -> None:
    proc = _spawn(tmp_path, "(sleep 0.2; echo late) & echo early; wait")
    _finish(proc)
    assert _log(proc) == b"early\nlate\n"


def test_keep_children_leaves_the_group_alive(tmp_path: Path) -> None:
    gate, alive = tmp_path / "gate", tmp_path / "alive"
    daemon = f"while [ ! -e {gate} ]; do sleep 0.01; done; echo yes > {alive}; exec sleep 30"
    proc = _spawn(tmp_path, f"sh -c '{daemon}' & echo $! > {tmp_path / 'pids'}", keep_children=True)
    [child] = _pids(tmp_path / "pids", 1)
    try:
        assert _finish(proc) == (0, Outcome.COMPLETED, None)
        gate.touch()  # only now: a daemon killed by the reaping never gets here
        wait_for(alive.exists, timeout=10, what="the daemon going on after its run")
    finally:
        os.kill(child, signal.SIGKILL)


# -- small helpers -----------------------------------------------------------
def test_markers() -> None:
    assert runner.markers("r1", 2, "p") == [b"QUEUECTL_RUN_ID=r1", b"QUEUECTL_ATTEMPT=2", b"QUEUECTL_POOL=p"]
    assert runner.markers("r1", None, None) == [b"QUEUECTL_RUN_ID=r1"]
    assert runner.markers("r1", 0, "") == [b"QUEUECTL_RUN_ID=r1", b"QUEUECTL_ATTEMPT=0"]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (-99, "killed by signal 99"),
        (127, "exit 127: command not found"),
        (126, "exit 126: command not executable"),
        (1, "exit 1"),
        (128, "exit 128"),
        (0, "exit 0"),
    ],
)
def test_describe_exit(code: int, text: str) -> None:
    assert runner.describe_exit(code) == text


def test_the_machine_is_the_boot_and_the_pid_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pids of pools registered under this value are checked here: it must change on reboot and per namespace."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert runner._machine() == f"{boot}/{os.stat('/proc/self/ns/pid').st_ino}" == runner.MACHINE

    def unreadable(*args: object, **kw: object) -> None:
        raise PermissionError("no /proc here")

    monkeypatch.setattr(runner, "open", unreadable, raising=False)
    assert runner._machine() == ""  # unknown: the host name decides (on_this_machine)


def test_on_this_machine() -> None:
    assert runner.MACHINE.count("/") == 1 and len(runner.MACHINE) > 20
    assert runner.on_this_machine("elsewhere", runner.MACHINE)  # the machine decides, not the name
    assert not runner.on_this_machine(runner.HOST, "other-boot/1")
    assert runner.on_this_machine(runner.HOST, "")  # an old pool's row: the host name decides
    assert not runner.on_this_machine("elsewhere", "")


def test_proc_stat_of_live_dead_and_zombie_processes(tmp_path: Path) -> None:
    me = runner.proc_stat(os.getpid())
    assert me is not None and me[0] == os.getpgrp()
    assert runner.proc_start_time(os.getpid()) == me[1] and runner.is_alive(os.getpid(), me[1])
    assert not runner.is_alive(os.getpid(), me[1] + 1)
    child = subprocess.Popen(["true"])
    wait_for(lambda: runner.proc_stat(child.pid) is None, what="a zombie counted as gone")
    assert os.path.exists(f"/proc/{child.pid}")  # still a zombie: not waited for yet
    child.wait()
    assert runner.proc_stat(child.pid) is None and runner.proc_start_time(child.pid) is None


def test_proc_stat_reads_past_a_name_with_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "x) R 1 2 3 4"
    shutil.copy("/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "30"], process_group=0)
    try:
        stat = wait_for(lambda: runner.proc_stat(child.pid))
        assert stat[0] == child.pid
        assert stat[1] >= runner.proc_stat(os.getpid())[1]  # type: ignore[index]
    finally:
        child.kill()
        child.wait()


def test_group_lives_on_and_kill_group(tmp_path: Path) -> None:
    alone = _spawn(tmp_path, "exec sleep 30")
    group = _spawn(tmp_path, f"sleep 30 & echo $! > {tmp_path / 'pids'}; exec sleep 30")
    _pids(tmp_path / "pids", 1)
    try:
        assert not runner.group_lives_on(alone.pid)
        assert runner.group_lives_on(group.pid)
        runner.kill_group(group.pid, signal.SIGKILL)
        wait_for(lambda: not runner.group_lives_on(group.pid), timeout=5, what="the group gone")
    finally:
        runner.kill_group(alone.pid, signal.SIGKILL)
    assert _finish(alone, known=frozenset({group.pid}))[0] == 137  # the pool passes its running leaders
    assert _finish(group)[0] == 137
    runner.kill_group(group.pid, signal.SIGKILL)  # a group that is gone: nothing to do, no error


# -- kill_leftovers: a dead pool's attempt, and nothing else --------------------
def _leader(tmp_path: Path, command: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A stand-in for a dead pool's attempt: a group of its own, the given environment."""
    return subprocess.Popen(["sh", "-c", command], process_group=0, env={"PATH": os.environ["PATH"], **(env or {})})


def _marked(run_id: str = "r1", attempt: int = 2, pool: str = POOL) -> dict[str, str]:
    return {runner.RUN_ID_VAR: run_id, runner.ATTEMPT_VAR: str(attempt), runner.POOL_VAR: pool}


def test_kill_leftovers_kills_the_recorded_group(tmp_path: Path) -> None:
    proc = _leader(tmp_path, f"sleep 30 & sleep 30 & echo x > {tmp_path / 'go'}; wait", _marked())
    wait_for((tmp_path / "go").exists)
    start = runner.proc_start_time(proc.pid)
    assert runner.kill_leftovers("r1", proc.pid, start) >= 3
    proc.wait(timeout=5)
    assert not runner.group_lives_on(proc.pid)


def test_kill_leftovers_kills_a_recorded_leader_that_cleared_its_environment(tmp_path: Path) -> None:
    """The leader is known by its pid and start time alone: markers are not needed for it."""
    proc = _leader(tmp_path, "exec env -i sleep 30", _marked())
    try:
        wait_for(lambda: not reaper.has_markers(proc.pid, runner.markers("r1", None, None)), what="env -i")
        start = runner.proc_start_time(proc.pid)
        assert runner.kill_leftovers("r1", proc.pid, start) >= 1
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


def test_kill_leftovers_spares_a_stranger_that_reused_the_pid(tmp_path: Path) -> None:
    stranger = _leader(tmp_path, "exec sleep 30")
    try:
        start = wait_for(lambda: runner.proc_start_time(stranger.pid))
        assert runner.kill_leftovers("r1", stranger.pid, start - 1) == 0  # the recorded leader started earlier
        assert runner.kill_leftovers("r1", stranger.pid, start + 1) == 0
        assert is_running(stranger.pid)
    finally:
        stranger.kill()
        stranger.wait()


def test_kill_leftovers_in_the_group_needs_the_run_s_marker(tmp_path: Path) -> None:
    """A member of the recorded group is killed only when it carries the run's id (its leader is not ours)."""
    proc = _leader(
        tmp_path,
        f"QUEUECTL_RUN_ID=r1 sleep 30 & echo $! >> {tmp_path / 'pids'}; "
        f"QUEUECTL_RUN_ID=r2 sleep 30 & echo $! >> {tmp_path / 'pids'}; wait",
    )
    ours, theirs = _pids(tmp_path / "pids", 2)
    start = runner.proc_start_time(proc.pid)
    try:
        assert start is not None
        assert runner.kill_leftovers("r1", proc.pid, start - 1) >= 1  # not the leader: started too early
        wait_for(lambda: _gone(ours), timeout=5)
        assert is_running(theirs) and is_running(proc.pid)
    finally:
        runner.kill_group(proc.pid, signal.SIGKILL)
        proc.wait()


def test_kill_leftovers_spares_the_run_s_marker_outside_its_group(tmp_path: Path) -> None:
    other = _leader(tmp_path, "exec sleep 30", _marked())
    proc = _leader(tmp_path, "exec sleep 30", _marked())
    try:
        start = wait_for(lambda: runner.proc_start_time(proc.pid))
        wait_for(lambda: reaper.has_markers(other.pid, runner.markers("r1", 2, POOL)))
        # a run that keeps its children (the rescue's call with a known group): what left the group stays
        assert runner.kill_leftovers("r1", proc.pid, start, escaped=False) >= 1
        proc.wait(timeout=5)
        assert is_running(other.pid)
    finally:
        other.kill()
        other.wait()


def test_kill_leftovers_without_a_group_goes_by_run_attempt_and_pool(tmp_path: Path) -> None:
    ours = _leader(tmp_path, "exec sleep 30", _marked())
    same_run_other_pool = _leader(tmp_path, "exec sleep 30", _marked(pool="elsewhere-2-000000"))
    other_attempt = _leader(tmp_path, "exec sleep 30", _marked(attempt=1))
    spared = [same_run_other_pool, other_attempt]
    try:
        for p in [ours, *spared]:
            wait_for(lambda p=p: reaper.has_markers(p.pid, runner.markers("r1", None, None)), what="exec'd")
        assert runner.kill_leftovers("r1", None, None, 2, POOL) >= 1
        ours.wait(timeout=5)
        assert all(is_running(p.pid) for p in spared)
        assert runner.kill_leftovers("r1", ours.pid, None, 1, None) >= 1  # no start time: markers decide
        other_attempt.wait(timeout=5)
        assert is_running(same_run_other_pool.pid)
    finally:
        for p in spared:
            p.kill()
            p.wait()


# -- read_tail -------------------------------------------------------------------
def test_read_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert runner.read_tail(None) == "" and runner.read_tail("") == ""
    assert runner.read_tail(str(log)) == ""
    log.write_bytes(b"one\ntwo\n")
    assert runner.read_tail(str(log)) == "one\ntwo\n"
    assert runner.read_tail(str(log), 8) == "one\ntwo\n"
    assert runner.read_tail(str(log), 6) == "two\n"  # "e\ntwo\n": the cut line is dropped
    log.write_bytes(b"abcdefgh")
    assert runner.read_tail(str(log), 3) == "fgh"  # one long line: kept as it is
    log.write_bytes(b"x" * 5000 + b"\n" + b"y" * 10 + b"\xff\n")
    assert runner.read_tail(str(log)) == "y" * 10 + "\ufffd\n"
    assert len(runner.read_tail(str(tmp_path))) == 0  # a directory: unreadable
