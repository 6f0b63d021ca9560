"""Turns cron fires into runs. Takes `now`; never reads the clock itself.

`Scheduler.run_once(now)` looks at the cron jobs whose next fire has come (or
that it never looked at), decides in one transaction which fires become runs
(catch-up policy, catch-up window, overlap policy, jitter), records the last
fire and the next one, and returns when it must look again. A run is unique
per (job, scheduled time) in the store and the last fire moves in the same
transaction, so a restart, or two schedulers on one store, never fire the same
time twice.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from queuectl import schedule
from queuectl.apply import new_run
from queuectl.config import Defaults
from queuectl.durations import LATEST
from queuectl.errors import StoreBusyError
from queuectl.model import Job, SchedulerSeat
from queuectl.store.contract import Store

BATCH = 50  # cron jobs looked at in one transaction (a savepoint each: PostgreSQL caches 64 per transaction)
MAX_CATCHUP = 100  # catchup = "all" runs at most this many missed fires
RETRY_BROKEN = 60.0  # a job that cannot be scheduled (say, its zone is unknown here) is tried again after this
ON_TIME = 60.0  # a fire this late is still on time, not missed (catchup = "none" runs it)
LEASE = 30.0  # the elected scheduler holds the seat this long from each look (it looks at least thrice as often)


@dataclass
class Tick:
    """What one look at the schedule did."""

    started: list[str] = field(default_factory=list)  # run ids added
    scheduled: dict[str, tuple[float, tzinfo]] = field(default_factory=dict)  # run id -> its fire, the job's zone
    skipped: list[str] = field(default_factory=list)  # "job@time: reason"
    replaced: list[str] = field(default_factory=list)  # run ids asked to stop
    notes: list[str] = field(default_factory=list)
    next_at: float | None = None
    leader: bool = True  # False: another process holds the scheduling (nothing was looked at)


def _next(cron: str, zone: tzinfo, now: float) -> float:
    """The next fire; a schedule that never fires (30 February) is looked at again only when it changes."""
    fire = schedule.next_fire(cron, zone, now)
    return LATEST if fire is None else fire


def schedule_hash(job: Job) -> str:
    spec = job.spec
    return hashlib.sha256(f"{spec.cron}|{spec.timezone}|{spec.enabled}".encode()).hexdigest()[:16]


class Scheduler:
    def __init__(
        self,
        store: Store,
        defaults: Callable[[], Defaults],
        pause: Callable[[], None] | None = None,
        lookahead: float = 0.0,
    ) -> None:
        self.store = store
        self.defaults = defaults
        self.pause = pause  # called between batches: lets other writers (the pools) in
        # Fires this close ahead become runs already, due at their time: the pools, which sleep
        # until the next due run, then start them on the dot instead of after the scheduler's pass.
        self.lookahead = lookahead
        self.seat = SchedulerSeat(uuid.uuid4().hex, None, socket.gethostname(), os.getpid())
        self.pool_id: str | None = None  # the pool it runs beside, once started: `status` names it

    def run_once(self, now: float) -> Tick:
        """Turn every fire due by `now` (+ lookahead) into runs: a transaction per batch of jobs."""
        tick = Tick()
        horizon = now + self.lookahead
        while True:
            with self.store.batch():
                seat = self.seat._replace(pool_id=self.pool_id)
                if not self.store.lead_scheduling(seat, LEASE):  # checked in the transaction: a lost lock stops us
                    tick.leader = False
                    return tick
                jobs = self.store.cron_jobs_due(horizon, BATCH)
                for job in jobs:
                    try:
                        with self.store.savepoint():  # its failure undoes its own changes only
                            self._look_at(job, now, horizon, tick)
                    except StoreBusyError:
                        raise  # not the job's fault: the whole batch is tried again soon
                    except Exception as exc:  # one broken job must not stop the others' fires
                        tick.notes.append(f"{job.name}: cannot schedule: {exc!r}; trying again in a minute")
                        self.store.set_fires(job.name, job.last_fire, now + RETRY_BROKEN, now, "")
            if len(jobs) < BATCH:
                break
            if self.pause is not None:
                self.pause()
        tick.next_at = self.store.next_fire()
        return tick

    def leave(self) -> None:
        """Give the seat up (a clean exit): another pool on the store takes over at its next try."""
        self.store.leave_scheduling(self.seat.holder)

    def _look_at(self, job: Job, now: float, horizon: float, tick: Tick) -> None:
        spec = job.spec
        assert spec.cron is not None
        current = schedule_hash(job)
        if not spec.enabled:  # off: remember that (its hash says so), so that turning it on starts afresh
            self.store.set_fires(job.name, job.last_fire, LATEST, now, current)
            return
        zone = schedule.zone_of(spec.timezone)
        if spec.concurrency != "allow" and self.store.unfinished_job_runs(job.name):
            horizon = now  # the overlap rule decides at the fire, not ahead of it
        if job.schedule_hash != current or job.schedule_from is None:
            # A new job or a new schedule: fires count from now on.
            self.store.set_fires(job.name, job.last_fire, _next(spec.cron, zone, now), now, current)
            return
        start = max(job.schedule_from, job.last_fire or job.schedule_from)
        fires = schedule.fires_between(spec.cron, zone, start, horizon, MAX_CATCHUP + 1)
        due = self._catch_up(job, fires, now, tick)
        for fire in due:
            self._fire(job, fire, now, tick)
        last = fires[-1] if fires else job.last_fire
        self.store.set_fires(job.name, last, _next(spec.cron, zone, horizon), job.schedule_from, current)

    def _catch_up(self, job: Job, fires: list[float], now: float, tick: Tick) -> list[float]:
        """The fires to run, by the job's catch-up policy and window."""
        spec = job.spec
        if spec.catchup_window is not None:
            fires = [f for f in fires if f >= now - spec.catchup_window]
        on_time = [f for f in fires if f >= now - ON_TIME]
        if spec.catchup == "none":
            return on_time[-1:]
        if spec.catchup == "latest":
            return fires[-1:]
        if len(fires) > MAX_CATCHUP:
            tick.notes.append(f"{job.name}: more than {MAX_CATCHUP} missed fires; ran the last {MAX_CATCHUP}")
            fires = fires[-MAX_CATCHUP:]
        return fires

    def _fire(self, job: Job, fire: float, now: float, tick: Tick) -> None:
        spec = job.spec
        run = new_run(job, self.defaults(), fire)
        run = run._replace(run_at=max(fire + schedule.jitter_offset(job.name, spec.jitter), now))
        unfinished = self.store.unfinished_job_runs(job.name)
        if unfinished and spec.concurrency == "forbid":
            running = ", ".join(run_id for run_id, _ in unfinished)
            reason = f"skipped: the previous run is not finished ({running})"
            if self.store.add_skipped_run(run, reason):
                tick.skipped.append(f"{job.name}@{fire:.0f}: {reason}")
            return
        if unfinished and spec.concurrency == "replace":
            reason = f"replaced by the fire of {fire:.0f}"
            self.store.cancel_job_runs(job.name, reason)
            tick.replaced.extend(self.store.cancel_running_job_runs(job.name, reason))
        if self.store.add_job_runs([run]):
            tick.started.append(run.id)
            tick.scheduled[run.id] = (fire, schedule.zone_of(spec.timezone))
