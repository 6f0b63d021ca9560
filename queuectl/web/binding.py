"""Where the dashboard may listen: loopback or a token, `[HOST:]PORT`, its socket.

No web library here: `dashboard` and `up --dashboard` check their options with these
before the web extra is imported (a refusal is said the same with or without it).
"""

from __future__ import annotations

import ipaddress
import secrets
import socket

from queuectl.errors import QueueError, UsageError

TOKEN_ENV = "QUEUECTL_DASHBOARD_TOKEN"
DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and `localhost`: only this machine can reach them."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name (or 0.0.0.0's spellings): assume others can reach it


def check_token(host: str, token: str | None, give: str, instead: str) -> None:
    """Off loopback a token is needed: one line (exit 2) saying how to give one (`give`), or `instead`."""
    if not token and not is_loopback(host):
        raise UsageError(f"refusing to serve on {host} without a token: give {give} or set {TOKEN_ENV} ({instead})")


def new_token() -> str:
    return secrets.token_urlsafe(24)


def parse_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` (`8080`, `0.0.0.0:8080`, `[::1]:8080`): the host (127.0.0.1 if none) and the port."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host = DEFAULT_HOST
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535 or (sep and not host):
        raise UsageError(f"invalid --dashboard {text!r}: expected [HOST:]PORT, like 8080 or 0.0.0.0:8080")
    return host, int(port)


def listen(host: str, port: int, exit_code: int | None = None) -> socket.socket:
    """A socket listening on host:port, or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, proto)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(128)
    except OSError as exc:
        raise QueueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", exit_code) from None
    return listening


def url(host: str, listening: socket.socket) -> str:
    """http://HOST:PORT/ of a listening socket (the port it got, for port 0)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{listening.getsockname()[1]}/"


def login_url(host: str, listening: socket.socket, token: str) -> str:
    """The link that logs a browser in: this machine's name in place of an address of every interface."""
    try:
        everywhere = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        everywhere = False
    return f"{url(socket.gethostname() if everywhere else host, listening)}login?token={token}"
