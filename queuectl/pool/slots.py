"""Process supervision: the pool's slots and the attempts in them.

Spawning claims into free slots, reaping leaders (their pidfds are in the loop's
selector), copying their output into capped logs, timeouts (SIGTERM to the whole
group, SIGKILL after kill-grace), a leader's group given its grace to finish,
adopted orphans reaped, and the guardian told which groups to kill should the pool die.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
from collections import deque
from collections.abc import Callable
from functools import partial

from queuectl import reaper, runner
from queuectl.capture import Output
from queuectl.durations import format_duration
from queuectl.guardian import Guardian
from queuectl.model import AttemptResult, Claim, Outcome, ProcessInfo
from queuectl.pool.batching import RECORD_DELAY
from queuectl.pool.lines import PoolLines

SPAWN_RETRY = 0.5  # the pool was short of a resource to start a run: try again after this long
CHILD_CHECK_EVERY = 1.0  # adopted children that died meanwhile are reaped this often
GROUP_CHECK_EVERY = 0.05  # a group whose leader ended on SIGTERM is looked at this often until it is empty
# errno values that mean the pool is short of a resource, not that the run is bad
POOL_SHORTAGES = {errno.EMFILE, errno.ENFILE, errno.EAGAIN, errno.ENOMEM, errno.ENOSPC}


class Slots:
    """The attempts in flight, by leader pid; their pidfds and output pipes are in the loop's selector."""

    def __init__(
        self,
        count: int,
        pool_id: str,
        logs: str,
        selector: selectors.BaseSelector,
        lines: PoolLines,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        on_result: Callable[[AttemptResult], None],
        on_free: Callable[[], None],
    ) -> None:
        self.count = count
        self.pool_id = pool_id
        self.logs = logs
        self.selector = selector
        self.lines = lines
        self.clock = clock
        self.monotonic = monotonic
        self.on_result = on_result  # an attempt ended (or could not start)
        self.on_free = on_free  # a leader ended and its slot is free
        self.env = dict(os.environ, **{runner.POOL_VAR: pool_id})  # marks what its commands start
        self.running: dict[int, runner.Process] = {}  # by pid
        self.lingering: set[Output] = set()  # output of kept daemons, still read after their run ended
        self.guardian: Guardian | None = None
        self.home = -1  # the pool's working directory, for commands without cwd
        self.spawn_retry_at = 0.0
        self.next_child_check = 0.0

    def start(self) -> None:
        self.home = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
        self.guardian = Guardian(self.pool_id)  # before the pool's sockets: it must not inherit them

    # -- starting -------------------------------------------------------
    def fill(self, ready: deque[tuple[Claim, float]], stopping: bool, mono: float, log_max_bytes: float) -> None:
        """Start ready claims in free slots; a pool short of a resource tries again after SPAWN_RETRY."""
        while ready and not stopping and len(self.running) < self.count and mono >= self.spawn_retry_at:
            claim, claimed_at = ready.popleft()
            if not self._spawn(claim, mono, log_max_bytes):
                ready.appendleft((claim, claimed_at))  # the pool is short of something: later
                self.spawn_retry_at = mono + SPAWN_RETRY
                return

    def _spawn(self, claim: Claim, mono: float, log_max_bytes: float) -> bool:
        """Start an attempt; False when the pool (not the run) lacks a resource."""
        log_path = runner.log_path(self.logs, claim)
        now = self.clock()
        try:
            proc = runner.spawn(claim, log_path, int(log_max_bytes), self.env, now, mono, self.home)
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in POOL_SHORTAGES:
                self.lines.say(f"cannot start {claim.run_id} now ({exc.strerror}); retrying shortly")
                return False
            if isinstance(exc, OSError):
                cwd_missing = claim.cwd and not os.path.isdir(claim.cwd)
                error = f"{'cannot enter ' + str(claim.cwd) if cwd_missing else 'cannot start'}: {exc.strerror}"
            else:
                error = f"cannot start: {exc}"
            self.lines.event(f"no start  {claim.run_id} (attempt {claim.attempt}): {error}")
            self.on_result(AttemptResult(claim, self.pool_id, None, now, now, None, Outcome.FAILED, error, ""))
            return True
        self.running[proc.pid] = proc
        self.selector.register(proc.pidfd, selectors.EVENT_READ, partial(self._on_exit, proc))
        self.selector.register(proc.output.fd, selectors.EVENT_READ, partial(self._on_output, proc.output))
        self.lines.start(claim, now)
        return True

    # -- recording --------------------------------------------------------
    def first_unrecorded(self) -> float | None:
        """When the oldest process not yet recorded in the store was spawned."""
        return min((p.spawned for p in self.running.values() if not p.recorded), default=None)

    def to_record(self, mono: float) -> tuple[list[runner.Process], list[ProcessInfo]]:
        """The processes that have run RECORD_DELAY unrecorded, and what the store is to record of them."""
        fresh = [p for p in self.running.values() if not p.recorded and mono >= p.spawned + RECORD_DELAY]
        records = [
            ProcessInfo(
                p.claim.run_id, p.pid, runner.proc_start_time(p.pid) or 0, p.log_path, p.started_at, p.claim.attempt
            )
            for p in fresh
        ]
        return fresh, records

    def recorded(self, fresh: list[runner.Process], records: list[ProcessInfo]) -> None:
        """The store has them: the guardian now watches their groups."""
        for proc, info in zip(fresh, records, strict=True):
            proc.recorded = True
            if self.guardian is not None and info.proc_start:
                claim = proc.claim
                self.guardian.watch(proc.pid, info.proc_start, claim.run_id, claim.attempt, claim.keep_children)

    # -- ends -----------------------------------------------------------
    def _on_exit(self, proc: runner.Process) -> None:
        if self._lets_group_finish(proc):
            return
        self._collect(proc)
        self.on_free()

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
        self.selector.unregister(proc.pidfd)
        return True

    def _collect(self, proc: runner.Process) -> None:
        if not proc.leader_gone:
            self.selector.unregister(proc.pidfd)
        del self.running[proc.pid]
        exit_code, outcome, error = runner.reap(proc, self.own, self.pool_id)
        if proc.recorded and self.guardian is not None:
            self.guardian.forget(proc.pid)
        self._end_output(proc)
        lingering = proc.output in self.lingering  # a kept daemon may still write: the file may come later
        log_path = proc.output.path if proc.output.wrote or lingering else None
        self.on_result(
            AttemptResult(
                claim=proc.claim,
                worker_id=self.pool_id,
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

    def _on_output(self, output: Output) -> None:
        if not output.closed and output.pump():
            self.selector.unregister(output.fd)
            output.close()
            self.lingering.discard(output)

    def _end_output(self, proc: runner.Process) -> None:
        """After the leader: stop reading, unless a kept daemon still holds the pipe (read on, within the cap)."""
        output = proc.output
        if output.closed:
            return
        if proc.claim.keep_children and not output.pump():
            self.lingering.add(output)
            return
        self.selector.unregister(output.fd)
        output.close()

    # -- deadlines and kills ---------------------------------------------
    def enforce_deadlines(self, mono: float, kill_grace: float) -> None:
        """Timeouts (SIGTERM to the group), kill graces (SIGKILL), and groups whose leader is gone."""
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
                proc.kill_at = mono + kill_grace
                self.lines.event(
                    f"timeout   {proc.claim.run_id} after {format_duration(proc.claim.timeout)}: "
                    "stopping its process group"
                )

    def moments(self, mono: float) -> list[float]:
        """When the processes next need looking at: adopted children, groups, kill graces, timeouts."""
        moments = [self.next_child_check] if self.running else []
        for proc in self.running.values():
            if proc.leader_gone:
                moments.append(mono + GROUP_CHECK_EVERY)
            if proc.kill_at is not None:
                moments.append(proc.kill_at)
            elif proc.deadline is not None:
                moments.append(proc.deadline)
        return moments

    def cancel(self, wanted: set[tuple[str, int]], mono: float, kill_grace: float) -> None:
        """Stop the attempts (run id, attempt) whose runs were cancelled while running."""
        for proc in self.running.values():
            if (proc.claim.run_id, proc.claim.attempt) in wanted and not proc.cancelled:
                proc.cancelled = True
                runner.kill_group(proc.pid, signal.SIGTERM)
                proc.kill_at = mono + kill_grace
                self.lines.event(f"cancel    {proc.claim.run_id}: its run was cancelled; stopping its process group")

    def interrupt(self, mono: float, grace: float) -> None:
        """A stop at once: SIGTERM every group, SIGKILL after `grace`; their runs go back to the queue."""
        for proc in self.running.values():
            if not proc.interrupted:
                proc.interrupted = True
                runner.kill_group(proc.pid, signal.SIGTERM)
                proc.kill_at = mono + grace

    def kill_all(self) -> None:
        """SIGKILL what still runs and collect it (only after an error: leave no command behind)."""
        if not self.running:
            return
        for proc in self.running.values():
            runner.kill_group(proc.pid, signal.SIGKILL)
            proc.interrupted = True
        for proc in list(self.running.values()):
            self._collect(proc)

    def check_children(self, mono: float) -> None:
        self.next_child_check = mono + CHILD_CHECK_EVERY
        reaper.reap_adopted(self.own)

    @property
    def own(self) -> set[int]:
        """The pool's own children (leaders, guardian): never taken for adopted ones."""
        own = set(self.running)
        if self.guardian is not None:
            own.add(self.guardian.pid)
        return own

    def let_go(self) -> None:
        """Close the working directory and the kept daemons' output (one that writes on gets EPIPE)."""
        if self.home >= 0:
            os.close(self.home)
        for output in self.lingering:
            output.close()
        self.lingering.clear()

    def close_guardian(self) -> None:
        if self.guardian is not None:
            self.guardian.close()
