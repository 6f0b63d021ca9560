"""A store, the real scheduler and a stand-in for a pool on one injected clock: a day of history in a second.

The pool's part (claim, start, finish) is played through the store's own verbs at chosen moments, so
that each fire's lateness, each run's outcome and the rollups the store keeps beside them are known.
"""

from __future__ import annotations

from pathlib import Path

from queuectl.config import Defaults
from queuectl.model import AttemptResult, Claim, JobSpec, Outcome, ProcessInfo
from queuectl.scheduler import Scheduler
from queuectl.store.sqlite import SQLiteStore
from tests.clock import Clock

DEFAULTS = Defaults(max_retries=0, backoff_base=2.0, backoff_max=60.0, timeout=None)


class World:
    """A store, the scheduler and a stand-in for a pool, all on one clock."""

    def __init__(self, tmp: Path, now: float, db: str = "q.db") -> None:
        self.clock = Clock(now)
        self.store = SQLiteStore(str(tmp / db), clock=self.clock)
        self.scheduler = Scheduler(self.store, lambda: DEFAULTS)

    def job(self, name: str, cron: str, zone: str = "UTC", **fields: object) -> None:
        spec = JobSpec(name=name, command="true", cron=cron, timezone=zone, **fields)  # type: ignore[arg-type]
        self.store.put_job(spec, "/jobs", f"/jobs/{name}.toml", "h")

    def look(self, at: float) -> None:
        """The scheduler looks at `at`."""
        self.clock.now = at
        self.scheduler.run_once(at)

    def start(self, at: float) -> Claim:
        """A pool takes the waiting run at `at` and starts it."""
        self.clock.now = at
        (claim,) = self.store.claim_runs("pool", "host", 1, 3600.0)
        self.store.record_processes("pool", [ProcessInfo(claim.run_id, 4242, 1, "/log", at, claim.attempt)])
        return claim

    def end(self, claim: Claim, at: float, ok: bool = True, outcome: Outcome | None = None) -> None:
        """The attempt of `claim` ends at `at`: completed, failed (not `ok`), or as `outcome` says."""
        started = self.store.get_run(claim.run_id).started_at  # type: ignore[union-attr]
        self.clock.now = at
        outcome = outcome or (Outcome.COMPLETED if ok else Outcome.FAILED)
        code = {Outcome.COMPLETED: 0, Outcome.FAILED: 1}.get(outcome)
        error = None if outcome == Outcome.COMPLETED else f"{outcome} (simulated)"
        result = AttemptResult(claim, "pool", 4242, started or at, at, code, outcome, error, "")
        self.store.finish_attempts("host", [result])

    def run(self, fire: float, late: float = 1.0, seconds: float = 5.0, ok: bool = True) -> None:
        """The scheduler sees `fire` at once; the run starts `late` seconds after it and ends `seconds` later."""
        self.look(fire + 0.2)
        self.end(self.start(fire + late), fire + late + seconds, ok)
