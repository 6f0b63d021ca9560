"""Runs: add them, find one, retry dead ones, delete them (with their logs)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from queuectl import config, runner
from queuectl import enqueue as build
from queuectl.errors import LISTS_HINT, DuplicateRunError, NotFoundError, QueueError, UsageError
from queuectl.model import NewRun, Run, RunState, check_name
from queuectl.paths import logs_dir
from queuectl.store.contract import Store

GENERATED_ID_TRIES = 3  # a generated id that clashes (vanishingly rare) is drawn again


def add(store: Store, runs: list[NewRun]) -> list[NewRun]:
    """Add `runs` in one transaction, all or none, and wake the pools that could take them."""
    store.enqueue(runs)
    store.wake_pools()
    return runs


def add_one(store: Store, fields: Mapping[str, Any]) -> NewRun:
    """One run from a JSON object's or the flags' fields (see enqueue.build)."""
    return add(store, [build.build(fields, config.defaults(store), store.now())])[0]


def add_command(store: Store, fields: Mapping[str, Any]) -> NewRun:
    """`run CMD`: like add_one, but a generated id that happens to be taken is drawn again."""
    for _ in range(GENERATED_ID_TRIES - 1):
        try:
            return add_one(store, fields)
        except DuplicateRunError:
            if "id" in fields:
                raise
    return add_one(store, fields)


def add_lines(store: Store, lines: Iterable[str], source: str, fields: Mapping[str, Any]) -> list[NewRun]:
    """Runs from JSON Lines, all or none; `fields` (flags given beside the file) fill what a line leaves out."""
    if "command" in fields:
        raise UsageError("--file takes the runs from the file: give no JSON or --command beside it")
    merged = _with_fields(lines, fields, source) if fields else lines
    return add(store, build.from_lines(merged, source, config.defaults(store), store.now()))


def _with_fields(lines: Iterable[str], fields: Mapping[str, Any], source: str) -> Iterator[str]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            yield line
            continue
        try:
            obj = build.parse_json(line, f"{source} line {number}: ")
        except UsageError:
            yield line  # reported with its line number by the parser
            continue
        yield json.dumps({**fields, **obj})


def find(store: Store, run_id: str) -> Run:
    run = store.get_run(check_name(run_id))
    if run is None:
        raise NotFoundError(f"no run with id {run_id!r} (see 'queuectl list')")
    return run


def find_for_logs(store: Store, ref: str, follow: bool = False) -> Run:
    """The run `logs REF` shows: run `ref`, else the latest run of job `ref`.

    A run id wins over a job of the same name. A job's latest run is the one started last;
    when none has started yet, following waits for the next one (a pending run), and
    without following that is an error: there is no output to show.
    """
    run = store.get_run(check_name(ref))
    if run is not None:
        return run
    if store.get_job(ref) is None:
        raise NotFoundError(f"no run or job named {ref!r} {LISTS_HINT}")
    latest = store.latest_job_run(ref, started=True)
    if latest is not None:
        return latest
    waiting = store.latest_job_run(ref, started=False)
    if waiting is not None and follow and waiting.state in (RunState.SCHEDULED, RunState.PENDING, RunState.FAILED):
        return waiting
    more = f": run {waiting.id} is {waiting.state.value}" if waiting is not None else ""
    raise NotFoundError(f"job {ref!r} has no runs yet{more} (see 'queuectl show {ref}')")


def retry_dead(store: Store, run_ids: Iterable[str] | None, reset_attempts: bool) -> list[str]:
    """Put dead runs back in the queue (all when `run_ids` is None); every id given must be dead."""
    ids = None if run_ids is None else list(run_ids)
    for run_id in ids or ():
        run = find(store, run_id)
        if run.state != RunState.DEAD:
            raise QueueError(f"run {run_id!r} is {run.state.value}, not dead: only dead runs can be retried")
    retried = store.retry_dead(ids, reset_attempts)
    if retried:
        store.wake_pools()
    return retried


def delete(store: Store, state: str | None) -> list[str]:
    """Delete the runs in `state` (all but running ones when None) and this host's logs of them."""
    if state == RunState.RUNNING.value:
        raise UsageError("running runs cannot be cleared: stop their pool first")
    deleted = store.delete_runs(state)
    runner.remove_logs(logs_dir(store), deleted)
    return deleted
