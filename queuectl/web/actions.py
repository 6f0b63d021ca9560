"""The dashboard's actions: JSON in, JSON out, each what the CLI's `--json` prints for the same verb.

Each handler reads its body, calls ONE service function over a store of the request's
own (in Starlette's thread pool) and answers with the service's result as the CLI
writes it. Errors are `{"error": "one line"}`: 400 bad input, 404 no such run or job,
409 a run in the wrong state (or an id taken), 503 the store. The token, CSRF and
--read-only are checked before a handler runs (queuectl.web.security).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from queuectl import json_views
from queuectl.enqueue import MAX_LINE
from queuectl.errors import NotFoundError, QueueError, StoreError, UsageError
from queuectl.services import jobs, runs
from queuectl.store.contract import Store
from queuectl.web.security import bounded_body, json_error

if TYPE_CHECKING:
    from queuectl.web.app import Api

MAX_ERROR = 300  # characters of an error line: the CLI's enqueue errors quote a bad value whole
SELECTION_KEYS = frozenset({"ids", "all", "job"})


class TooLarge(UsageError):
    """A body past MAX_LINE bytes: 413, and the rest of it is never read."""


def status_of(exc: QueueError) -> int:
    """The HTTP status of a refusal: bad input, no such thing, the store, or a state that does not allow it."""
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, StoreError):
        return 503
    return 409  # a run in the wrong state, an id taken, a trigger twice in one instant


async def body_object(request: Request, allowed: frozenset[str] | None = None) -> dict[str, Any]:
    """The request's body as a JSON object (none: {}); with `allowed`, no other keys."""
    body = await bounded_body(request, MAX_LINE)
    if body is None:
        raise TooLarge(f"request body too large: at most {MAX_LINE} bytes")
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"malformed JSON body: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("expected a JSON object as the body")
    unknown = sorted(set(value) - allowed) if allowed is not None else []
    if unknown:
        expected = ", ".join(sorted(allowed or ())) or "no keys"
        raise UsageError(f"unknown key {unknown[0]!r} in the body: expected {expected}")
    return value


def brief(value: Any, limit: int = 80) -> str:
    """`repr(value)`, cut to `limit` characters: an error never echoes a 16 MiB body back."""
    said = repr(value)
    return said if len(said) <= limit else said[: limit - 3] + "..."


def selection(body: Mapping[str, Any]) -> tuple[list[str] | None, str | None]:
    """`{"ids": [...]}` or `{"all": true, "job": NAME?}`: the ids (None for all) and the job."""
    ids, every, job = body.get("ids"), body.get("all", False), body.get("job")
    if every is not True and every is not False:
        raise UsageError(f"invalid all {brief(every)}: expected true or false")
    if (ids is None) == (not every):
        raise UsageError('give the ids of dead runs ({"ids": [...]}) or {"all": true}, one of them')
    if ids is not None and (not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids)):
        raise UsageError(f"invalid ids {brief(ids)}: expected a non-empty list of run ids")
    if job is not None and (not isinstance(job, str) or ids is not None):
        raise UsageError(f'invalid job {brief(job)}: a job\'s name, with {{"all": true}}')
    return ids, job


def flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"invalid {key} {brief(value)}: expected true or false")
    return value


class Actions:
    """The POST handlers, over the stores the `Api` opens."""

    def __init__(self, api: Api) -> None:
        self.api = api

    async def act(
        self,
        request: Request,
        verb: Callable[[Store, dict[str, Any]], Any],
        allowed: frozenset[str] | None = None,
        status_code: int = 200,
    ) -> Response:
        """Parse the body (only `allowed` keys), run `verb(store, body)` in the thread pool; its JSON, or the error."""
        try:
            body = await body_object(request, allowed)
            answer = await run_in_threadpool(self._run, verb, body)
        except QueueError as exc:
            said = exc.message if len(exc.message) <= MAX_ERROR else exc.message[: MAX_ERROR - 3] + "..."
            return json_error(said, status_of(exc))
        return Response(json_views.dumps(answer) + "\n", status_code, media_type="application/json")

    def _run(self, verb: Callable[[Store, dict[str, Any]], Any], body: dict[str, Any]) -> Any:
        with self.api.store() as store:
            return verb(store, body)

    async def enqueue(self, request: Request) -> Response:
        """`enqueue JSON --json`: the body is the JSON object enqueue takes."""
        return await self.act(
            request, lambda store, body: json_views.enqueued_json([runs.add_one(store, body).id]), status_code=201
        )

    async def retry(self, request: Request) -> Response:
        """`dlq retry ID [--reset-attempts] --json`."""
        run_id = request.path_params["run_id"]

        def retry(store: Store, body: dict[str, Any]) -> Any:
            return json_views.retried_json(runs.retry_dead(store, [run_id], flag(body, "reset_attempts")))

        return await self.act(request, retry, allowed=frozenset({"reset_attempts"}))

    async def cancel(self, request: Request) -> Response:
        """`cancel ID --json`: a finished run is left alone and said so (`finished`)."""
        run_id = request.path_params["run_id"]

        def cancel(store: Store, body: dict[str, Any]) -> Any:
            done = runs.cancel(store, [run_id])
            return json_views.cancelled_json(done.cancelled, done.stopping, done.finished)

        return await self.act(request, cancel, allowed=frozenset())

    async def trigger(self, request: Request) -> Response:
        """`trigger NAME --json`."""
        name = request.path_params["name"]
        return await self.act(
            request, lambda store, body: json_views.triggered_json(jobs.trigger(store, name).id), allowed=frozenset()
        )

    async def suspend(self, request: Request) -> Response:
        """`suspend NAME --json`."""
        name = request.path_params["name"]

        def suspend(store: Store, body: dict[str, Any]) -> Any:
            done = jobs.suspend(store, name)
            return json_views.suspended_json(name, done.cancelled, done.already)

        return await self.act(request, suspend, allowed=frozenset())

    async def resume(self, request: Request) -> Response:
        """`resume NAME --json`."""
        name = request.path_params["name"]

        def resume(store: Store, body: dict[str, Any]) -> Any:
            jobs.resume(store, name)
            return json_views.resumed_json(name)

        return await self.act(request, resume, allowed=frozenset())

    async def dlq_retry(self, request: Request) -> Response:
        """`dlq retry ID... --json`, `dlq retry --all [--job NAME] --json`."""

        def retry(store: Store, body: dict[str, Any]) -> Any:
            ids, job = selection(body)
            return json_views.retried_json(runs.retry_dead(store, ids, flag(body, "reset_attempts"), job=job))

        return await self.act(request, retry, allowed=SELECTION_KEYS | {"reset_attempts"})

    async def dlq_delete(self, request: Request) -> Response:
        """`dlq clear [ID...] [--job NAME] --json`."""

        def delete(store: Store, body: dict[str, Any]) -> Any:
            ids, job = selection(body)
            return json_views.deleted_json(runs.delete_dead(store, ids, job=job))

        return await self.act(request, delete, allowed=SELECTION_KEYS)


def routes(api: Api) -> list[Route]:
    """The actions' routes (POST only; the same paths answer GET with the read-only API)."""
    actions = Actions(api)
    return [
        Route("/api/runs", actions.enqueue, methods=["POST"]),
        Route("/api/runs/{run_id}/retry", actions.retry, methods=["POST"]),
        Route("/api/runs/{run_id}/cancel", actions.cancel, methods=["POST"]),
        Route("/api/jobs/{name}/trigger", actions.trigger, methods=["POST"]),
        Route("/api/jobs/{name}/suspend", actions.suspend, methods=["POST"]),
        Route("/api/jobs/{name}/resume", actions.resume, methods=["POST"]),
        Route("/api/dlq/retry", actions.dlq_retry, methods=["POST"]),
        Route("/api/dlq/delete", actions.dlq_delete, methods=["POST"]),
    ]
