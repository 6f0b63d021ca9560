"""A pool whose store fails for a while waits for it; it does not spin, and a dead pool's runs all come back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from queuectl import runner
from queuectl.errors import StoreBusyError
from queuectl.model import NewRun, ProcessInfo, RunState, Worker
from queuectl.pool import Pool
from queuectl.store.contract import Store
from queuectl.store.factory import open_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = open_store(str(tmp_path / "q.db"))
    yield opened  # type: ignore[misc]
    opened.close()


def test_a_pool_waits_out_a_failing_store_without_spinning(store: Store) -> None:
    pool = Pool(store, 2)
    pool.start()
    try:
        failing_until = time.monotonic() + 1.5
        claim = store.claim_runs

        def broken_claim(*args: object, **kwargs: object) -> object:
            if time.monotonic() < failing_until:
                raise StoreBusyError("store: connection lost (injected)")
            return claim(*args, **kwargs)  # type: ignore[arg-type]

        store.claim_runs = broken_claim  # type: ignore[method-assign]
        cpu = time.process_time()
        while time.monotonic() < failing_until + 0.2:
            pool.run_once(max_wait=0.5)
        used = time.process_time() - cpu
        assert used < 0.5, f"the pool used {used:.2f} s of CPU in 1.7 s while its store failed"
    finally:
        pool.stop_level = 1
        pool.close()


def dead_pool_holding(store: Store, run_ids: list[str], pgid: int) -> None:
    """Runs claimed and recorded as running in group `pgid` by a pool of this machine that has died."""
    now = time.time()
    store.enqueue(
        [
            NewRun(id=i, command="true", priority=5, max_retries=3, backoff_base=2.0, backoff_max=60.0, timeout=None)
            for i in run_ids
        ]
    )
    claims = store.claim_runs("deadpool", runner.HOST, len(run_ids), 600)
    store.record_processes("deadpool", [ProcessInfo(c.run_id, pgid, 1, None, now, c.attempt) for c in claims])
    store.register_worker(
        Worker(
            id="deadpool",
            host=runner.HOST,
            pid=4_000_001,  # with start time 1: no live process is this pool
            proc_start=1,
            slots=len(run_ids),
            started_at=now,
            heartbeat_at=now,
            stop_requested=False,
            machine=runner.MACHINE,
        )
    )


def test_a_rescue_puts_back_every_run_of_a_dead_pool_however_many(store: Store) -> None:
    dead_pool_holding(store, [f"r{i:03d}" for i in range(250)], 4_000_000)
    assert Pool(store, 1).rescue() == 250
    assert store.counts()[RunState.PENDING.value] == 250
    assert store.list_workers() == []


def test_a_rescue_spares_another_stores_run_of_the_same_id_in_a_reused_group(store: Store) -> None:
    """The dead attempt's group id now names a run of the same id and attempt in another store's pool."""
    env = dict(os.environ, QUEUECTL_RUN_ID="x", QUEUECTL_ATTEMPT="1", QUEUECTL_POOL="another-stores-pool")
    other = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300"], process_group=0, env=env)
    try:
        dead_pool_holding(store, ["x"], other.pid)
        assert Pool(store, 1).rescue() == 1
        assert other.poll() is None, "the other store's run was killed"
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait()
