"""Settings: their names, value validation and the effective values."""

from __future__ import annotations

import pytest

from queuectl.config import SETTINGS, effective, normalize_key, parse_value
from queuectl.errors import UsageError

COUNTS = ["max-retries", "log-max-bytes"]
NUMBERS = ["backoff-base"]
DURATIONS = ["backoff-max", "job-timeout", "stop-grace", "kill-grace", "priority-aging"]
POSITIVE_DURATIONS = ["lease-seconds", "worker-poll-interval"]


def test_every_setting_has_a_kind_here() -> None:
    assert sorted(COUNTS + NUMBERS + DURATIONS + POSITIVE_DURATIONS) == sorted(SETTINGS)


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("max-retries", "max-retries"),
        ("max_retries", "max-retries"),
        ("MAX_RETRIES", "max-retries"),
        ("Backoff-Base", "backoff-base"),
        (" lease_seconds ", "lease-seconds"),
    ],
)
def test_normalize_key(typed: str, key: str) -> None:
    assert normalize_key(typed) == key


def test_unknown_key_names_it_and_lists_valid_keys() -> None:
    with pytest.raises(UsageError) as caught:
        normalize_key("max-retry")
    assert "'max-retry'" in caught.value.message
    for key in SETTINGS:
        assert key in caught.value.message


@pytest.mark.parametrize("key", COUNTS)
@pytest.mark.parametrize(("raw", "value"), [("0", 0), ("3", 3), (" 7 ", 7)])
def test_count_accepts_whole_numbers(key: str, raw: str, value: int) -> None:
    assert parse_value(key, raw) == value


@pytest.mark.parametrize("key", COUNTS)
@pytest.mark.parametrize("raw", ["-1", "1.5", "x", "", "5m"])
def test_count_rejects(key: str, raw: str) -> None:
    with pytest.raises(UsageError, match=rf"invalid value {raw!r} for {key}: expected a whole number"):
        parse_value(key, raw)


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("2", 2.0), ("1.5", 1.5)])
def test_number_accepts(raw: str, value: float) -> None:
    assert parse_value("backoff-base", raw) == value


@pytest.mark.parametrize("raw", ["-1", "-0.5", "x", "", "nan", "inf", "1e400"])
def test_number_rejects(raw: str) -> None:
    with pytest.raises(UsageError, match=rf"invalid value {raw!r} for backoff-base: expected a number"):
        parse_value("backoff-base", raw)


@pytest.mark.parametrize("key", DURATIONS)
@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("90", 90.0), ("5m", 300.0), ("1h30m", 5400.0)])
def test_duration_accepts_zero_and_units(key: str, raw: str, value: float) -> None:
    assert parse_value(key, raw) == value


@pytest.mark.parametrize("key", DURATIONS + POSITIVE_DURATIONS)
@pytest.mark.parametrize("raw", ["-1", "-5s", "x", "", "5x"])
def test_duration_rejects(key: str, raw: str) -> None:
    with pytest.raises(UsageError, match=rf"invalid value {raw!r} for {key}: expected"):
        parse_value(key, raw)


@pytest.mark.parametrize("key", POSITIVE_DURATIONS)
def test_positive_duration_accepts_above_zero(key: str) -> None:
    assert parse_value(key, "250ms") == 0.25


@pytest.mark.parametrize("key", POSITIVE_DURATIONS)
@pytest.mark.parametrize("raw", ["0", "0s", "0ms"])
def test_positive_duration_rejects_zero(key: str, raw: str) -> None:
    with pytest.raises(UsageError, match=rf"for {key}: expected a duration above zero"):
        parse_value(key, raw)


def test_effective_defaults_when_nothing_is_stored() -> None:
    assert effective({}) == {key: s.default for key, s in SETTINGS.items()}
    assert effective({})["max-retries"] == 3
    assert effective({})["lease-seconds"] == 30


def test_effective_stored_values_override_defaults() -> None:
    values = effective({"max-retries": "5", "backoff-max": "10m"})
    assert values["max-retries"] == 5
    assert values["backoff-max"] == 600
    assert values["backoff-base"] == SETTINGS["backoff-base"].default


def test_effective_ignores_unknown_keys_and_unreadable_values() -> None:
    values = effective({"no-such-key": "1", "backoff-base": "fast"})
    assert "no-such-key" not in values
    assert values["backoff-base"] == SETTINGS["backoff-base"].default


@pytest.mark.parametrize("typed", ["off", "OFF", " Off ", "0", "0s"])
def test_priority_aging_is_turned_off_with_off_or_zero(typed: str) -> None:
    assert parse_value("priority-aging", typed) == 0


def test_off_is_a_word_only_for_a_setting_that_says_so() -> None:
    with pytest.raises(UsageError) as caught:
        parse_value("job-timeout", "off")
    assert "or off" not in caught.value.message
    with pytest.raises(UsageError) as caught:
        parse_value("priority-aging", "never")
    assert caught.value.message.endswith("1h30m, or off")
