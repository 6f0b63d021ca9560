"""Rows to model values and back: what the SQL roles read and write."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from queuectl.model import AttemptResult, Claim, Job, NewRun, Outcome, Run, RunState, shown_state
from queuectl.store.sql_core import Row

_T = TypeVar("_T")


def storable_text(value: str | None) -> str | None:
    """Text a command printed, storable anywhere: PostgreSQL's text cannot hold NUL."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def settle_params(res: AttemptResult, state: RunState, run_at: float, now: float) -> dict[str, Any]:
    return {
        "run_id": res.claim.run_id,
        "n": res.claim.attempt,
        "worker_id": res.worker_id,
        "state": state.value,
        "run_at": run_at,
        "started_at": res.started_at,
        "finished_at": res.finished_at,
        "now": now,
        "exit_code": res.exit_code,
        "error": storable_text(res.error),
        "output_tail": storable_text(res.output_tail),
        "uncount": 1 if res.outcome is Outcome.INTERRUPTED else 0,
        "log_path": res.log_path,
    }


def new_run_params(r: NewRun, now: float) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "command": r.command,
        "priority": r.priority,
        "max_retries": r.max_retries,
        "backoff_base": r.backoff_base,
        "backoff_max": r.backoff_max,
        "timeout": r.timeout,
        "cwd": r.cwd,
        "env": json.dumps(r.env) if r.env else None,
        "now": now,
        "run_at": now if r.run_at is None else r.run_at,
        "scheduled_for": r.scheduled_for,
        "keep_children": r.keep_children,
    }


def job_from_row(r: Row) -> Job:
    return Job(
        name=r["name"],
        spec_json=r["spec"],
        spec_hash=r["spec_hash"],
        run_hash=r["run_hash"],
        source=r["source"],
        file=r["file"],
        file_hash=r["file_hash"],
        git_commit=r["git_commit"],
        git_dirty=bool(r["git_dirty"]),
        status_dir=r["status_dir"],
        error=r["error"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        version_at=r["version_at"],
        suspended=bool(r["suspended"]),
        schedule_from=r["schedule_from"],
        last_fire=r["last_fire"],
        next_fire=r["next_fire"],
        schedule_hash=r["schedule_hash"],
    )


def attempt_params(res: AttemptResult, host: str | None) -> dict[str, Any]:
    return {
        "run_id": res.claim.run_id,
        "n": res.claim.attempt,
        "worker_id": res.worker_id,
        "host": host,
        "pgid": res.pgid,
        "started_at": res.started_at,
        "finished_at": res.finished_at,
        "exit_code": res.exit_code,
        "outcome": res.outcome.value,
        "error": storable_text(res.error),
        "log_path": res.log_path,
        "output_tail": storable_text(res.output_tail),
    }


def claim_from_row(r: Row) -> Claim:
    return Claim(
        run_id=r["id"],
        attempt=r["tries"],
        attempts=r["attempts"],
        max_retries=r["max_retries"],
        backoff_base=r["backoff_base"],
        backoff_max=r["backoff_max"],
        command=r["command"],
        timeout=r["timeout"],
        cwd=r["cwd"],
        env=json.loads(r["env"]) if r["env"] else {},
        job=r["job"],
        keep_children=bool(r["keep_children"]),
        scheduled_for=r["scheduled_for"],
    )


def named_from_row(kind: type[_T], r: Row, **converted: Any) -> _T:
    """A model tuple from a row whose columns carry its field names; `converted` gives the rest."""
    fields: tuple[str, ...] = kind._fields  # type: ignore[attr-defined]
    return kind(**{name: r[name] for name in fields if name not in converted}, **converted)


def run_from_row(r: Row, now: float) -> Run:
    """A run as users see it at `now` (a pending run not yet due is `scheduled`)."""
    env = json.loads(r["env"]) if r["env"] else {}
    state = shown_state(RunState(r["state"]), r["run_at"], now)
    return named_from_row(Run, r, state=state, env=env, keep_children=bool(r["keep_children"]))


_STATES = {s.value: s for s in RunState}
_STATE_AT, _ENV_AT, _RUN_AT = Run._fields.index("state"), Run._fields.index("env"), Run._fields.index("run_at")


def runs_from_rows(rows: Sequence[Row], now: float) -> Iterator[Run]:
    """Runs from rows of one query, as seen at `now`: columns are found once, then read by position (hot path)."""
    if not rows:
        return
    first = rows[0]
    names = list(first.keys()) if hasattr(first, "keys") else list(type(first).columns)
    pick = operator.itemgetter(*(names.index(field) for field in Run._fields))
    for r in rows:
        values = list(pick(r))
        values[_STATE_AT] = shown_state(_STATES[values[_STATE_AT]], values[_RUN_AT], now)
        values[_ENV_AT] = json.loads(values[_ENV_AT]) if values[_ENV_AT] else {}
        yield Run._make(values)
