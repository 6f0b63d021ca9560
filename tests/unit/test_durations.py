"""Durations and times as users type them: parse_duration, parse_time, format_duration."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from queuectl.durations import format_duration, parse_duration, parse_time
from queuectl.errors import UsageError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (5, 5.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("0.5", 0.5),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("2H", 7200.0),
        (" 1h 30m ", 5400.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value",
    [
        *("", " ", "abc", "-5", "-5s", "5x", "m", "5m3", "1h-30m", "nan", "inf", "-inf"),
        *(True, False, None, [], math.nan, math.inf, -math.inf, -1, -0.5),
    ],
)
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(UsageError):
        parse_duration(value)


def test_parse_duration_error_names_what_and_value() -> None:
    with pytest.raises(UsageError, match=r"invalid timeout '5x'"):
        parse_duration("5x", "timeout")


def test_parse_duration_rejects_int_too_large_for_a_float() -> None:
    with pytest.raises(UsageError):
        parse_duration(10**400)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T02:00:00Z", datetime(2026, 12, 1, 2, tzinfo=UTC)),
        ("2026-12-01T02:00:00z", datetime(2026, 12, 1, 2, tzinfo=UTC)),
        ("2026-12-01T02:00:00+00:00", datetime(2026, 12, 1, 2, tzinfo=UTC)),
        ("2026-12-01T02:00:00+02:00", datetime(2026, 12, 1, 0, tzinfo=UTC)),
        ("2026-12-01T02:00:00-05:30", datetime(2026, 12, 1, 7, 30, tzinfo=UTC)),
        ("2026-12-01T02:00:00.250Z", datetime(2026, 12, 1, 2, 0, 0, 250000, tzinfo=UTC)),
        (" 2026-12-01T02:00:00Z ", datetime(2026, 12, 1, 2, tzinfo=UTC)),
    ],
)
def test_parse_time_with_zone(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected.timestamp()


@pytest.fixture
def local_zone_utc_plus_3() -> Iterator[None]:
    """Make local time UTC+3 (a POSIX TZ string: no tz database needed)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "QQQ-3"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.usefixtures("local_zone_utc_plus_3")
def test_parse_time_without_offset_is_local_time() -> None:
    assert parse_time("2026-12-01T02:00:00") == datetime(2026, 11, 30, 23, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T00:00:00Z", "12/01/2026", "2026-12-01T25:00:00", "Z"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=r"invalid run_at"):
        parse_time(text, "run_at")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0ms"),
        (0.85, "850ms"),
        (1, "1s"),
        (12.34, "12.3s"),
        (60, "1m"),
        (302, "5m02s"),
        (3599, "59m59s"),
        (3600, "1h"),
        (7500, "2h05m"),
        (100 * 3600, "4d04h"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
