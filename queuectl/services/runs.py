"""Runs: add them, find one, retry dead ones, delete them (with their logs)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from queuectl import config, json_views, runner
from queuectl import enqueue as build
from queuectl.errors import LISTS_HINT, DuplicateRunError, NotFoundError, UsageError, WrongStateError
from queuectl.model import NewRun, Run, RunState, check_name
from queuectl.paths import logs_dir
from queuectl.store.contract import Store

if TYPE_CHECKING:
    from queuectl.model import Attempt

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


def with_attempts(store: Store, run_id: str) -> tuple[Run, list[Attempt]]:
    """Run `run_id` and its attempts, oldest first (what `show ID` shows)."""
    run = find(store, run_id)
    return run, store.attempts(run.id)


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


def ids_starting(store: Store, prefix: str, limit: int) -> list[str]:
    """At most `limit` run ids that start with `prefix` (the newest runs' when it is empty): one indexed read."""
    return store.run_ids(prefix, limit)


def retry_dead(
    store: Store,
    run_ids: Iterable[str] | None,
    reset_attempts: bool,
    retries: int | None = None,
    timeout: float | None = None,
    job: str | None = None,
) -> list[str]:
    """Put dead runs back in the queue (all when `run_ids` is None, only job `job`'s when given).

    Every id given must be dead. `retries` and `timeout` (seconds, 0 for none) replace the runs' own for what follows.
    """
    ids = _dead_ids(store, run_ids, "retried")
    retried = store.retry_dead(ids, reset_attempts, retries, timeout, job=job)
    if retried:
        store.wake_pools()
    return retried


def delete_dead(store: Store, run_ids: Iterable[str] | None, job: str | None = None) -> list[str]:
    """Delete dead runs (all when `run_ids` is None, only job `job`'s when given) and this host's logs of them.

    Every id given must be dead (else nothing is deleted).
    """
    deleted = store.delete_dead(_dead_ids(store, run_ids, "deleted"), job=job)
    runner.remove_logs(logs_dir(store), deleted)
    return deleted


def _dead_ids(store: Store, run_ids: Iterable[str] | None, verb: str) -> list[str] | None:
    """`run_ids` as a list, once each names a dead run (None stays None: all of them)."""
    ids = None if run_ids is None else list(dict.fromkeys(run_ids))
    for run_id in ids or ():
        run = find(store, run_id)
        if run.state != RunState.DEAD:
            raise WrongStateError(f"run {run_id!r} is {run.state.value}, not dead: only dead runs can be {verb}")
    return ids


class Cancelled(NamedTuple):
    """What `cancel` did: runs cancelled at once, running runs being stopped, finished ones left alone."""

    cancelled: list[str]
    stopping: list[str]  # their pools kill the process group (SIGTERM, SIGKILL after kill-grace): they end cancelled
    finished: dict[str, str]  # run id -> the state it had already ended in


def cancel(store: Store, run_ids: Iterable[str]) -> Cancelled:
    """Cancel runs: a waiting one is not run, a running one is stopped by its pool, a finished one is left alone.

    Every id must name a run (else nothing changes). A running run is stopped by the pool that holds
    it, on whatever host, through the store (as a newer fire that replaces a run is).
    """
    ids = list(dict.fromkeys(run_ids))
    for run_id in ids:
        if store.get_run(check_name(run_id)) is None:
            raise NotFoundError(_not_a_run(store, run_id))
    cancelled, stopping = store.cancel_runs(ids, "cancelled by the user")
    done = set(cancelled) | set(stopping)
    finished = {}
    for run_id in ids:
        run = store.get_run(run_id) if run_id not in done else None
        if run is not None:
            finished[run_id] = run.state.value
    if stopping:
        store.wake_pools()  # the pools look at their cancellations at once
    return Cancelled(cancelled, stopping, finished)


def _not_a_run(store: Store, name: str) -> str:
    """`cancel NAME` of a job's name: the ids of its runs that can be cancelled, or where to look."""
    said = f"no run with id {name!r}"
    if store.get_job(name) is None:
        return f"{said} (see 'queuectl list')"
    waiting = [run_id for run_id, _ in store.unfinished_job_runs(name)]
    if not waiting:
        return f"{said}: {name} is a job with no run waiting or running (see 'queuectl show {name}')"
    return f"{said}: {name} is a job; cancel its run by id ({', '.join(waiting)}), or 'queuectl suspend {name}'"


def delete(store: Store, state: str | None) -> list[str]:
    """Delete the runs in `state` (all but running ones when None) and this host's logs of them."""
    if state == RunState.RUNNING.value:
        raise UsageError("running runs cannot be cleared: stop their pool first")
    deleted = store.delete_runs(state)
    runner.remove_logs(logs_dir(store), deleted)
    return deleted


def listed(
    store: Store,
    state: str | None = None,
    limit: int | None = None,
    job: str | None = None,
    after: str | None = None,
    newest_first: bool = False,
) -> Iterator[Run]:
    """Runs oldest first (newest first with `newest_first`), as `list` gives them.

    Only those after run `after` in that order (a keyset cursor); only job `job`'s, read on the
    store's index of a job's runs: a page costs the same at a million runs as at ten.
    """
    cursor = _cursor(store, after)
    if state is not None and not _any_in(store, state, job):
        return  # none in that state: no walk through the whole listing to find it out
    yield from store.iter_runs(state, limit, after=cursor, job=job, newest_first=newest_first)


def _any_in(store: Store, state: str, job: str | None) -> bool:
    """Whether any run (of `job`) is in `state`, from the counts the store keeps (no listing read)."""
    counted = store.counts() if job is None else store.job_counts().get(job, {})
    return counted.get(state, 0) > 0


SEARCH_SCAN = 100_000  # runs a text search looks at per request, at most: a page never reads the whole table


class Found(NamedTuple):
    """A page of a text search: the runs found and, when it stopped early, where to go on."""

    runs: list[Run]
    searched: int  # the most runs it looked at (SEARCH_SCAN, or what the caller gave)
    stopped_early: bool  # it looked at `searched` runs and more remain: the page may not be full
    resume_after: str | None  # the `after` to search on (cursor_of): the last run looked at, or the last found


def search(
    store: Store,
    text: str | None,
    state: str | None = None,
    limit: int | None = None,
    job: str | None = None,
    after: str | None = None,
    newest_first: bool = False,
    scan: int | None = None,
) -> Found:
    """Runs whose command or id holds `text` (case counts), in `listed`'s order, looking at `scan` runs at most.

    `scan` (default SEARCH_SCAN) bounds the rows read, whatever the table holds: when it runs out before
    `limit` runs are found, `Found` says so and names the run to search on after. With no `text`, the
    runs in `state` (a page that lists one state, a few of them among a million, reads as little).
    """
    if not text and state is None:
        raise UsageError("the text to search for is empty: give some, or list without it")
    scan = SEARCH_SCAN if scan is None else scan
    if state is not None and not _any_in(store, state, job):
        return Found([], scan, False, None)
    size = scan if limit is None else min(limit, scan)  # no limit: every run found among those looked at
    found, stopped = store.search_runs(text, size, scan, state, _cursor(store, after), job, newest_first)
    if stopped is not None:
        return Found(found, scan, True, cursor_of(*stopped))
    return Found(found, scan, False, cursor_of(found[-1].created_at, found[-1].id) if len(found) == size else None)


def cursor_of(created_at: float, run_id: str) -> str:
    """The `after` that starts a page after this run, even once the run is gone: ID@CREATED.

    A page's link carries it (a run id holds no '@'), so a client that deletes or retries each
    page of the DLQ before asking for the next still gets the next, not a 404.
    """
    return f"{run_id}@{created_at!r}"


def _cursor(store: Store, after: str | None) -> tuple[float, str] | None:
    """The keyset cursor of `after`: run ID (looked up), or ID@CREATED (as `cursor_of` writes it)."""
    if after is None:
        return None
    if "@" in after:
        run_id, _, at = after.partition("@")
        try:
            created = float(at)
        except ValueError:
            created = math.nan
        if not math.isfinite(created):
            raise UsageError(f"invalid after {after!r}: expected a run id, or ID@TIME as a page's link gives it")
        return (created, check_name(run_id))
    anchor = store.get_run(check_name(after))
    if anchor is None:
        raise NotFoundError(f"no run named {after!r} {LISTS_HINT}")
    return (anchor.created_at, anchor.id)


def show_json(store: Store, name: str) -> dict[str, Any]:
    """What `show NAME --json` prints: run NAME with its attempts, else job NAME (a run id wins)."""
    run = store.get_run(check_name(name))
    if run is None:
        from queuectl.services import jobs  # the manifests' parser: only for a declared job

        return jobs.as_json(jobs.status(store, name))
    return json_views.show_json(run, store.attempts(name))
