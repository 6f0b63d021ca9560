"""Durations and points in time as users type them."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, tzinfo

from queuectl.errors import UsageError

MAX_SECONDS = 100 * 365.25 * 86400
LATEST = 253402214400.0  # 9999-12-31T00:00:00Z: later times do not print
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # plain seconds: no signs, exponents or underscores
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


def parse_time(value: str, what: str = "time") -> float:
    """Epoch seconds from an ISO 8601 time; a time without offset is local."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"invalid {what} {value!r}: expected an ISO 8601 time like 2026-12-01T02:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # interpret as local time
    try:
        epoch = moment.timestamp()
    except (OverflowError, ValueError, OSError):
        epoch = -1.0
    if not 0 <= epoch <= LATEST:
        raise UsageError(f"invalid {what} {value!r}: expected a time between 1970 and 9999")
    return epoch


def format_time(epoch: float | None) -> str:
    """Local ISO time to the second, or '-'."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def iso_utc(epoch: float | None) -> str | None:
    """UTC ISO time with milliseconds for JSON output, or None."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_duration(seconds: float | None) -> str:
    """A short human duration: 850ms, 12.3s, 5m02s, 2h05m."""
    if seconds is None:
        return "-"
    if seconds < 0.9995:
        return f"{max(seconds, 0) * 1000:.0f}ms"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def zone_time(epoch: float | None, zone: tzinfo) -> str:
    """A moment in a job's zone, with its offset and abbreviation: 2026-03-29 03:00:00+02:00 CEST."""
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch, tz=zone)
    return f"{moment.isoformat(sep=' ', timespec='seconds')} {moment.tzname() or ''}".rstrip()
