"""Live updates by server-sent events: `/events` (the store changed) and a run's output as it is printed.

Nothing a browser does can hold the store: one thread per app polls the store's change token
about once a second (a connection opened and closed for each look) while any page listens, and
each `/events` stream only compares an in-memory counter. A run's output stream reads its log
and the store in short steps in the thread pool, each closing what it opened, and holds nothing
across an await. At most MAX_STREAMS streams are open at once; beyond that a clear 503.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from queuectl.errors import NotFoundError, QueueError, UsageError
from queuectl.services import output as run_output
from queuectl.store.contract import Store

MAX_STREAMS = 100  # open SSE streams of one dashboard (pages and outputs together)
CHANGE_POLL = 1.0  # seconds between two looks at the store's change token
READY_WAIT = 5.0  # seconds a new listener waits for the first look at the store (a stuck store: it goes on)
IDLE_STOP = 30.0  # the polling thread ends after this long with no page listening
TICK = 0.25  # seconds between two looks at the change counter, or at a growing log
PLACE_EVERY = 4  # a followed run's state is read every this many ticks (once a second)
PING = 15.0  # seconds of quiet after which a stream sends a comment (a gone browser is noticed)
MAX_DIGITS = 18  # an offset or attempt of more digits is no log's (and int() refuses 4301)
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

StoreOpener = Callable[[], AbstractContextManager[Store]]

_apps: weakref.WeakSet[Live] = weakref.WeakSet()  # the live handlers of this process's apps


def close_streams() -> None:
    """End every open stream at its next tick: a stopping server waits for its open requests, and these never end.

    Each app's streams end; an app made afterwards (a server started again in this process) streams afresh.
    """
    for handlers in list(_apps):
        handlers.closing.set()


class Slots:
    """How many streams are open; `take` refuses one past the limit."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = MAX_STREAMS if limit is None else limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


class SlotResponse(StreamingResponse):
    """A stream that gives its slot back when it ends, however it ends (done, browser gone, cancelled)."""

    def __init__(self, content: AsyncIterator[str], slots: Slots) -> None:
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.give_back()


class Changes:
    """A counter that moves when the store's change token does, kept by one thread while pages listen."""

    def __init__(self, opener: StoreOpener, poll: float | None = None) -> None:
        self.opener = opener
        self.poll = CHANGE_POLL if poll is None else poll
        self.version = 0
        self.listeners = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def listen(self) -> None:
        """Count a listener in; return once the token later ones are compared with was read (blocks: a thread's)."""
        with self._lock:
            self.listeners += 1
            if self._thread is None:
                self._ready = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._ready,), name="queuectl-web-changes", daemon=True
                )
                self._thread.start()
            ready = self._ready
        ready.wait(READY_WAIT)

    def leave(self) -> None:
        with self._lock:
            self.listeners -= 1

    def _token(self) -> object:
        try:
            with self.opener() as store:
                return store.change_token()
        except QueueError as exc:  # the store is away: say so once, when it changes
            return ("error", exc.message)

    def _run(self, ready: threading.Event) -> None:
        last, idle = self._token(), 0.0
        ready.set()
        stop = threading.Event()
        while True:
            stop.wait(self.poll)
            with self._lock:
                idle = 0.0 if self.listeners else idle + self.poll
                if idle >= IDLE_STOP:
                    self._thread = None
                    return
            token = self._token()
            if token != last:
                last = token
                self.version += 1


def sse(event: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event; `data` as JSON (one line, so no newline or CR in it can split the event)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data)}\n\n"


class Live:
    """The handlers of /events, /runs/{id}/output/stream and /runs/{id}/output."""

    def __init__(self, opener: StoreOpener, limit: int | None = None) -> None:
        self.opener = opener
        self.slots = Slots(limit)
        self.changes = Changes(opener)
        self.closing = threading.Event()  # its server is stopping: each stream ends at its next tick
        _apps.add(self)

    def _busy(self) -> Response:
        said = f"too many live streams are open ({self.slots.limit}): close a dashboard tab or try again later"
        return PlainTextResponse(said + "\n", 503, headers={"Retry-After": "5"})

    async def events(self, request: Request) -> Response:
        if not self.slots.take():
            return self._busy()
        return SlotResponse(self._changes(), self.slots)

    async def _changes(self) -> AsyncIterator[str]:
        try:
            await run_in_threadpool(self.changes.listen)  # not cancelled midway: leave() always matches it
            seen, quiet = self.changes.version, 0.0
            yield "retry: 2000\n\n"
            while not self.closing.is_set():
                await asyncio.sleep(TICK)
                quiet += TICK
                if self.changes.version != seen:
                    seen, quiet = self.changes.version, 0.0
                    yield sse("change", seen)
                elif quiet >= PING:
                    quiet = 0.0
                    yield ": ping\n\n"
        finally:
            self.changes.leave()

    def _place(self, run_id: str, attempt: int | None) -> run_output.Place:
        with self.opener() as store:
            return run_output.place(store, run_id, attempt)

    async def output_stream(self, request: Request) -> Response:
        """The output of one attempt (the latest by default) as it grows; `id:` is the byte offset after each event.

        A reconnect with `Last-Event-ID` (or `?offset=`) goes on from that offset; the stream
        ends with an `end` event once the attempt is over (`final`: the run is, too).
        """
        run_id = request.path_params["run_id"]
        try:
            attempt = _whole(request.query_params.get("attempt"), "attempt")
            if attempt == 0:
                raise UsageError("invalid attempt '0': attempts are counted from 1")
            offset = _whole(request.headers.get("last-event-id") or request.query_params.get("offset"), "offset") or 0
            place = await run_in_threadpool(self._place, run_id, attempt)
        except NotFoundError as exc:
            return PlainTextResponse(exc.message + "\n", 404)
        except UsageError as exc:
            return PlainTextResponse(exc.message + "\n", 400)
        except QueueError as exc:
            return PlainTextResponse(exc.message + "\n", 503)
        if not self.slots.take():
            return self._busy()
        return SlotResponse(self._follow(run_id, place, offset), self.slots)

    async def _follow(self, run_id: str, place: run_output.Place, offset: int) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        if place.elsewhere:
            yield sse("note", f"the log is on host {place.elsewhere}; its tail as the store keeps it follows")
            yield sse("output", place.tail)
        ticks = 0
        while True:
            if not place.elsewhere:
                for event, after in await run_in_threadpool(_drain, place, offset):
                    offset = after
                    yield event
            if (place.started and not place.live) or (not place.started and place.final):
                yield sse("end", {"state": place.state.value, "attempt": place.attempt, "final": place.final})
                return
            await asyncio.sleep(TICK)
            if self.closing.is_set():
                return
            ticks += 1
            if ticks % int(PING / TICK) == 0:
                yield ": ping\n\n"
            if ticks % PLACE_EVERY == 0:
                try:
                    place = await run_in_threadpool(self._place, run_id, place.attempt)
                except QueueError as exc:  # deleted meanwhile, or the store is away
                    yield sse("error", exc.message)
                    return

    async def download(self, request: Request) -> Response:
        """The latest attempt's whole output as a text/plain attachment (the store's tail when the log is elsewhere)."""
        run_id = request.path_params["run_id"]
        try:
            place = await run_in_threadpool(self._place, run_id, None)
        except NotFoundError as exc:
            return PlainTextResponse(exc.message + "\n", 404)
        except QueueError as exc:
            return PlainTextResponse(exc.message + "\n", 503)
        name = f"{run_id}.{place.attempt}.log"
        if place.path and not place.elsewhere and place.live:
            # A growing (or cut) log: FileResponse would declare its size now and send what is there at its
            # end, more or less than declared, and the server aborts the download. Send its bytes up to its size now.
            size = await run_in_threadpool(_size, place.path)
            if size is not None:
                return StreamingResponse(
                    _upto(place.path, size), media_type="text/plain; charset=utf-8", headers=_attachment(name)
                )
        if place.path and not place.elsewhere and await run_in_threadpool(_readable, place.path):
            return FileResponse(
                place.path, media_type="text/plain; charset=utf-8", filename=name, content_disposition_type="attachment"
            )
        return PlainTextResponse(place.tail, headers=_attachment(name))


def _drain(place: run_output.Place, offset: int) -> list[tuple[str, int]]:
    """Events for what the log holds past `offset` (read to its end now), each with the offset after it."""
    events = []
    for chunk in _chunks(place, offset):
        if chunk.cut:
            events.append((sse("note", "the log reached its cap and was cut; it goes on from its new end"), chunk.end))
        if chunk.text:
            events.append((sse("output", chunk.text, str(chunk.end)), chunk.end))
    return events


def _chunks(place: run_output.Place, offset: int) -> Iterator[run_output.Chunk]:
    for _ in range(64):  # at most 4 MiB per step: a huge log is sent in steps, between which others run
        chunk = run_output.read(place.path, offset, whole=not place.live)
        yield chunk
        if chunk.end == offset or chunk.end >= chunk.size:
            return
        offset = chunk.end


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}  # a run id is a safe name (check_name)


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _read_at(path: str, offset: int, length: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)
    except OSError:
        return b""


async def _upto(path: str, size: int) -> AsyncIterator[bytes]:
    """A log's first `size` bytes (fewer if it is cut meanwhile), a chunk at a time, each read closing the file."""
    offset = 0
    while offset < size:
        data = await run_in_threadpool(_read_at, path, offset, min(run_output.CHUNK, size - offset))
        if not data:
            return
        offset += len(data)
        yield data


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _whole(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:  # '²' is a digit, int() refuses it
        raise UsageError(f"invalid {what} {text!r}: expected a whole number")
    return int(text)
