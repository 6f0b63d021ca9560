"""Nothing acknowledged is lost, and nothing is half-written, when a writer dies by kill -9.

`enqueue --file` and `apply` write in one transaction each: killed at any moment (random
points spread over a whole run, several rounds), the store holds all of their work or
none of it, opens cleanly (`PRAGMA integrity_check`), and answers `queuectl status`.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import QUEUECTL, Queue

ROUNDS = 10


def _start(q: Queue, args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*QUEUECTL, *args], env=q.env, cwd=q.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )


def _first_write(q: Queue, proc: subprocess.Popen[bytes]) -> float | None:
    """Poll until the process writes its first page into the store's WAL; when (None if it ended first)."""
    wal = Path(f"{q.db}-wal")
    while proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 0:
            return time.monotonic()
        time.sleep(0.002)
    return None


def _timed(q: Queue, args: list[str]) -> tuple[float, float]:
    """An uninterrupted run of `queuectl ARGS`, here, now: (its length, how long it ran after its first write)."""
    started = time.monotonic()
    proc = _start(q, args)
    wrote = _first_write(q, proc)
    assert proc.wait(timeout=120) == 0
    ended = time.monotonic()
    return ended - started, ended - (wrote or ended)


def _kill_after(proc: subprocess.Popen[bytes], delay: float) -> int:
    """kill -9 the process after `delay` seconds (unless it ended first); its exit code."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.kill()
    return proc.wait(timeout=60)


def _store_is_sound(q: Queue) -> dict[str, object]:
    db = sqlite3.connect(q.db)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()
    return q.json("status")  # type: ignore[no-any-return]


def _rounds(q: Queue, args: list[str], prepare: Callable[[], None], check: Callable[[int], int]) -> list[int]:
    """Kill `queuectl ARGS` at random points, each round on a fresh store; what `check` returned.

    One round in three picks a random moment over the whole run; the others poll the store's WAL
    and pick one after its first page is written, where a write not made in one transaction shows.
    `check(exit code)` asserts all-or-nothing and returns how many of the items are in the store.
    Rounds go on (within a bound) until some ended with nothing and some with everything, so that
    the kills did land on both sides of the commit, whatever the machine's speed today.
    """
    prepare()
    span, tail = _timed(q, args)
    span *= 1.5  # a little past its end: a slower run is still killed in every phase
    rng = random.Random()
    seen: list[int] = []
    for n in range(3 * ROUNDS):
        if n >= ROUNDS and 0 in seen and any(seen):
            break
        Path(q.db).unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{q.db}{suffix}").unlink(missing_ok=True)
        prepare()
        proc = _start(q, args)
        if n % 3:
            _first_write(q, proc)
            code = _kill_after(proc, rng.uniform(0, tail))
        else:
            code = _kill_after(proc, span * ((n % ROUNDS) + rng.random()) / ROUNDS)  # spread over the run
        seen.append(check(code))
    assert 0 in seen and any(seen), f"the kills never fell on both sides of the commit: {seen}"
    return seen


def test_enqueue_file_killed_at_random_points_adds_all_or_nothing(q: Queue, tmp_path: Path) -> None:
    total = 20000
    lines = tmp_path / "runs.jsonl"
    lines.write_text("".join(json.dumps({"id": f"r{i:05d}", "command": "true"}) + "\n" for i in range(total)))
    args = ["enqueue", "--file", str(lines)]

    def check(code: int) -> int:
        status = _store_is_sound(q)
        pending = status["counts"]["pending"]  # type: ignore[index]
        assert pending in (0, total), f"{pending} of {total} runs after kill -9 (exit {code})"
        if code == 0:
            assert pending == total  # acknowledged: every run is there
        return int(pending)

    _rounds(q, args, lambda: q("db", "migrate"), check)


def test_apply_killed_at_random_points_applies_all_or_nothing(q: Queue, tmp_path: Path) -> None:
    total = 1500
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    for i in range(total):
        (jobs / f"job{i:04d}.toml").write_text(f'command = "echo {i}"\npriority = {1 + i % 10}\n')
    args = ["apply", str(jobs)]

    def check(code: int) -> int:
        status = _store_is_sound(q)
        declared = status["jobs"]["total"]  # type: ignore[index]
        runs = sum(status["counts"].values())  # type: ignore[attr-defined]
        assert (declared, runs) in ((0, 0), (total, total)), f"{declared} jobs, {runs} runs after kill -9"
        if code == 0:
            assert declared == total
        return int(declared)

    _rounds(q, args, lambda: q("db", "migrate"), check)
