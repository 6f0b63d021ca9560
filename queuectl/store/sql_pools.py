"""The pool registry, written once for every SQL engine: pools, their heartbeats and stop requests."""

from __future__ import annotations

import json
from collections.abc import Sequence

from queuectl.model import Worker
from queuectl.store.contract import PoolRegistry
from queuectl.store.sql_core import SQLCore
from queuectl.store.sql_rows import named_from_row


class SQLPoolRegistry(SQLCore, PoolRegistry):
    """Worker pools: registered, renewing their leases by heartbeat, asked to stop."""

    def register_worker(self, worker: Worker) -> None:
        with self.batch():
            self._write(
                "insert_worker",
                {
                    "id": worker.id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "proc_start": worker.proc_start,
                    "slots": worker.slots,
                    "machine": worker.machine,
                    "now": self._now(),
                },
            )

    def unregister_worker(self, worker_id: str) -> None:
        with self.batch():
            self._write("delete_worker", {"worker_id": worker_id})

    def list_workers(self) -> list[Worker]:
        return [
            named_from_row(
                Worker,
                r,
                stop_requested=bool(r["stop_requested"]),
                running=tuple(json.loads(r["running"] or "[]")),
                machine=r["machine"] or "",
            )
            for r in self._read("list_workers")
        ]

    def heartbeat(self, worker_id: str, lease_seconds: float) -> bool | None:
        now = self._now()
        with self.batch():
            self._write("extend_leases", {"worker_id": worker_id, "lease_expires": now + lease_seconds})
            rows = self._write("touch_worker", {"worker_id": worker_id, "now": now})
        return bool(rows[0][0]) if rows else None

    def request_stop(self, worker_ids: Sequence[str]) -> None:
        with self.batch():
            self._write("request_stop", {"ids": json.dumps(list(worker_ids))})
