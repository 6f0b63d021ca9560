"""What a burst came to: the runs a pool ran, by the state each ended in, and the exit code that follows.

A demanding CI user's rule: a burst fails (exit 1) when a run it ran ended dead (out of
retries) or, under `up --burst`, a manifest was refused; a run that failed and waits for a
retry later, or went back to the queue because the burst was stopped, is said in the
summary but does not fail it (it has not failed for good; the next burst runs it).
"""

from __future__ import annotations

from typing import NamedTuple

from queuectl.errors import EXIT_FAILURE
from queuectl.model import RunState

SHOW_RUNS = 10  # run ids named in the summary line per kind


class BurstOutcome(NamedTuple):
    completed: int = 0
    dead: tuple[str, ...] = ()  # run ids out of retries
    retrying: tuple[str, ...] = ()  # failed, a retry is scheduled (not run within the burst)
    requeued: tuple[str, ...] = ()  # back in the queue unfinished (the burst was stopped)
    cancelled: int = 0
    refused: tuple[str, ...] = ()  # manifests `up --burst` refused (their paths, as said)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILURE if self.dead or self.refused else 0

    def summary(self) -> str:
        """One line: `burst: 12 runs completed, 1 dead (r7); 1 manifest refused (bad.toml)`."""
        runs = [f"{self.completed} run{'s' if self.completed != 1 else ''} completed"]
        if self.dead:
            runs.append(f"{len(self.dead)} dead ({_some(self.dead)})")
        if self.retrying:
            runs.append(f"{len(self.retrying)} failed, retry pending ({_some(self.retrying)})")
        if self.requeued:
            runs.append(f"{len(self.requeued)} back in the queue unfinished ({_some(self.requeued)})")
        if self.cancelled:
            runs.append(f"{self.cancelled} cancelled")
        parts = [", ".join(runs)]
        if self.refused:
            many = "s" if len(self.refused) != 1 else ""
            parts.append(f"{len(self.refused)} manifest{many} refused ({_some(self.refused)})")
        return "burst: " + "; ".join(parts)


def outcome_of(last_states: dict[str, RunState]) -> BurstOutcome:
    """The outcome of the runs a pool ran, by the state each was left in after its last attempt."""

    def runs(*states: RunState) -> tuple[str, ...]:
        return tuple(run_id for run_id, state in last_states.items() if state in states)

    return BurstOutcome(
        completed=len(runs(RunState.COMPLETED)),
        dead=runs(RunState.DEAD),
        retrying=runs(RunState.FAILED),
        requeued=runs(RunState.PENDING, RunState.RUNNING),
        cancelled=len(runs(RunState.CANCELLED)),
    )


def _some(names: tuple[str, ...]) -> str:
    more = len(names) - SHOW_RUNS
    return ", ".join(names[:SHOW_RUNS]) + (f" and {more} more" if more > 0 else "")
