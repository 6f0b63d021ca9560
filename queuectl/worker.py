"""The worker pool: one process driving N slots.

One thread runs a loop: spawn what is claimed into free slots, settle what
finished and claim more in one transaction, then sleep in epoll on the
children's pidfds, the wake socket and the signal pipe until something
happens or a deadline (timeout, heartbeat, retry due) comes. While attempts
are short, it claims a few runs ahead and writes results in small batches,
so a store round trip serves several runs.
Signals only set a flag: the first stops claiming and lets commands finish
(within stop-grace); the second kills them and returns their runs to the queue.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import selectors
import signal
import socket
import stat
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from queuectl import config, reaper, runner, wake
from queuectl.capture import Output
from queuectl.errors import QueueError, StoreBrokenError, StoreDiskError, StoreError, StoreGoneError
from queuectl.guardian import Guardian
from queuectl.model import AttemptResult, Claim, Expired, Outcome, ProcessInfo, RunState, Worker
from queuectl.paths import logs_dir
from queuectl.store.contract import Store

if TYPE_CHECKING:
    from queuectl.status_files import StatusThread

RECORD_DELAY = 0.05  # a process is recorded (pgid, log) once it has run this long
FLUSH_DELAY = 0.02  # finished attempts are written within this many seconds...
FLUSH_BATCH = 64  # ...or once this many have piled up
SHORT_ATTEMPT = 0.05  # below this mean duration, claim ahead to save round trips
MAX_PREFETCH = 32
READY_MAX_AGE = 0.5  # a claim not started within this long is given back
CHILD_CHECK_EVERY = 1.0  # adopted children that died meanwhile are reaped this often
COLD_KILL_GRACE = 2.0
RESCUE_BATCH = 100  # expired runs looked at per store read during a rescue
GROUP_CHECK_EVERY = 0.05  # a group whose leader ended on SIGTERM is looked at this often until it is empty
STORE_RETRY_MAX = 5.0
STOPPING_RETRY_MAX = 0.5  # stopping at once, a failing store is tried this often...
STOP_STORE_PATIENCE = 5.0  # ...for this long; then the pool leaves what it could not record to the rescue
DISK_PATIENCE = 10.0  # a full or failing disk under the store that lasts this long ends the pool
SHOW_RUNS = 20  # runs named in a line about what could not be recorded
SPAWN_RETRY = 0.5
START_PATIENCE = 30.0  # how long a starting pool waits for a store busy with another writer
WAKE_HEARTBEAT_GAP = 1.0  # a wake-up brings the next heartbeat forward, to no sooner than this after the last
MAX_WAIT = 60.0  # the loop looks around at least this often
# errno values that mean the pool is short of a resource, not that the run is bad
POOL_SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM, errno.ENOSPC}

Log = Callable[[str], None]


class PoolStats:
    def __init__(self) -> None:
        self.finished: dict[str, int] = {}


class Pool:
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
        # The process ends with the pool (the CLI): on close, SIGTERM and SIGINT stay
        # ignored rather than restored, so the late signal of a stop already taken
        # (`worker stop` asks through the store, then signals) cannot kill the way out.
        self.owns_process = owns_process
        self.slots = slots
        self.burst = burst
        self.log = log
        self.verbose = verbose and log is not None
        self.host = host
        self.clock = clock
        self.monotonic = monotonic
        self.pid = os.getpid()
        self.id = f"{host}-{self.pid}-{os.urandom(3).hex()}"
        self.stats = PoolStats()
        self.logs = logs_dir(store)
        self._lingering: set[Output] = set()  # output of kept daemons, still read after their run ended
        self._held: list[AttemptResult | str] = []  # lines waiting for an earlier result's line (order)
        self.env = dict(os.environ, **{runner.POOL_VAR: self.id})  # marks what its commands start
        self.running: dict[int, runner.Process] = {}  # by pid
        self.results: list[AttemptResult] = []
        self._results_since = 0.0
        self.ready: deque[tuple[Claim, float]] = deque()  # claimed, not yet started
        self._avg_duration: float | None = None
        self.stop_level = 0
        self.stop_deadline: float | None = None
        self._signals = 0
        self._signal_level = 0  # stop signals taken so far
        self._hint = True  # work may be waiting: claim without waiting for a poll
        self._next_poll = 0.0
        self._next_due: float | None = None  # monotonic moment the earliest waiting run is due
        self._next_heartbeat = 0.0
        self._last_heartbeat = -WAKE_HEARTBEAT_GAP
        self._next_child_check = 0.0
        self._selector = selectors.DefaultSelector()
        self._wake: wake.Signal | None = None
        self._wake_fd = -1
        self._signal_r: socket.socket | None = None
        self._signal_w: socket.socket | None = None
        self._old_handlers: dict[int, object] = {}
        self.guardian: Guardian | None = None
        self._home = -1  # the pool's working directory, for commands without cwd
        self._spawn_retry_at = 0.0
        self._store_failures = 0
        self._store_retry_at = 0.0
        self._failing_since: float | None = None  # monotonic moment the store began failing (None: it works)
        self._cold_since: float | None = None  # monotonic moment of the stop at once
        self._gave_up: StoreError | None = None  # why the pool stopped using its store
        self._statuses: StatusThread | None = None
        self._unsure = False  # a store transaction failed: it may still have committed
        self.on_wake: Callable[[], None] | None = None  # also told of wake-ups (up's scheduler)
        self._load_settings()

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
        _check_pidfd()
        _check_log_dir(self.logs)
        _raise_fd_limit()
        reaper.become_subreaper()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap for us
        self._home = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
        self.guardian = Guardian(self.id)  # first: it must not inherit our sockets
        self._wake = self.store.work_signal(self.pid)
        self._watch_wake()
        self._install_signals()
        self._start_with_store()
        self._say(f"pool {self.id} started with {self.slots} slot(s) on {self.store.location}")

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
                self._say(f"store busy at start, retrying in {delay:.2f}s: {exc}")
                if self._signalled_within(delay):  # nothing runs yet: a plain wait, but not deaf
                    raise QueueError(f"stopped by a signal before the pool could start: {exc}") from None
                delay = min(delay * 2, 1.0)

    def _signalled_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if a stop signal comes; whether one came."""
        if self._signal_r is None:
            time.sleep(seconds)
            return False
        select.select([self._signal_r], [], [], seconds)
        self._on_signal_pipe()
        return self._signals > 0

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
        if self.running:  # only after an error: do not leave commands behind
            for proc in self.running.values():
                runner.kill_group(proc.pid, signal.SIGKILL)
                proc.interrupted = True
            self._wait_all()
        self.stop_level = max(self.stop_level, 1)
        if self._gave_up is None:
            try:
                self._sync(self.monotonic())
                self.store.unregister_worker(self.id)
            except StoreError as exc:  # the runs come back through the rescue
                self._failing_since = self.monotonic()
                self._say(f"could not settle with the store on the way out: {exc}")
        left = self._unrecorded()
        if left:
            self._say(left)
        self._restore_signals()
        if self._home >= 0:
            os.close(self._home)
        for output in self._lingering:
            output.close()  # a kept daemon that writes on gets EPIPE: the pool is gone
        self._lingering.clear()
        reaper.become_subreaper(False)
        self._flush_held(everything=True)
        self._selector.close()
        if self._statuses is not None:
            self._statuses.close(1.0 if self._failing_since is not None else 10.0)
        if self.guardian is not None:
            self.guardian.close()
        if self._wake is not None:
            self._wake.close()
        for sock in (self._signal_r, self._signal_w):
            if sock is not None:
                sock.close()
        done = sum(self.stats.finished.values())
        self._say(f"pool {self.id} stopped after {done} attempt(s)")
        return left

    def _unrecorded(self) -> str | None:
        """One line naming the attempts whose results, and the claims, the store did not take."""
        finished = [f"{r.claim.run_id} ({r.outcome.value})" for r in self.results]
        claimed = [claim.run_id for claim, _ in self.ready]
        if not finished and not claimed:
            return None
        parts = []
        if finished:
            parts.append(f"could not record the result of {len(finished)} attempt(s): {_some(finished)}")
        if claimed:
            parts.append(f"could not give back {len(claimed)} claimed run(s): {_some(claimed)}")
        if isinstance(self._gave_up, StoreGoneError):
            where = "they are lost with the store's file"
        else:
            where = f"they stay claimed by pool {self.id}, so the next pool's rescue puts them back in the queue"
        return "; ".join(parts) + f"; {where}"

    def run_once(self, max_wait: float | None = None) -> bool:
        """Do what is due, then wait for the next event. False when done."""
        mono = self.monotonic()
        self._take_signals(mono)
        if mono >= self._next_heartbeat and mono >= self._store_retry_at:
            self._guarded(self._heartbeat, mono)
        self._enforce_deadlines(mono)
        if mono >= self._next_child_check:
            self._check_children(mono)
        self._fill_slots(mono)
        if mono >= self._store_retry_at and self._sync_due(mono) and self._guarded(self._sync, mono):
            self._fill_slots(mono)
        if self._finished():
            return False
        timeout = self._wait_time(self.monotonic())
        if max_wait is not None:
            timeout = min(timeout, max_wait)
        for key, _ in self._selector.select(timeout):
            key.data()
        return True

    def _guarded(self, step: Callable[[float], None], mono: float) -> bool:
        """Run a store step; a store error that may pass is retried later (see _store_failed)."""
        try:
            step(mono)
        except StoreError as exc:
            self._store_failed(exc, mono)
            return False
        self._store_failures = 0
        self._failing_since = None
        return True

    def _store_failed(self, exc: StoreError, mono: float) -> None:
        """Retry later with backoff, or give up the store (raising) when waiting cannot help.

        Given up: an error that will not pass (a damaged, read-only or deleted store),
        a full disk that lasts, or a store still failing a few seconds into a stop at
        once. What was not recorded stays claimed, for the next pool's rescue.
        """
        if self._failing_since is None:
            self._failing_since = mono
        lasted = mono - self._failing_since
        if isinstance(exc, StoreBrokenError):
            self._gave_up = exc
        elif isinstance(exc, StoreDiskError) and lasted >= DISK_PATIENCE:
            self._gave_up = StoreBrokenError(f"{exc}; still so after {lasted:.0f}s")
        elif self._cold_since is not None and mono - self._cold_since >= STOP_STORE_PATIENCE:
            self._gave_up = StoreError(f"stopped at once while the store failed: {exc}")
        if self._gave_up is not None:
            raise self._gave_up
        self._store_failures += 1
        cap = STOPPING_RETRY_MAX if self._cold_since is not None else STORE_RETRY_MAX
        delay = min(cap, 0.05 * 2**self._store_failures)
        self._store_retry_at = mono + delay
        self._say(f"store error, retrying in {delay:.1f}s: {exc}")

    def _free(self) -> int:
        return 0 if self.stop_level else self.slots - len(self.running)

    def _prefetch(self) -> int:
        """Runs to hold claimed beyond the free slots: only while attempts are short.

        Before any attempt has ended, a little: a burst of due runs (a minute's cron
        fires) then needs fewer round trips before the mean duration is known.
        """
        if self.stop_level:
            return 0
        if self._avg_duration is None:
            return self.slots
        if self._avg_duration > SHORT_ATTEMPT:
            return 0
        return min(16 * self.slots, MAX_PREFETCH)

    def _claim_due(self, mono: float) -> bool:
        if self._free() <= len(self.ready):
            return False
        if self._hint or mono >= self._next_poll:
            return True
        return self._next_due is not None and mono >= self._next_due

    def _record_due(self) -> float | None:
        """When the oldest unrecorded process should be recorded, if any."""
        pending = [p.spawned + RECORD_DELAY for p in self.running.values() if not p.recorded]
        return min(pending) if pending else None

    def _sync_due(self, mono: float) -> bool:
        if self.results:
            idle = not self.running and not self.ready
            if idle or self.stop_level or len(self.results) >= FLUSH_BATCH:
                return True
            if mono - self._results_since >= FLUSH_DELAY:
                return True
        if self.ready and (self.stop_level or mono - self.ready[0][1] >= READY_MAX_AGE):
            return True  # give back claims we will not start soon
        record = self._record_due()
        return (record is not None and mono >= record) or self._claim_due(mono)

    def _finished(self) -> bool:
        if self.running or self.results or self.ready:
            return False
        if self.stop_level:
            return True
        if not self.burst or self._hint or self.monotonic() < self._store_retry_at:
            return False
        try:
            return not self.store.has_work()
        except StoreError as exc:
            self._store_failed(exc, self.monotonic())
            return False

    def _wait_time(self, mono: float) -> float:
        if self._claim_due(mono) and mono >= self._store_retry_at:  # a store in backoff: wait for it, not spin
            return 0
        moments = [self._next_heartbeat]
        could_claim = self._free() > len(self.ready)
        if could_claim:
            moments.append(self._next_poll)
        if self.results:
            moments.append(self._results_since + FLUSH_DELAY)
        if self.ready:
            moments.append(self.ready[0][1] + READY_MAX_AGE)
        if self.running:
            moments.append(self._next_child_check)
        for proc in self.running.values():
            if proc.leader_gone:
                moments.append(mono + GROUP_CHECK_EVERY)
            if proc.kill_at is not None:
                moments.append(proc.kill_at)
            elif proc.deadline is not None:
                moments.append(proc.deadline)
        record = self._record_due()
        if record is not None:
            moments.append(record)
        if self.stop_deadline is not None:
            moments.append(self.stop_deadline)
        if self.ready and self._free() > 0:
            moments.append(self._spawn_retry_at)
        if self._next_due is not None and could_claim:
            moments.append(self._next_due)
        return max(0.0, min(max(min(moments), self._store_retry_at) - mono, MAX_WAIT))

    # -- store round trips --------------------------------------------------
    def _sync(self, mono: float) -> None:
        """Settle results, record processes, give back and take claims: one transaction."""
        results = self.results
        fresh = [p for p in self.running.values() if not p.recorded and mono >= p.spawned + RECORD_DELAY]
        records = [
            ProcessInfo(
                p.claim.run_id, p.pid, runner.proc_start_time(p.pid) or 0, p.log_path, p.started_at, p.claim.attempt
            )
            for p in fresh
        ]
        stale = [claim for claim, at in self.ready if self.stop_level or mono - at >= READY_MAX_AGE]
        want = 0
        if self._claim_due(mono):
            want = self._free() + self._prefetch() - len(self.ready) + len(stale)
        try:
            with self.store.batch():
                if self._unsure:
                    self._release_orphans()
                self.store.record_processes(self.id, records)
                states = self.store.finish_attempts(self.host, results)
                self.store.release_runs(self.id, [(c.run_id, c.attempt) for c in stale])
                claims = self.store.claim_runs(self.id, self.host, want, self.lease_seconds)
        except StoreError:
            self._unsure = True  # the commit may have happened all the same (its answer was lost)
            raise
        self._unsure = False
        # Committed: only now forget what was written (a failed transaction is retried whole).
        self.results = []
        for proc, info in zip(fresh, records, strict=True):
            proc.recorded = True
            if self.guardian is not None and info.proc_start:
                claim = proc.claim
                self.guardian.watch(proc.pid, info.proc_start, claim.run_id, claim.attempt, claim.keep_children)
        for _ in stale:
            self.ready.popleft()
        self.ready.extend((claim, mono) for claim in claims)
        if want and len(claims) < want:
            self._hint = False
            self._next_poll = mono + self.poll_interval
            wait = self.store.next_due()  # by the store's clock, kept on ours as a monotonic moment
            self._next_due = None if wait is None else mono + max(0.0, wait)
        for res, state in zip(results, states, strict=True):
            self._report(res, state)
        jobs = {res.claim.job for res in results if res.claim.job}
        if jobs:
            self._write_statuses(jobs)

    def _write_statuses(self, jobs: set[str]) -> None:
        """Status files of declared jobs whose attempts just settled, written by a thread of their own."""
        from queuectl.status_files import StatusThread

        if self._statuses is None:
            self._statuses = StatusThread(self.store.url, self._say)
        self._statuses.update(jobs)

    def _fill_slots(self, mono: float) -> None:
        while self.ready and self._free() > 0 and mono >= self._spawn_retry_at:
            claim, claimed_at = self.ready.popleft()
            if not self._spawn(claim, mono):
                self.ready.appendleft((claim, claimed_at))  # the pool is short of something: later
                self._spawn_retry_at = mono + SPAWN_RETRY
                return

    def _spawn(self, claim: Claim, mono: float) -> bool:
        """Start an attempt; False when the pool (not the run) lacks a resource."""
        log_path = runner.log_path(self.logs, claim)
        now = self.clock()
        try:
            proc = runner.spawn(claim, log_path, int(self.log_max_bytes), self.env, now, mono, self._home)
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in POOL_SHORTAGES:
                self._say(f"cannot start {claim.run_id} now ({exc.strerror}); retrying shortly")
                return False
            if isinstance(exc, OSError):
                cwd_missing = claim.cwd and not os.path.isdir(claim.cwd)
                error = f"{'cannot enter ' + str(claim.cwd) if cwd_missing else 'cannot start'}: {exc.strerror}"
            else:
                error = f"cannot start: {exc}"
            self._event(f"no start  {claim.run_id} (attempt {claim.attempt}): {error}")
            self._add_result(AttemptResult(claim, self.id, None, now, now, None, Outcome.FAILED, error, ""))
            return True
        self.running[proc.pid] = proc
        self._selector.register(proc.pidfd, selectors.EVENT_READ, partial(self._on_exit, proc))
        self._selector.register(proc.output.fd, selectors.EVENT_READ, partial(self._on_output, proc.output))
        self._event(f"start     {claim.run_id} (attempt {claim.attempt}): {claim.command}")
        return True

    def _add_result(self, result: AttemptResult) -> None:
        if self.verbose:
            self._held.append(result)  # its line is written once the store says what became of it
        if not self.results:
            self._results_since = self.monotonic()
        self.results.append(result)
        took = result.finished_at - result.started_at
        self._avg_duration = took if self._avg_duration is None else 0.8 * self._avg_duration + 0.2 * took

    def _heartbeat(self, mono: float) -> None:
        self.store.check_identity()
        stop = self.store.heartbeat(self.id, self.lease_seconds)
        if stop is None:  # our row was removed (say, taken for dead): register again
            self._register()
            stop = False
        if stop and not self.stop_level:
            self._say("stop requested through the store: finishing running commands")
            self._begin_stop(1, mono)
        self._load_settings()
        self._watch_wake()
        self.rescue()
        self._stop_cancelled(mono)
        self._next_heartbeat = mono + self.lease_seconds / 3
        self._last_heartbeat = mono

    def _release_orphans(self) -> None:
        """Give back runs claimed by a transaction whose outcome was lost (the connection broke at commit).

        Called at the start of the next sync's transaction, so that the giving back
        and the sync commit together or not at all.

        Such a commit may have happened: the runs are then held by this pool, which does
        not know them, and its heartbeats would keep them from every other pool.
        """
        known = {(c.run_id, c.attempt) for c, _ in self.ready}
        known.update((p.claim.run_id, p.claim.attempt) for p in self.running.values())
        known.update((r.claim.run_id, r.claim.attempt) for r in self.results)
        orphans = [held for held in self.store.held_runs(self.id) if held not in known]
        if orphans:
            self.store.release_runs(self.id, orphans)
            self._say(f"gave back {len(orphans)} run(s) claimed by a transaction whose outcome was lost")

    def _stop_cancelled(self, mono: float) -> None:
        """Stop the attempts whose runs were cancelled while running (a newer cron fire replaced them)."""
        wanted = set(self.store.cancel_requests(self.id))
        for proc in self.running.values():
            if (proc.claim.run_id, proc.claim.attempt) in wanted and not proc.cancelled:
                proc.cancelled = True
                runner.kill_group(proc.pid, signal.SIGTERM)
                proc.kill_at = mono + self.kill_grace
                self._event(f"cancel    {proc.claim.run_id}: its run was cancelled; stopping its process group")

    def rescue(self) -> int:
        """Put back runs whose pool died; kill leftovers of those that ran here."""
        dead, alive_here, here = [], set(), set()
        store_now = self.store.now()
        for worker in self.store.list_workers():
            if worker.id == self.id:
                continue
            if worker.host == self.host and runner.on_this_machine(worker.host, worker.machine):
                here.add(worker.id)
                if runner.is_alive(worker.pid, worker.proc_start):
                    alive_here.add(worker.id)
                else:
                    dead.append(worker.id)
            elif worker.heartbeat_at < store_now - max(3 * self.lease_seconds, 60):  # the store's clock: no skew
                dead.append(worker.id)
        rescued = 0
        while True:  # in batches; a dead pool's row goes only once all its runs are back
            batch = self.store.find_expired(dead, RESCUE_BATCH)
            done = sum(self._rescue_one(expired, here, alive_here) for expired in batch)
            rescued += done
            if len(batch) < RESCUE_BATCH:
                for worker_id in dead:
                    self.store.unregister_worker(worker_id)
                break
            if not done:
                break  # a full batch of live pools' late runs: the dead pools' rows stay for the next look
        if rescued:
            self._hint = True
        return rescued

    def _rescue_one(self, expired: Expired, here: set[str], alive_here: set[str]) -> bool:
        """Put back one run of a dead pool, after killing what is left of it on this machine."""
        if expired.worker_id == self.id or expired.worker_id in alive_here:
            return False  # a live pool late on its heartbeat (suspended, clock step): not dead
        tail = ""
        if expired.worker_id in here or (expired.worker_id is None and expired.host == self.host):
            runner.kill_leftovers(
                expired.run_id,
                expired.pgid,
                expired.proc_start,
                expired.attempt,
                expired.worker_id,
                escaped=expired.pgid is None,  # the group unknown: the markers alone decide
            )
            run = self.store.get_run(expired.run_id)
            tail = runner.read_tail(run.log_path if run else None)
        state = self.store.requeue_lost(expired, tail)
        if state is None:
            return False
        self._say(f"rescued {expired.run_id} from dead pool {expired.worker_id}: now {state}")
        lost = self.store.get_run(expired.run_id)
        if lost is not None and lost.job:
            self._write_statuses({lost.job})  # the lost attempt counts: its job's file says so
        return True

    # -- children -------------------------------------------------------
    def _on_exit(self, proc: runner.Process) -> None:
        if self._lets_group_finish(proc):
            return
        self._collect(proc)
        if not self.stop_level:
            self._hint = True

    def _lets_group_finish(self, proc: runner.Process) -> bool:
        """A leader that ended on SIGTERM leaves the rest of its group its kill grace to clean up.

        Its zombie keeps the group id from reuse; the pool collects it once the
        group is empty or the grace is over (SIGKILL), whichever comes first.
        """
        if proc.kill_at is None or proc.claim.keep_children or self.monotonic() >= proc.kill_at:
            return False
        if not runner.group_lives_on(proc.pid):
            return False
        proc.leader_gone = True
        self._selector.unregister(proc.pidfd)
        return True

    def _collect(self, proc: runner.Process) -> None:
        if not proc.leader_gone:
            self._selector.unregister(proc.pidfd)
        del self.running[proc.pid]
        exit_code, outcome, error = runner.reap(proc, self._own, self.id)
        if proc.recorded and self.guardian is not None:
            self.guardian.forget(proc.pid)
        self._end_output(proc)
        lingering = proc.output in self._lingering  # a kept daemon may still write: the file may come later
        log_path = proc.output.path if proc.output.wrote or lingering else None
        self._add_result(
            AttemptResult(
                claim=proc.claim,
                worker_id=self.id,
                pgid=proc.pid,
                started_at=proc.started_at,
                finished_at=self.clock(),
                exit_code=exit_code,
                outcome=outcome,
                error=error,
                output_tail=runner.read_tail(log_path),
                log_path=log_path,
            )
        )

    def _enforce_deadlines(self, mono: float) -> None:
        for proc in [p for p in self.running.values() if p.leader_gone]:
            if mono >= proc.kill_at or not runner.group_lives_on(proc.pid):  # type: ignore[operator]
                self._collect(proc)
        for proc in self.running.values():
            if proc.kill_at is not None:
                if mono >= proc.kill_at:
                    runner.kill_group(proc.pid, signal.SIGKILL)
                    proc.kill_at = mono + 1.0  # keep at it until the leader is gone
            elif proc.deadline is not None and mono >= proc.deadline:
                proc.timed_out = True
                runner.kill_group(proc.pid, signal.SIGTERM)
                proc.kill_at = mono + self.kill_grace
                self._event(f"timeout   {proc.claim.run_id} after {proc.claim.timeout:g}s: stopping its process group")
        if self.stop_deadline is not None and mono >= self.stop_deadline and self.stop_level == 1:
            self._say(f"stop-grace of {self.stop_grace:g}s is over: stopping running commands")
            self._begin_stop(2, mono)

    def _on_output(self, output: Output) -> None:
        if not output.closed and output.pump():
            self._selector.unregister(output.fd)
            output.close()
            self._lingering.discard(output)

    def _end_output(self, proc: runner.Process) -> None:
        """After the leader: stop reading, unless a kept daemon still holds the pipe (read on, within the cap)."""
        output = proc.output
        if output.closed:
            return
        if proc.claim.keep_children and not output.pump():
            self._lingering.add(output)
            return
        self._selector.unregister(output.fd)
        output.close()

    def _check_children(self, mono: float) -> None:
        self._next_child_check = mono + CHILD_CHECK_EVERY
        reaper.reap_adopted(self._own)

    @property
    def _own(self) -> set[int]:
        """The pool's own children (leaders, guardian): never taken for adopted ones."""
        own = set(self.running)
        if self.guardian is not None:
            own.add(self.guardian.pid)
        return own

    def _wait_all(self) -> None:
        for proc in list(self.running.values()):
            self._collect(proc)

    # -- signals and stopping ------------------------------------------------
    def _install_signals(self) -> None:
        try:
            self._signal_r, self._signal_w = socket.socketpair()
            self._signal_r.setblocking(False)
            self._signal_w.setblocking(False)
            old_fd = signal.set_wakeup_fd(self._signal_w.fileno(), warn_on_full_buffer=False)
        except ValueError:  # not the main thread: no signal handling; the embedding program stops the pool
            return
        if old_fd != -1:
            signal.set_wakeup_fd(old_fd)
            return
        self._selector.register(self._signal_r, selectors.EVENT_READ, self._on_signal_pipe)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        if self._old_handlers:
            for sig, handler in self._old_handlers.items():
                signal.signal(sig, signal.SIG_IGN if self.owns_process else handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(-1)

    def _on_signal(self, signum: int, frame: object) -> None:
        """Nothing: Python may merge repeated signals into one call; the wakeup bytes count them."""

    def _on_signal_pipe(self) -> None:
        if self._signal_r is None:
            return
        try:
            while data := self._signal_r.recv(64):
                self._signals += sum(1 for b in data if b in (signal.SIGTERM, signal.SIGINT))
        except (BlockingIOError, InterruptedError):
            pass

    def _watch_wake(self) -> None:
        """(Re)register the wake-up descriptor; a listener that reconnected has a new one."""
        if self._wake is None or (self._wake_fd >= 0 and not self._wake.broken()):
            return
        if self._wake_fd >= 0:
            self._selector.unregister(self._wake_fd)  # before the descriptor goes away
            self._wake_fd = -1
        if self._wake.broken():
            self._wake.repair()
        if not self._wake.broken():
            self._wake_fd = self._wake.fileno()
            self._selector.register(self._wake_fd, selectors.EVENT_READ, self._on_wake)

    def _on_wake(self) -> None:
        if self._wake is not None:
            self._wake.drain()
            if self._wake.broken():
                self._watch_wake()
        self._hint = True
        # News may be a cancellation or a stop: look soon, but at most once a second (every
        # enqueue on a shared PostgreSQL store wakes every pool of every host).
        soon = max(self.monotonic(), self._last_heartbeat + WAKE_HEARTBEAT_GAP)
        self._next_heartbeat = min(self._next_heartbeat, soon)
        if self.on_wake is not None:
            self.on_wake()

    def _take_signals(self, mono: float) -> None:
        while self._signals:
            self._signals -= 1
            # Signals count on their own: a stop asked through the store, then
            # the SIGTERM of the same `worker stop`, is one graceful stop, not two.
            self._signal_level += 1
            level = max(self._signal_level, self.stop_level)
            if level <= self.stop_level:
                continue
            self._say(
                "stopping: no new claims, waiting for running commands (signal again to stop at once)"
                if level == 1
                else "stopping at once: killing running commands and returning their runs to the queue"
            )
            self._begin_stop(level, mono)

    def _begin_stop(self, level: int, mono: float) -> None:
        level = min(level, 2)
        if level <= self.stop_level:
            return
        self.stop_level = level
        if level == 1:
            self.stop_deadline = mono + self.stop_grace
            return
        self.stop_deadline = None
        self._cold_since = mono
        for proc in self.running.values():
            if not proc.interrupted:
                proc.interrupted = True
                runner.kill_group(proc.pid, signal.SIGTERM)
                proc.kill_at = mono + COLD_KILL_GRACE

    # -- helpers --------------------------------------------------------
    def _load_settings(self) -> None:
        values = config.effective(self.store.config())
        self.lease_seconds = values["lease-seconds"]
        self.poll_interval = values["worker-poll-interval"]
        self.stop_grace = values["stop-grace"]
        self.kill_grace = values["kill-grace"]
        self.log_max_bytes = values["log-max-bytes"]

    def _report(self, res: AttemptResult, state: RunState | None) -> None:
        key = res.outcome.value
        self.stats.finished[key] = self.stats.finished.get(key, 0) + 1
        if self.verbose:
            took = res.finished_at - res.started_at
            where = f"now {state}" if state is not None else "already rescued elsewhere"
            detail = f" ({res.error})" if res.error else ""
            line = f"{res.outcome.value:<9} {res.claim.run_id} in {took:.2f}s{detail}: {where}"
            for i, held in enumerate(self._held):
                if held is res:
                    self._held[i] = line
                    break
            else:
                self._say(line)
            self._flush_held()

    def _event(self, line: str) -> None:
        """A line about a run (start, timeout, cancel): in the order things happened, and only when verbose.

        An attempt's end is written after the store has recorded it, so a line
        about something that happened later waits behind it.
        """
        if not self.verbose:
            return
        if self._held:
            self._held.append(line)
        else:
            self._say(line)

    def _flush_held(self, everything: bool = False) -> None:
        """Write the held lines up to the first result the store has not answered for yet."""
        while self._held and (everything or isinstance(self._held[0], str)):
            held = self._held.pop(0)
            if isinstance(held, str):
                self._say(held)

    def _say(self, message: str) -> None:
        if self.log:
            self.log(message)


def _some(names: list[str]) -> str:
    more = len(names) - SHOW_RUNS
    return ", ".join(names[:SHOW_RUNS]) + (f" and {more} more" if more > 0 else "")


def _check_pidfd() -> None:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (OSError, AttributeError) as exc:
        raise QueueError(
            f"cannot watch processes: pidfd_open is unavailable ({exc}); Linux 5.3 or newer is needed"
        ) from None


def _check_log_dir(path: str) -> None:
    """The log directory: a real directory of ours that only we can enter (logs hold job output)."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)  # its parent is the store's or the private state directory
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode):
            raise QueueError(f"refused: the log directory {path} is not a directory (a symbolic link?); remove it")
        if info.st_uid != os.geteuid():
            raise QueueError(f"refused: the log directory {path} belongs to uid {info.st_uid}, not to you; remove it")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)  # ours, but open to others (made by an older queuectl or by hand)
        probe = os.path.join(path, f".probe-{os.getpid()}")
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise QueueError(f"cannot use the log directory {path}: {exc.strerror or exc}") from None


def _raise_fd_limit() -> None:
    """Each slot needs a few descriptors: take the hard limit, as servers do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
