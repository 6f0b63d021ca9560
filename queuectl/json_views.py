"""The JSON shape of everything queuectl shows, and the one writer of JSON text.

Every `--json` of the CLI (and the web API, which returns the same documents)
goes through here. The shapes are a contract (see the README): add fields,
never rename. No rich here: a pipe needs none of it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from queuectl.durations import iso_utc, split_seconds
from queuectl.model import Attempt, JobStatus, Run, SchedulerSeat, Service, Worker

if TYPE_CHECKING:
    from queuectl.config import InForce
    from queuectl.metrics import Detailed, Figures, Spread
    from queuectl.store.contract import AttemptStats


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


ENV_HIDDEN = "(hidden)"


def without_env_values(value: Any) -> Any:
    """`value` with every `env` object's values replaced by ENV_HIDDEN, its keys kept: what the web shows.

    The CLI's --json shows env values to the store's owner; the dashboard, which
    others may reach, never does (a manifest's [env] often holds secrets).
    """
    if isinstance(value, dict):
        return {key: _hidden(item) if key == "env" else without_env_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_env_values(item) for item in value]
    return value


def _hidden(env: Any) -> Any:
    return {name: ENV_HIDDEN for name in env} if isinstance(env, dict) else env


def utc_ms(epoch: float | None) -> str | None:
    """What durations.iso_utc says of a time (UTC ISO with milliseconds), at a fraction of its cost.

    A JSON listing formats up to five times per run. The microseconds are rounded as
    datetime.fromtimestamp rounds them (half to even), then cut to milliseconds as isoformat does.
    """
    if epoch is None:
        return None
    whole, micro = split_seconds(epoch)
    return f"{_utc_second(whole)}.{micro // 1000:03d}Z"


@functools.lru_cache(maxsize=1024)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def run_json(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "command": run.command,
        "state": run.state.value,
        "attempts": run.attempts,
        "max_retries": run.max_retries,
        "exit_code": run.exit_code,
        "error": run.error,
        "priority": run.priority,
        "timeout": run.timeout,
        "backoff_base": run.backoff_base,
        "created_at": utc_ms(run.created_at),
        "updated_at": utc_ms(run.updated_at),
        "run_at": utc_ms(run.run_at),
        "started_at": utc_ms(run.started_at),
        "finished_at": utc_ms(run.finished_at),
        "worker": run.worker_id,
        "host": run.host,
    }


def write_array(write: Callable[[str], object], items: Iterable[Any]) -> None:
    """Write what `dumps(list(items))` and a newline would print, one element at a time (constant memory)."""
    first = True
    with batched(write) as put:
        for item in items:
            put(("[\n  " if first else ",\n  ") + _element(item))
            first = False
        put("[]\n" if first else "\n]\n")


@contextlib.contextmanager
def batched(write: Callable[[str], object], size: int = 256) -> Iterator[Callable[[str], None]]:
    """A writer that hands `write` `size` pieces at a time: one system call per batch even unbuffered."""
    pending: list[str] = []

    def put(text: str) -> None:
        pending.append(text)
        if len(pending) >= size:
            write("".join(pending))
            pending.clear()

    yield put
    if pending:
        write("".join(pending))


_SCALARS = frozenset({str, int, float, bool, type(None)})
# A flat object encoded by the C encoder with these separators reads exactly as dumps' indent of 2
# inside a list: strings never hold a raw newline, so the item separator only stands between items.
_flat = json.JSONEncoder(ensure_ascii=False, separators=(",\n    ", ": ")).encode


def _element(item: Any) -> str:
    """dumps(item) indented as an element of a list: a flat object by the C encoder, the rest by dumps.

    With an indent, json encodes in pure Python, which costs more than the rest of a listing.
    """
    if isinstance(item, dict) and item and _SCALARS.issuperset(map(type, item.values())):
        return "{\n    " + _flat(item)[1:-1] + "\n  }"
    return dumps(item).replace("\n", "\n  ")


def attempt_json(a: Attempt) -> dict[str, Any]:
    duration = None if a.started_at is None or a.finished_at is None else round(a.finished_at - a.started_at, 3)
    return {
        "n": a.n,
        "outcome": a.outcome.value,
        "exit_code": a.exit_code,
        "error": a.error,
        "started_at": iso_utc(a.started_at),
        "finished_at": iso_utc(a.finished_at),
        "duration": duration,
        "worker": a.worker_id,
        "host": a.host,
        "log_path": a.log_path,
    }


def show_json(run: Run, attempts: Sequence[Attempt]) -> dict[str, Any]:
    out = run_json(run)
    out.update(
        cwd=run.cwd,
        env=run.env,
        lease_expires=iso_utc(run.lease_expires),
        pgid=run.pgid,
        log_path=run.log_path,
        output_tail=run.output_tail,
        history=[attempt_json(a) for a in attempts],
        pool=run.pool,
    )
    return out


def worker_json(w: Worker, state: str) -> dict[str, Any]:
    return {
        "id": w.id,
        "host": w.host,
        "pid": w.pid,
        "slots": w.slots,
        "running": list(w.running),
        "started_at": iso_utc(w.started_at),
        "heartbeat_at": iso_utc(w.heartbeat_at),
        "state": state,
    }


def scheduler_json(seat: SchedulerSeat | None, alive: bool, warning: str | None) -> dict[str, Any]:
    """Where the cron fires are scheduled (the last holder, if no live one) and when it last looked."""
    return {
        "alive": alive,
        "pool": None if seat is None else seat.pool_id,
        "host": None if seat is None else seat.host,
        "pid": None if seat is None else seat.pid,
        "last_tick_at": None if seat is None else iso_utc(seat.last_tick_at),
        "warning": warning,
    }


def metrics_json(counts: dict[str, int], stats: AttemptStats) -> dict[str, Any]:
    settled = stats.succeeded + stats.failed
    return {
        "counts": counts,
        "attempts": stats.attempts,
        "success_rate": round(stats.succeeded / settled, 4) if settled else None,
        "mean_duration": None if stats.mean_duration is None else round(stats.mean_duration, 3),
        "p95_duration": None if stats.p95_duration is None else round(stats.p95_duration, 3),
        "completed_last_hour": stats.completed_last_hour,
        "throughput_per_minute": round(stats.completed_last_hour / 60, 2),
    }


def figures_json(figures: Figures) -> dict[str, Any]:
    """One job's (or every run's) figures in `metrics --detailed --json`: seconds, rates from 0 to 1."""
    return {
        "counts": figures.counts,
        "attempts": figures.attempts,
        "success_rate": _rounded(figures.success_rate, 4),
        "success_rate_24h": _rounded(figures.success_rate_24h, 4),
        "duration": _spread_json(figures.duration),
        "queue_wait": _spread_json(figures.wait),
        "runs_per_minute": figures.runs_per_minute,
    }


def detailed_metrics_json(detailed: Detailed) -> dict[str, Any]:
    """`metrics --detailed --json`: overall, per job (`job` null: runs of no job), and the pools' utilisation."""
    return {
        "overall": figures_json(detailed.overall),
        "jobs": [{"job": job, **figures_json(f)} for job, f in detailed.jobs.items()],
        "utilisation": {
            "busy_slot_seconds": round(detailed.busy_slot_seconds, 3),
            "available_slot_seconds": round(detailed.available_slot_seconds, 3),
            "ratio": _rounded(detailed.utilisation, 4),
            "window_seconds": detailed.window_seconds,
        },
    }


def _spread_json(spread: Spread | None) -> dict[str, float] | None:
    return None if spread is None else {name: round(value, 3) for name, value in spread._asdict().items()}


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def next_of(status: JobStatus) -> float | None:
    """When a declared job runs next, if it does."""
    from queuectl import schedule  # croniter is slow to import: only for commands that show jobs

    return schedule.next_run(status, time.time())


def job_json(status: JobStatus, drift: str | None, settings: Sequence[InForce] = ()) -> dict[str, Any]:
    """A declared job; `in_force` has the value its runs take of each setting `settings` names, and its source."""
    job = status.job
    return {
        "suspended": job.suspended,
        "next_run_at": iso_utc(next_of(status)),
        "job": job.name,
        "spec": job.spec.to_json(),
        "spec_hash": job.spec_hash,
        "source": job.source,
        "file": job.file,
        "file_hash": job.file_hash,
        "git_commit": job.git_commit,
        "git_dirty": job.git_dirty,
        "status_dir": job.status_dir,
        "manifest_error": job.error,
        "drift": drift,
        "created_at": iso_utc(job.created_at),
        "updated_at": iso_utc(job.updated_at),
        "runs": status.counts,
        "last_run": run_json(status.last_run) if status.last_run else None,
        "in_force": {s.key: {"value": s.value, "source": s.source} for s in settings},
    }


# What a command that changes something prints with --json: small documents, one per verb.


def suspended_json(job: str, cancelled: Sequence[str], already: bool) -> dict[str, Any]:
    """`suspend --json`: `already` is true when the job was suspended before (nothing changed)."""
    return {"job": job, "suspended": True, "already": already, "cancelled": list(cancelled)}


def resumed_json(job: str) -> dict[str, Any]:
    return {"job": job, "suspended": False}


def enqueued_json(run_ids: Sequence[str]) -> dict[str, Any]:
    """`enqueue --json` and `run --json` (and the web's POST /api/runs)."""
    return {"enqueued": list(run_ids)}


def triggered_json(run_id: str) -> dict[str, Any]:
    return {"triggered": run_id}


def retried_json(run_ids: Sequence[str]) -> dict[str, Any]:
    return {"retried": list(run_ids)}


def cancelled_json(cancelled: Sequence[str], stopping: Sequence[str], finished: Mapping[str, str]) -> dict[str, Any]:
    """`cancel --json`: runs cancelled at once, running runs being stopped, finished ones (id -> state) left alone."""
    return {"cancelled": list(cancelled), "stopping": list(stopping), "finished": dict(finished)}


def deleted_json(run_ids: Sequence[str]) -> dict[str, Any]:
    """`clear --json` and `dlq clear --json`: how many runs were deleted (ids could be millions)."""
    return {"deleted": len(run_ids)}


def setting_json(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value}


def store_json(engine: str, schema_version: int, location: str) -> dict[str, Any]:
    """`db info --json` and `db migrate --json`."""
    return {"engine": engine, "schema_version": schema_version, "location": location}


def stopping_json(local: Sequence[Worker], remote: Sequence[Worker], stale: int, stopped: bool) -> dict[str, Any]:
    """`worker stop --json`: pools signalled here, pools asked through the store, and whether all here exited."""
    return {
        "signalled": [w.id for w in local],
        "asked": [w.id for w in remote],
        "stale": stale,
        "stopped": stopped,
    }


def created_json(path: str) -> dict[str, Any]:
    return {"created": path}


def schedule_row_json(job: str, words: str, at: str | None, suspended: bool) -> dict[str, str | bool | None]:
    """A row of `schedule --json`: `next_run_at` as in every shape, and `next_fire`, its first name.

    docs/json.md promised `next_fire` (fields are never renamed), so it stays beside the new name.
    """
    return {"kind": "cron", "job": job, "schedule": words, "next_run_at": at, "next_fire": at, "suspended": suspended}


def service_json(service: Service, pools: Sequence[tuple[Worker, str]] = ()) -> dict[str, Any]:
    """A background `up` (`up --detach --json`, and each of `up --status --json`'s services)."""
    return {
        "pid": service.pid,
        "started_at": iso_utc(service.started_at),
        "directory": service.directory,
        "store": service.store,
        "log": service.log_path,
        "pools": [worker_json(w, state) for w, state in pools],
    }


def services_json(services: Sequence[dict[str, Any]], stale: Sequence[Service]) -> dict[str, Any]:
    """`up --status --json`, `service status --json`, `scheduler status --json`."""
    return {"running": bool(services), "services": list(services), "stale_removed": [s.pid for s in stale]}


def down_json(signalled: Sequence[Service], stale: Sequence[Service], stopped: bool) -> dict[str, Any]:
    """`down --json`: the background ups signalled, stale pid files removed, and whether all have exited."""
    return {"signalled": [s.pid for s in signalled], "stale_removed": [s.pid for s in stale], "stopped": stopped}


def scheduled_run_json(run: Run) -> dict[str, Any]:
    """A delayed run's row of `schedule --json`: due at `next_run_at` (its run_at), like a cron row's next fire."""
    due = iso_utc(run.run_at)
    return {"kind": "run", "id": run.id, "job": run.job, "command": run.command, "next_run_at": due, "run_at": due}
