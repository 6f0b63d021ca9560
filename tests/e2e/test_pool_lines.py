"""The foreground pool's lines: in the order things happened, and quiet when asked."""

from __future__ import annotations

import itertools

from tests.conftest import Queue


def _pool_lines(q: Queue, *args: str, dead: bool = False) -> list[str]:
    done = q.burst(*args, dead=dead)
    return (done.stdout + done.stderr).splitlines()


def _index(lines: list[str], *words: str) -> int:
    for i, line in enumerate(lines):
        if all(word in line for word in words):
            return i
    raise AssertionError(f"no line with {words} in:\n" + "\n".join(lines))


def test_a_run_ends_in_the_log_before_the_next_one_starts(q: Queue) -> None:
    names = [f"r{i}" for i in range(6)]
    for name in names:
        q("enqueue", "--id", name, "--command", "true")
    lines = _pool_lines(q, "--count", "1")
    for earlier, later in itertools.pairwise(names):
        assert _index(lines, "completed", f" {earlier} ") < _index(lines, "start", f" {later} ")


def test_quiet_prints_no_timeout_lines(q: Queue) -> None:
    q("enqueue", "--id", "slow", "--timeout", "1", "--retries", "0", "--command", "sleep 30")
    lines = _pool_lines(q, "--quiet", dead=True)
    assert q.state("slow") == "dead"
    *pool, summary = lines  # its own start and stop only, then the burst's summary
    assert [line.split()[1:3] for line in pool] == [["pool", lines[0].split()[2]]] * 2
    assert summary.endswith(" burst: 0 runs completed, 1 dead (slow)")


def test_a_run_that_cannot_start_says_so_before_it_fails(q: Queue) -> None:
    q("enqueue", "--id", "lost", "--cwd", str(q.tmp / "nope"), "--retries", "0", "--command", "true")
    lines = _pool_lines(q, dead=True)
    said = _index(lines, "no start", "lost", "cannot enter")
    assert said < _index(lines, "failed", "lost")
    assert not any("start " in line and " lost " in line and "no start" not in line for line in lines)
