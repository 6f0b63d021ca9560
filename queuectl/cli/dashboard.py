"""`dashboard`: serve the web dashboard (for now its JSON API) with uvicorn."""

from __future__ import annotations

import ipaddress
import signal
import socket

import click

from queuectl.cli.app import Context, db_option, log_line, store_of
from queuectl.errors import QueueError, UsageError

TOKEN_ENV = "QUEUECTL_DASHBOARD_TOKEN"
WEB_EXTRA = "the dashboard needs the web extra: pip install 'queuectl[web]'"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: only this machine can reach them."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name (or 0.0.0.0's spellings): assume others can reach it


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    metavar="T",
    envvar=TOKEN_ENV,
    help=f"Requests must carry `Authorization: Bearer T` (env: {TOKEN_ENV}); needed off loopback.",
)
@click.option("--read-only", is_flag=True, help="Serve no actions (pages, the JSON API and metrics only).")
@db_option
@click.pass_context
def dashboard(ctx: click.Context, host: str, port: int, token: str | None, read_only: bool) -> None:
    """Serve the web dashboard: /healthz and the JSON API under /api/, as the CLI's --json answers.

    It listens on 127.0.0.1 unless --host says otherwise; anywhere else it needs
    a token. SIGTERM or Ctrl-C stops it.

    \b
    Example:
      queuectl dashboard --port 8000
      queuectl dashboard --host 0.0.0.0 --token "$(openssl rand -hex 16)"
    """
    if not token and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without a token: give --token T or set {TOKEN_ENV} (or use --host 127.0.0.1)"
        )
    try:
        import uvicorn  # the web extra: only this command needs it

        from queuectl.web.app import create_app
    except ImportError:
        raise QueueError(WEB_EXTRA) from None
    store = store_of(ctx)  # a missing or unreadable store is said now, not at the first request
    location = ctx.find_object(Context).db  # type: ignore[union-attr]
    app = create_app(location, token=token, read_only=read_only)
    listening = _listen(host, port)  # bound here: a port in use is one line, and --port 0 says which it got
    shown = f"[{host}]" if ":" in host else host
    log_line(f"dashboard on http://{shown}:{listening.getsockname()[1]}/ (store: {store.location}); SIGTERM stops it")
    _ends_quietly_on_sigterm()
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listening])


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, proto)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(128)
    except OSError as exc:
        raise QueueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return listening


def _ends_quietly_on_sigterm() -> None:
    """SIGTERM ends the dashboard with exit 0, like `up`.

    uvicorn stops gracefully on SIGTERM, then puts back the handler it found and
    raises the signal again: with the default handler the process would die of it.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
