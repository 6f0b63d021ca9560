"""A cron job's timeline against a real SQLite store, driven by the real scheduler and an injected clock.

The pool's part (claim, start, finish) is played through the store's own verbs at chosen moments, so
that each fire's lateness is known to the second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import jinja2
import pytest

from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import JobSpec
from queuectl.services import jobs
from queuectl.services.timeline import MAX_FIRES, ON_TIME, Timeline, timeline
from queuectl.store.factory import open_store
from queuectl.store.sqlite import Q
from tests.simulated import World

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # a Monday noon
MIN = 60.0


def utc(*fields: int) -> float:
    return datetime(*fields, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, T0 - 30)
    yield w
    w.store.close()


def kinds(world: World, name: str, now: float, hours: float = 24) -> list[tuple[str, str]]:
    """(HH:MM UTC, kind) of each fire of the timeline at `now`."""
    tl = timeline(world.store, name, now, hours)
    assert tl is not None
    return [(datetime.fromtimestamp(f.at, UTC).strftime("%H:%M"), f.kind) for f in tl.fires]


def test_on_time_late_skipped_missed_failed_running_and_upcoming(world: World) -> None:
    world.job("tick", "*/10 * * * *", concurrency="forbid", catchup="latest", retries=0)
    world.look(T0 + 1)  # the scheduler's first look: fires count from here (12:00 itself is before)
    world.run(T0 + 10 * MIN)  # 12:10, started a second after
    world.run(T0 + 20 * MIN, late=MIN)  # 12:20, a minute late
    world.look(T0 + 30 * MIN + 0.2)
    long = world.start(T0 + 30 * MIN + 1)  # 12:30 runs past 12:40: forbid skips that fire
    world.look(T0 + 40 * MIN + 0.2)
    world.end(long, T0 + 45 * MIN)
    # No scheduler from 12:45 to 13:25: 12:50, 13:00 and 13:10 are missed, the latest (13:20) caught up.
    world.look(T0 + 85 * MIN)
    world.end(world.start(T0 + 85 * MIN + 1), T0 + 86 * MIN)
    world.run(T0 + 90 * MIN, ok=False)  # 13:30 fails (no retries: dead)
    world.look(T0 + 100 * MIN + 0.2)
    world.start(T0 + 100 * MIN + 2)  # 13:40 is running
    now = T0 + 105 * MIN
    assert kinds(world, "tick", now) == [
        ("12:10", "on_time"),
        ("12:20", "late"),
        ("12:30", "on_time"),
        ("12:40", "skipped"),
        ("12:50", "missed"),
        ("13:00", "missed"),
        ("13:10", "missed"),
        ("13:20", "late"),
        ("13:30", "failed"),
        ("13:40", "running"),
        *[(f"{h}:{m}0", "upcoming") for h, m in [(13, 5), (14, 0), (14, 1), (14, 2), (14, 3), (14, 4)]],
    ]
    tl = timeline(world.store, "tick", now)
    assert tl is not None and not tl.capped and not tl.suspended
    by_time = {f.at: f for f in tl.fires}
    assert by_time[T0 + 20 * MIN].lateness == pytest.approx(MIN)
    assert by_time[T0 + 80 * MIN].lateness == pytest.approx(5 * MIN + 1)  # caught up at 13:25
    assert by_time[T0 + 10 * MIN].lateness == pytest.approx(1.0)
    assert by_time[T0 + 50 * MIN].run_id is None and by_time[T0 + 50 * MIN].lateness is None
    skipped = world.store.get_run(by_time[T0 + 40 * MIN].run_id or "")
    assert skipped is not None and "previous run is not finished" in (skipped.error or "")
    assert tl.counts() == {
        "on_time": 2,
        "late": 2,
        "skipped": 1,
        "missed": 3,
        "failed": 1,
        "running": 1,
        "waiting": 0,
        "upcoming": 6,
    }


def test_lateness_counts_from_the_first_attempt_and_the_job_s_jitter(world: World) -> None:
    world.job("spread", "0 * * * *", jitter=1800.0, retries=2)
    world.look(T0 + 1)
    world.look(T0 + 3600.2)
    run = world.store.list_runs()[0]
    assert run.run_at > T0 + 3600  # the jitter delays the run: that is meant, not late
    first = world.start(run.run_at + 2)
    world.end(first, run.run_at + 3, ok=False)  # fails; its retry starts much later
    retry = world.start(run.run_at + 600)
    world.end(retry, run.run_at + 601)
    (fire,) = [f for f in timeline(world.store, "spread", run.run_at + 700).fires if f.kind != "upcoming"]  # type: ignore[union-attr]
    assert (fire.kind, fire.lateness) == ("on_time", pytest.approx(2.0, abs=0.01))
    assert fire.started_at == pytest.approx(run.run_at + 2)


def test_a_fire_before_the_job_existed_is_not_missed_and_one_just_due_is_waiting(world: World) -> None:
    world.job("tick", "*/10 * * * *")
    world.look(T0 + 1)
    assert kinds(world, "tick", T0 + 5 * MIN, hours=24)[0] == ("12:10", "upcoming")  # nothing before 12:00
    assert ("12:10", "waiting") in kinds(world, "tick", T0 + 10 * MIN + 3)  # the scheduler may not have looked yet
    assert ("12:10", "missed") in kinds(world, "tick", T0 + 10 * MIN + ON_TIME + 1)
    world.look(T0 + 10 * MIN + 0.5)
    assert ("12:10", "waiting") in kinds(world, "tick", T0 + 10 * MIN + 30)  # its run waits for a pool


def test_a_suspended_job_s_fires_are_left_out_and_resuming_starts_afresh(world: World) -> None:
    world.job("tick", "*/10 * * * *")
    world.look(T0 + 1)
    world.run(T0 + 10 * MIN)
    jobs.suspend(world.store, "tick")
    world.look(T0 + 35 * MIN)
    tl = timeline(world.store, "tick", T0 + 35 * MIN)
    assert tl is not None and tl.suspended
    assert [(f.at, f.kind) for f in tl.fires] == [(T0 + 10 * MIN, "on_time")]  # 12:20 and 12:30: not missed
    world.clock.now = T0 + 36 * MIN
    jobs.resume(world.store, "tick")
    world.look(T0 + 36 * MIN + 1)
    world.run(T0 + 40 * MIN)
    assert kinds(world, "tick", T0 + 41 * MIN)[:2] == [("12:10", "on_time"), ("12:40", "on_time")]


def test_a_triggered_run_is_its_own_mark_and_a_disabled_job_expects_nothing(world: World) -> None:
    world.job("tick", "*/10 * * * *")
    world.look(T0 + 1)
    world.clock.now = T0 + 3 * MIN
    triggered = jobs.trigger(world.store, "tick")
    world.end(world.start(T0 + 3 * MIN + 1), T0 + 4 * MIN)
    assert kinds(world, "tick", T0 + 5 * MIN)[0] == ("12:03", "on_time")
    tl = timeline(world.store, "tick", T0 + 5 * MIN)
    assert tl is not None and tl.fires[0].run_id == triggered.id
    world.clock.now = T0 + 6 * MIN
    world.job("tick", "*/10 * * * *", enabled=False)
    world.look(T0 + 6 * MIN)
    off = timeline(world.store, "tick", T0 + 45 * MIN)
    assert off is not None and off.suspended
    assert [f.kind for f in off.fires] == ["on_time"]  # 12:10 to 12:40: not expected; no upcoming


@pytest.mark.parametrize(
    ("cron", "now", "fires"),
    [
        # Spring forward in Berlin (02:00 CET -> 03:00 CEST): wall 02:00 does not exist; a fixed-time job
        # fires at the change (01:00Z), together with its 03:00 CEST, once.
        ("0 1-3 * * *", utc(2026, 3, 29, 12), [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1)]),
        # Fall back (03:00 CEST -> 02:00 CET): a job with a step in its minute fires in both passes of 02:xx.
        (
            "*/30 2 * * *",
            utc(2026, 10, 25, 12),
            [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 30)],
        ),
    ],
)
def test_across_a_dst_change_no_fire_is_invented_or_dropped(
    tmp_path: Path, cron: str, now: float, fires: list[float]
) -> None:
    world = World(tmp_path, now - 24 * 3600)
    try:
        world.job("dst", cron, zone="Europe/Berlin")
        world.look(now - 24 * 3600)
        while (due := world.store.next_fire()) is not None and due <= now:
            world.run(due)
        tl = timeline(world.store, "dst", now)
        assert tl is not None
        shown = [(f.at, f.kind) for f in tl.fires if f.kind != "upcoming"]
        assert shown == [(at, "on_time") for at in fires]
    finally:
        world.store.close()


def test_an_every_minute_job_s_day_is_1440_fires_and_a_longer_window_is_capped(world: World) -> None:
    world.clock.now = T0 - 3 * 86400
    world.job("minute", "* * * * *")
    world.look(T0 - 3 * 86400)  # then no scheduler for three days
    day = timeline(world.store, "minute", T0)
    assert day is not None and not day.capped
    assert (day.counts()["missed"], day.counts()["waiting"]) == (1439, 1)  # the fire of `now` may yet be seen
    three_days = timeline(world.store, "minute", T0, hours=72)
    assert three_days is not None and three_days.capped
    past = [f for f in three_days.fires if f.kind != "upcoming"]
    assert len(past) == MAX_FIRES and past[0].at == T0 - (MAX_FIRES - 1) * MIN  # the latest kept


def test_a_job_without_cron_has_no_timeline_and_bad_asks_are_one_line(world: World) -> None:
    world.store.put_job(JobSpec(name="once", command="true"), "/jobs", "/jobs/once.toml", "h")
    assert timeline(world.store, "once", T0) is None
    with pytest.raises(NotFoundError, match="no job named 'nope'"):
        timeline(world.store, "nope", T0)
    with pytest.raises(UsageError, match="invalid hours"):
        timeline(world.store, "once", T0, hours=0)
    world.job("far", "0 * * * *", zone="Mars/Olympus_Mons")  # applied where the zone was known
    with pytest.raises(QueueError, match="time zone 'Mars/Olympus_Mons' is unknown here"):
        timeline(world.store, "far", T0)


def test_the_runs_are_read_on_the_fire_indexes(world: World) -> None:
    """One read, two index ranges: SQLite's plan for fire_runs searches runs_fire and runs_fire_cancelled."""
    params = {"job": "tick", "start": 0.0, "end": 1.0, "limit": 10}
    with closing(sqlite3.connect(world.store.location)) as db:
        plan = db.execute(f"EXPLAIN QUERY PLAN {Q['fire_runs']}", params).fetchall()
    text = " | ".join(row[-1] for row in plan)
    assert "SEARCH runs USING INDEX runs_fire (job=? AND scheduled_for>? AND scheduled_for<?)" in text
    assert "SEARCH runs USING INDEX runs_fire_cancelled (job=? AND scheduled_for>? AND scheduled_for<?)" in text
    assert "SCAN runs" not in text


# -- the drawing: queuectl/web/templates/_timeline.html, rendered by Jinja2 itself (autoescape on) -----------
TEMPLATES = Path(__file__).parents[2] / "queuectl" / "web" / "templates"


def drawn(tl: Timeline) -> ElementTree.Element:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    page = env.from_string('{% from "_timeline.html" import timeline %}<root>{{ timeline(tl) }}</root>')
    return ElementTree.fromstring(page.render(tl=tl))  # well-formed: an XML parser reads it


def test_the_strip_has_a_mark_per_fire_with_its_title_link_and_class_and_a_legend(world: World) -> None:
    world.job("tick", "*/10 * * * *", concurrency="forbid")
    world.look(T0 + 1)
    world.run(T0 + 10 * MIN, late=2 * MIN)  # 12:10 late
    world.look(T0 + 20 * MIN + 0.2)
    long = world.start(T0 + 20 * MIN + 1)
    world.look(T0 + 30 * MIN + 0.2)  # 12:30 skipped
    world.end(long, T0 + 31 * MIN)
    tl = timeline(world.store, "tick", T0 + 45 * MIN)  # 12:40 missed, then 6 upcoming
    assert tl is not None
    root = drawn(tl)
    marks = root.findall(".//svg[@class='timeline-strip']//rect[@class]")
    fires = [m for m in marks if "fire" in m.get("class", "").split()]
    assert [m.get("class") for m in fires] == [f"fire fire-{f.kind}" for f in tl.fires]
    assert [m.get("class") for m in fires][:4] == [
        "fire fire-late",
        "fire fire-on_time",
        "fire fire-skipped",
        "fire fire-missed",
    ]
    xs = [float(m.get("x", "")) for m in fires]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # in time order, one place each
    titles = [m.findtext("title") for m in fires]
    assert titles[0] == f"2026-06-01 12:10:00 UTC: late, started 2m after it was due (run {tl.fires[0].run_id})"
    assert titles[3] == "2026-06-01 12:40:00 UTC: missed"
    links = [a.get("href") for a in root.iter("a")]
    assert links == [f"/runs/{f.run_id}" for f in tl.fires if f.run_id]  # missed and upcoming fires link nowhere
    legend = {li.get("class", "").split()[0]: li.findtext("span") for li in root.iter("li")}
    assert legend == {f"legend-{kind}": str(count) for kind, count in tl.counts().items()}
    assert legend["legend-upcoming"] == "6" and legend["legend-failed"] == "0"


def test_the_drawing_escapes_what_it_is_given(world: World) -> None:
    world.job("tick", "*/10 * * * *")
    world.look(T0 + 1)
    world.run(T0 + 10 * MIN)
    tl = timeline(world.store, "tick", T0 + 15 * MIN)
    assert tl is not None
    hostile = tl._replace(
        job='<script>alert("x")</script>', fires=[tl.fires[0]._replace(run_id='"><script>x</script>')]
    )
    root = drawn(hostile)  # would not parse if anything came through unescaped
    assert root.find(".//script") is None
    assert root.find("figure").get("data-job") == '<script>alert("x")</script>'  # type: ignore[union-attr]
    assert next(root.iter("a")).get("href") == "/runs/%22%3E%3Cscript%3Ex%3C/script%3E"


def test_the_runs_are_read_on_the_fire_indexes_on_postgresql(pg_url: str) -> None:
    """The same read on PostgreSQL: both index ranges, and each retried run's first attempt by attempts' key.

    (runs.id is COLLATE "C" and attempts.run_id is not: compared as they are, attempts' key cannot be used,
    and each run would scan every attempt.) Sequential scans are turned off so that the plan shows what the
    indexes can do, whatever an empty table's statistics make cheaper.
    """
    import psycopg  # only for the PostgreSQL case

    from queuectl.store.postgres import Q as PG_QUERIES  # psycopg: only for the PostgreSQL case

    open_store(pg_url).close()  # the schema
    params = {"job": "tick", "start": 0.0, "end": 1.0, "limit": 10}
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in db.execute(f"EXPLAIN {PG_QUERIES['fire_runs']}", params))
    assert "Index Scan using runs_fire on runs" in plan and "Index Scan using runs_fire_cancelled on runs" in plan
    assert plan.count("Index Cond: ((run_id = ") == 2, plan  # not a filter over every attempt
