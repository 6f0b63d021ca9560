"""The dashboard's Starlette app: /healthz and the read-only JSON API under /api/.

Every /api/ answer is what the CLI's `--json` prints for the same question,
built by the same service functions, with one difference: env values are
hidden (keys kept), as everywhere others may look. Handlers are sync: Starlette runs them in
its threadpool, so a blocking store call never holds the event loop. Each
request opens its own store connection and closes it (one SQLite connection,
or one PostgreSQL session, per request: nothing is shared between threads).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from queuectl import json_views
from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import parse_state
from queuectl.services import jobs, overview, pools, runs
from queuectl.store.contract import Store
from queuectl.store.factory import open_store
from queuectl.web import pages

BUSY_TIMEOUT = 5.0  # seconds a request waits for a pool's write lock before it answers with an error
TOKEN_HEADER = "authorization"


class Api:
    """The handlers, over the store at one location (a file or a postgresql:// URL)."""

    def __init__(self, location: str | None) -> None:
        self.location = location

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = open_store(self.location, busy_timeout=BUSY_TIMEOUT, create=False)
        try:
            yield store
        finally:
            store.close()

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

    def status(self, request: Request) -> Response:
        return self.answer(lambda store: overview.as_json(overview.overview(store)))

    def runs(self, request: Request) -> Response:
        query = request.query_params

        def listed(store: Store) -> list[dict[str, Any]]:
            state = parse_state(query["state"]).value if query.get("state") else None
            limit = _limit(query.get("limit"))
            found = runs.listed(store, state, limit, job=query.get("job") or None, after=query.get("after") or None)
            return [json_views.run_json(run) for run in found]

        return self.answer(listed)

    def run(self, request: Request) -> Response:
        return self.answer(lambda store: runs.show_json(store, request.path_params["run_id"]))

    def jobs(self, request: Request) -> Response:
        return self.answer(lambda store: jobs.all_json(jobs.statuses(store)))

    def job(self, request: Request) -> Response:
        return self.answer(lambda store: jobs.as_json(jobs.status(store, request.path_params["name"])))

    def pools(self, request: Request) -> Response:
        return self.answer(lambda store: pools.as_json(pools.pools(store)))

    def dlq(self, request: Request) -> Response:
        limit = request.query_params.get("limit")
        return self.answer(lambda store: [json_views.run_json(r) for r in runs.listed(store, "dead", _limit(limit))])


def _limit(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"invalid limit {text!r}: expected a whole number of at least 1")
    return int(text)


def json_response(value: Any, status_code: int = 200) -> Response:
    """`value` as the CLI's --json writes it (json_views.dumps)."""
    return Response(json_views.dumps(value) + "\n", status_code, media_type="application/json")


class TokenCheck(BaseHTTPMiddleware):
    """With a token set, every request but /healthz must carry it: `Authorization: Bearer TOKEN`."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.expected = f"Bearer {token}".encode()

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path != "/healthz":
            given = request.headers.get(TOKEN_HEADER, "").encode()
            if not hmac.compare_digest(given, self.expected):
                return json_response({"error": "this dashboard needs its token: Authorization: Bearer TOKEN"}, 401)
        return await call_next(request)


def create_app(store_url_or_path: str | None, *, token: str | None = None, read_only: bool = False) -> Starlette:
    """The dashboard over the store at `store_url_or_path` (None: the default store)."""
    api = Api(store_url_or_path)
    routes = [
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
    middleware = [Middleware(TokenCheck, token=token)] if token else []
    app = Starlette(routes=routes, middleware=middleware)
    app.state.read_only = read_only  # no action is served yet; the actions to come look here
    return app
