"""Rescue: runs held by pools that died go back to the queue, after what is left of them here is killed.

A pool on this machine is dead when its process is gone (pid and start time); a pool
elsewhere when its heartbeat, by the store's clock, is older than
max(3 x lease-seconds, 60 s). Its runs come back as their leases expire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from queuectl import runner
from queuectl.model import Expired
from queuectl.store import Store

RESCUE_BATCH = 100  # expired runs looked at per store read during a rescue
DEAD_AFTER_MIN = 60  # seconds without a heartbeat before a pool elsewhere is taken for dead (at least)


@dataclass(frozen=True)
class Pools:
    """The other pools on the store, as the rescue sees them."""

    dead: list[str]
    here: set[str]  # on this machine
    alive_here: set[str]  # on this machine, process alive


@dataclass(frozen=True)
class Rescuer:
    """The rescue as one pool does it, on the heartbeat and at start."""

    store: Store
    pool_id: str
    host: str
    say: Callable[[str], None]
    settled: Callable[[set[str]], None]  # told of jobs whose lost attempt now counts (their status files)

    def rescue(self, lease_seconds: float) -> int:
        """Put back runs whose pool died; kill leftovers of those that ran here. Returns how many came back."""
        pools = self.sort_pools(lease_seconds)
        rescued = 0
        while True:  # in batches; a dead pool's row goes only once all its runs are back
            batch = self.store.find_expired(pools.dead, RESCUE_BATCH)
            done = sum(self.rescue_one(expired, pools) for expired in batch)
            rescued += done
            if len(batch) < RESCUE_BATCH:
                for worker_id in pools.dead:
                    self.store.unregister_worker(worker_id)
                break
            if not done:
                break  # a full batch of live pools' late runs: the dead pools' rows stay for the next look
        return rescued

    def sort_pools(self, lease_seconds: float) -> Pools:
        dead: list[str] = []
        here: set[str] = set()
        alive_here: set[str] = set()
        store_now = self.store.now()
        for worker in self.store.list_workers():
            if worker.id == self.pool_id:
                continue
            if worker.host == self.host and runner.on_this_machine(worker.host, worker.machine):
                here.add(worker.id)
                if runner.is_alive(worker.pid, worker.proc_start):
                    alive_here.add(worker.id)
                else:
                    dead.append(worker.id)
            elif worker.heartbeat_at < store_now - max(3 * lease_seconds, DEAD_AFTER_MIN):  # the store's clock
                dead.append(worker.id)
        return Pools(dead, here, alive_here)

    def rescue_one(self, expired: Expired, pools: Pools) -> bool:
        """Put back one run of a dead pool, after killing what is left of it on this machine."""
        if expired.worker_id == self.pool_id or expired.worker_id in pools.alive_here:
            return False  # a live pool late on its heartbeat (suspended, clock step): not dead
        tail = ""
        if expired.worker_id in pools.here or (expired.worker_id is None and expired.host == self.host):
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
        self.say(f"rescued {expired.run_id} from dead pool {expired.worker_id}: now {state}")
        lost = self.store.get_run(expired.run_id)
        if lost is not None and lost.job:
            self.settled({lost.job})  # the lost attempt counts: its job's file says so
        return True
