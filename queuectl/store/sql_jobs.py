"""The job catalogue, written once for every SQL engine: declared jobs, their runs, their status."""

from __future__ import annotations

import json
from collections.abc import Sequence

from queuectl.model import FireRun, Job, JobSource, JobSpec, JobStatus, NewRun, Run, RunState, shown_state
from queuectl.store.contract import JobCatalogue
from queuectl.store.sql_core import chunks
from queuectl.store.sql_rollups import SQLRollups, Tally
from queuectl.store.sql_rows import job_from_row, new_run_params, run_from_row


class SQLJobCatalogue(SQLRollups, JobCatalogue):
    """Jobs as the manifests declared them, with their runs and status; locks and tokens are the engine's."""

    def list_jobs(self) -> list[Job]:
        return [job_from_row(r) for r in self._read("list_jobs")]

    def get_job(self, name: str) -> Job | None:
        rows = self._read("get_job", {"name": name})
        return job_from_row(rows[0]) if rows else None

    def put_job(
        self,
        spec: JobSpec,
        source: str,
        file: str,
        file_hash: str,
        git_commit: str | None = None,
        git_dirty: bool = False,
        status_dir: str | None = None,
    ) -> Job:
        return self.put_jobs([JobSource(spec, source, file, file_hash, git_commit, git_dirty, status_dir)])[0]

    def put_jobs(self, entries: Sequence[JobSource]) -> list[Job]:
        if not entries:
            return []
        now = self._now()
        rows = [
            {
                "name": e.spec.name,
                "spec": e.spec.canonical,
                "spec_hash": e.spec.spec_hash,
                "run_hash": e.spec.run_hash,
                "source": e.source,
                "file": e.file,
                "file_hash": e.file_hash,
                "git_commit": e.git_commit,
                "git_dirty": e.git_dirty,
                "status_dir": e.status_dir,
                "now": now,
            }
            for e in entries
        ]
        with self.batch():
            self._write_many("upsert_job", rows)
            times: dict[str, tuple[float, float, float, bool]] = {}
            for part in chunks([e.spec.name for e in entries]):
                for r in self._read("job_times", {"names": json.dumps(list(part))}):
                    times[r[0]] = (r[1], r[2], r[3], bool(r[4]))
        jobs = []
        for e in entries:
            created_at, updated_at, version_at, suspended = times[e.spec.name]
            job = Job(
                e.spec.name,
                e.spec.canonical,
                e.spec.spec_hash,
                e.spec.run_hash,
                e.source,
                e.file,
                e.file_hash,
                e.git_commit,
                e.git_dirty,
                e.status_dir,
                None,
                created_at,
                updated_at,
                version_at,
                suspended,
            )
            job.__dict__["spec"] = e.spec
            jobs.append(job)
        return jobs

    def delete_job(self, name: str, reason: str) -> list[str]:
        with self.batch():
            # the job's row first, its runs after: the order the scheduler locks them in (no deadlock)
            self._write("delete_job", {"name": name})
            return self.cancel_job_runs(name, reason)

    def set_job_error(self, name: str, error: str | None) -> None:
        with self.batch():
            self._write("set_job_error", {"name": name, "error": error})

    def cancel_job_runs(self, name: str, reason: str) -> list[str]:
        now = self._now()
        with self.batch():
            rows = self._write("cancel_job_runs", {"name": name, "now": now, "reason": reason})
            tally = Tally()
            tally.cancelled(rows)
            self._add_tally(tally, now)
        return sorted(r[0] for r in rows)

    def add_job_runs(self, runs: Sequence[NewRun]) -> int:
        if not runs:
            return 0
        now = self._now()
        with self.batch():
            return self._write_many("insert_job_run", [new_run_params(run, now) for run in runs])

    def unfinished_job_runs(self, name: str) -> list[tuple[str, RunState]]:
        return [(r[0], RunState(r[1])) for r in self._read("unfinished_job_runs", {"name": name})]

    def cancel_running_job_runs(self, name: str, reason: str) -> list[str]:
        with self.batch():
            rows = self._write("cancel_running_job_runs", {"name": name, "now": self._now(), "reason": reason})
            return sorted(r[0] for r in rows)

    def job_status(self, name: str, counted: bool = True) -> JobStatus | None:
        with self._snapshot():
            job = self.get_job(name)
            if job is None:
                return None
            last = self._read("last_job_run", {"name": name})
            next_at = self._read("next_job_run", {"name": name})[0][0]
            now = self._now()
            found = self._read("job_run_counts", {"name": name, "now": now}) if counted else []
            counts = {r[0]: int(r[1]) for r in found}
        return JobStatus(job, run_from_row(last[0], now) if last else None, next_at, counts)

    def latest_job_run(self, name: str, started: bool) -> Run | None:
        rows = self._read("last_started_job_run" if started else "last_job_run", {"name": name})
        return run_from_row(rows[0], self._now()) if rows else None

    def fire_runs(self, name: str, start: float, end: float, limit: int) -> list[FireRun]:
        now = self._now()
        rows = self._read("fire_runs", {"job": name, "start": start, "end": end, "limit": limit})
        return [
            FireRun(
                r["id"],
                r["scheduled_for"],
                shown_state(RunState(r["state"]), r["run_at"], now),
                r["tries"],
                r["first_started_at"],
            )
            for r in rows
        ]
