"""What the pool says: its log lines, in the order things happened, and the count of attempts by outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from queuectl.durations import format_duration
from queuectl.errors import StoreError, StoreGoneError
from queuectl.model import AttemptResult, Claim, RunState
from queuectl.pool.outcome import BurstOutcome, outcome_of

SHOW_RUNS = 20  # runs named in a line about what could not be recorded

Log = Callable[[str], None]


class PoolStats:
    def __init__(self) -> None:
        self.finished: dict[str, int] = {}  # attempts by outcome
        self.last_states: dict[str, RunState] = {}  # run id -> the state its latest attempt here left it in

    def outcome(self) -> BurstOutcome:
        """What the runs this pool ran came to, and the exit code of a burst (see pool/outcome.py)."""
        return outcome_of(self.last_states)


class PoolLines:
    """The pool's lines. An attempt's end is written once the store has recorded it;
    a line about something that happened later (start, timeout, cancel) waits behind it."""

    def __init__(self, log: Log | None, verbose: bool) -> None:
        self.log = log
        self.verbose = verbose and log is not None
        self.stats = PoolStats()
        self._held: list[AttemptResult | str] = []  # lines waiting for an earlier result's line (order)

    def say(self, message: str) -> None:
        if self.log:
            self.log(message)

    def hold(self, result: AttemptResult) -> None:
        """A finished attempt: its line is written once the store says what became of it."""
        if self.verbose:
            self._held.append(result)

    def event(self, line: str) -> None:
        """A line about a run (start, timeout, cancel): in the order things happened, and only when verbose."""
        if not self.verbose:
            return
        if self._held:
            self._held.append(line)
        else:
            self.say(line)

    def start(self, claim: Claim, started_at: float) -> None:
        """An attempt's start. A declared job's first attempt says how long after it was due it started (a cron
        fire: after the fire's time); a line written behind an earlier result (so later than the attempt
        started) names the time it really started."""
        when = [f"attempt {claim.attempt}"]
        if self._held:
            when.append(f"started {clock_time(started_at)}")
        if claim.scheduled_for is not None and claim.attempt == 1:  # a retry waits its backoff: no news
            lag = max(0.0, started_at - claim.scheduled_for)
            when.append(f"{format_duration(lag)} after it was due at {clock_time(claim.scheduled_for)}")
        self.event(f"start     {claim.run_id} ({', '.join(when)}): {claim.command}")

    def report(self, res: AttemptResult, state: RunState | None) -> None:
        """Count a recorded attempt, and write its line (with the lines held behind it)."""
        key = res.outcome.value
        self.stats.finished[key] = self.stats.finished.get(key, 0) + 1
        if state is not None:  # None: already rescued elsewhere, no longer this pool's to count
            self.stats.last_states[res.claim.run_id] = state
        if self.verbose:
            took = res.finished_at - res.started_at
            where = f"now {state}" if state is not None else "already rescued elsewhere"
            detail = f" ({res.error})" if res.error else ""
            line = f"{res.outcome.value:<9} {res.claim.run_id} in {format_duration(took)}{detail}: {where}"
            for i, held in enumerate(self._held):
                if held is res:
                    self._held[i] = line
                    break
            else:
                self.say(line)
            self.flush_held()

    def flush_held(self, everything: bool = False) -> None:
        """Write the held lines up to the first result the store has not answered for yet."""
        while self._held and (everything or isinstance(self._held[0], str)):
            held = self._held.pop(0)
            if isinstance(held, str):
                self.say(held)


def clock_time(epoch: float) -> str:
    """A time of day as the log's lines are prefixed with (this machine's zone)."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def unrecorded_line(
    results: Iterable[AttemptResult], claimed: Iterable[str], gave_up: StoreError | None, pool_id: str
) -> str | None:
    """One line naming the attempts whose results, and the claims, the store did not take."""
    finished = [f"{r.claim.run_id} ({r.outcome.value})" for r in results]
    runs = list(claimed)
    if not finished and not runs:
        return None
    parts = []
    if finished:
        parts.append(f"could not record the result of {len(finished)} attempt(s): {_some(finished)}")
    if runs:
        parts.append(f"could not give back {len(runs)} claimed run(s): {_some(runs)}")
    if isinstance(gave_up, StoreGoneError):
        where = "they are lost with the store's file"
    else:
        where = f"they stay claimed by pool {pool_id}, so the next pool's rescue puts them back in the queue"
    return "; ".join(parts) + f"; {where}"


def _some(names: list[str]) -> str:
    more = len(names) - SHOW_RUNS
    return ", ".join(names[:SHOW_RUNS]) + (f" and {more} more" if more > 0 else "")
