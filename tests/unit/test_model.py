"""The retry rule: next_state, settle and retry_delay, as tables."""

from __future__ import annotations

import pytest

from queuectl.errors import UsageError
from queuectl.model import Claim, Outcome, RunState, check_name, next_state, retry_delay, settle

OK, FAIL, TIME, LOST, INTR = Outcome.COMPLETED, Outcome.FAILED, Outcome.TIMEOUT, Outcome.LOST, Outcome.INTERRUPTED
PENDING, FAILED, DEAD, COMPLETED = RunState.PENDING, RunState.FAILED, RunState.DEAD, RunState.COMPLETED


@pytest.mark.parametrize(
    ("attempts", "max_retries", "outcome", "state"),
    [
        # max_retries=2 allows exactly 3 attempts
        (1, 2, FAIL, FAILED),
        (2, 2, FAIL, FAILED),
        (3, 2, FAIL, DEAD),
        (1, 2, TIME, FAILED),
        (3, 2, TIME, DEAD),
        (1, 0, FAIL, DEAD),
        (1, 0, TIME, DEAD),
        # success ends the run whatever the count
        (1, 2, OK, COMPLETED),
        (3, 2, OK, COMPLETED),
        (9, 0, OK, COMPLETED),
        # a lost attempt counts: back to pending, or dead when out of retries
        (1, 2, LOST, PENDING),
        (2, 2, LOST, PENDING),
        (3, 2, LOST, DEAD),
        (1, 0, LOST, DEAD),
        # an interrupted attempt does not count
        (1, 0, INTR, PENDING),
        (3, 2, INTR, PENDING),
        # a run cancelled while it ran ends cancelled, whatever its retries (no failure)
        (1, 2, Outcome.CANCELLED, RunState.CANCELLED),
        (3, 2, Outcome.CANCELLED, RunState.CANCELLED),
    ],
)
def test_next_state(attempts: int, max_retries: int, outcome: Outcome, state: RunState) -> None:
    assert next_state(attempts, max_retries, outcome) is state


def test_max_retries_2_allows_exactly_3_attempts() -> None:
    states = [next_state(n, 2, FAIL) for n in range(1, 4)]
    assert states == [FAILED, FAILED, DEAD]


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "delay"),
    [
        (1, 2, 3600, 2),
        (2, 2, 3600, 4),
        (3, 2, 3600, 8),
        (1, 3, 3600, 3),
        (2, 1.5, 3600, 2.25),
        (0, 2, 3600, 1),
        (5, 0, 3600, 0),
        (10, 2, 60, 60),
        (6, 2, 64, 64),
        (7, 2, 64, 64),
    ],
)
def test_retry_delay(attempt: int, base: float, cap: float, delay: float) -> None:
    assert retry_delay(attempt, base, cap) == pytest.approx(delay)


@pytest.mark.parametrize(("attempt", "base"), [(10_000, 2), (10**6, 1.5), (2000, 10), (5, 10**400)])
def test_retry_delay_huge_exponent_is_capped_not_raised(attempt: int, base: float) -> None:
    assert retry_delay(attempt, base, 3600) == 3600


def claim(attempts: int, max_retries: int = 2, base: float = 2, cap: float = 3600) -> Claim:
    return Claim("r", attempts, attempts, max_retries, base, cap, "true", None, None, {})


NOW = 1000.0


@pytest.mark.parametrize(
    ("c", "outcome", "state", "run_at"),
    [
        (claim(1), FAIL, FAILED, NOW + 2),
        (claim(2), FAIL, FAILED, NOW + 4),
        (claim(2, base=3), TIME, FAILED, NOW + 9),
        (claim(2, base=10, cap=50), FAIL, FAILED, NOW + 50),
        (claim(500, max_retries=1000, base=10, cap=50), FAIL, FAILED, NOW + 50),
        (claim(3), FAIL, DEAD, NOW),
        (claim(1), OK, COMPLETED, NOW),
        (claim(1), LOST, PENDING, NOW),
        (claim(3), LOST, DEAD, NOW),
        (claim(1), INTR, PENDING, NOW),
    ],
)
def test_settle(c: Claim, outcome: Outcome, state: RunState, run_at: float) -> None:
    assert settle(c, outcome, NOW) == (state, run_at)


# -- names of runs and jobs (they become file names) ------------------------------


@pytest.mark.parametrize("name", ["a", "job1", "A.b_c-d", "9lives", "x" * 128])
def test_a_safe_name_is_kept(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "_x", "a/b", "a b", "x" * 129, "café", "..", 5])
def test_an_unsafe_name_is_refused_with_the_rule_in_words(name: object) -> None:
    with pytest.raises(UsageError) as refused:
        check_name(name, "job name")  # type: ignore[arg-type]
    assert str(refused.value) == (
        f"invalid job name {name!r}: expected 1-128 characters of letters, digits, "
        "'.', '_' or '-', starting with a letter or digit"
    )
