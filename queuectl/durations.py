"""Durations and points in time as users type them."""

from __future__ import annotations

import functools
import math
import re
import time
from datetime import UTC, datetime, timedelta, tzinfo

from queuectl.errors import UsageError

MAX_SECONDS = 100 * 365.25 * 86400
LATEST = 253402214400.0  # 9999-12-31T00:00:00Z: later times do not print
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # plain seconds: no signs, exponents or underscores
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # every time a person reads; the zone label follows it
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from an int/float or a string like "90", "90s", "5m", "1h30m"."""
    if isinstance(value, bool):
        raise UsageError(f"invalid {what} {value!r}: expected seconds or a duration like 90s, 5m, 1h30m")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = float("inf")
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        seconds = _parse_text(text, value, what)
    else:
        raise UsageError(f"invalid {what} {value!r}: expected seconds or a duration like 90s, 5m, 1h30m")
    if seconds < 0 or seconds != seconds:
        raise UsageError(f"invalid {what} {value!r}: expected a duration of zero or more")
    if seconds > MAX_SECONDS:
        raise UsageError(f"invalid {what} {value!r}: expected a duration of at most 100 years")
    return seconds


def _parse_text(text: str, original: str, what: str) -> float:
    seconds = _seconds(text)
    if seconds is None:
        raise UsageError(f"invalid {what} {original!r}: expected seconds or a duration like 90s, 5m, 1h30m")
    return seconds


@functools.lru_cache(maxsize=1024)
def _seconds(text: str) -> float | None:
    """Seconds in "90", "90s", "1h30m" (cached: manifests repeat a few durations), or None."""
    if _NUMBER.fullmatch(text):
        return float(text)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total if text and pos == len(text) else None


ISO_TIME = "an ISO 8601 time like 2026-12-01T02:00:00Z"


def parse_time(value: str, what: str = "time", forms: str = ISO_TIME) -> float:
    """Epoch seconds from an ISO 8601 time; a time without offset is local. `forms`: what a bad one is told."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"invalid {what} {value!r}: expected {forms}") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # interpret as local time
    try:
        epoch = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        epoch = -1.0
    if not 0 <= epoch <= LATEST:
        raise UsageError(f"invalid {what} {value!r}: expected a time between 1970 and 9999")
    return epoch


def split_seconds(epoch: float) -> tuple[int, int]:
    """(second, microsecond) of a time, rounded as datetime.fromtimestamp rounds (half to even)."""
    fraction, whole = math.modf(epoch)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    return int(whole), micro


def format_time(epoch: float | None) -> str:
    """A run's time in the machine's zone to the second, labelled: 2026-11-29 22:08:48 CET; or '-'.

    The C library's localtime (cheap: a listing formats one time per run), so the zone is
    what it says: $TZ, else /etc/localtime. A zone without an abbreviation reads as its offset (-03).
    """
    if epoch is None:
        return "-"
    return time.strftime(f"{TIME_FORMAT} %Z", time.localtime(split_seconds(epoch)[0]))


def fire_time(epoch: float | None, zone: tzinfo) -> str:
    """A cron fire in its job's zone, labelled, with UTC beside it when the zone's offset is not zero.

    2026-11-29 22:09:00 CET (2026-11-29 21:09:00 UTC); 2026-11-29 21:09:00 UTC; '-' for none.
    """
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(split_seconds(epoch)[0], tz=zone)
    local = f"{moment.strftime(TIME_FORMAT)} {moment.tzname() or moment.strftime('%z')}"
    if moment.utcoffset() == timedelta(0):
        return local
    return f"{local} ({moment.astimezone(UTC).strftime(TIME_FORMAT)} UTC)"


def iso_utc(epoch: float | None) -> str | None:
    """UTC ISO time with milliseconds for JSON output, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_duration(seconds: float | None) -> str:
    """One duration style for every line a user reads: 850ms, 3.2s, 30s, 5m, 5m02s, 1h30m, 2d04h; '-' for none.

    Under a second: whole milliseconds. Under a minute: seconds to one decimal, a trailing .0
    left out. Then two whole units at most, the smaller one rounded and left out when zero:
    minutes and seconds, hours and minutes, days and hours. What it prints, parse_duration reads.
    """
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 0.9995:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 59.95:
        return f"{seconds:.1f}".removesuffix(".0") + "s"
    whole = round(seconds)  # in seconds
    if whole < 3600:
        return _two(whole, 60, "m", "s")
    whole = round(seconds / 60)  # in minutes
    if whole < 1440:
        return _two(whole, 60, "h", "m")
    return _two(round(seconds / 3600), 24, "d", "h")


def _two(count: int, per: int, big: str, small: str) -> str:
    """`count` small units as big and small ones (5m02s, 1h30m), the small ones left out when zero."""
    high, low = divmod(count, per)
    return f"{high}{big}" + (f"{low:02d}{small}" if low else "")


def zone_time(epoch: float | None, zone: tzinfo) -> str:
    """A moment in a job's zone, with its offset and abbreviation: 2026-03-29 03:00:00+02:00 CEST.

    For JSON (`plan --json`'s `local`, a documented field); people read fire_time.
    """
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch, tz=zone)
    return f"{moment.isoformat(sep=' ', timespec='seconds')} {moment.tzname() or ''}".rstrip()
