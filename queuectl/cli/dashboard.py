"""`dashboard`: serve the web dashboard with uvicorn."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import click

from queuectl.cli.app import Context, db_option, log_line, store_of
from queuectl.errors import QueueError, UsageError
from queuectl.web import binding
from queuectl.web.binding import TOKEN_ENV

if TYPE_CHECKING:
    from queuectl.web.server import Dashboard

WEB_EXTRA = "the dashboard needs the web extra: pip install 'queuectl[web]'"


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--token",
    metavar="T",
    envvar=TOKEN_ENV,
    help=f"Needed off loopback: requests carry `Authorization: Bearer T` or log in at /login (env: {TOKEN_ENV}).",
)
@click.option("--generate-token", is_flag=True, help="Draw a token and print its login link once (on stderr).")
@click.option("--read-only", is_flag=True, help="Serve no actions (pages, the JSON API and metrics only).")
@click.option(
    "--allow-host",
    "allowed",
    metavar="NAME",
    multiple=True,
    help="A name browsers reach it by, besides this machine's (behind a proxy); repeatable.",
)
@db_option
@click.pass_context
def dashboard(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    generate_token: bool,
    read_only: bool,
    allowed: tuple[str, ...],
) -> None:
    """Serve the web dashboard: pages, the JSON API and its actions under /api/, and /metrics.

    It listens on 127.0.0.1 unless --host says otherwise; anywhere else it needs
    a token (--token, $QUEUECTL_DASHBOARD_TOKEN, or --generate-token). Every
    action also passes a CSRF check. SIGTERM or Ctrl-C stops it.

    \b
    Example:
      queuectl dashboard --port 8000
      queuectl dashboard --host 0.0.0.0 --generate-token
    """
    if generate_token and token:
        raise UsageError("--generate-token draws a token: give no --token (or $QUEUECTL_DASHBOARD_TOKEN) beside it")
    generated = binding.new_token() if generate_token else None
    token = generated or token
    binding.check_token(host, token, "--token T or --generate-token,", "or use --host 127.0.0.1")
    try:
        from queuectl.web.app import create_app  # the web extra (Starlette, uvicorn): only this command needs it
        from queuectl.web.server import Server, config
    except ImportError:
        raise QueueError(WEB_EXTRA) from None
    store = store_of(ctx)  # a missing or unreadable store is said now, not at the first request
    location = ctx.find_object(Context).db  # type: ignore[union-attr]
    app = create_app(location, token=token, read_only=read_only, hosts=[host, *allowed])
    listening = binding.listen(host, port)  # bound here: a port in use is one line, and --port 0 says which it got
    address = binding.url(host, listening)
    log_line(f"dashboard on {address} (store: {store.location}); SIGTERM stops it")
    if generated:
        log_line(f"log in at {binding.login_url(host, listening, generated)} (this token is shown once)")
    _ends_quietly_on_sigterm()
    Server(config(app)).run(sockets=[listening])


def _ends_quietly_on_sigterm() -> None:
    """SIGTERM ends the dashboard with exit 0, like `up`.

    uvicorn stops gracefully on SIGTERM, then puts back the handler it found and
    raises the signal again: with the default handler the process would die of it.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


def beside_up(ctx: click.Context, address: str, token: str | None, read_only: bool = False) -> Dashboard:
    """`up --dashboard [HOST:]PORT`: the dashboard, bound now (a port in use: one line, exit 1), served by `up`."""
    host, port = binding.parse_address(address)
    binding.check_token(host, token, "--dashboard-token T", "or use --dashboard 127.0.0.1:PORT")
    try:
        from queuectl.web.app import create_app  # the web extra: only with --dashboard
        from queuectl.web.server import Dashboard
    except ImportError:
        raise QueueError(WEB_EXTRA) from None
    listening = binding.listen(host, port)
    location = ctx.find_object(Context).db  # type: ignore[union-attr]
    app = create_app(location, token=token, read_only=read_only, hosts=[host])
    log_line(f"dashboard on {binding.url(host, listening)}")
    return Dashboard(app, listening)


def check_beside_up(address: str, token: str | None) -> None:
    """`up --detach --dashboard`: what the background up would refuse, said now (the port is tried and let go)."""
    host, port = binding.parse_address(address)
    binding.check_token(host, token, "--dashboard-token T", "or use --dashboard 127.0.0.1:PORT")
    binding.listen(host, port).close()
