"""A pool on another machine with the same host name is not taken for dead by its pid."""

from __future__ import annotations

from pathlib import Path

import pytest

from queuectl import runner
from queuectl.model import NewRun, Worker
from queuectl.pool import Pool
from queuectl.store.sqlite import SQLiteStore


@pytest.mark.parametrize(("machine", "rescued"), [("other-boot/4026531836", 0), (runner.MACHINE, 1)])
def test_a_same_named_host_s_pool_is_judged_by_its_machine(tmp_path: Path, machine: str, rescued: int) -> None:
    store = SQLiteStore(str(tmp_path / "q.db"))
    try:
        store.enqueue([NewRun("r1", "sleep 60", 5, 3, 2.0, 3600.0, None)])
        now = store.now()
        # a pool with our host name whose pid is not alive here, holding r1 under a fresh lease
        store.register_worker(Worker("twin", runner.HOST, 2**22 + 7, 1, 1, now, now, False, machine=machine))
        [claim] = store.claim_runs("twin", runner.HOST, 1, 300.0)
        pool = Pool(store, 1, log=None)
        assert pool.rescue() == rescued
        run = store.get_run(claim.run_id)
        assert run is not None
        assert run.state.value == ("running" if rescued == 0 else "pending")
    finally:
        store.close()
