"""Pools elect one scheduler on a SQLite store: `worker start`'s Supervisor (no jobs directory)
in this process, a real store file, and an injected clock that only the test moves.

Each pool looks at the schedule with `schedule_once()`, as its scheduler thread does; the
seat's lease (renewed at each look) decides which one schedules.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from queuectl.scheduler import LEASE
from queuectl.services import jobs, overview
from queuectl.store import Store, open_store
from queuectl.supervisor import Supervisor
from tests.clock import Clock

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp() - 30  # half a minute before a minute's start


class Pools:
    """A store with one declared `* * * * *` job, and pools (as `worker start` makes them) on it."""

    def __init__(self, tmp: Path) -> None:
        self.url = str(tmp / "q.db")
        self.clock = Clock(T0)
        self.look = open_store(self.url, clock=self.clock)
        self._opened: list[Store] = [self.look]
        self._supervisors: list[Supervisor] = []
        self.lines: list[list[str]] = []
        directory = tmp / "jobs.d"
        directory.mkdir()
        (directory / "tick.toml").write_text('command = "true"\ncron = "* * * * *"\ntimezone = "UTC"\n')
        jobs.apply(self.look, [str(directory)])

    def pool(self) -> Supervisor:
        store = open_store(self.url, clock=self.clock)
        self._opened.append(store)
        said: list[str] = []
        self.lines.append(said)
        supervisor = Supervisor(store, [], 1, say=said.append, clock=self.clock)
        self._supervisors.append(supervisor)
        return supervisor

    def fires(self) -> list[float]:
        return sorted(r.scheduled_for or 0 for r in self.look.list_runs() if r.job == "tick")

    def close(self) -> None:
        for supervisor in self._supervisors:
            supervisor.close()
        for store in self._opened:
            store.close()


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[Pools]:
    p = Pools(tmp_path)
    yield p
    p.close()


def test_two_pools_elect_one_scheduler_and_each_minute_fires_once(pools: Pools) -> None:
    first, second = pools.pool(), pools.pool()
    for minute in range(4):
        pools.clock.now = T0 + 60 * minute
        first.schedule_once()
        second.schedule_once()
    assert pools.fires() == [T0 + 30 + 60 * m for m in range(3)]
    assert not any("standing by" in line for line in pools.lines[0])
    assert any("standing by" in line for line in pools.lines[1])
    seat = pools.look.scheduler_seat()
    assert seat is not None and seat.holder == first.scheduler.seat.holder
    assert seat.last_tick_at == T0 + 180


def test_a_pool_whose_scheduler_went_silent_is_replaced_when_its_lease_ends(pools: Pools) -> None:
    first, second = pools.pool(), pools.pool()
    first.schedule_once()
    pools.clock.now += LEASE - 1
    second.schedule_once()  # the leader is silent, but its lease still runs
    assert any("standing by" in line for line in pools.lines[1])
    pools.clock.now += 2
    second.schedule_once()
    assert any("taking over" in line for line in pools.lines[1])
    first.schedule_once()
    assert any("standing by" in line for line in pools.lines[0])


def test_a_pool_that_stops_hands_the_seat_over_at_once_and_status_warns_when_none_is_left(pools: Pools) -> None:
    first, second = pools.pool(), pools.pool()
    first.schedule_once()
    second.schedule_once()
    view = overview.overview(pools.look).scheduler
    assert view.alive and view.warning is None
    first.scheduler.leave()  # what a pool does when it stops
    second.schedule_once()
    assert any("taking over" in line for line in pools.lines[1])
    second.scheduler.leave()
    view = overview.overview(pools.look).scheduler
    assert not view.alive and view.cron_jobs == 1
    assert view.warning is not None and "no scheduler runs" in view.warning
