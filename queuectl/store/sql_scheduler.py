"""The scheduler's state, written once for every SQL engine: due cron jobs, fires, suspension, skipped fires.

Who leads is the engine's (`lead_scheduling`: see sqlite.py and postgres.py); the seat's row, which
says who schedules and when it last looked, is shared.
"""

from __future__ import annotations

import json

from queuectl.model import Job, NewRun, RunState, SchedulerSeat
from queuectl.store.contract import SchedulerState
from queuectl.store.sql_rollups import SQLRollups, Tally
from queuectl.store.sql_rows import job_from_row, new_run_params


class SQLSchedulerState(SQLRollups, SchedulerState):
    """What the scheduler keeps in the store between fires; leadership is the engine's."""

    def _take_seat(self, seat: SchedulerSeat, lease: float) -> bool:
        """Write the seat for `seat` (renewing its lease, recording the look) unless another holds it."""
        params = {"holder": seat.holder, "pool_id": seat.pool_id, "host": seat.host, "pid": seat.pid}
        return bool(self._write("seat_take", {**params, "now": self._now(), "lease": lease}))

    def scheduler_seat(self) -> SchedulerSeat | None:
        rows = self._read("seat_read")
        if not rows:
            return None
        seat = json.loads(rows[0][0])
        last = seat["last_tick_at"]
        return SchedulerSeat(
            seat["holder"],
            seat["pool_id"],
            seat["host"],
            int(seat["pid"]),
            float(seat["lease_until"]),
            None if last is None else float(last),
        )

    def leave_scheduling(self, holder: str) -> None:
        with self.batch():
            self._write("seat_release", {"holder": holder})

    def cron_jobs_due(self, now: float, limit: int = 500) -> list[Job]:
        return [job_from_row(r) for r in self._read("cron_jobs_due", {"now": now, "limit": limit})]

    def next_fire(self) -> float | None:
        value = self._read("next_fire_min")[0][0]
        return None if value is None else float(value)

    def set_fires(
        self, name: str, last_fire: float | None, next_fire: float | None, schedule_from: float, schedule_hash: str
    ) -> None:
        params = {
            "name": name,
            "last_fire": last_fire,
            "next_fire": next_fire,
            "schedule_from": schedule_from,
            "schedule_hash": schedule_hash,
        }
        with self.batch():
            self._write("set_fires", params)

    def set_suspended(self, name: str, suspended: bool) -> bool:
        with self.batch():
            rows = self._write("set_suspended", {"name": name, "suspended": suspended, "now": self._now()})
            return bool(rows)

    def add_skipped_run(self, run: NewRun, reason: str) -> bool:
        params = {**new_run_params(run, self._now()), "reason": reason}
        with self.batch():
            added = bool(self._write("insert_skipped_run", params))
            if added:
                tally = Tally()
                tally.finished(run.job, RunState.CANCELLED.value)
                self._add_tally(tally, params["now"])
            return added
