"""Serving the dashboard from a thread of `up`: uvicorn beside the pool.

`queuectl dashboard` runs uvicorn in its main thread; `queuectl up --dashboard` runs the same
app in a thread of its own beside the pool (`Dashboard.start()` / `stop()`, which the
supervisor calls), so a slow or stuck browser holds neither the pool nor the scheduler.
Each request opens its own store connection (see queuectl.web.app).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from queuectl.errors import QueueError
from queuectl.web import live

START_WAIT = 10.0  # seconds `start()` waits for uvicorn to serve before saying it could not
GRACEFUL = 2  # seconds open connections (a live view's stream) get to end when the dashboard stops
STOP_WAIT = 10.0  # seconds `stop()` waits for the server's thread


def config(app: Any) -> uvicorn.Config:
    """uvicorn quiet (no access log: queuectl's own lines say what matters), with a bounded graceful stop."""
    return uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=GRACEFUL)


class Server(uvicorn.Server):
    """uvicorn's server, ending the live views' streams first when it stops: they would never end by themselves."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live.close_streams()
        await super().shutdown(sockets)


class Dashboard:
    """The app served on `listening` from a thread: start() once the pool runs, stop() when it ends."""

    def __init__(self, app: Any, listening: socket.socket) -> None:
        self.server = Server(config(app))
        self.listening = listening
        self.thread = threading.Thread(target=self._serve, name="queuectl-dashboard", daemon=True)
        self.failure: BaseException | None = None

    def _serve(self) -> None:
        try:
            self.server.run(sockets=[self.listening])
        except BaseException as exc:  # said by start() or stop(): a thread's exception would go nowhere
            self.failure = exc

    def start(self) -> None:
        """Serve, once uvicorn says it does (or one line saying why it could not)."""
        self.thread.start()
        deadline = time.monotonic() + START_WAIT
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise QueueError(f"the dashboard could not start: {self.failure or 'uvicorn did not serve'}")

    def stop(self) -> None:
        """Stop serving: open connections get GRACEFUL seconds, then the thread ends; the socket is closed."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STOP_WAIT + GRACEFUL)
        self.listening.close()
