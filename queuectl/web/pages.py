"""The dashboard's HTML pages: Jinja2 templates over the same service functions as the CLI and the API.

Each handler opens a store of its own, asks one or two services, closes the store and renders.
Templates escape everything (autoescape): output, commands, names and errors are text.
`?fragment=1` answers only the page's main block, which the page's script swaps in when
the store changes (see live.py), so a live page never reloads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from queuectl import listing
from queuectl.durations import format_duration, format_time
from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.model import STATES, parse_state
from queuectl.services import activity, jobs, output, overview, pools, runs, timeline
from queuectl.store.contract import Store
from queuectl.web import live, stores

HERE = Path(__file__).parent
PAGE = 50  # runs per page of /runs and /dlq
RECENT = 20  # a job's recent runs on its page
TIMELINE_HOURS = 24  # the window of a cron job's timeline on its page
OUTPUT_SHOWN = 65536  # bytes of a run's output the page shows (all of it: the download)
# No script but ours, no framing (a click on an action cannot be borrowed), nothing from elsewhere.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NAV = (("/", "Overview"), ("/jobs", "Jobs"), ("/runs", "Runs"), ("/dlq", "DLQ"), ("/pools", "Pools"))


def _ago(epoch: float | None, now: float) -> str:
    return "-" if epoch is None else f"{format_duration(now - epoch)} ago"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = format_time
    env.filters["duration"] = format_duration
    env.filters["one_line"] = listing.one_line
    env.globals.update(nav=NAV, states=list(STATES), when_words=listing.when_words)
    env.globals.update(next_time=listing.next_time, last_error=listing.last_error)
    return env


class Pages:
    """The page handlers, over the store at one location (a file or a postgresql:// URL)."""

    def __init__(self, location: str | None) -> None:
        self.location = location
        self.env = environment()

    def store(self) -> AbstractContextManager[Store]:
        return stores.opened(self.location)

    def render(self, request: Request, name: str, values: dict[str, Any], status: int = 200) -> Response:
        """Page `name` (or its main block alone for `?fragment=1`) with what every page shows."""
        now = time.time()
        context = {
            "request": request,
            "path": request.url.path,
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "read_only": bool(getattr(request.app.state, "read_only", False)),
            "now": now,
            "ago": lambda epoch: _ago(epoch, now),
            **values,
        }
        template = self.env.get_template(name)
        if request.query_params.get("fragment"):
            block = template.blocks["main"]
            html = "".join(block(template.new_context(context)))
        else:
            html = template.render(context)
        return HTMLResponse(html, status, headers=PAGE_HEADERS)

    def page(self, request: Request, name: str, question: Callable[[Store], dict[str, Any]]) -> Response:
        """Render `name` with what `question` reads; a missing run or job is the 404 page, bad input 400."""
        try:
            with self.store() as store:
                values = question(store)
        except NotFoundError as exc:
            return self.render(request, "error.html", {"title": "Not found", "message": exc.message}, 404)
        except UsageError as exc:
            return self.render(request, "error.html", {"title": "Bad request", "message": exc.message}, 400)
        except QueueError as exc:
            return self.render(request, "error.html", {"title": "Store unavailable", "message": exc.message}, 503)
        return self.render(request, name, values)

    # -- the pages -------------------------------------------------------------------------------

    def overview(self, request: Request) -> Response:
        return self.page(
            request,
            "overview.html",
            lambda store: {"seen": overview.dashboard(store), "activity": activity.activity(store, store.now())},
        )

    def jobs(self, request: Request) -> Response:
        return self.page(request, "jobs.html", lambda store: {"views": jobs.statuses(store)})

    def job(self, request: Request) -> Response:
        name = request.path_params["name"]

        def read(store: Store) -> dict[str, Any]:
            view = jobs.status(store, name)
            recent = list(runs.listed(store, limit=RECENT, job=view.status.job.name, newest_first=True))
            drawn = timeline.timeline(store, view.status.job.name, store.now(), TIMELINE_HOURS)
            return {"view": view, "recent": recent, "tl": drawn, "tl_hours": TIMELINE_HOURS}

        return self.page(request, "job.html", read)

    def runs(self, request: Request) -> Response:
        return self.page(request, "runs.html", lambda store: self._listing(store, request, None))

    def dlq(self, request: Request) -> Response:
        return self.page(request, "dlq.html", lambda store: self._listing(store, request, "dead"))

    def _listing(self, store: Store, request: Request, state: str | None) -> dict[str, Any]:
        """One page of runs, newest first, from `after` (a keyset cursor: the last id of the page before)."""
        query = request.query_params
        chosen = state or (parse_state(query["state"]).value if query.get("state") else None)
        job = query.get("job") or None
        after = query.get("after") or None
        text = query.get("q", "")
        filters = {"state": chosen if state is None else None, "job": job, "q": text}
        if text or chosen:  # a bounded search: it may stop before its page is full, and says where to go on
            searched = runs.search(store, text or None, chosen, PAGE, job=job, after=after, newest_first=True)
            stopped = searched.searched if searched.stopped_early else None
            return {
                "runs": searched.runs,
                "next_after": searched.resume_after,
                "after": after,
                "filters": filters,
                "searched": stopped,
            }
        found = list(runs.listed(store, chosen, PAGE + 1, job=job, after=after, newest_first=True))
        shown = found[:PAGE]
        next_after = runs.cursor_of(shown[-1].created_at, shown[-1].id) if len(found) > PAGE else None
        return {"runs": shown, "next_after": next_after, "after": after, "filters": filters, "searched": None}

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]

        def read(store: Store) -> dict[str, Any]:
            run, attempts = runs.with_attempts(store, run_id)
            place = output.place(store, run.id)
            shown = output.tail_of(None if place.elsewhere else place.path, OUTPUT_SHOWN)
            return {"run": run, "attempts": attempts, "place": place, "shown": shown}

        return self.page(request, "run.html", read)

    def pools(self, request: Request) -> Response:
        return self.page(request, "pools.html", lambda store: {"views": pools.pools(store)})


def routes(location: str | None) -> list[BaseRoute]:
    """The pages, the live streams (live.py) and the static files, to mount beside the API."""
    pages = Pages(location)
    streams = live.Live(pages.store)
    return [
        Route("/", pages.overview),
        Route("/jobs", pages.jobs),
        Route("/jobs/{name}", pages.job),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}", pages.run),
        Route("/runs/{run_id}/output", streams.download),
        Route("/runs/{run_id}/output/stream", streams.output_stream),
        Route("/events", streams.events),
        Route("/dlq", pages.dlq),
        Route("/pools", pages.pools),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
