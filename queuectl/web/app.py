"""The dashboard's Starlette app: /healthz and the read-only JSON API under /api/.

Every /api/ answer is what the CLI's `--json` prints for the same question,
built by the same service functions, with one difference: env values are
hidden (keys kept), as everywhere others may look. Handlers are sync: Starlette runs them in
its threadpool, so a blocking store call never holds the event loop. Each
request opens its own store connection and closes it (one SQLite connection,
or one PostgreSQL session, per request: nothing is shared between threads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from queuectl import json_views
from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import Run, parse_state
from queuectl.services import jobs, overview, pools, prometheus, runs
from queuectl.store.contract import Store
from queuectl.web import actions, pages, security, stores

PAGE_SIZE = 1000  # runs in a listing's answer when it gives no limit; a full page's Link header names the next
INTEGRITY_EVERY = 60.0  # seconds between two looks over the whole store by /api/status (each reads every page)
MAX_PAGE = 10_000  # runs one answer may hold, at most: a client pages on with after=ID
# A text search of /api/runs that looked at its most runs before its page filled: how many, and the run to go on after.
SEARCHED_HEADER = "x-queuectl-searched"
RESUME_HEADER = "x-queuectl-resume-after"


class Api:
    """The handlers, over the store at one location (a file or a postgresql:// URL)."""

    def __init__(self, location: str | None) -> None:
        self.location = location
        self.checked_at = float("-inf")  # when /api/status last looked the whole store over (monotonic)

    def store(self) -> AbstractContextManager[Store]:
        return stores.opened(self.location)

    def answer(self, question: Callable[[Store], Any]) -> Response:
        """The JSON of `question` over a store of this request's own, env values hidden; errors as {"error": ...}."""
        try:
            with self.store() as store:
                return json_response(json_views.without_env_values(question(store)))
        except NotFoundError as exc:
            return json_response({"error": exc.message}, 404)
        except UsageError as exc:
            return json_response({"error": exc.message}, 400)
        except QueueError as exc:
            return json_response({"error": exc.message}, 503)

    def healthz(self, request: Request) -> Response:
        try:
            with self.store() as store:
                store.counts()
        except QueueError as exc:
            return PlainTextResponse(f"store unavailable: {exc.message}\n", 503)
        return PlainTextResponse("ok\n")

    def metrics(self, request: Request) -> Response:
        """The Prometheus exposition (what `queuectl metrics --prometheus` prints); 503 when the store cannot say."""
        try:
            with self.store() as store:
                text = prometheus.exposition(store, store.now())
        except QueueError as exc:
            return PlainTextResponse(f"store unavailable: {exc.message}\n", 503)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    def status(self, request: Request) -> Response:
        """`status --json`, its integrity check made at most once a minute: pollers ask again and again."""
        check = time.monotonic() - self.checked_at >= INTEGRITY_EVERY

        def seen(store: Store) -> dict[str, Any]:
            answer = overview.as_json(overview.overview(store, check))
            if check:
                self.checked_at = time.monotonic()
            return answer

        return self.answer(seen)

    def runs(self, request: Request) -> Response:
        """`list --json`; with `order=newest` the other way; with `text`, a bounded search (see runs.search)."""
        query = request.query_params
        found: list[runs.Found] = []
        shown: list[Run] = []

        def listed(store: Store) -> list[dict[str, Any]]:
            state = parse_state(query["state"]).value if query.get("state") else None
            limit = _limit(query.get("limit"))
            job, after, newest = query.get("job") or None, query.get("after") or None, _newest(query.get("order"))
            if "text" in query:
                found.append(runs.search(store, query["text"], state, limit, job, after, newest))
                shown.extend(found[0].runs)
            else:
                shown.extend(runs.listed(store, state, limit, job, after, newest))
            return [json_views.run_json(run) for run in shown]

        response = _with_next(self.answer(listed), request, shown)
        if found and found[0].stopped_early:
            # The body stays the array `list --json` prints; that the search stopped early goes beside it.
            response.headers[SEARCHED_HEADER] = str(found[0].searched)
            response.headers[RESUME_HEADER] = found[0].resume_after or ""
        return response

    def run(self, request: Request) -> Response:
        return self.answer(lambda store: runs.show_json(store, request.path_params["run_id"]))

    def jobs(self, request: Request) -> Response:
        return self.answer(lambda store: jobs.all_json(jobs.statuses(store)))

    def job(self, request: Request) -> Response:
        return self.answer(lambda store: jobs.as_json(jobs.status(store, request.path_params["name"])))

    def pools(self, request: Request) -> Response:
        return self.answer(lambda store: pools.as_json(pools.pools(store)))

    def dlq(self, request: Request) -> Response:
        query = request.query_params
        shown: list[Run] = []

        def dead(store: Store) -> list[dict[str, Any]]:
            shown.extend(runs.listed(store, "dead", _limit(query.get("limit")), after=query.get("after") or None))
            return [json_views.run_json(r) for r in shown]

        return _with_next(self.answer(dead), request, shown)


def _newest(order: str | None) -> bool:
    if order in (None, "", "oldest"):
        return False
    if order == "newest":
        return True
    raise UsageError(f"invalid order {order!r}: expected oldest or newest")


def _limit(text: str | None) -> int:
    """A listing's page size: `limit`, or PAGE_SIZE when none is given (an answer never holds the whole store)."""
    if not text:
        return PAGE_SIZE
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or not 1 <= int(text) <= MAX_PAGE:
        raise UsageError(f"invalid limit {text!r}: expected a whole number from 1 to {MAX_PAGE} (then after=ID)")
    return int(text)


def _with_next(response: Response, request: Request, shown: list[Run]) -> Response:
    """A full page of a listing names the next one: `Link: <...&after=CURSOR>; rel="next"` (RFC 8288).

    The cursor (runs.cursor_of) still works when the page's last run is deleted or retried meanwhile.
    """
    if response.status_code == 200 and shown and len(shown) == _limit(request.query_params.get("limit")):
        following = request.url.include_query_params(after=runs.cursor_of(shown[-1].created_at, shown[-1].id))
        response.headers["link"] = f'<{following.path}?{following.query}>; rel="next"'
    return response


def json_response(value: Any, status_code: int = 200) -> Response:
    """`value` as the CLI's --json writes it (json_views.dumps)."""
    return Response(json_views.dumps(value) + "\n", status_code, media_type="application/json")


def create_app(
    store_url_or_path: str | None,
    *,
    token: str | None = None,
    read_only: bool = False,
    hosts: Sequence[str] = (),
) -> Starlette:
    """The dashboard over the store at `store_url_or_path` (None: the default store).

    `token`: what every request but /healthz and /login must carry (see queuectl.web.security);
    `read_only`: no action is served; `hosts`: names besides this machine's that a request's
    Host header may give (the CSRF check's DNS-rebinding rule).
    """
    api = Api(store_url_or_path)
    routes: list[BaseRoute] = [
        Route("/healthz", api.healthz),
        Route("/api/status", api.status),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run_id}", api.run),
        Route("/api/jobs", api.jobs),
        Route("/api/jobs/{name}", api.job),
        Route("/api/pools", api.pools),
        Route("/api/dlq", api.dlq),
        *pages.routes(store_url_or_path),  # the HTML pages, their live streams and static files
    ]
    routes += [Route("/metrics", api.metrics)]
    routes += actions.routes(api)
    routes += security.routes(token)
    middleware = [Middleware(security.Guard, token=token, read_only=read_only, hosts=hosts)]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.read_only = read_only  # pages show no action when set
    return app
