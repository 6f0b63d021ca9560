"""Every command says times and durations alike (docs/runs.md, "Times and durations"), under TZ=Europe/Berlin.

`list`, `show RUN` and the pool's log give a run's times in the machine's zone, labelled (CET or CEST),
and its duration in one style; `plan`, `schedule`, `list --jobs` and `show NAME` give a cron job's
fires in its own zone with UTC beside; the JSON says `next_run_at` for the next run everywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Queue

BERLIN = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T"  # a time in the machine's zone, labelled
DURATION = r"(?:\d+ms|\d+(?:\.\d)?s)"  # how long `echo` takes: 850ms or 3.2s
FIRE_NY = r"\d{4}-\d\d-\d\d \d\d:\d\d:00 E[SD]T \(\d{4}-\d\d-\d\d \d\d:\d\d:00 UTC\)"
FIRE_BERLIN = r"\d{4}-\d\d-\d\d \d\d:\d\d:00 CES?T \(\d{4}-\d\d-\d\d \d\d:\d\d:00 UTC\)"


@pytest.fixture
def berlin(q: Queue) -> Queue:
    q.env["TZ"] = "Europe/Berlin"
    return q


def field(text: str, name: str) -> str:
    """The value of a `show` field line."""
    match = re.search(rf"^{name} +(.+?) *$", text, re.MULTILINE)
    assert match, f"no {name!r} in:\n{text}"
    return match.group(1)


def test_a_runs_times_and_duration_read_alike_in_list_show_and_the_pool_log(berlin: Queue) -> None:
    berlin("enqueue", "--id", "tz-run", "--command", "echo hi")
    log = berlin.burst().stderr
    took = re.search(rf"completed tz-run in ({DURATION}): now completed", log)
    assert took, log

    row = next(line for line in berlin("list").stdout.splitlines() if line.startswith("tz-run "))
    created = re.search(BERLIN, row)
    assert created, row

    show = berlin("show", "tz-run").stdout
    assert field(show, "created") == created.group(0)
    for name in ("started", "finished"):
        assert re.fullmatch(BERLIN, field(show, name)), show
    attempt = next(line for line in show.splitlines() if line.startswith("1 "))
    assert attempt.split()[1:3] == ["completed", "0"]
    assert re.search(rf"{BERLIN}  +{re.escape(took.group(1))} ", attempt), (attempt, took.group(1))
    assert "+01:00" not in show + row and "+02:00" not in show + row  # no bare offsets: one label


def test_a_cron_jobs_fires_are_in_its_zone_with_utc_beside_in_every_command(berlin: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    (jobs / "ny.toml").write_text('command = "true"\ncron = "0 9 * * *"\ntimezone = "America/New_York"\n')
    (jobs / "here.toml").write_text('command = "true"\ncron = "*/5 * * * *"\n')  # the machine's zone
    berlin("apply", str(jobs))

    plan = berlin("plan", "ny", "-n", "3").stdout.splitlines()
    fires = [line.strip() for line in plan[1:]]
    assert len(fires) == 3 and all(re.fullmatch(FIRE_NY, f) for f in fires), plan
    assert " 09:00:00 E" in fires[0]
    here = berlin("plan", "here", "-n", "1").stdout.splitlines()[1].strip()
    assert re.fullmatch(FIRE_BERLIN, here), here

    schedule = berlin("schedule").stdout
    assert any(line.startswith(f"{fires[0]} ") and " ny " in line for line in schedule.splitlines()), schedule
    assert any(line.startswith(f"{here} ") and " here " in line for line in schedule.splitlines()), schedule
    listing = berlin("list", "--jobs").stdout
    ny_row = next(line for line in listing.splitlines() if line.startswith("ny "))
    assert fires[0] in ny_row, listing
    assert field(berlin("show", "ny").stdout, "next run") == fires[0]


def test_the_next_run_is_next_run_at_in_every_json_shape(berlin: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    (jobs / "ny.toml").write_text('command = "true"\ncron = "0 9 * * *"\ntimezone = "America/New_York"\n')
    berlin("apply", str(jobs))
    shown = berlin.json("show", "ny")["next_run_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT1[34]:00:00\.000Z", shown), shown  # 09:00 in New York, in UTC
    [listed] = berlin.json("list", "--jobs")
    [row] = berlin.json("schedule")
    assert listed["next_run_at"] == row["next_run_at"] == shown
    assert row["next_fire"] == shown  # its first name, kept: docs/json.md promised it
    plan = berlin.json("plan", "ny", "-n", "1")
    assert plan["fires"][0]["utc"] == shown
