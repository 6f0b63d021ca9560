"""reaper: this test process as a child subreaper, adopting real orphans, as a pool does."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import reaper, runner
from tests.conftest import is_running, process_state, wait_for

MARK = [b"QUEUECTL_RUN_ID=r1", b"QUEUECTL_ATTEMPT=2"]


@pytest.fixture
def subreaper() -> Iterator[None]:
    assert reaper.become_subreaper()
    yield
    reaper.become_subreaper(False)


def _orphan(tmp_path: Path, command: str, env: dict[str, str] | None = None, group: bool = False) -> int:
    """Start `command` in the background of a shell that exits at once: it becomes our adopted child.

    `group`: the shell leads a group of its own, which the orphan stays in (else it makes a session).
    """
    pidfile = tmp_path / f"pid-{len(list(tmp_path.iterdir()))}"
    inner = f"echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec {command}"
    script = f"sh -c '{inner}' &" if group else f"setsid sh -c '{inner}' &"
    shell = subprocess.Popen(["sh", "-c", script], env={"PATH": os.environ["PATH"], **(env or {})}, process_group=0)
    shell.wait()
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    wait_for(lambda: pid in reaper.children(), timeout=5, what="the orphan adopted")
    return pid


def _kill(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        reaper._reap(pid)


def test_orphans_come_to_a_subreaper_and_not_after(tmp_path: Path) -> None:
    assert reaper.become_subreaper()
    try:
        adopted = _orphan(tmp_path, "sleep 30")
    finally:
        assert reaper.become_subreaper(False)
    try:
        with open(f"/proc/{adopted}/stat") as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
        shell = subprocess.Popen(["sh", "-c", f"sleep 30 & echo $! > {tmp_path / 'gone'}"])
        shell.wait()
        pid = int(wait_for(lambda: (tmp_path / "gone").exists() and (tmp_path / "gone").read_text().strip()))
        assert pid not in reaper.children()  # no longer a subreaper: init takes it
        os.kill(pid, signal.SIGKILL)
    finally:
        _kill(adopted)


def test_children_lists_this_process_s_children() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in reaper.children()
    finally:
        child.kill()
        child.wait()
    assert child.pid not in reaper.children()


def test_has_markers_needs_every_marker(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "2", "X": "QUEUECTL_RUN_ID=r9"}
    child = subprocess.Popen(["sleep", "30"], env=env)
    try:
        wait_for(lambda: reaper.has_markers(child.pid, [b"X=QUEUECTL_RUN_ID=r9"]), what="exec'd")
        assert reaper.has_markers(child.pid, MARK)
        assert reaper.has_markers(child.pid, [])
        assert not reaper.has_markers(child.pid, [*MARK, b"QUEUECTL_POOL=p"])
        assert not reaper.has_markers(child.pid, [b"QUEUECTL_RUN_ID=r"])  # whole entries, not prefixes
        assert not reaper.has_markers(child.pid, [b"QUEUECTL_RUN_ID=r9"])  # not inside another value
    finally:
        child.kill()
        child.wait()
    assert not reaper.has_markers(child.pid, [])  # gone: its environment cannot be read


def test_read_reads_a_proc_file_whole_and_none_when_missing(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 1000)
    assert reaper._read(str(big)) == big.read_bytes()
    assert reaper._read(str(tmp_path / "missing")) is None
    assert reaper._read(str(tmp_path)) is None  # a directory: reading fails
    (tmp_path / "empty").write_bytes(b"")
    assert reaper._read(str(tmp_path / "empty")) == b""


def test_sweep_kills_the_run_s_adopted_processes_and_spares_others(tmp_path: Path, subreaper: None) -> None:
    own = subprocess.Popen(["sleep", "30"], env={"QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "2"})  # listed first
    marked = _orphan(tmp_path, "sleep 30", {"QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "2"})
    other_attempt = _orphan(tmp_path, "sleep 30", {"QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "1"})
    plain = _orphan(tmp_path, "sleep 30")
    try:
        wait_for(lambda: reaper.has_markers(own.pid, MARK), what="exec'd")
        assert reaper.sweep(MARK, {own.pid}) >= 1
        assert process_state(marked) is None  # killed and reaped
        assert is_running(other_attempt) and is_running(plain) and is_running(own.pid)
        assert reaper.sweep(MARK, {own.pid}) == 0
    finally:
        own.kill()
        own.wait()
        _kill(other_attempt, plain)


def test_sweep_goes_by_markers_not_by_a_group_id(tmp_path: Path, subreaper: None) -> None:
    """After the leader is reaped its group id may be reused: the sweep kills only marked processes."""
    in_group = _orphan(tmp_path, "sleep 30", group=True)
    try:
        pgid = runner.proc_stat(in_group)[0]  # type: ignore[index]
        assert pgid != os.getpgrp()
        assert reaper.sweep(MARK, ()) == 0
        assert is_running(in_group)
    finally:
        _kill(in_group)


def test_sweep_follows_what_a_killed_orphan_leaves_behind(tmp_path: Path, subreaper: None) -> None:
    """Killing an adopted process hands its children to the pool: the sweep looks again until none is left."""
    env = {"QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "2"}
    pids = tmp_path / "kids"
    top = _orphan(tmp_path, f'sh -c "sleep 30 & echo \\$! >> {pids}; sleep 30 & echo \\$! >> {pids}; wait"', env)
    kids = [
        int(p)
        for p in wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2 and pids.read_text()).split()
    ]
    try:
        assert reaper.sweep(MARK, ()) >= 3
        assert all(process_state(pid) is None for pid in [top, *kids])
    finally:
        _kill(top, *kids)


def test_state_reads_past_a_name_with_parentheses(tmp_path: Path) -> None:
    """A command cannot hide from the sweep behind a process name that looks like the end of the name field."""
    odd = tmp_path / "x) Z 1 2 3"
    shutil.copy("/bin/sleep", odd)
    child = subprocess.Popen([str(odd), "30"], process_group=0)
    try:
        wait_for(lambda: reaper._state(child.pid) == (b"S", child.pid), timeout=10, what="asleep, in its own group")
    finally:
        child.kill()
        child.wait()


def test_sweep_reaps_adopted_zombies_but_not_those_of_its_own_group(tmp_path: Path, subreaper: None) -> None:
    dead = _orphan(tmp_path, "true")
    mine = subprocess.Popen(["true"])  # in our own group: whoever started it waits for it
    try:
        wait_for(lambda: process_state(dead) == "Z" and process_state(mine.pid) == "Z", what="two zombies")
        assert reaper.sweep(MARK, ()) == 0
        assert process_state(dead) is None
        assert process_state(mine.pid) == "Z"
    finally:
        mine.wait()


def test_sweep_gives_up_on_a_process_it_cannot_kill(
    tmp_path: Path, subreaper: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stuck in the kernel does not hang the pool: the sweep stops after its patience."""
    stuck = _orphan(tmp_path, "sleep 30", {"QUEUECTL_RUN_ID": "r1", "QUEUECTL_ATTEMPT": "2"})
    monkeypatch.setattr(reaper.os, "kill", lambda pid, sig: None)  # the kill never takes, as in D state
    monkeypatch.setattr(reaper, "SWEEP_PATIENCE", 0.2)
    try:
        assert reaper.sweep(MARK, ()) > 1
        assert is_running(stuck)
    finally:
        monkeypatch.undo()
        _kill(stuck)


def test_reap_adopted_reaps_only_dead_adopted_children(tmp_path: Path, subreaper: None) -> None:
    dead = _orphan(tmp_path, "true")
    alive = _orphan(tmp_path, "sleep 30")
    known = subprocess.Popen(["sh", "-c", "exit 0"], process_group=0)
    mine = subprocess.Popen(["true"])
    try:
        wait_for(lambda: all(process_state(p) == "Z" for p in (dead, known.pid, mine.pid)), what="zombies")
        reaper.reap_adopted({known.pid})
        assert process_state(dead) is None
        assert process_state(known.pid) == "Z" and process_state(mine.pid) == "Z"
        assert is_running(alive)
    finally:
        known.wait()
        mine.wait()
        _kill(alive)


def test_reap_of_what_is_not_a_child_is_harmless() -> None:
    reaper._reap(1)
    reaper._reap(2**22 + 1)
