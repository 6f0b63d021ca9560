"""The one time policy (docs/runs.md, "Times and durations"), table by table.

Durations: 850ms, 3.2s, 5m02s, 1h30m. Run times: the machine's zone, labelled. Cron fires: the
job's zone, labelled, with UTC beside. The machine's zone is set through TZ in a child process,
as a user sets it, since the C library reads it once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from queuectl.durations import fire_time, format_duration, parse_duration


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-1.0, "0ms"),  # a clock step back reads as nothing, never as a negative
        (0.0, "0ms"),
        (0.0004, "0ms"),
        (0.007, "7ms"),
        (0.85, "850ms"),
        (0.9994, "999ms"),
        (0.9996, "1s"),
        (1.0, "1s"),
        (3.2, "3.2s"),
        (3.04, "3s"),
        (30.0, "30s"),
        (59.94, "59.9s"),
        (59.96, "1m"),
        (60.0, "1m"),
        (90.0, "1m30s"),
        (300.0, "5m"),
        (302.0, "5m02s"),
        (3599.4, "59m59s"),
        (3599.6, "1h"),
        (3600.0, "1h"),
        (3900.0, "1h05m"),
        (5400.0, "1h30m"),
        (86399.0, "1d"),
        (90000.0, "1d01h"),
        (2 * 86400.0, "2d"),
        (100 * 3600.0, "4d04h"),
    ],
)
def test_one_duration_style(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.25, 1.0, 3.2, 90.0, 302.0, 5400.0, 90000.0])
def test_a_printed_duration_reads_back_as_a_duration_option(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=0.02)


@pytest.mark.parametrize(
    ("moment", "zone", "text"),
    [
        ("2026-11-29T21:09:00", "Europe/Berlin", "2026-11-29 22:09:00 CET (2026-11-29 21:09:00 UTC)"),
        ("2026-06-01T12:00:00", "Europe/Berlin", "2026-06-01 14:00:00 CEST (2026-06-01 12:00:00 UTC)"),
        ("2026-11-29T21:15:00", "America/New_York", "2026-11-29 16:15:00 EST (2026-11-29 21:15:00 UTC)"),
        ("2026-11-30T03:30:00", "Asia/Tokyo", "2026-11-30 12:30:00 JST (2026-11-30 03:30:00 UTC)"),
        ("2026-11-29T21:09:00", "UTC", "2026-11-29 21:09:00 UTC"),  # UTC once, not twice
        ("2026-11-29T21:09:00", "Europe/London", "2026-11-29 21:09:00 GMT"),  # at UTC's offset: once
        ("2026-11-29T21:09:00", "America/Sao_Paulo", "2026-11-29 18:09:00 -03 (2026-11-29 21:09:00 UTC)"),
        # the repeated hour of 2026-10-25 in Berlin: the label tells the two passes apart
        ("2026-10-25T00:30:00", "Europe/Berlin", "2026-10-25 02:30:00 CEST (2026-10-25 00:30:00 UTC)"),
        ("2026-10-25T01:30:00", "Europe/Berlin", "2026-10-25 02:30:00 CET (2026-10-25 01:30:00 UTC)"),
    ],
)
def test_a_fire_is_in_its_jobs_zone_with_utc_beside(moment: str, zone: str, text: str) -> None:
    assert fire_time(utc(moment), ZoneInfo(zone)) == text


def test_no_fire_reads_as_a_dash() -> None:
    assert fire_time(None, ZoneInfo("Europe/Berlin")) == "-"


RUN_TIMES = [
    ("Europe/Berlin", "2026-11-29T21:08:48", "2026-11-29 22:08:48 CET"),
    ("Europe/Berlin", "2026-06-01T12:00:00.4", "2026-06-01 14:00:00 CEST"),
    ("Europe/Berlin", "2026-06-01T11:59:59.6", "2026-06-01 13:59:59 CEST"),  # to the second, as a clock shows
    ("UTC", "2026-11-29T21:08:48", "2026-11-29 21:08:48 UTC"),
    ("America/New_York", "2026-11-29T21:08:48", "2026-11-29 16:08:48 EST"),
    ("Asia/Kolkata", "2026-11-29T21:08:48", "2026-11-30 02:38:48 IST"),
]

CHILD = """
import json, sys
from queuectl.durations import fire_time, format_time
from queuectl.schedule import zone_of
moments = json.loads(sys.argv[1])
print(json.dumps([[format_time(m), fire_time(m, zone_of(None))] for m in moments]))
"""


@pytest.mark.parametrize("tz", sorted({tz for tz, _, _ in RUN_TIMES}))
def test_run_times_are_in_the_machines_zone_labelled(tz: str) -> None:
    cases = [(utc(moment), text) for zone, moment, text in RUN_TIMES if zone == tz]
    env = dict(os.environ, TZ=tz)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([m for m, _ in cases])], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    said = json.loads(out.stdout)
    assert [run for run, _ in said] == [text for _, text in cases]
    # a cron job without `timezone` fires in the machine's zone: the same label, and UTC beside it unless at UTC
    for (_, fire), (_, text) in zip(said, cases, strict=True):
        assert fire.startswith(text)
        assert (fire == text) if tz == "UTC" else fire.endswith(" UTC)")
