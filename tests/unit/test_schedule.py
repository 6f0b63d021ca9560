"""Cron schedules as pure functions of time: next fire, DST rule, catch-up window, jitter, words."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from queuectl import schedule
from queuectl.model import Job, JobSpec, JobStatus
from queuectl.schedule import (
    FOLD_BOTH_NOTE,
    FOLD_ONCE_NOTE,
    GAP_NOTE,
    _local_zone,
    describe,
    dst_note,
    fires_between,
    is_fixed_time,
    jitter_offset,
    next_fire,
    next_run,
    zone_of,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = {"UTC": ZoneInfo("UTC"), "Europe/Berlin": BERLIN, "America/New_York": NEW_YORK}


def utc(text: str) -> float:
    """Epoch seconds of an ISO time written in UTC ("2026-03-29T01:00:00Z")."""
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == timedelta(0), text
    return moment.timestamp()


def iso(instant: float) -> str:
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local(instant: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(instant, zone).strftime("%H:%M %Z")


def successive(cron: str, zone: ZoneInfo, after: str, count: int) -> list[str]:
    fires, moment = [], utc(after)
    for _ in range(count):
        found = next_fire(cron, zone, moment)
        assert found is not None
        fires.append(iso(found))
        moment = found
    return fires


def every(start: str, stop: str, minutes: int) -> list[str]:
    """UTC instants from start to stop inclusive, `minutes` apart."""
    first, last = utc(start), utc(stop)
    return [iso(first + n * minutes * 60) for n in range(int((last - first) // (minutes * 60)) + 1)]


# -- next fire for each form ----------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        ("30 2 * * *", "UTC", "2026-01-01T00:00:00Z", "2026-01-01T02:30:00Z"),
        ("30 2 * * *", "UTC", "2026-01-01T02:30:00Z", "2026-01-02T02:30:00Z"),  # strictly after
        ("30 2 * * *", "UTC", "2026-01-01T02:29:59.500000Z", "2026-01-01T02:30:00Z"),
        ("@yearly", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("@annually", "UTC", "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("@monthly", "UTC", "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("@weekly", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),  # Thursday -> Sunday
        ("@daily", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
        ("@midnight", "UTC", "2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z"),
        ("@hourly", "UTC", "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z"),
        ("@HOURLY", "UTC", "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z"),
        ("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z"),
        ("* * * * *", "UTC", "2026-01-01T00:07:30Z", "2026-01-01T00:08:00Z"),
        ("0 8-18/4 * * *", "UTC", "2026-01-01T09:00:00Z", "2026-01-01T12:00:00Z"),
        ("0,20,40 * * * *", "UTC", "2026-01-01T00:41:00Z", "2026-01-01T01:00:00Z"),
        ("0 9-17 * * *", "UTC", "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"),
        ("30 9 * * mon-fri", "UTC", "2026-01-02T10:00:00Z", "2026-01-05T09:30:00Z"),  # Friday -> Monday
        ("30 9 * * MON-FRI", "UTC", "2026-01-02T10:00:00Z", "2026-01-05T09:30:00Z"),
        ("0 0 * * sun", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),
        ("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),  # 7 is Sunday too
        ("0 0 1 jan,jul *", "UTC", "2026-01-01T00:00:00Z", "2026-07-01T00:00:00Z"),
        ("0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),  # day OR weekday, as cron
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),  # 2100 is no leap year
        ("0 9 * * *", "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-01-01T08:00:00Z"),  # CET
        ("0 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z", "2026-07-01T07:00:00Z"),  # CEST
        ("0 9 * * *", "America/New_York", "2026-01-01T00:00:00Z", "2026-01-01T14:00:00Z"),  # EST
        ("0 9 * * *", "America/New_York", "2026-07-01T00:00:00Z", "2026-07-01T13:00:00Z"),  # EDT
        ("@daily", "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-01-01T23:00:00Z"),
    ],
)
def test_next_fire(cron: str, zone: str, after: str, expected: str) -> None:
    found = next_fire(cron, ZONES[zone], utc(after))
    assert found is not None
    assert iso(found) == expected


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"])
def test_a_date_that_never_comes_has_no_next_fire(cron: str) -> None:
    assert next_fire(cron, BERLIN, utc("2026-01-01T00:00:00Z")) is None
    assert fires_between(cron, BERLIN, utc("2020-01-01T00:00:00Z"), utc("2026-01-01T00:00:00Z"), 10) == []


@pytest.mark.parametrize(
    ("cron", "fixed"),
    [
        ("30 2 * * *", True),
        ("0 1,13 * * 1-5", True),
        ("15 2-4 * * *", True),
        ("@daily", True),
        ("@weekly", True),
        ("@monthly", True),
        ("@yearly", True),
        ("@hourly", False),
        ("*/5 * * * *", False),
        ("0 */2 * * *", False),
        ("0-30/10 2 * * *", False),
        ("30 * * * *", False),
        ("* 2 * * *", False),
    ],
)
def test_fixed_time_jobs_are_those_without_star_or_step_in_minute_and_hour(cron: str, fixed: bool) -> None:
    assert is_fixed_time(cron) is fixed


# -- daylight-saving changes ----------------------------------------------------
# Europe/Berlin: 2026-03-29 01:00Z 02:00 CET -> 03:00 CEST; 2026-10-25 01:00Z 03:00 CEST -> 02:00 CET.
# America/New_York: 2026-03-08 07:00Z 02:00 EST -> 03:00 EDT; 2026-11-01 06:00Z 02:00 EDT -> 01:00 EST.


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        # fixed time in the gap: once, at the change
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-27T12:00:00Z",
            ["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        (
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T00:00:00Z",
            ["2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        # several fixed times in one gap collapse into one fire
        (
            "0,30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"],
        ),
        (
            "0,30 2,3 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            ["2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"],
        ),
        # fixed time in the repeated hour: once, in the first pass
        ("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        (
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T00:00:00Z",
            ["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        ("30 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", ["2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"]),
        ("@daily", "Europe/Berlin", "2026-10-24T12:00:00Z", ["2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"]),
        # @hourly follows real time: no 02:00 on the spring day, two on the autumn day
        (
            "@hourly",
            "Europe/Berlin",
            "2026-03-28T23:30:00Z",
            ["2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"],
        ),
        (
            "@hourly",
            "Europe/Berlin",
            "2026-10-24T23:30:00Z",
            ["2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"],
        ),
        (
            "@hourly",
            "America/New_York",
            "2026-03-08T05:30:00Z",
            ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"],
        ),
        (
            "@hourly",
            "America/New_York",
            "2026-11-01T04:30:00Z",
            ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"],
        ),
        # a step in the hour field is not fixed time: 02:30 does not exist on the spring day
        ("30 */2 * * *", "Europe/Berlin", "2026-03-28T23:00:00Z", ["2026-03-28T23:30:00Z", "2026-03-29T02:30:00Z"]),
        ("0 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", ["2026-10-25T00:00:00Z", "2026-10-26T01:00:00Z"]),
        ("0 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", ["2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]),
    ],
)
def test_dst_changes(cron: str, zone: str, after: str, expected: list[str]) -> None:
    assert successive(cron, ZONES[zone], after, len(expected)) == expected


@pytest.mark.parametrize(
    ("zone", "start", "stop"),
    [
        ("Europe/Berlin", "2026-03-29T00:00:00Z", "2026-03-29T02:00:00Z"),
        ("America/New_York", "2026-03-08T06:00:00Z", "2026-03-08T08:00:00Z"),
    ],
)
def test_every_5_minutes_keeps_real_time_through_spring_forward(zone: str, start: str, stop: str) -> None:
    expected = every(start, stop, 5)[1:]  # 24 fires, 5 real minutes apart; no wall time 02:xx
    assert len(expected) == 24
    assert successive("*/5 * * * *", ZONES[zone], start, 24) == expected
    assert [iso(t) for t in fires_between("*/5 * * * *", ZONES[zone], utc(start), utc(stop), 100)] == expected
    walls = [local(utc(t), ZONES[zone]) for t in expected]
    assert not any(wall.startswith("02:") for wall in walls)


def test_every_5_minutes_fires_in_both_passes_of_berlins_repeated_hour() -> None:
    # Wall 01:00 CEST to 03:00 CET is three real hours: 24 wall times, 12 of them twice.
    start, stop = "2026-10-24T23:00:00Z", "2026-10-25T02:00:00Z"
    fires = successive("*/5 * * * *", BERLIN, start, 36)
    assert fires == every(start, stop, 5)[1:]
    assert fires[:3] == ["2026-10-24T23:05:00Z", "2026-10-24T23:10:00Z", "2026-10-24T23:15:00Z"]
    assert fires[-1] == "2026-10-25T02:00:00Z"
    walls = [local(utc(t), BERLIN) for t in fires]
    assert walls[10:15] == ["01:55 CEST", "02:00 CEST", "02:05 CEST", "02:10 CEST", "02:15 CEST"]
    assert walls[22:26] == ["02:55 CEST", "02:00 CET", "02:05 CET", "02:10 CET"]
    assert walls[-1] == "03:00 CET"
    wall_counts = Counter(wall.split()[0] for wall in walls)
    assert [wall for wall, n in wall_counts.items() if n == 2] == [f"02:{m:02d}" for m in range(0, 60, 5)]
    between = fires_between("*/5 * * * *", BERLIN, utc(start), utc(stop), 1000)
    assert [iso(t) for t in between] == fires


def test_every_5_minutes_fires_in_both_passes_of_new_yorks_repeated_hour() -> None:
    start, stop = "2026-11-01T04:00:00Z", "2026-11-01T07:00:00Z"  # 00:00 EDT to 02:00 EST
    fires = successive("*/5 * * * *", NEW_YORK, start, 36)
    assert fires == every(start, stop, 5)[1:]
    walls = [local(utc(t), NEW_YORK) for t in fires]
    assert walls[22:26] == ["01:55 EDT", "01:00 EST", "01:05 EST", "01:10 EST"]
    assert [iso(t) for t in fires_between("*/5 * * * *", NEW_YORK, utc(start), utc(stop), 1000)] == fires


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("cron", ["*/5 * * * *", "*/7 1-3 * * *", "0 * * * *", "15,45 * * * *", "* 1 * * *"])
@pytest.mark.parametrize("day", ["spring", "autumn"])
def test_jobs_that_are_not_fixed_time_fire_at_each_real_minute_whose_wall_time_matches(
    zone: str, cron: str, day: str
) -> None:
    """The oracle: every minute of real time, read on the wall clock, matched by croniter."""
    changes = {"Europe/Berlin": ("2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z")}
    changes["America/New_York"] = ("2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z")
    start = utc(changes[zone][0 if day == "spring" else 1]) - 150 * 60
    stop = start + 300 * 60
    minutes = (start + 60 * n for n in range(1, 301))
    expected = [t for t in minutes if croniter.match(cron, datetime.fromtimestamp(t, ZONES[zone]).replace(tzinfo=None))]
    assert fires_between(cron, ZONES[zone], start, stop, 1000) == expected
    found, moment = [], start
    while (fire := next_fire(cron, ZONES[zone], moment)) is not None and fire <= stop:
        found.append(fire)
        moment = fire
    assert found == expected


def fires_in(cron: str, zone: ZoneInfo, start: float, end: float) -> Iterator[float]:
    moment = start
    while (fire := next_fire(cron, zone, moment)) is not None and fire <= end:
        assert fire > moment
        yield fire
        moment = fire


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize(
    ("cron", "count"),
    [
        ("30 2 * * *", 365),
        ("30 1 * * *", 365),
        ("0,30 2 * * *", 729),  # 365 * 2, less the spring day's collapse into one fire
        ("0 3 * * 1-5", 261),
        ("0 * * * *", 8760),  # real hours: the spring day has 23, the autumn day 25
        ("*/20 1-3 * * *", 3285),  # 9 a day; spring loses one hour of them, autumn repeats one
    ],
)
def test_fires_over_a_year_strictly_increase_and_agree_with_fires_between(
    zone: str, cron: str, count: int | None
) -> None:
    tz = ZONES[zone]
    year_start = datetime(2026, 1, 1, tzinfo=tz).timestamp()
    year_end = datetime(2027, 1, 1, tzinfo=tz).timestamp()
    fires = list(fires_in(cron, tz, year_start - 1, year_end - 1))  # local 2026, first midnight included
    assert all(a < b for a, b in itertools.pairwise(fires))
    if count is not None:
        assert len(fires) == count
    if cron in ("30 2 * * *", "30 1 * * *"):  # daily: one fire on each local day
        assert len({datetime.fromtimestamp(t, tz).date() for t in fires}) == 365
    assert fires_between(cron, tz, year_start - 1, year_end - 1, 100_000) == fires
    sample = fires[:: max(1, len(fires) // 50)]
    assert all(next_fire(cron, tz, t - 0.5) == t for t in sample)  # no fire is stepped over


# -- fires_between: the last `limit` fires --------------------------------------


@pytest.mark.parametrize(
    ("cron", "start", "end", "limit", "expected"),
    [
        ("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T10:00:00Z", 3, ["08:00", "09:00", "10:00"]),
        ("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T03:00:00Z", 100, ["01:00", "02:00", "03:00"]),
        ("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T02:59:59Z", 100, ["01:00", "02:00"]),
        ("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T10:00:00Z", 1, ["10:00"]),
        ("0 * * * *", "2026-01-01T00:00:00Z", "2026-01-01T10:00:00Z", 0, []),
        ("0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z", 5, []),
        ("0 * * * *", "2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", 5, []),
        ("0 * * * *", "2026-01-01T00:10:00Z", "2026-01-01T00:50:00Z", 5, []),
    ],
)
def test_fires_between_keeps_the_last_ones(cron: str, start: str, end: str, limit: int, expected: list[str]) -> None:
    found = fires_between(cron, ZONES["UTC"], utc(start), utc(end), limit)
    assert [iso(t)[11:16] for t in found] == expected


def test_fires_between_collapses_a_gap_like_next_fire() -> None:
    found = fires_between("0,30 2 * * *", BERLIN, utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10)
    assert [iso(t) for t in found] == ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"]
    found = fires_between("0,30 2 * * *", BERLIN, utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 2)
    assert [iso(t) for t in found] == ["2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"]


def test_fires_between_over_three_years_of_minutes_walks_only_the_last_ones() -> None:
    # 1.6 million minutes: only the 100 asked for are visited, so this returns at once.
    end = utc("2026-06-01T12:00:30Z")
    found = fires_between("* * * * *", BERLIN, utc("2023-06-01T00:00:00Z"), end, 100)
    assert found == [utc("2026-06-01T12:00:00Z") - 60 * n for n in range(99, -1, -1)]


def test_fires_between_over_a_repeated_hour_keeps_the_latest_fires() -> None:
    # Berlin 2026-10-25: the last 3 fires up to 01:50Z are in the second pass (02:40-02:50 CET); walking
    # back meets the first pass of the same wall times (00:40-00:50Z), which must not crowd them out.
    found = fires_between("*/5 * * * *", BERLIN, utc("2026-10-24T00:00:00Z"), utc("2026-10-25T01:50:00Z"), 3)
    assert [iso(t) for t in found] == ["2026-10-25T01:40:00Z", "2026-10-25T01:45:00Z", "2026-10-25T01:50:00Z"]
    # Ending in the second pass: the first pass read later wall times (02:15-02:55 CEST) yet came before.
    found = fires_between("*/5 * * * *", BERLIN, utc("2026-10-24T23:00:00Z"), utc("2026-10-25T01:10:00Z"), 1000)
    assert [iso(t) for t in found] == every("2026-10-24T23:05:00Z", "2026-10-25T01:10:00Z", 5)
    # A fixed-time job fired in the first pass only.
    found = fires_between("30 2 * * *", BERLIN, utc("2026-10-24T00:00:00Z"), utc("2026-10-25T01:50:00Z"), 3)
    assert [iso(t) for t in found] == ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z"]


# -- jitter ----------------------------------------------------------------------


def test_jitter_is_pinned_to_the_name() -> None:
    # From sha256 of the name (first 53 bits): the same on every host and Python version.
    # A change of this value would move every job's fires: it must be deliberate.
    assert jitter_offset("nightly-backup", 300.0) == 66.43613256497478
    assert jitter_offset("nightly-backup", 300.0) == jitter_offset("nightly-backup", 300.0)
    assert jitter_offset("nightly-backup", 300.0) != jitter_offset("nightly-backup2", 300.0)


def test_jitter_is_the_same_in_another_process() -> None:
    names = ["nightly-backup", "report", "ünïcode-job", "a"]
    code = f"from queuectl.schedule import jitter_offset\nprint([repr(jitter_offset(n, 600.0)) for n in {names!r}])"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == str([repr(jitter_offset(n, 600.0)) for n in names])


@pytest.mark.parametrize("jitter", [None, 0, 0.0])
def test_no_jitter_is_zero(jitter: float | None) -> None:
    assert jitter_offset("job", jitter) == 0.0


@pytest.mark.parametrize("bound", [1e-9, 1.0, 300.0, 86400.0])
def test_jitter_is_within_its_bound_and_roughly_uniform(bound: float) -> None:
    values = [jitter_offset(f"job-{n}", bound) for n in range(1000)]
    assert all(0.0 <= v < bound for v in values)
    deciles = Counter(min(int(v / bound * 10), 9) for v in values)
    assert all(60 <= deciles[d] <= 140 for d in range(10)), deciles  # about 100 each
    assert 0.45 * bound < sum(values) / len(values) < 0.55 * bound


# -- words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "text"),
    [
        ("0 2 * * *", "Europe/Berlin", "At 02:00, every day (Europe/Berlin)"),
        ("@daily", "UTC", "At 00:00, every day (UTC)"),
        ("0 1,13 * * *", None, "At 01:00 and 13:00, every day"),
        ("*/5 * * * *", None, "Every 5 minutes"),
        ("* * * * *", None, "Every minute"),
        ("@hourly", None, "Every hour"),
        ("0 */2 * * *", "Europe/Berlin", "Every 2 hours (Europe/Berlin)"),
        ("30 9 * * 1-5", "UTC", "At 09:30, Monday through Friday (UTC)"),
        ("30 9 * * mon-fri", "UTC", "At 09:30, Monday through Friday (UTC)"),
        ("@weekly", None, "At 00:00, only on Sunday"),
        ("@monthly", None, "At 00:00, on day 1 of the month"),
        ("@yearly", None, "At 00:00, on day 1 of the month, only in January"),
        ("15 14 1 * *", "America/New_York", "At 14:15, on day 1 of the month (America/New_York)"),
        ("0 0 * * 5#3", None, "At 00:00, on the third Friday of the month"),
        ("0 0 * * 8", "UTC", "cron 0 0 * * 8 (UTC)"),  # beyond what it words: the expression itself
        ("not cron", None, "cron not cron"),
    ],
)
def test_describe(cron: str, zone: str | None, text: str) -> None:
    assert describe(cron, zone) == text


# -- notes for plan --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "fire", "note"),
    [
        ("30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", GAP_NOTE),
        ("0,30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", GAP_NOTE),
        ("0 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", GAP_NOTE),  # the gap's very first minute
        ("30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", GAP_NOTE),
        ("0 3 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", None),  # 03:00 exists
        ("*/5 * * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", None),  # 03:00 CEST: its 02:xx just never came
        ("30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", FOLD_ONCE_NOTE),
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", FOLD_ONCE_NOTE),
        ("*/5 * * * *", "Europe/Berlin", "2026-10-25T00:05:00Z", FOLD_BOTH_NOTE),
        ("*/5 * * * *", "Europe/Berlin", "2026-10-25T01:05:00Z", FOLD_BOTH_NOTE),
        ("@hourly", "America/New_York", "2026-11-01T06:00:00Z", FOLD_BOTH_NOTE),
        ("*/5 * * * *", "Europe/Berlin", "2026-10-25T02:00:00Z", None),
        ("30 2 * * *", "Europe/Berlin", "2026-03-30T00:30:00Z", None),
        ("30 2 * * *", "UTC", "2026-03-29T02:30:00Z", None),
    ],
)
def test_dst_note(cron: str, zone: str, fire: str, note: str | None) -> None:
    assert next_fire(cron, ZONES[zone], utc(fire) - 1) == utc(fire)  # each case is a real fire
    assert dst_note(cron, ZONES[zone], utc(fire)) == note


# -- zones -----------------------------------------------------------------------


@pytest.fixture
def restore_tz() -> Iterator[None]:
    old = os.environ.get("TZ")
    _local_zone.cache_clear()  # read the zone afresh, not from an earlier test's cache
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_zone_of_a_name() -> None:
    assert zone_of("Europe/Berlin") == BERLIN


@pytest.mark.usefixtures("restore_tz")
@pytest.mark.parametrize("tz", [None, "Europe/Berlin", ":America/New_York", "/usr/share/zoneinfo/Asia/Tokyo", ""])
def test_zone_of_none_is_the_zone_the_c_library_uses(tz: str | None) -> None:
    if tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = tz
    time.tzset()
    zone = zone_of(None)
    for instant in (utc("2026-01-15T12:00:00Z"), utc("2026-07-15T12:00:00Z")):
        offset = datetime.fromtimestamp(instant, zone).utcoffset()
        assert offset == timedelta(seconds=time.localtime(instant).tm_gmtoff), (tz, zone)


@pytest.mark.usefixtures("restore_tz")
def test_a_zone_file_outside_zoneinfo_is_read_by_its_name(tmp_path: Path) -> None:
    copy = tmp_path / "MyZone"
    copy.write_bytes(Path("/usr/share/zoneinfo/America/New_York").read_bytes())
    os.environ["TZ"] = str(copy)
    zone = zone_of(None)
    assert str(zone) == "MyZone"
    assert datetime.fromtimestamp(utc("2026-01-15T12:00:00Z"), zone).utcoffset() == timedelta(hours=-5)
    assert datetime.fromtimestamp(utc("2026-07-15T12:00:00Z"), zone).utcoffset() == timedelta(hours=-4)


@pytest.mark.usefixtures("restore_tz")
def test_a_link_into_zoneinfo_names_the_zone_it_points_to(tmp_path: Path) -> None:
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Asia/Tokyo")
    os.environ["TZ"] = str(link)
    assert zone_of(None) == ZoneInfo("Asia/Tokyo")  # the IANA name, as /etc/localtime usually is


@pytest.mark.usefixtures("restore_tz")
def test_a_zone_file_is_named_from_the_last_zoneinfo_in_its_path(tmp_path: Path) -> None:
    tree = tmp_path / "zoneinfo" / "share" / "zoneinfo" / "America"  # a tree inside a directory of the same name
    tree.mkdir(parents=True)
    (tree / "New_York").write_bytes(Path("/usr/share/zoneinfo/America/New_York").read_bytes())
    os.environ["TZ"] = str(tree / "New_York")
    assert zone_of(None) == ZoneInfo("America/New_York")


@pytest.mark.usefixtures("restore_tz")
def test_an_unreadable_zone_falls_back_to_the_machine_zone(tmp_path: Path) -> None:
    os.environ["TZ"] = str(tmp_path / "missing")
    _local_zone.cache_clear()
    assert zone_of(None) == _local_zone(None)


# -- words are English whatever the machine's language ------------------------------


def test_describe_is_english_on_a_machine_set_to_another_language(monkeypatch: pytest.MonkeyPatch) -> None:
    import locale

    monkeypatch.setattr(locale, "getlocale", lambda *args: ("de_DE", "UTF-8"))
    assert describe("0 2 * * *", "UTC") == "At 02:00, every day (UTC)"
    assert describe("*/5 * * * *", None) == "Every 5 minutes"


# -- the cost of a walk grows with what is asked, not with the span -------------------


def _counting_walls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the wall times the schedule functions step through."""
    steps = [0]
    real = schedule._walls

    def walls(expr: str, start: float, *, backward: bool) -> Iterator[float]:
        for wall in real(expr, start, backward=backward):
            steps[0] += 1
            yield wall

    monkeypatch.setattr(schedule, "_walls", walls)
    return steps


def test_fires_between_over_56_years_of_minutes_steps_only_through_the_last_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = _counting_walls(monkeypatch)
    end = utc("2026-06-01T12:00:00Z")
    assert fires_between("* * * * *", BERLIN, 0.0, end, 3) == [end - 120, end - 60, end]
    assert steps[0] <= 3 + 2


def test_dst_note_looks_only_around_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _counting_walls(monkeypatch)
    assert dst_note("30 2 * * *", BERLIN, utc("2026-03-29T01:00:00Z")) == GAP_NOTE
    assert steps[0] <= 2


def test_fires_between_leaves_out_a_first_pass_fire_at_its_start() -> None:
    # Berlin 2026-10-25: 02:30 is read at 00:30Z (CEST) and again at 01:30Z (CET). A catch-up counted
    # from the 00:30Z fire must not give it again, though the wall time's later pass is in the window.
    found = fires_between("*/30 * * * *", BERLIN, utc("2026-10-25T00:30:00Z"), utc("2026-10-25T01:35:00Z"), 100)
    assert [iso(t) for t in found] == ["2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z"]


# -- the instant of a change of offset, to the second ---------------------------------


@pytest.mark.parametrize("before", [1, 2, 7, 60, 3599, 5000])
@pytest.mark.parametrize("after", [0, 1, 2, 13, 3599])
def test_the_change_instant_is_found_to_the_second(before: int, after: int) -> None:
    change = utc("2026-03-29T01:00:00Z")  # Berlin: CET becomes CEST
    assert schedule._change_instant(BERLIN, change - before, change + after) == change
    assert schedule._change_instant(BERLIN, change - before - 0.5, change + after + 0.25) == change


# -- a job's next run ----------------------------------------------------------------


def _status(
    cron: str | None, *, zone: str = "UTC", waiting: float | None = None, enabled: bool = True, suspended: bool = False
) -> JobStatus:
    spec = JobSpec(name="j", command="true", cron=cron, timezone=zone, enabled=enabled)
    job = Job(
        name="j",
        spec_json=spec.canonical,
        spec_hash=spec.spec_hash,
        run_hash=spec.run_hash,
        source="/d",
        file="/d/j.toml",
        file_hash="",
        git_commit=None,
        git_dirty=False,
        status_dir=None,
        error=None,
        created_at=0.0,
        updated_at=0.0,
        version_at=0.0,
        suspended=suspended,
    )
    return JobStatus(job, None, waiting, {})


NOW = utc("2026-01-10T10:20:00Z")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (_status(None), None),
        (_status(None, waiting=NOW + 5), NOW + 5),
        (_status("0 * * * *"), utc("2026-01-10T11:00:00Z")),
        (_status("0 2 * * *", zone="Europe/Berlin"), utc("2026-01-11T01:00:00Z")),
        (_status("0 * * * *", waiting=NOW + 60), NOW + 60),  # a run waiting sooner than the next fire
        (_status("0 * * * *", waiting=NOW + 7200), utc("2026-01-10T11:00:00Z")),
        (_status("0 * * * *", waiting=NOW - 30), NOW - 30),  # overdue: it is next
        (_status("0 * * * *", enabled=False), None),
        (_status("0 * * * *", suspended=True), None),
        (_status("0 * * * *", suspended=True, waiting=NOW + 5), NOW + 5),
        (_status("0 0 30 2 *"), None),  # never fires
    ],
)
def test_next_run(status: JobStatus, expected: float | None) -> None:
    assert next_run(status, NOW) == expected
