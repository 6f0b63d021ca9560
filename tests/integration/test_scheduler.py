"""The scheduler against a real SQLite store, with an injected clock: no sleeping for minutes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from queuectl.apply import apply
from queuectl.config import Defaults
from queuectl.model import AttemptResult, NewRun, Outcome, RunState
from queuectl.scheduler import Scheduler
from queuectl.services import schedules
from queuectl.store.contract import Store
from queuectl.store.sqlite import SQLiteStore
from tests.clock import Clock

DEFAULTS = Defaults(max_retries=0, backoff_base=2.0, backoff_max=60.0, timeout=None)
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # a Monday noon, on a 5-minute boundary


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.jobs = tmp / "jobs.d"
        self.jobs.mkdir()
        self.clock = Clock(T0)
        self.store: Store = SQLiteStore(str(tmp / "q.db"), clock=self.clock)
        self.scheduler = Scheduler(self.store, lambda: DEFAULTS)

    def job(self, name: str, text: str) -> None:
        path = self.jobs / f"{name}.toml"
        path.write_text(text)
        os.chmod(path, 0o644)
        plan = apply(self.store, [str(self.jobs)], defaults=DEFAULTS)
        assert not plan.invalid, plan.changes

    def at(self, seconds: float) -> float:
        """Move the clock to T0 + seconds and let the scheduler look."""
        self.clock.now = T0 + seconds
        self.scheduler.run_once(self.clock.now)
        return self.clock.now

    def runs(self, name: str) -> list[tuple[float | None, RunState]]:
        return sorted((r.scheduled_for, r.state) for r in self.store.list_runs() if r.job == name)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.store.close()


def test_a_new_cron_job_fires_from_now_on(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    world.at(1)  # first look: nothing past is fired
    assert world.runs("tick") == []
    assert world.store.next_fire() == T0 + 300
    world.at(300.2)
    assert world.runs("tick") == [(T0 + 300, RunState.PENDING)]
    world.at(300.4)  # looking again at the same time fires nothing more
    assert len(world.runs("tick")) == 1
    run = next(r for r in world.store.list_runs() if r.job == "tick")
    assert run.run_at == T0 + 300.2  # no jitter: runs as soon as the fire is seen


@pytest.mark.parametrize(
    ("catchup", "window", "expected"),
    [
        ("none", None, []),  # every fire of the outage was missed
        ("latest", None, [T0 + 3 * 3600]),  # the most recent missed fire, once
        ("all", None, [T0 + 300 * n for n in range(1, 37)]),  # each of the 36 missed fires
        ("all", "1h", [T0 + 300 * n for n in range(25, 37)]),  # only the last hour's
        ("latest", "1m", []),  # the latest is older than the window
    ],
)
def test_catch_up_after_a_three_hour_downtime(
    world: World, catchup: str, window: str | None, expected: list[float]
) -> None:
    extra = f'catchup_window = "{window}"\n' if window else ""
    world.job("tick", f'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\ncatchup = "{catchup}"\n{extra}')
    world.at(1)
    world.at(3 * 3600 + 150)  # the scheduler was down for three hours
    assert [fire for fire, _ in world.runs("tick")] == expected
    assert world.store.next_fire() == T0 + 3 * 3600 + 300


def test_catchup_none_still_runs_a_fire_that_is_merely_late(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\ncatchup = "none"\n')
    world.at(1)
    world.at(300 + 20)
    assert world.runs("tick") == [(T0 + 300, RunState.PENDING)]


def claim(world: World, name: str) -> None:
    (claimed,) = world.store.claim_runs("pool-1", "host", 1, 30)
    assert claimed.job == name


def test_forbid_skips_a_fire_while_the_previous_run_is_unfinished(world: World) -> None:
    world.job("slow", 'command = "sleep 600"\ncron = "*/5 * * * *"\ntimezone = "UTC"\nconcurrency = "forbid"\n')
    world.at(1)
    world.at(300)
    claim(world, "slow")
    world.at(600)
    assert world.runs("slow") == [(T0 + 300, RunState.RUNNING), (T0 + 600, RunState.CANCELLED)]
    skipped = next(r for r in world.store.list_runs() if r.scheduled_for == T0 + 600)
    assert skipped.error is not None and skipped.error.startswith("skipped: the previous run is not finished")


def test_allow_lets_fires_overlap(world: World) -> None:
    world.job("slow", 'command = "sleep 600"\ncron = "*/5 * * * *"\ntimezone = "UTC"\nconcurrency = "allow"\n')
    world.at(1)
    world.at(300)
    claim(world, "slow")
    world.at(600)
    assert world.runs("slow") == [(T0 + 300, RunState.RUNNING), (T0 + 600, RunState.PENDING)]


def test_replace_cancels_the_running_run_and_starts_the_new_fire(world: World) -> None:
    world.job("slow", 'command = "sleep 600"\ncron = "*/5 * * * *"\ntimezone = "UTC"\nconcurrency = "replace"\n')
    world.at(1)
    world.at(300)
    (claimed,) = world.store.claim_runs("pool-1", "host", 1, 30)
    world.at(600)
    assert world.store.cancel_requests("pool-1") == [(claimed.run_id, claimed.attempt)]
    # The pool stops the attempt and reports it; the run ends cancelled, not retried.
    ended = AttemptResult(claimed, "pool-1", 123, T0 + 300, T0 + 601, 143, Outcome.FAILED, "cancelled", "")
    assert world.store.finish_attempts("host", [ended]) == [RunState.CANCELLED]
    assert world.runs("slow") == [(T0 + 300, RunState.CANCELLED), (T0 + 600, RunState.PENDING)]


def test_no_double_fire_across_a_restart_or_with_two_schedulers(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "* * * * *"\ntimezone = "UTC"\n')
    world.at(1)
    other = SQLiteStore(str(world.tmp / "q.db"), clock=world.clock)
    try:
        second = Scheduler(other, lambda: DEFAULTS)
        for minute in range(1, 6):
            now = world.at(minute * 60 + 0.5)
            second.run_once(now)  # a second scheduler on the same store, at the same moment
            Scheduler(world.store, lambda: DEFAULTS).run_once(now)  # and a restarted one
    finally:
        other.close()
    assert [fire for fire, _ in world.runs("tick")] == [T0 + 60 * m for m in range(1, 6)]


def test_jitter_delays_each_fire_by_a_stable_amount(world: World) -> None:
    world.job("herd", 'command = "true"\ncron = "@hourly"\ntimezone = "UTC"\njitter = "5m"\n')
    world.at(1)
    world.at(3600)
    world.at(7200)
    runs = sorted((r.scheduled_for or 0, r.run_at) for r in world.store.list_runs() if r.job == "herd")
    delays = [run_at - fire for fire, run_at in runs]
    assert len(delays) == 2 and 0 <= delays[0] < 300 and abs(delays[0] - delays[1]) < 1e-6


def test_changing_the_schedule_recomputes_the_next_fire(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "0 3 * * *"\ntimezone = "UTC"\n')
    world.at(1)
    assert world.store.next_fire() == T0 + 15 * 3600  # 03:00 tomorrow
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    world.at(2)
    assert world.store.next_fire() == T0 + 300
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\nenabled = false\n')
    world.at(300)
    assert world.runs("tick") == []


def test_suspend_and_resume(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    world.at(1)
    assert world.store.set_suspended("tick", True)
    world.at(3600)
    assert world.runs("tick") == []
    assert world.store.set_suspended("tick", False)
    world.at(3600 + 10)  # resumed: the fires missed while suspended are skipped
    assert world.runs("tick") == []
    world.at(3900)
    assert world.runs("tick") == [(T0 + 3900, RunState.PENDING)]
    assert not world.store.set_suspended("ghost", True)


def test_deleting_a_job_cancels_its_future_runs(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\njitter = "4m"\n')
    world.at(1)
    world.at(300)
    (world.jobs / "tick.toml").unlink()
    apply(world.store, [str(world.jobs)], defaults=DEFAULTS)
    assert [state for _, state in world.runs("tick")] == [RunState.CANCELLED]
    world.at(600)
    assert len(world.runs("tick")) == 1


def test_lookahead_makes_runs_due_at_their_fire(world: World) -> None:
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    ahead = Scheduler(world.store, lambda: DEFAULTS, lookahead=2.0)
    world.clock.now = T0 + 1
    ahead.run_once(world.clock.now)
    world.clock.now = T0 + 298.5  # 1.5 s before the fire
    ahead.run_once(world.clock.now)
    (run,) = [r for r in world.store.list_runs() if r.job == "tick"]
    assert (run.scheduled_for, run.run_at, run.state) == (T0 + 300, T0 + 300, RunState.SCHEDULED)
    assert world.store.claim_runs("pool", "host", 5, 30) == []  # not before its time
    world.clock.now = T0 + 300
    ahead.run_once(world.clock.now)
    assert len(world.store.claim_runs("pool", "host", 5, 30)) == 1
    assert len([r for r in world.store.list_runs() if r.job == "tick"]) == 1


def test_enabling_a_job_again_does_not_make_up_the_fires_it_was_off(world: World) -> None:
    on = 'command = "true"\ncron = "@hourly"\ntimezone = "UTC"\ncatchup = "all"\n'
    world.job("tick", on)
    world.at(1)
    world.job("tick", on + "enabled = false\n")
    world.at(2)
    world.clock.now = T0 + 5 * 3600 + 10
    world.job("tick", on)
    world.at(5 * 3600 + 10)
    assert world.runs("tick") == []
    world.at(6 * 3600)
    assert world.runs("tick") == [(T0 + 6 * 3600, RunState.PENDING)]


def test_one_job_that_cannot_be_scheduled_does_not_stop_the_others(world: World) -> None:
    world.job("good", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    world.job("broken", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    # A zone this host does not know (the store was written elsewhere, or tzdata changed).
    db = world.store._db  # type: ignore[attr-defined]
    db.execute("""UPDATE jobs SET spec = json_set(spec, '$.timezone', 'Mars/Olympus') WHERE name = 'broken'""")
    world.at(1)
    world.clock.now = T0 + 300  # the store's clock too: the run is due (not shown scheduled)
    tick = world.scheduler.run_once(T0 + 300)
    assert any(note.startswith("broken: cannot schedule") for note in tick.notes)
    assert world.runs("good") == [(T0 + 300, RunState.PENDING)]


def test_lookahead_waits_for_the_fire_when_overlap_must_be_decided(world: World) -> None:
    world.job("slow", 'command = "sleep 59"\ncron = "* * * * *"\ntimezone = "UTC"\nconcurrency = "forbid"\n')
    ahead = Scheduler(world.store, lambda: DEFAULTS, lookahead=2.0)
    ahead.run_once(T0 + 1)
    world.clock.now = T0 + 60
    ahead.run_once(world.clock.now)
    claim(world, "slow")
    ahead.run_once(T0 + 119)  # one second before the next fire: the running one may still end in time
    assert world.runs("slow") == [(T0 + 60, RunState.RUNNING)]


def test_a_fire_made_ahead_is_scheduled_till_its_time_and_listed_once(world: World) -> None:
    world.scheduler = Scheduler(world.store, lambda: DEFAULTS, lookahead=2.0)
    world.job("tick", 'command = "true"\ncron = "*/5 * * * *"\ntimezone = "UTC"\n')
    world.at(1)
    now = world.at(298.5)  # the fire at 300 is made 1.5 s ahead, due at its time
    assert world.runs("tick") == [(T0 + 300, RunState.SCHEDULED)]
    rows = schedules.ahead(world.store, now)
    assert [(type(r).__name__, r.at) for r in rows] == [("NextFire", T0 + 300)]  # type: ignore[union-attr]
    world.clock.now = T0 + 300
    assert world.runs("tick") == [(T0 + 300, RunState.PENDING)]
    world.store.enqueue([NewRun("later", "true", 5, 0, 2.0, 60.0, None, run_at=T0 + 400)])
    rows = schedules.ahead(world.store, world.clock.now)
    assert [getattr(r, "id", None) or getattr(r, "job", None) for r in rows] == ["later", "tick"]
