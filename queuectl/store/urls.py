"""Store locations: a file path or a PostgreSQL URL; what is refused; passwords masked or left out."""

from __future__ import annotations

import re
from urllib.parse import unquote

from queuectl.errors import UsageError

MEMORY_NAMES = (":memory:", "file::memory:")
_SECRET_PARAMS = r"(?:ssl)?password"


def is_server_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def check_file_location(location: str) -> None:
    """Refuse what is not a store file path (a key=value string, a mistyped URL, an in-memory database)."""
    if re.search(r"(^|\s)(host|hostaddr|dbname|user|port|password)=", location):  # not echoed: may hold a password
        raise UsageError(
            "a key=value connection string is not a store location: expected postgresql://user@host/dbname"
        )
    if re.match(r"postgres(ql)?(:|//)", location):
        raise UsageError(f"not a store URL: {mask_url(location)!r}: expected postgresql://user@host/dbname")
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise UsageError(f"unknown store URL scheme {scheme!r}: expected a file path or postgresql://…")
    if location in MEMORY_NAMES or location.startswith("file::memory:"):
        raise UsageError(
            f"cannot use {location} as the store: an in-memory store forgets every run when the command exits; "
            "expected a file path or postgresql://…"
        )


def mask_url(url: str) -> str:
    """The URL with its password (in the authority, or a password=/sslpassword= parameter) replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority_end = len(rest)
        for mark in "/?#":
            at = rest.find(mark, rest.rfind("@") + 1 if "@" in rest else 0)
            if at >= 0:
                authority_end = min(authority_end, at)
        authority, tail = rest[:authority_end], rest[authority_end:]
        if "@" in authority:
            userinfo, _, hostport = authority.partition("@")  # the first @, as libpq reads it
            user, colon, _ = userinfo.partition(":")
            authority = f"{user}:***@{hostport}" if colon else f"{userinfo}@{hostport}"
        url = f"{scheme}://{authority}{tail}"
    return re.sub(rf"([?&]{_SECRET_PARAMS}=)[^&#]*", r"\1***", url)


def without_password(url: str) -> str:
    """A server URL with no password in it (a file path as it is): for what must not see one."""
    if not is_server_url(url):
        return url
    masked = mask_url(url)
    scheme, _, rest = masked.partition("://")
    authority, mark, tail = rest.partition("@")
    if mark and authority.endswith(":***"):
        rest = authority[: -len(":***")] + mark + tail
    rest = re.sub(rf"([?&]){_SECRET_PARAMS}=\*\*\*(&|(?=#)|$)", lambda m: m.group(1) if m.group(2) else "", rest)
    return f"{scheme}://{rest}".rstrip("?&")


def scrub(text: str, url: str) -> str:
    """`text` (say, a driver's error message) without the URL's secrets: the URL masked, passwords hidden."""
    text = text.replace(url, mask_url(url))
    secrets = re.findall(rf"[?&]{_SECRET_PARAMS}=([^&#]*)", url)
    _, sep, rest = url.partition("://")
    userinfo = rest.partition("@")[0] if sep and "@" in rest.split("/")[0] else ""
    if ":" in userinfo:
        secrets.append(userinfo.partition(":")[2])
    for secret in secrets:
        for form in {secret, unquote(secret)}:
            if len(form) >= 2:
                text = text.replace(form, "***")
    return text
