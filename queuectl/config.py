"""Settings kept in the store: their names, defaults and validation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from queuectl.durations import parse_duration
from queuectl.errors import UsageError


class Setting(NamedTuple):
    key: str
    default: float
    help: str
    parse: Callable[[str], float]


class Bound(NamedTuple):
    """The one rule of a numeric setting, wherever it is given: manifest, enqueue JSON or flag, config set."""

    low: float
    high: float
    whole: bool
    meaning: str

    @property
    def rule(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:g} ({self.meaning})"

    def check(self, value: object) -> float:
        """The value as a number within the bound (text is read as one); ValueError saying the rule."""
        number: float | None = None
        if isinstance(value, str):
            try:
                number = int(value.strip()) if self.whole else float(value)
            except ValueError:
                number = None
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = value if isinstance(value, int) or not self.whole else None
        if number is None or not self.low <= number <= self.high:  # NaN fails the comparison too
            raise ValueError(f"expected {self.rule}")
        return number


MAX_RETRIES = Bound(0, 1000, True, "tries after the first")
BACKOFF_BASE = Bound(0, 1000, False, "retry n waits backoff-base ** n seconds")


def _count(value: str) -> float:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("expected a whole number of zero or more") from None
    if not 0 <= number <= 2**53:
        raise ValueError("expected a whole number from 0 to 2**53")
    return number


def _seconds(value: str) -> float:
    try:
        return parse_duration(value)
    except UsageError:
        raise ValueError("expected seconds or a duration like 90s, 5m, 1h30m") from None


def _positive_seconds(value: str) -> float:
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("expected a duration above zero")
    return seconds


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("max-retries", 3, "retries after the first attempt, for runs that set none", MAX_RETRIES.check),
        Setting("backoff-base", 2, "retry n waits backoff-base ** n seconds", BACKOFF_BASE.check),
        Setting("backoff-max", 3600, "longest wait between retries, in seconds", _seconds),
        Setting("job-timeout", 3600, "seconds an attempt may run; 0 = no limit", _seconds),
        Setting("lease-seconds", 30, "how long a claim lasts without a heartbeat", _positive_seconds),
        Setting("worker-poll-interval", 1, "seconds between store polls of an idle pool", _positive_seconds),
        Setting("stop-grace", 30, "seconds running commands get to finish on a graceful stop", _seconds),
        Setting("kill-grace", 5, "seconds between SIGTERM and SIGKILL on a timeout", _seconds),
        Setting("log-max-bytes", 10 * 1024 * 1024, "cap on one attempt's log file (the tail is kept)", _count),
    )
}


def normalize_key(key: str) -> str:
    """The canonical (dashed) name of a setting, or UsageError listing the valid ones."""
    canonical = key.strip().lower().replace("_", "-")
    if canonical not in SETTINGS:
        raise UsageError(f"unknown config key {key!r}: expected one of {', '.join(SETTINGS)}")
    return canonical


def parse_value(key: str, value: str) -> float:
    """Validate `value` for the setting `key` (already normalized)."""
    try:
        return SETTINGS[key].parse(value)
    except ValueError as exc:
        raise UsageError(f"invalid value {value!r} for {key}: {exc}") from None


def effective(stored: Mapping[str, str]) -> dict[str, float]:
    """Every setting's value: the stored one where set, else the default."""
    values = {key: s.default for key, s in SETTINGS.items()}
    for key, raw in stored.items():
        if key in SETTINGS:
            try:
                values[key] = SETTINGS[key].parse(raw)
            except ValueError:
                pass  # a value written by a newer version we cannot read: keep the default
    return values


def render_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
