"""The pool's start line: when it is written late (behind an earlier attempt's result the store has
not recorded yet), it names the time the attempt really started, not only the time it was written."""

from __future__ import annotations

import time

from queuectl.durations import format_duration
from queuectl.model import AttemptResult, Claim, Outcome, RunState
from queuectl.pool.lines import PoolLines

T0 = 1_780_000_000.0


def _claim(run_id: str, scheduled_for: float | None = None, attempt: int = 1) -> Claim:
    return Claim(run_id, attempt, attempt, 3, 2, 60, "true", None, None, {}, scheduled_for=scheduled_for)


def test_a_start_written_behind_a_result_names_when_it_really_started() -> None:
    said: list[str] = []
    lines = PoolLines(said.append, verbose=True)
    lines.start(_claim("first"), T0)
    assert said == ["start     first (attempt 1): true"]  # written at once: its prefix is its start
    done = AttemptResult(_claim("first"), "pool", None, T0, T0 + 1, 0, Outcome.COMPLETED, None, "")
    lines.hold(done)
    lines.start(_claim("second", scheduled_for=T0), T0 + 2)  # waits behind first's result
    assert len(said) == 1
    lines.report(done, RunState.COMPLETED)
    started = time.strftime("%H:%M:%S", time.localtime(T0 + 2))
    assert said[1].startswith("completed first ")
    lag = format_duration(2.0)
    assert said[2].startswith(f"start     second (attempt 1, started {started}, {lag} after it was due at ")


def test_a_retry_says_no_lag_from_when_its_run_was_due() -> None:
    said: list[str] = []
    PoolLines(said.append, verbose=True).start(_claim("again", scheduled_for=T0, attempt=2), T0 + 300)
    assert said == ["start     again (attempt 2): true"]
