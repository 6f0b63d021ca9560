"""`queuectl up` and `queuectl worker start`: the first apply, the watcher, the scheduler and the pool.

A `Supervisor` serves jobs directories: it applies them, keeps applying them as
they change (a `Watcher` calls the one apply path), turns cron fires into runs
from a thread of its own (`Scheduler.run_once(now)`), and runs the runs in a
`Pool` in the calling thread, which takes SIGTERM and SIGINT as ever (the first
stops claiming, the second stops at once). `run()` serves until the pool stops;
`stop()` asks it to from any thread, as `queuectl worker stop` does, through the
store; in burst mode `run()` applies, fires what is due now, runs it and returns.
`apply_once()` and `schedule_once()` are the steps, which tests call directly.
With no directories (`worker start`) nothing is applied or watched: the pool
runs beside the scheduler, which the pools on one store elect among themselves.

Lines go to `say`; time comes from `clock` (default: the store's own time).
No click, no rich: every front end can embed it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

from queuectl import config, planview, up_lines
from queuectl.apply import Plan
from queuectl.errors import QueueError, StoreBusyError, StoreError, UsageError
from queuectl.pool import Pool
from queuectl.pool.lines import PoolStats
from queuectl.pool.outcome import BurstOutcome
from queuectl.scheduler import LEASE, Scheduler, Tick
from queuectl.services import jobs
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from queuectl.watcher import Watcher

Say = Callable[[str], None]

LOOKAHEAD = 2.0  # fires this close become runs already, due at their time (pools start them on the dot)
SCHEDULER_PAUSE = 0.02  # between the scheduler's batches, so that pools get the store's write lock
APPLY_RETRY = 1.0  # a passing store failure of an apply: the wait before trying again
LEADER_RETRY = 2.0  # how often a standing-by scheduler tries to become the one that schedules
MAX_SCHEDULER_SLEEP = LEASE / 3  # the scheduler looks at least this often: it renews its seat (and sees a clock step)
SCHEDULER_RETRY = 1.0  # after the scheduler failed (a busy store, a bug): the wait before looking again
SETTLE = 0.5  # a broken file younger than this is looked at again before it is reported
JOIN_PATIENCE = 10.0  # how long the end of `run()` waits for the scheduler's thread


class Beside(Protocol):
    """What serves beside the pool while `run()` does (`up --dashboard`'s web server)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _job_directories(paths: Sequence[str]) -> list[str]:
    """`paths` as absolute directories; a path that is not a directory is a usage error."""
    directories = [os.path.abspath(p) for p in paths]
    for directory in directories:
        if not os.path.isdir(directory):
            raise UsageError(f"not a directory: {directory} (up watches a jobs directory)")
    return directories


def _just_written(path: str | None) -> bool:
    """Whether the file changed less than SETTLE ago (by the file system's clock: the real one)."""
    try:
        return path is not None and time.time() - os.stat(path).st_mtime < SETTLE
    except OSError:
        return False


def _ask_to_stop(store: Store, pool_id: str) -> None:
    """A graceful stop of one pool, asked as `queuectl worker stop` asks it: through the store."""
    store.request_stop([pool_id])
    store.wake_pools()


class Supervisor:
    """Applies `paths`, then watches them (unless burst) while a pool of `slots` runs their jobs."""

    def __init__(
        self,
        store: Store,
        paths: Sequence[str],
        slots: int = 2,
        *,
        say: Say,
        verbose: bool = True,
        burst: bool = False,
        insecure: bool = False,
        status_dir: str | None = None,
        owns_process: bool = False,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        scheduling: bool = True,
        beside: Sequence[Beside] = (),
    ) -> None:
        self.directories = _job_directories(paths)
        self.store = store  # the pool's connection, used from the thread that calls run()
        self.slots = slots
        self.say = say
        self.verbose = verbose
        self.burst = burst
        self.owns_process = owns_process  # passed to the pool: see Pool
        self.clock = clock
        self.monotonic = monotonic
        self.scheduling = scheduling  # False: this pool never schedules cron fires (another one does)
        self.beside = beside  # started after the first apply, stopped once the pool has stopped
        self._options: dict[str, Any] = {"insecure": insecure, "status_dir": status_dir}
        # the watcher thread's own connection (`up`: it applies); the scheduler's is opened at its first use
        self._applying = open_store(store.url, clock=clock) if self.directories else None
        self._scheduler: Scheduler | None = None
        self._seat_pool: str | None = None  # the pool the scheduler runs beside, once started: its seat names it
        self._apply_lock = threading.Lock()  # one apply at a time: the first one's, then the watcher's
        self._jobs_changed = threading.Event()  # wakes the scheduler's wait
        self._stopping = threading.Event()  # set by stop() or at the end of run(): the scheduler's loop ends
        self._pool_lock = threading.Lock()  # `stop()` and the pool's start agree on who asks the pool to stop
        self._pool_id: str | None = None  # the pool while it is registered
        self._watcher: Watcher | None = None
        self._thread: threading.Thread | None = None
        self._role = ""  # "leader" or "standby" once known: changes are said
        self._refused: tuple[str, ...] = ()  # the manifests the first apply refused
        self._stats: PoolStats | None = None  # the pool's, once it ran
        self._apply_lines = up_lines.ApplyLines()  # what was said of broken files
        self._suspensions = up_lines.Suspensions(self.directories)

    # -- life cycle ----------------------------------------------------------
    def run(self) -> None:
        """Apply, then serve until the pool stops (a signal, `stop()`, or the end of a burst)."""
        if self.directories:
            plan = self.apply_once(first=True)
            self._refused = tuple(planview.relative(c.path) for c in plan.of("invalid") if c.path)
        started: list[Beside] = []
        try:
            for serving in self.beside:
                serving.start()
                started.append(serving)
            if not self.burst:
                self._start_watching()
            self._run_pool()
        finally:
            self._stop_watching()
            self._leave()
            for serving in reversed(started):
                serving.stop()

    def outcome(self) -> BurstOutcome:
        """What `run()` came to: the runs its pool ran and the manifests refused; `exit_code` for a burst."""
        ran = self._stats.outcome() if self._stats is not None else BurstOutcome()
        return ran._replace(refused=self._refused)

    def stop(self) -> None:
        """Ask `run()` to end, from any thread: no new claims, running commands finish (within stop-grace)."""
        with self._pool_lock:
            self._stopping.set()
            pool_id = self._pool_id
        self._jobs_changed.set()
        if pool_id is None:
            return  # not started yet: the pool asks itself once registered (see _serve); or already gone
        store = open_store(self.store.url, clock=self.clock)  # this thread's own connection
        try:
            _ask_to_stop(store, pool_id)
        finally:
            store.close()

    def close(self) -> None:
        """Let go of the supervisor's own connections (not of `store`, which the caller opened)."""
        if self._applying is not None:
            self._applying.close()
        if self._scheduler is not None:
            self._scheduler.store.close()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- applying --------------------------------------------------------------
    def apply_once(self, first: bool = False) -> Plan:
        """Apply the directories and say what changed (the first time, the whole plan); the plan said."""
        assert self._applying is not None, "apply_once() without jobs directories"
        with self._apply_lock:  # held while the lines are said too: they depend on what was said before
            plan = jobs.apply(self._applying, self.directories, **self._options)
            self._jobs_changed.set()
            # A file written a moment ago may still be being written: look again before calling it broken.
            watcher = self._watcher
            settling = [c for c in plan.of("invalid") if watcher is not None and _just_written(c.path)]
            if settling and watcher is not None:
                watcher.recheck(SETTLE)
                plan = Plan([c for c in plan.changes if c not in settling], plan.notes)
            for line in self._apply_lines.lines(plan, first, [c.path for c in settling if c.path]):
                self.say(line)
        return plan

    def _reapply(self) -> None:
        self.apply_once()

    def _apply_failed(self, exc: BaseException) -> None:
        if isinstance(exc, StoreBusyError) and self._watcher is not None:
            self.say(f"apply failed: {exc}; trying again in {APPLY_RETRY:g}s")
            self._watcher.recheck(APPLY_RETRY)  # a deadlock or a lost connection passes: the change must not be lost
        else:
            self.say(f"apply failed: {exc}")

    # -- scheduling --------------------------------------------------------------
    @property
    def scheduler(self) -> Scheduler:
        """The scheduler, on a connection of its own, opened at its first use (after the pool's start
        in `run()`: a busy or damaged store is the pool's to wait for or report)."""
        if self._scheduler is None:
            store = open_store(self.store.url, clock=self.clock)
            self._scheduler = Scheduler(
                store,
                lambda: config.defaults(store),
                pause=lambda: time.sleep(SCHEDULER_PAUSE),
                lookahead=LOOKAHEAD,
            )
        self._scheduler.pool_id = self._seat_pool
        return self._scheduler

    def _start_scheduling(self, pool_id: str) -> None:
        """Once the pool has started: fire what is due now (burst) or start the scheduler's thread."""
        if not self.scheduling:
            return
        self._seat_pool = pool_id
        if self.burst:
            try:
                self.scheduler  # noqa: B018 (its connection: opened here, so that its failure is said)
            except QueueError as exc:  # a store the pool could open but another connection cannot: the pool says why
                self.say(f"scheduler: {exc}")
                return
            self.schedule_once()  # the fires due now; burst does not wait for later ones
            return
        self._thread = threading.Thread(target=self._schedule_loop, name="queuectl-scheduler", daemon=True)
        self._thread.start()

    def schedule_once(self) -> float | None:
        """Turn the fires due by the clock's now into runs; when to look again (None: no fire ahead)."""
        for line in self._suspensions.lines(self.scheduler.store.list_jobs()):
            self.say(line)
        now = self._now()
        tick = self.scheduler.run_once(now)
        if not tick.leader:  # several pools on one store: one schedules, the others stand by
            if self._role != "standby":
                self.say("scheduler: standing by, another pool on this store schedules the fires")
                self._role = "standby"
            return now + LEADER_RETRY + LOOKAHEAD
        if self._role == "standby":
            self.say("scheduler: taking over the scheduling of fires")
        self._role = "leader"
        self._say_tick(tick)
        if tick.started or tick.replaced:
            self.scheduler.store.wake_pools()
        return tick.next_at

    def _now(self) -> float:
        return self.scheduler.store.now()  # the injected clock, else the store's time (a server's: no skew)

    def _say_tick(self, tick: Tick) -> None:
        for run_id in tick.started:
            fire, zone = tick.scheduled[run_id]
            self.say(f"fire      {run_id} for {up_lines.fire_time(fire, zone)}")
        for line in tick.skipped + tick.notes:
            self.say(f"schedule  {line}")
        for run_id in tick.replaced:
            self.say(f"replace   {run_id}: a newer fire replaces it")

    def _schedule_loop(self) -> None:
        while not self._stopping.is_set():
            self._jobs_changed.clear()  # before looking: a change from now on wakes the next wait
            try:
                next_at = self.schedule_once()
            except Exception as exc:  # a busy store, or a bug: say so and look again; never stop scheduling
                why = exc if isinstance(exc, QueueError) else repr(exc)
                self.say(f"scheduler: {why}; looking again in {SCHEDULER_RETRY:g}s")
                self._jobs_changed.wait(SCHEDULER_RETRY)
                continue
            until = MAX_SCHEDULER_SLEEP if next_at is None else next_at - LOOKAHEAD - self._now()
            self._jobs_changed.wait(min(max(0.0, until), MAX_SCHEDULER_SLEEP))

    # -- watching and the pool ----------------------------------------------------
    def _leave(self) -> None:
        """Give the scheduler's seat up, so that another pool takes over at once (best effort)."""
        if self._role != "leader" or (self._thread is not None and self._thread.is_alive()):
            return  # not the scheduler, or its thread still holds the connection: the lease ends by itself
        try:
            self.scheduler.leave()
        except QueueError as exc:
            self.say(f"scheduler: {exc}; another pool takes over when its lease ends")

    def _start_watching(self) -> None:
        if not self.directories:
            return
        self._watcher = Watcher(self.directories, self._reapply, self._apply_failed)
        self._watcher.start()
        self.say(f"watching {', '.join(planview.relative_dir(d) for d in self.directories)} for changes")

    def _stop_watching(self) -> None:
        self._stopping.set()
        self._jobs_changed.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=JOIN_PATIENCE)

    def _run_pool(self) -> None:
        pool = Pool(
            self.store,
            self.slots,
            burst=self.burst,
            log=self.say,
            verbose=self.verbose,
            clock=self.clock or time.time,
            monotonic=self.monotonic,
            owns_process=self.owns_process,
        )
        self._stats = pool.stats
        pool.on_wake = self._jobs_changed.set  # a wake-up may mean jobs changed elsewhere (apply, resume)
        pool.start()
        try:
            self._start_scheduling(pool.id)
            self._serve(pool)
        finally:
            with self._pool_lock:
                self._pool_id = None
            left = pool.close()
        if left:
            raise StoreError(left)

    def _serve(self, pool: Pool) -> None:
        """The pool's loop, once `stop()` can reach the registered pool."""
        with self._pool_lock:
            self._pool_id = pool.id
            asked = self._stopping.is_set()
        if asked:  # stop() came before the pool was registered: ask now
            _ask_to_stop(self.store, pool.id)
        while pool.run_once():
            pass
