"""Who may ask the dashboard what: the token, the login page, CSRF and read-only.

One ASGI middleware, `Guard`, in front of every route:

- With a token set, a request is let in by `Authorization: Bearer TOKEN` (a script,
  Prometheus) or by the cookie `queuectl_token_<8 hex digits>` that /login sets (a browser). Without
  it an HTML page redirects to /login and anything else (/api/, /metrics) answers 401
  JSON. /healthz, /login and /static/ need no token.
- Every request but /healthz names in its Host an address the dashboard serves on (an IP
  address, this machine's name, or one given with --allow-host): against DNS rebinding.
- Every request that is not GET or HEAD (on loopback and with no token too) passes
  the CSRF check: its Origin, when sent, is the page's own, and its `X-CSRF-Token` header
  (or `csrf_token` form field) equals the `queuectl_csrf` cookie. A request let in by
  its Authorization header is exempt from the cookie check only: a browser never
  sends that header by itself.
- With --read-only every such request but the login answers 403.

Every request gets its CSRF token in `request.state.csrf_token` (pages put it in a
`<meta name="csrf-token">`); a new one is set as the `queuectl_csrf` cookie on the answer.
Secrets are compared with hmac.compare_digest.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import ipaddress
import secrets
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from queuectl import json_views

TOKEN_COOKIE = "queuectl_token"
CSRF_COOKIE = "queuectl_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD"})
OPEN_PATHS = ("/healthz", "/login")  # served to anyone: a load balancer's check, the way in
OPEN_PREFIXES = ("/static/",)  # the package's own files: nothing secret
JSON_PREFIXES = ("/api/", "/metrics")  # answered 401 JSON without the token (the rest redirects to /login)
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM = 64 * 1024  # bytes of a form read to find its csrf_token field: far above a form's, far below memory
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
READ_ONLY = "this dashboard is read-only (--read-only)"
NEEDS_TOKEN = "this dashboard needs its token: Authorization: Bearer TOKEN, or log in at /login"
BAD_HOST = "refused: the Host header names no address this dashboard serves on (DNS rebinding?)"
BAD_ORIGIN = "refused: the request comes from another origin (cross-site request)"
BAD_CSRF = "refused: missing or wrong CSRF token (X-CSRF-Token header or csrf_token field, as the queuectl_csrf cookie)"


def json_error(message: str, status_code: int) -> Response:
    return Response(json_views.dumps({"error": message}) + "\n", status_code, media_type="application/json")


def served_names(host: str | None = None) -> frozenset[str]:
    """The host names a request may name besides IP addresses: localhost's, this machine's, and `host`."""
    names = set(LOOPBACK_NAMES)
    for name in (socket.gethostname(), socket.getfqdn(), host or ""):
        if name:
            names.add(name.lower().strip("[]"))
    return frozenset(names)


def host_allowed(header: str, names: Iterable[str]) -> bool:
    """Whether a Host header names this dashboard: an IP address (no DNS, so no rebinding) or a known name."""
    name = header.lower()
    if name.startswith("["):  # [::1]:8080
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in names


def session_value(token: str) -> str:
    """What the login cookie holds: derived from the token (not the token itself, which may hold any character)."""
    return hmac.new(token.encode(), b"queuectl dashboard session", hashlib.sha256).hexdigest()


def token_cookie(token: str) -> str:
    """The login cookie's name: one per token, as cookies are shared by every port of a host (RFC 6265 8.5):
    two dashboards on one machine would otherwise log each other out."""
    return f"{TOKEN_COOKIE}_{session_value(token)[:8]}"


def same(given: str | None, expected: str | None) -> bool:
    """Two secrets equal, in constant time; a missing one is never equal."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _utf8(header: str | None) -> str | None:
    """A header's value as the UTF-8 a client sends (Starlette decodes headers as latin-1): a token's 'é' matches."""
    return header.encode("latin-1").decode("utf-8", "replace") if header else header


class Guard:
    """The middleware: token, read-only, CSRF; the CSRF token in request.state and its cookie."""

    def __init__(
        self, app: ASGIApp, token: str | None = None, read_only: bool = False, hosts: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.token = token
        self.read_only = read_only
        self.names = frozenset(h.lower() for h in hosts) | served_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = None if cookie and len(cookie) >= 32 else secrets.token_urlsafe(32)
        csrf = fresh or cookie or ""
        request.state.csrf_token = csrf
        by_header = self.token is not None and same(_utf8(request.headers.get("authorization")), f"Bearer {self.token}")
        request.state.authenticated = by_header or self._by_cookie(request)
        refusal = self._host_refusal(request) or self._refusal(request)
        if refusal is None and request.method not in SAFE_METHODS:
            refusal, receive = await self._csrf_refusal(request, receive, by_header, "" if fresh else csrf)
        if refusal is not None:
            await _with_cookie(refusal, fresh, request)(scope, receive, send)
            return
        await self.app(scope, receive, _cookie_sender(send, fresh, request) if fresh else send)

    def _by_cookie(self, request: Request) -> bool:
        return self.token is None or same(request.cookies.get(token_cookie(self.token)), session_value(self.token))

    def _host_refusal(self, request: Request) -> Response | None:
        """403 for a Host naming no address served here, on every request but /healthz: a page of another
        site whose name was made to point at this address (DNS rebinding) would otherwise read it all."""
        if request.url.path == "/healthz" or host_allowed(request.headers.get("host", ""), self.names):
            return None
        return json_error(BAD_HOST, 403)

    def _refusal(self, request: Request) -> Response | None:
        """401 or a redirect to /login without the token; 403 for a change asked of a read-only dashboard."""
        path = request.url.path
        is_open = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if not request.state.authenticated and not is_open:
            if request.method in SAFE_METHODS and not path.startswith(JSON_PREFIXES):
                asked = path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?{urlencode({'next': asked})}", 303)
            return json_error(NEEDS_TOKEN, 401)
        if self.read_only and request.method not in SAFE_METHODS and path != "/login":
            return json_error(READ_ONLY, 403)
        return None

    async def _csrf_refusal(
        self, request: Request, receive: Receive, by_header: bool, cookie: str
    ) -> tuple[Response | None, Receive]:
        """403 for a request that may come from another site; the `receive` that gives the body again."""
        host = request.headers.get("host", "")  # allowed: see _host_refusal
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{host}":
            return json_error(BAD_ORIGIN, 403), receive
        if by_header:
            return None, receive
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").split(";")[0].strip() == FORM_TYPE:
            given, receive = await _form_field(receive, CSRF_FIELD)
        if not same(given, cookie):
            return json_error(BAD_CSRF, 403), receive
        return None, receive


async def _form_field(receive: Receive, field: str) -> tuple[str | None, Receive]:
    """A field of a url-encoded form body (at most MAX_FORM bytes read), and a `receive` replaying the body."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body") or size > MAX_FORM:
            break
    body = b"".join(m.get("body", b"") for m in messages)
    values = parse_qs(body[:MAX_FORM].decode("latin-1")).get(field) if size <= MAX_FORM else None

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return (values[0] if values else None), replay


async def bounded_body(request: Request, limit: int) -> bytes | None:
    """The request's body, or None once it is past `limit` bytes: read no further, never held whole in memory."""
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and (len(length) > 18 or int(length) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _cookie_header(request: Request, name: str, value: str) -> str:
    secure = "; Secure" if request.url.scheme == "https" else ""
    return f"{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}"


def _with_cookie(response: Response, fresh: str | None, request: Request) -> Response:
    if fresh:
        response.headers.append("set-cookie", _cookie_header(request, CSRF_COOKIE, fresh))
    return response


def _cookie_sender(send: Send, fresh: str, request: Request) -> Send:
    """`send`, adding the new CSRF cookie to the answer's headers."""
    line = _cookie_header(request, CSRF_COOKIE, fresh).encode("latin-1")

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", line)]}
        await send(message)

    return sender


LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><meta name="csrf-token" content="{csrf}">
<title>queuectl: log in</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 4rem auto; padding: 0 1rem">
<h1>queuectl</h1>
<p>This dashboard needs its token (<code>--token</code> or <code>QUEUECTL_DASHBOARD_TOKEN</code>).</p>
{problem}<form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button type="submit">Log in</button>
</form></body></html>
"""


# As the pages' (queuectl.web.pages): never framed by another site (where a click or the token typed could be
# borrowed), nothing from elsewhere, kept by no cache; and the token of a /login?token= link sent to nobody.
LOGIN_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self' 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Login:
    """/login: GET ?token=T or POST the form's `token`; the right one sets the token cookie and goes back
    to the page asked for (`next`, one of this dashboard's), else to /."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def answer(self, request: Request) -> Response:
        if self.token is None:
            return RedirectResponse("/", 303)  # no token to give: nothing to log in to
        if request.method == "POST":
            body = await bounded_body(request, MAX_FORM)
            if body is None:
                return self.page(request, f"The form is too large: at most {MAX_FORM} bytes.", 413)
            form = parse_qs(body.decode("utf-8", "replace"))
            given, asked = form.get("token", [None])[0], form.get("next", ["/"])[0]
        else:
            given, asked = request.query_params.get("token"), request.query_params.get("next", "/")
        going = local_path(asked)
        if given is None:
            return self.page(request, "", going=going)
        if not same(given, self.token):
            return self.page(request, "That is not this dashboard's token.", 401, going)
        answer = RedirectResponse(going, 303)
        cookie = _cookie_header(request, token_cookie(self.token), session_value(self.token))
        answer.headers.append("set-cookie", cookie)
        return answer

    def page(self, request: Request, problem: str, status_code: int = 200, going: str = "/") -> Response:
        said = f'<p role="alert"><strong>{html.escape(problem)}</strong></p>\n' if problem else ""
        csrf = html.escape(request.state.csrf_token)
        shown = LOGIN_PAGE.format(csrf=csrf, problem=said, next=html.escape(going))
        return HTMLResponse(shown, status_code, headers=LOGIN_HEADERS)


def local_path(asked: str) -> str:
    """Where to go once logged in: the page that sent the browser to log in, if it is one of this dashboard's.

    Only a path of this server (`/runs?state=dead`): never another site's address (`//evil.example`,
    `https://…`, `/\\evil.example`), which would make the login link an open redirect.
    """
    if not asked.startswith("/") or asked.startswith(("//", "/\\")) or any(c in asked for c in "\r\n\\"):
        return "/"
    return asked


def routes(token: str | None) -> list[Any]:
    """The login page's route."""
    return [Route("/login", Login(token).answer, methods=["GET", "POST"])]
