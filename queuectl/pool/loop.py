"""The worker pool: one process driving N slots, in one loop.

Each turn: take stop signals, beat the heart, enforce deadlines, start what is
claimed in free slots, then (when the batching policy says so) settle finished
attempts, record processes, give back and take claims in one store transaction;
then sleep in epoll on the children's pidfds, their output, the wake socket and
the signal socket until something happens or the policy's next moment comes.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING

from queuectl import config, reaper, runner
from queuectl.durations import format_duration
from queuectl.errors import QueueError, StoreBrokenError, StoreError
from queuectl.model import AttemptResult, Worker
from queuectl.paths import logs_dir
from queuectl.pool import batching, host_checks
from queuectl.pool.lines import Log, PoolLines, unrecorded_line
from queuectl.pool.rescue import Rescuer
from queuectl.pool.signals import COLD_KILL_GRACE, StopLevel, StopSignals
from queuectl.pool.slots import Slots
from queuectl.pool.status_handoff import StatusHandoff
from queuectl.pool.store_retry import StoreRetry
from queuectl.pool.store_sync import StoreSync
from queuectl.pool.wakeups import Wakeups
from queuectl.store.contract import Store

if TYPE_CHECKING:
    from queuectl.status_files import StatusThread

START_PATIENCE = 30.0  # how long a starting pool waits for a store busy with another writer
WAKE_HEARTBEAT_GAP = 1.0  # a wake-up brings the next heartbeat forward, to no sooner than this after the last

_claimed_at = itemgetter(1)  # of a ready (claim, claimed at) pair


class Pool:
    """A pool of `slots` slots on `store`: `run()` works until stopped (in burst mode, until the queue is empty).

    `start()`, `run_once()` and `close()` are the same loop in steps, for tests and embedding
    programs; the clocks are injected (`clock` stamps attempts, `monotonic` drives every decision).
    """

    def __init__(
        self,
        store: Store,
        slots: int,
        *,
        burst: bool = False,
        log: Log | None = None,
        verbose: bool = True,
        host: str = runner.HOST,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        owns_process: bool = False,
    ) -> None:
        self.store = store
        self.owns_process = owns_process  # the process ends with the pool (the CLI): see StopSignals.restore
        self.slots = slots
        self.burst = burst
        self.host = host
        self.clock = clock
        self.monotonic = monotonic
        self.pid = os.getpid()
        self.id = f"{host}-{self.pid}-{os.urandom(3).hex()}"
        self.lines = PoolLines(log, verbose)
        self.stats = self.lines.stats
        self._selector = selectors.DefaultSelector()
        self.statuses = StatusHandoff(store.url, self.lines.say)
        self.procs = Slots(
            slots, self.id, logs_dir(store), self._selector, self.lines, clock, monotonic, self._add_result, self._freed
        )
        self.sync = StoreSync(store, self.id, host, self.procs, self.lines, self.statuses, monotonic)
        self.stop = StopLevel()
        self.signals = StopSignals()
        self.store_retry = StoreRetry()
        self.wakeups = Wakeups(self._selector, self._woken)
        self.rescuer = Rescuer(store, self.id, host, self.lines.say, self.statuses.update)
        self._next_heartbeat = 0.0
        self._last_heartbeat = -WAKE_HEARTBEAT_GAP
        self.on_wake: Callable[[], None] | None = None  # also told of wake-ups (up's scheduler)
        self._load_settings()

    # What tests and embedding programs look at or set.
    @property
    def running(self) -> dict[int, runner.Process]:
        return self.procs.running

    @property
    def stop_level(self) -> int:
        return self.stop.level

    @stop_level.setter
    def stop_level(self, level: int) -> None:
        self.stop.level = level

    @property
    def _signals(self) -> int:
        return self.signals.count

    @_signals.setter
    def _signals(self, count: int) -> None:
        self.signals.count = count

    @property
    def _statuses(self) -> StatusThread | None:
        return self.statuses.thread

    # -- life cycle -------------------------------------------------------
    def run(self) -> None:
        """Work until stopped (or, in burst mode, until nothing is left)."""
        self.start()
        try:
            while self.run_once():
                pass
        finally:
            left = self.close()
        if left:
            raise StoreError(left)

    def start(self) -> None:
        host_checks.check_pidfd()
        host_checks.check_log_dir(self.procs.logs)
        host_checks.raise_fd_limit()
        reaper.become_subreaper()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap for us
        self.procs.start()  # first: its guardian must not inherit our sockets
        self.wakeups.open(self.store.work_signal(self.pid))
        self.signals.install(self._selector)
        self._start_with_store()
        self.lines.say(f"pool {self.id} started with {self.slots} slot(s) on {self.store.location}")

    def _start_with_store(self) -> None:
        """Register and rescue; a store busy with another writer is waited for (within limits)."""
        deadline = self.monotonic() + START_PATIENCE
        delay = 0.05
        while True:
            try:
                self.store.check_identity()  # the first call notes which file is open
                self._register()
                self.rescue()
                return
            except StoreBrokenError:
                raise  # waiting will not mend it
            except StoreError as exc:
                if self.monotonic() + delay > deadline:
                    raise
                self.lines.say(f"store busy at start, retrying in {format_duration(delay)}: {exc}")
                if self.signals.within(delay):  # nothing runs yet: a plain wait, but not deaf
                    raise QueueError(f"stopped by a signal before the pool could start: {exc}") from None
                delay = min(delay * 2, 1.0)

    def _register(self) -> None:
        self.store.register_worker(
            Worker(
                id=self.id,
                host=self.host,
                pid=self.pid,
                proc_start=runner.proc_start_time(self.pid) or 0,
                slots=self.slots,
                started_at=self.clock(),
                heartbeat_at=self.clock(),
                stop_requested=False,
                machine=runner.MACHINE if self.host == runner.HOST else "",  # a pool posing as elsewhere: none
            )
        )

    def close(self) -> str | None:
        """Kill what still runs, settle with the store (unless it was given up), let go of everything.

        Returns the line that says what the store did not take (None: it took everything).
        """
        self.procs.kill_all()  # only after an error: do not leave commands behind
        self.stop.level = max(self.stop.level, 1)
        if self.store_retry.gave_up is None:
            try:
                self._sync(self.monotonic())
                self.store.unregister_worker(self.id)
            except StoreError as exc:  # the runs come back through the rescue
                self.store_retry.failing_since = self.monotonic()
                self.lines.say(f"could not settle with the store on the way out: {exc}")
        claimed = [claim.run_id for claim, _ in self.sync.ready]
        left = unrecorded_line(self.sync.results, claimed, self.store_retry.gave_up, self.id)
        if left:
            self.lines.say(left)
        self.signals.restore(self.owns_process)
        self.procs.let_go()
        reaper.become_subreaper(False)
        self.lines.flush_held(everything=True)
        self._selector.close()
        self.statuses.close(1.0 if self.store_retry.failing_since is not None else 10.0)
        self.procs.close_guardian()
        self.wakeups.close()
        self.signals.close()
        done = sum(self.stats.finished.values())
        self.lines.say(f"pool {self.id} stopped after {done} attempt(s)")
        return left

    # -- one turn ---------------------------------------------------------
    def run_once(self, max_wait: float | None = None) -> bool:
        """Do what is due, then wait for the next event. False when done."""
        mono = self.monotonic()
        self._take_signals(mono)
        if mono >= self._next_heartbeat and mono >= self.store_retry.retry_at:
            self._guarded(self._heartbeat, mono)
        self._enforce_deadlines(mono)
        if mono >= self.procs.next_child_check:
            self.procs.check_children(mono)
        self._fill_slots(mono)
        if mono >= self.store_retry.retry_at:
            state = self._snapshot(mono)
            if batching.sync_due(state, mono) and self._guarded(lambda m: self._sync(m, state), mono):
                self._fill_slots(mono)
        if self._finished():
            return False
        now = self.monotonic()
        timeout = batching.wait_time(self._snapshot(now, with_moments=True), now)
        if max_wait is not None:
            timeout = min(timeout, max_wait)
        for key, _ in self._selector.select(timeout):
            key.data()
        return True

    def _snapshot(self, mono: float, with_moments: bool = False) -> batching.Snapshot:
        """What the batching policy looks at; the loop's other moments only when asked (for the wait)."""
        moments: list[float] = []
        if with_moments:
            moments = [self._next_heartbeat, *self.procs.moments(mono)]
            if self.stop.deadline is not None:
                moments.append(self.stop.deadline)
        sync = self.sync
        return batching.Snapshot(
            slots=self.slots,
            running=len(self.procs.running),
            ready=tuple(map(_claimed_at, sync.ready)),
            results=len(sync.results),
            results_since=sync.results_since,
            mean_duration=sync.mean_duration,
            stopping=self.stop.level > 0,
            hint=sync.hint,
            next_poll=sync.next_poll,
            next_due=sync.next_due,
            first_unrecorded=self.procs.first_unrecorded(),
            spawn_retry_at=self.procs.spawn_retry_at,
            store_retry_at=self.store_retry.retry_at,
            moments=tuple(moments),
        )

    def _finished(self) -> bool:
        if self.procs.running or self.sync.results or self.sync.ready:
            return False
        if self.stop.level:
            return True
        if not self.burst or self.sync.hint or self.monotonic() < self.store_retry.retry_at:
            return False
        try:
            return not self.store.has_work()
        except StoreError as exc:
            self._store_failed(exc, self.monotonic())
            return False

    def _guarded(self, step: Callable[[float], None], mono: float) -> bool:
        """Run a store step; a store error that may pass is retried later (see StoreRetry)."""
        try:
            step(mono)
        except StoreError as exc:
            self._store_failed(exc, mono)
            return False
        self.store_retry.worked()
        return True

    def _store_failed(self, exc: StoreError, mono: float) -> None:
        delay = self.store_retry.failed(exc, mono, self.stop.cold_since)  # raises when the store is given up
        self.lines.say(f"store error, retrying in {format_duration(delay)}: {exc}")

    def _fill_slots(self, mono: float) -> None:
        self.procs.fill(self.sync.ready, self.stop.level > 0, mono, self.log_max_bytes)

    def _add_result(self, result: AttemptResult) -> None:
        self.sync.add_result(result)

    def _freed(self) -> None:
        if not self.stop.level:
            self.sync.hint = True  # a slot came free: claim without waiting for a poll

    # -- store round trips --------------------------------------------------
    def _sync(self, mono: float, snapshot: batching.Snapshot | None = None) -> None:
        """The store round trip; `snapshot`: the pool as it is at `mono`, if already taken."""
        if snapshot is None:
            snapshot = self._snapshot(mono)
        self.sync.sync(snapshot, mono, self.lease_seconds, self.poll_interval)

    def _heartbeat(self, mono: float) -> None:
        self.store.check_identity()
        stop = self.store.heartbeat(self.id, self.lease_seconds)
        if stop is None:  # our row was removed (say, taken for dead): register again
            self._register()
            stop = False
        if stop and not self.stop.level:
            self.lines.say("stop requested through the store: finishing running commands")
            self._begin_stop(1, mono)
        newer = self.store.newer_schema()
        if newer is not None and not self.stop.level:
            self.lines.say(
                f"the store was upgraded to schema {newer} by a newer queuectl: finishing running commands, "
                "then stopping (start this pool again with the new version)"
            )
            self._begin_stop(1, mono)
        self._load_settings()
        self.wakeups.watch()
        self.rescue()
        self.procs.cancel(set(self.store.cancel_requests(self.id)), mono, self.kill_grace)
        self._next_heartbeat = mono + self.lease_seconds / 3
        self._last_heartbeat = mono

    def rescue(self) -> int:
        """Put back runs whose pool died; kill leftovers of those that ran here."""
        rescued = self.rescuer.rescue(self.lease_seconds)
        if rescued:
            self.sync.hint = True
        return rescued

    def _load_settings(self) -> None:
        values = config.effective(self.store.config())
        self.lease_seconds = values["lease-seconds"]
        self.poll_interval = values["worker-poll-interval"]
        self.stop_grace = values["stop-grace"]
        self.kill_grace = values["kill-grace"]
        self.log_max_bytes = values["log-max-bytes"]
        self.sync.aging = values["priority-aging"]

    # -- signals, stopping and wake-ups ---------------------------------------
    def _take_signals(self, mono: float) -> None:
        while self.signals.count:
            self.signals.count -= 1
            asked = self.stop.take_signal()
            if asked is not None:
                level, line = asked
                self.lines.say(line)
                self._begin_stop(level, mono)

    def _begin_stop(self, level: int, mono: float) -> None:
        if self.stop.begin(level, mono, self.stop_grace):
            self.procs.interrupt(mono, COLD_KILL_GRACE)

    def _enforce_deadlines(self, mono: float) -> None:
        self.procs.enforce_deadlines(mono, self.kill_grace)
        if self.stop.grace_over(mono):
            self.lines.say(f"stop-grace of {format_duration(self.stop_grace)} is over: stopping running commands")
            self._begin_stop(2, mono)

    def _woken(self) -> None:
        self.sync.hint = True
        # News may be a cancellation or a stop: look soon, but at most once a second (every
        # enqueue on a shared PostgreSQL store wakes every pool of every host).
        soon = max(self.monotonic(), self._last_heartbeat + WAKE_HEARTBEAT_GAP)
        self._next_heartbeat = min(self._next_heartbeat, soon)
        if self.on_wake is not None:
            self.on_wake()
