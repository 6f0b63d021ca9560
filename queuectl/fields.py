"""One table of every setting a user can give, and the rules they share.

A setting may be given in a manifest (`retries = 3`), to `enqueue` as a JSON
key or a flag (`"max_retries": 3`, `--retries 3`) and with `config set`
(`max-retries 3`): one row here says its type, limits, default, description
and its spelling in each place. The manifest checker (manifest.py), `enqueue`
(enqueue.py) and `config set` (config.py) all check values against these
rows, the JSON Schema is generated from them (manifest_schema.py) and so is
the docs' key table (`markdown_table`): each limit is written once, here.

Pure: no store, no click.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from queuectl.durations import parse_duration
from queuectl.errors import UsageError


class Kind(enum.Enum):
    """What sort of value a setting takes (each has one check wherever the setting is given)."""

    TEXT = "string"
    NAME = "job name"
    COMMAND = "shell command"
    PRIORITY = "priority"
    MOMENT = "time"
    CRON = "cron expression"
    TIMEZONE = "time zone"
    DURATION = "duration"
    POSITIVE_DURATION = "duration above zero"
    COUNT = "whole number"
    NUMBER = "number"
    BYTES = "bytes"
    CHOICE = "choice"
    PATH = "directory"
    ENV = "environment"
    BOOL = "boolean"


@dataclass(frozen=True)
class Bound:
    """The one rule of a numeric setting, wherever it is given: manifest, enqueue JSON or flag, config set."""

    low: float
    high: float
    whole: bool
    meaning: str

    @property
    def rule(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:g} ({self.meaning})"

    @property
    def span(self) -> str:
        return f"{self.low:g} to {self.high:g}"

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


# -- the limits: each written once -------------------------------------------------
PRIORITY = Bound(1, 10, True, "higher runs first")
PRIORITY_WORDS = {"high": 10, "medium": 5, "normal": 5, "low": 1}
PRIORITY_WORDS_SAID = "high/medium/low"  # how messages name the words ("normal" is medium's other name)
MAX_RETRIES = Bound(0, 1000, True, "tries after the first")
BACKOFF_BASE = Bound(0, 1000, False, "retry n waits backoff-base ** n seconds")
MAX_LOG_BYTES = 2**53  # a count a float still holds exactly
CRON_WORDS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CONCURRENCY = ("allow", "forbid", "replace")
CATCHUP = ("none", "latest", "all")
DURATION_RULE = "seconds or a duration like 90s, 5m, 1h30m"
DURATION_TEXT = 'Seconds as a number, or a duration string such as "90s", "5m", "1h30m", "1.5h", "250ms" or "1d".'
EXCLUSIVE = (("run_at", "cron"),)  # manifest keys that must not be given together


@dataclass(frozen=True)
class Field:
    """One setting: its type, limits, default and description, and how each place spells it.

    `default` is the value taken when the setting is not given; for a setting
    with a `config` key it is that key's default, and runs take the store's
    configured value. `manifest`, `json` and `flags` list the spellings
    accepted in a manifest, an `enqueue` JSON object and on the `enqueue` /
    `run` command line, canonical first; empty where the setting cannot be
    given there. `manifest_kind` overrides `kind` in manifests where their rule
    is stricter (a manifest cannot say "no timeout" with 0).
    """

    name: str
    kind: Kind
    description: str
    default: Any = None
    default_doc: str | None = None
    bound: Bound | None = None
    choices: tuple[str, ...] = ()
    manifest: tuple[str, ...] = ()
    manifest_kind: Kind | None = None
    json: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    config: str | None = None
    config_help: str = ""  # what `config show` says, when not the description
    off_word: bool = False  # `config set KEY off` sets 0, the value that turns the setting off
    examples: tuple[Any, ...] = field(default=())

    @property
    def setting_help(self) -> str:
        return self.config_help or self.description

    @property
    def in_manifest(self) -> Kind:
        return self.manifest_kind or self.kind

    @property
    def default_said(self) -> str | None:
        """The default as the docs say it, or None when there is none to say."""
        if self.default_doc is not None:
            return self.default_doc
        if self.config is not None:
            return f"config {self.config} ({self.default:g})"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        if self.default is not None and self.default != "":
            return str(self.default)
        return None


FIELDS: tuple[Field, ...] = (
    Field(
        "name",
        Kind.NAME,
        "The job's name (1-128 letters, digits, '.', '_' or '-', starting with a letter or digit).",
        default_doc="the file's name without .toml",
        manifest=("name",),
        examples=("nightly-backup",),
    ),
    Field(
        "command",
        Kind.COMMAND,
        "The shell command to run, with /bin/sh -c. Required.",
        manifest=("command",),
        json=("command",),
        flags=("-c", "--command"),
        examples=("pg_dump app > /var/backups/app.sql",),
    ),
    Field(
        "description",
        Kind.TEXT,
        "What the job is for, in a few words; shown in listings.",
        default="",
        manifest=("description",),
        examples=("Nightly dump of the app database",),
    ),
    Field(
        "priority",
        Kind.PRIORITY,
        f"{PRIORITY.span}, {PRIORITY.meaning}; or high ({PRIORITY_WORDS['high']}), "
        f"medium / normal ({PRIORITY_WORDS['medium']}), low ({PRIORITY_WORDS['low']}).",
        default=5,
        bound=PRIORITY,
        choices=tuple(PRIORITY_WORDS),
        manifest=("priority",),
        json=("priority",),
        flags=("-p", "--priority"),
        examples=(5, "high"),
    ),
    Field(
        "run_at",
        Kind.MOMENT,
        "Run once at this time: a TOML date-time (2026-12-01T02:00:00Z, or a local time read in `timezone`), "
        'or "+30m" / "+1h30m" (relative to the job\'s first apply). Not together with `cron`.',
        manifest=("run_at",),
        json=("run_at",),
        flags=("--run-at",),
        examples=("2026-12-01T02:00:00Z", "+30m"),
    ),
    Field(
        "cron",
        Kind.CRON,
        "Run repeatedly: 5 cron fields (minute hour day-of-month month day-of-week), or "
        f"{', '.join(CRON_WORDS[:-1])} or {CRON_WORDS[-1]}. Not together with `run_at`.",
        choices=CRON_WORDS,
        manifest=("cron",),
        examples=("0 2 * * *", "*/5 * * * *", "@daily"),
    ),
    Field(
        "timezone",
        Kind.TIMEZONE,
        "The IANA time zone for `cron` and for a local `run_at`.",
        default_doc="the machine's local zone",
        manifest=("timezone",),
        examples=("Europe/Berlin", "UTC", "America/New_York"),
    ),
    Field(
        "timeout",
        Kind.DURATION,
        f"Kill the command (its whole process group) after this long. {DURATION_TEXT}",
        default=3600,
        manifest=("timeout",),
        manifest_kind=Kind.POSITIVE_DURATION,
        json=("timeout",),
        flags=("--timeout",),
        config="job-timeout",
        config_help="seconds an attempt may run; 0 = no limit",
        examples=("30m", 600),
    ),
    Field(
        "retries",
        Kind.COUNT,
        f"Attempts after the first when the command fails or times out ({MAX_RETRIES.span}).",
        default=3,
        bound=MAX_RETRIES,
        manifest=("retries", "max_retries"),
        json=("max_retries", "retries"),
        flags=("--retries", "--max-retries"),
        config="max-retries",
        config_help="retries after the first attempt, for runs that set none",
        examples=(3,),
    ),
    Field(
        "backoff_base",
        Kind.NUMBER,
        f"Delay before retry n is backoff_base ** n seconds (capped by backoff_max). {BACKOFF_BASE.span}.",
        default=2,
        bound=BACKOFF_BASE,
        manifest=("backoff_base",),
        json=("backoff_base",),
        flags=("--backoff-base",),
        config="backoff-base",
        config_help="retry n waits backoff-base ** n seconds",
        examples=(2,),
    ),
    Field(
        "backoff_max",
        Kind.DURATION,
        f"The longest delay between retries. {DURATION_TEXT}",
        default=3600,
        manifest=("backoff_max",),
        config="backoff-max",
        config_help="longest wait between retries, in seconds",
        examples=("1h",),
    ),
    Field(
        "concurrency",
        Kind.CHOICE,
        "What a cron fire does while the job's previous run is still running: allow (start another run "
        "beside it), forbid (skip the new fire) or replace (stop the running one and start the new one).",
        default="forbid",
        choices=CONCURRENCY,
        manifest=("concurrency",),
    ),
    Field(
        "catchup",
        Kind.CHOICE,
        "After downtime, which missed cron fires to run: none, latest (only the most recent one) or all (bounded).",
        default="latest",
        choices=CATCHUP,
        manifest=("catchup",),
    ),
    Field(
        "catchup_window",
        Kind.POSITIVE_DURATION,
        f"Missed cron fires older than this are dropped. {DURATION_TEXT}",
        default_doc="no limit",
        manifest=("catchup_window",),
        examples=("2h",),
    ),
    Field(
        "jitter",
        Kind.DURATION,
        f"A deterministic per-job delay of up to this long, to spread @hourly herds. {DURATION_TEXT}",
        default_doc="0 (no delay)",
        manifest=("jitter",),
        examples=("5m",),
    ),
    Field(
        "cwd",
        Kind.PATH,
        "The directory to run the command in; ~ is expanded and a relative path is relative to the manifest's "
        "directory.",
        manifest=("cwd",),
        json=("cwd",),
        flags=("--cwd",),
        examples=("/srv/app",),
    ),
    Field(
        "env",
        Kind.ENV,
        'Environment variables for the command, as an [env] table of NAME = "value" (numbers and booleans '
        "are turned into text).",
        manifest=("env",),
        json=("env",),
        flags=("--env",),
        examples=({"PGHOST": "db"},),
    ),
    Field(
        "enabled",
        Kind.BOOL,
        "false suspends the job: it is kept but never scheduled.",
        default=True,
        manifest=("enabled",),
    ),
    Field(
        "keep_children",
        Kind.BOOL,
        "true lets what the command starts outlive its run (for commands that start daemons). By default, "
        "when a run ends, every process it started is killed, even one that left its process group or session.",
        default=False,
        manifest=("keep_children",),
        json=("keep_children",),
        flags=("--keep-children",),
    ),
    Field(
        "id",
        Kind.NAME,
        "The run's id (letters, digits, '.', '_' or '-'); generated if absent.",
        json=("id",),
        flags=("--id",),
    ),
    Field(
        "delay",
        Kind.DURATION,
        "Not before this long from now (instead of run_at).",
        json=("delay",),
        flags=("--delay",),
    ),
    Field(
        "lease_seconds",
        Kind.POSITIVE_DURATION,
        "how long a claim lasts without a heartbeat",
        default=30,
        config="lease-seconds",
    ),
    Field(
        "worker_poll_interval",
        Kind.POSITIVE_DURATION,
        "seconds between store polls of an idle pool",
        default=1,
        config="worker-poll-interval",
    ),
    Field(
        "stop_grace",
        Kind.DURATION,
        "seconds running commands get to finish on a graceful stop",
        default=30,
        config="stop-grace",
    ),
    Field(
        "kill_grace",
        Kind.DURATION,
        "seconds between SIGTERM and SIGKILL on a timeout",
        default=5,
        config="kill-grace",
    ),
    Field(
        "priority_aging",
        Kind.DURATION,
        "a waiting run gains one priority level per this long waited, up to 10 (low ones cannot starve); 0 or off: off",
        default=0,
        config="priority-aging",
        off_word=True,
    ),
    Field(
        "log_max_bytes",
        Kind.BYTES,
        "cap on one attempt's log file, in bytes: past it the start and the end are kept; 0 = no cap",
        default=10 * 1024 * 1024,
        config="log-max-bytes",
    ),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
# The order `config show` lists the settings in (checked against the table by the tests).
CONFIG_ORDER = (
    "max-retries",
    "backoff-base",
    "backoff-max",
    "job-timeout",
    "lease-seconds",
    "worker-poll-interval",
    "stop-grace",
    "kill-grace",
    "priority-aging",
    "log-max-bytes",
)
BY_CONFIG: dict[str, Field] = {key: next(f for f in FIELDS if f.config == key) for key in CONFIG_ORDER}
MANIFEST_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.manifest)
MANIFEST_KEYS: tuple[str, ...] = tuple(f.manifest[0] for f in MANIFEST_FIELDS)
MANIFEST_ALIASES: dict[str, str] = {alias: f.name for f in MANIFEST_FIELDS for alias in f.manifest[1:]}
JSON_KEYS: dict[str, Field] = {key: f for f in FIELDS for key in f.json}
FLAGS: dict[str, Field] = {flag: f for f in FIELDS for flag in f.flags}


# -- the shared checks --------------------------------------------------------------
def priority(value: object) -> int:
    """A priority from a number (or its text) or a word; ValueError saying the rule."""
    if isinstance(value, str) and value.strip().lower() in PRIORITY_WORDS:
        return PRIORITY_WORDS[value.strip().lower()]
    try:
        return int(PRIORITY.check(value))
    except ValueError:
        raise ValueError(
            f"expected {PRIORITY.low:g}-{PRIORITY.high:g} ({PRIORITY.meaning}) or {PRIORITY_WORDS_SAID}"
        ) from None


def priority_rule() -> str:
    """The priority rule as a manifest error says it."""
    return f"{PRIORITY.rule} or {PRIORITY_WORDS_SAID}"


def setting_from_text(fld: Field, text: str) -> float:
    """A `config set` value for `fld`, read from text; ValueError saying the rule."""
    if fld.bound is not None:
        return fld.bound.check(text)
    if fld.kind is Kind.BYTES:
        return _byte_count(text)
    if fld.off_word and text.strip().lower() == "off":
        return 0.0
    try:
        seconds = parse_duration(text)
    except UsageError:
        raise ValueError(f"expected {DURATION_RULE}{', or off' if fld.off_word else ''}") from None
    if fld.kind is Kind.POSITIVE_DURATION and seconds <= 0:
        raise ValueError("expected a duration above zero")
    return seconds


def _byte_count(text: str) -> float:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("expected a whole number of zero or more") from None
    if not 0 <= number <= MAX_LOG_BYTES:
        raise ValueError("expected a whole number from 0 to 2**53")
    return number


# -- the docs' key table -------------------------------------------------------------
def type_said(fld: Field, kind: Kind | None = None) -> str:
    """A setting's type in a few words, as the docs' table shows it."""
    kind = kind or fld.kind
    if kind in (Kind.COUNT, Kind.NUMBER) and fld.bound is not None:
        return f"{'integer' if fld.bound.whole else 'number'} {fld.bound.span}"
    if kind is Kind.PRIORITY:
        return f"{PRIORITY.low:g}-{PRIORITY.high:g} or {PRIORITY_WORDS_SAID}"
    if kind is Kind.CHOICE:
        return " \\| ".join(fld.choices)
    if kind is Kind.ENV:
        return "table"
    if kind is Kind.MOMENT:
        return 'date-time or "+30m"'
    if kind is Kind.BOOL:
        return "boolean"
    if kind in (Kind.DURATION, Kind.POSITIVE_DURATION):
        return "duration" if kind is Kind.DURATION else "duration > 0"
    return "string"


def markdown_table(fields: tuple[Field, ...] = MANIFEST_FIELDS) -> str:
    """The manifest keys as a markdown table: key, type, default, description."""
    rows = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for fld in fields:
        names = " or ".join(f"`{name}`" for name in fld.manifest)
        default = fld.default_said or ("required" if fld.kind is Kind.COMMAND else "-")
        description = fld.description.replace(f" {DURATION_TEXT}", "")  # the type column says "duration"
        cells = (names, type_said(fld, fld.in_manifest), default, description.replace("|", "\\|"))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
