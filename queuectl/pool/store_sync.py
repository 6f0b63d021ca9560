"""The pool's round trip to its store, and what waits for the next one.

One transaction settles the finished attempts, records the processes that have run
a moment, gives back the claims that went stale and takes new ones; what to give
back and how many to claim is the batching policy's answer. Nothing is forgotten
before the commit: a failed transaction is tried again whole.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable

from queuectl.errors import StoreError
from queuectl.model import AttemptResult, Claim, ProcessInfo, RunState
from queuectl.pool import batching
from queuectl.pool.lines import PoolLines
from queuectl.pool.slots import Slots
from queuectl.pool.status_handoff import StatusHandoff
from queuectl.store import Store


class StoreSync:
    """The finished attempts and ready claims that wait for the store, and the round trip that settles them."""

    def __init__(
        self,
        store: Store,
        pool_id: str,
        host: str,
        procs: Slots,
        lines: PoolLines,
        statuses: StatusHandoff,
        monotonic: Callable[[], float],
    ) -> None:
        self.store = store
        self.pool_id = pool_id
        self.host = host
        self.procs = procs
        self.lines = lines
        self.statuses = statuses
        self.monotonic = monotonic
        self.results: list[AttemptResult] = []  # finished, not yet written to the store
        self.results_since = 0.0  # monotonic moment the first of them finished
        self.mean_duration: float | None = None  # of the attempts so far
        self.ready: deque[tuple[Claim, float]] = deque()  # claimed (at that monotonic moment), not yet started
        self.hint = True  # work may be waiting: claim without waiting for a poll
        self.aging = 0.0  # config priority-aging: seconds a waiting run takes to gain a level (0: off)
        self.next_poll = 0.0
        self.next_due: float | None = None  # monotonic moment the earliest waiting run is due
        self.unsure = False  # a store transaction failed: it may still have committed

    def add_result(self, result: AttemptResult) -> None:
        """An attempt ended (or could not start): it waits for the next round trip."""
        self.lines.hold(result)
        if not self.results:
            self.results_since = self.monotonic()
        self.results.append(result)
        self.mean_duration = batching.mean_duration(self.mean_duration, result.finished_at - result.started_at)

    def sync(self, snapshot: batching.Snapshot, mono: float, lease_seconds: float, poll_interval: float) -> None:
        """Settle results, record processes, give back and take claims: one transaction."""
        results = self.results
        fresh, records = self.procs.to_record(mono)
        stale = [claim for claim, _ in itertools.islice(self.ready, batching.give_back(snapshot, mono))]
        want = batching.to_claim(snapshot, mono)
        states, claims = self._transaction(records, results, stale, want, lease_seconds)
        # Committed: only now forget what was written (a failed transaction is retried whole).
        self.results = []
        self.procs.recorded(fresh, records)
        for _ in stale:
            self.ready.popleft()
        self.ready.extend((claim, mono) for claim in claims)
        if want and len(claims) < want:  # the queue is drained: claim again on a hint, the poll, or a due run
            self.hint = False
            self.next_poll = mono + poll_interval
            wait = self.store.next_due()  # by the store's clock, kept on ours as a monotonic moment
            self.next_due = None if wait is None else mono + max(0.0, wait)
        for res, state in zip(results, states, strict=True):
            self.lines.report(res, state)
        jobs = {res.claim.job for res in results if res.claim.job}
        if jobs:
            self.statuses.update(jobs)

    def _transaction(
        self,
        records: list[ProcessInfo],
        results: list[AttemptResult],
        stale: list[Claim],
        want: int,
        lease_seconds: float,
    ) -> tuple[list[RunState | None], list[Claim]]:
        try:
            with self.store.batch():
                if self.unsure:
                    self._release_orphans()
                self.store.record_processes(self.pool_id, records)
                states = self.store.finish_attempts(self.host, results)
                self.store.release_runs(self.pool_id, [(c.run_id, c.attempt) for c in stale])
                claims = self.store.claim_runs(self.pool_id, self.host, want, lease_seconds, self.aging)
        except StoreError:
            self.unsure = True  # the commit may have happened all the same (its answer was lost)
            raise
        self.unsure = False
        return states, claims

    def _release_orphans(self) -> None:
        """Give back runs claimed by a transaction whose outcome was lost (the connection broke at commit).

        Called at the start of the next sync's transaction, so that the giving back
        and the sync commit together or not at all.

        Such a commit may have happened: the runs are then held by this pool, which does
        not know them, and its heartbeats would keep them from every other pool.
        """
        known = {(c.run_id, c.attempt) for c, _ in self.ready}
        known.update((p.claim.run_id, p.claim.attempt) for p in self.procs.running.values())
        known.update((r.claim.run_id, r.claim.attempt) for r in self.results)
        orphans = [held for held in self.store.held_runs(self.pool_id) if held not in known]
        if orphans:
            self.store.release_runs(self.pool_id, orphans)
            self.lines.say(f"gave back {len(orphans)} run(s) claimed by a transaction whose outcome was lost")
