"""Settings kept in the store: their names, defaults and validation, from the table of fields."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from queuectl import fields
from queuectl.errors import UsageError

if TYPE_CHECKING:
    from queuectl.model import JobSpec


class Setting(NamedTuple):
    key: str
    default: float
    help: str
    parse: Callable[[str], float]


def _parser(fld: fields.Field) -> Callable[[str], float]:
    return lambda text: fields.setting_from_text(fld, text)


SETTINGS: dict[str, Setting] = {
    key: Setting(key, fld.default, fld.setting_help, _parser(fld)) for key, fld in fields.BY_CONFIG.items()
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


@dataclass(frozen=True)
class Defaults:
    """The store's settings a run takes where its job's manifest or its `enqueue` is silent."""

    max_retries: int
    backoff_base: float
    backoff_max: float
    timeout: float | None  # None: no limit (job-timeout 0)

    @classmethod
    def of(cls, values: Mapping[str, float]) -> Defaults:
        """From the effective settings (`effective`)."""
        return cls(
            max_retries=int(values["max-retries"]),
            backoff_base=values["backoff-base"],
            backoff_max=values["backoff-max"],
            timeout=values["job-timeout"] or None,
        )


class HasSettings(Protocol):
    """What `defaults` needs of a store: its stored settings."""

    def config(self) -> dict[str, str]: ...


def defaults(store: HasSettings) -> Defaults:
    """The run defaults in force in `store`: the one place they are built from its config."""
    return Defaults.of(effective(store.config()))


# The settings `show JOB` gives with the value in force: every job's, then a cron job's.
JOB_SETTINGS = ("priority", "timeout", "retries", "backoff_base", "backoff_max")
CRON_SETTINGS = ("concurrency", "catchup", "catchup_window", "jitter")


class InForce(NamedTuple):
    """A job's setting as its runs take it, and where that value comes from."""

    key: str  # the manifest key
    value: Any  # None: none (no timeout, no catch-up window, no jitter)
    source: str  # "manifest", "config" (the store's setting) or "default"


def in_force(spec: JobSpec, stored: Mapping[str, str]) -> list[InForce]:
    """The values job `spec`'s runs take: its manifest's, else the store's settings (`stored`), else the defaults."""
    values = effective(stored)
    found = []
    for key in JOB_SETTINGS + (CRON_SETTINGS if spec.cron is not None else ()):
        fld = fields.BY_NAME[key]
        given = getattr(spec, key)
        if fld.config is None:
            found.append(InForce(key, given, "default" if given == fld.default else "manifest"))
        elif given is not None:
            found.append(InForce(key, given, "manifest"))
        else:
            value: Any = values[fld.config]
            if key == "retries":
                value = int(value)
            elif key == "timeout" and not value:
                value = None  # job-timeout 0: no limit
            found.append(InForce(key, value, "config" if fld.config in stored else "default"))
    return found
