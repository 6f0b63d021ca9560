"""The manifest JSON Schema: a valid draft 2020-12 schema that agrees with manifest.parse.

Editors (taplo, VS Code's Even Better TOML) check manifests against the schema while
`queuectl validate` checks them with manifest.parse; a document one accepts and the
other refuses is a bug in one of them. The tables below hold both to the same verdict.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import tomli
from jsonschema import Draft202012Validator

from queuectl import manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted([*(ROOT / "examples" / "jobs.d").glob("*.toml"), *(ROOT / "jobs.d").glob("*.toml")])


def load_schema() -> dict[str, Any]:
    text = resources.files("queuectl").joinpath("manifest.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def as_json(value: Any) -> Any:
    """A parsed TOML document as a schema validator sees it: date-times become ISO strings."""
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_json(item) for item in value]
    if isinstance(value, dt.date | dt.time):  # dt.datetime is a dt.date
        return value.isoformat()
    return value


def schema_errors(validator: Draft202012Validator, text: str) -> list[str]:
    return [error.message for error in validator.iter_errors(as_json(tomli.loads(text)))]


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://queuectl.dev/schema/manifest.json"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["command"]


def test_schema_describes_every_manifest_key() -> None:
    properties = load_schema()["properties"]
    assert set(properties) == set(manifest.KEYS) | set(manifest.ALIASES)
    for key, prop in properties.items():
        assert prop.get("description"), f"{key} has no description"


def test_examples_are_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert {
        "hello-once.toml",
        "delayed-report.toml",
        "disk-usage.toml",
        "flaky-fetch.toml",
        "slow-with-timeout.toml",
        "hello.toml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: str(path.relative_to(ROOT)))
def test_example_manifest_is_valid(validator: Draft202012Validator, path: Path) -> None:
    data = path.read_bytes()
    assert schema_errors(validator, data.decode("utf-8")) == []
    parsed = manifest.parse(data, str(path))
    assert parsed.errors == ()
    assert parsed.spec is not None
    assert parsed.spec.name == path.stem
    assert data.startswith(b"#"), "an example starts with a comment saying what it shows"


INVALID = {
    "unknown key": 'command = "true"\nretry = 3\n',
    "unknown table": 'command = "true"\n[options]\nverbose = true\n',
    "missing command": 'description = "no command"\n',
    "empty command": 'command = ""\n',
    "blank command": 'command = "   "\n',
    "command not a string": "command = 42\n",
    "priority 11": 'command = "true"\npriority = 11\n',
    "priority 0": 'command = "true"\npriority = 0\n',
    "priority word": 'command = "true"\npriority = "urgent"\n',
    "priority boolean": 'command = "true"\npriority = true\n',
    "run_at and cron": 'command = "true"\nrun_at = "+30m"\ncron = "@daily"\n',
    "run_at words": 'command = "true"\nrun_at = "tomorrow"\n',
    "run_at relative without duration": 'command = "true"\nrun_at = "+soon"\n',
    "run_at date only": 'command = "true"\nrun_at = 2026-12-01\n',
    "run_at time only": 'command = "true"\nrun_at = 02:00:00\n',
    "cron 4 fields": 'command = "true"\ncron = "0 2 * *"\n',
    "cron 6 fields": 'command = "true"\ncron = "0 0 2 * * *"\n',
    "cron unknown shorthand": 'command = "true"\ncron = "@every5m"\n',
    "negative timeout": 'command = "true"\ntimeout = -5\n',
    "zero timeout": 'command = "true"\ntimeout = 0\n',
    "zero timeout string": 'command = "true"\ntimeout = "0s"\n',
    "timeout in words": 'command = "true"\ntimeout = "5 minutes"\n',
    "timeout unit-less tail": 'command = "true"\ntimeout = "1h30"\n',
    "zero catchup_window": 'command = "true"\ncatchup_window = "0m"\n',
    "negative jitter": 'command = "true"\njitter = -1\n',
    "empty backoff_max": 'command = "true"\nbackoff_max = ""\n',
    "retries -1": 'command = "true"\nretries = -1\n',
    "retries 1001": 'command = "true"\nretries = 1001\n',
    "retries as string": 'command = "true"\nretries = "3"\n',
    "retries and max_retries": 'command = "true"\nretries = 3\nmax_retries = 3\n',
    "backoff_base 1001": 'command = "true"\nbackoff_base = 1001\n',
    "backoff_base negative": 'command = "true"\nbackoff_base = -2\n',
    "bad concurrency": 'command = "true"\nconcurrency = "skip"\n',
    "bad catchup": 'command = "true"\ncatchup = "some"\n',
    "name with a space": 'command = "true"\nname = "my job"\n',
    "name starting with a dash": 'command = "true"\nname = "-job"\n',
    "name not ASCII": 'command = "true"\nname = "café"\n',
    "name too long": f'command = "true"\nname = "{"a" * 129}"\n',
    "empty timezone": 'command = "true"\ntimezone = ""\n',
    "empty cwd": 'command = "true"\ncwd = ""\n',
    "description not a string": 'command = "true"\ndescription = 5\n',
    "enabled as string": 'command = "true"\nenabled = "yes"\n',
    "env bad variable name": 'command = "true"\n[env]\n"MY-VAR" = "x"\n',
    "env name starting with a digit": 'command = "true"\n[env]\n"1X" = "x"\n',
    "env value an array": 'command = "true"\n[env]\nPATHS = ["/bin"]\n',
    "env value a table": 'command = "true"\n[env.NESTED]\nX = "1"\n',
    "env not a table": 'command = "true"\nenv = "PATH=/bin"\n',
}


@pytest.mark.parametrize("text", INVALID.values(), ids=INVALID.keys())
def test_invalid_manifest_is_rejected_by_both(validator: Draft202012Validator, text: str) -> None:
    assert schema_errors(validator, text), "the schema accepted it"
    parsed = manifest.parse(text.encode("utf-8"), "job.toml")
    assert parsed.errors, "manifest.parse accepted it"
    assert parsed.spec is None


DESIGN_EXAMPLE = """\
command  = "pg_dump app > /var/backups/app.sql"
cron     = "0 2 * * *"
timezone = "Europe/Berlin"
priority = 5
timeout  = "30m"
retries  = 3
backoff_base = 2
concurrency  = "forbid"
catchup      = "latest"
catchup_window = "2h"
jitter   = "5m"
description = "Nightly dump of the app database"
cwd = "/srv/app"
enabled = true
[env]
PGHOST = "db"
"""

VALID = {
    "command only": 'command = "true"\n',
    "design example": DESIGN_EXAMPLE,
    "duration 1h30m": 'command = "true"\ntimeout = "1h30m"\n',
    "duration in seconds": 'command = "true"\ntimeout = 90\nbackoff_max = 0.5\njitter = 0\n',
    "duration units": 'command = "true"\ntimeout = "250ms"\ncatchup_window = "1d"\njitter = "1.5h"\n',
    "zero backoff_max": 'command = "true"\nbackoff_max = "0s"\n',
    "priority high": 'command = "true"\npriority = "high"\n',
    "priority low": 'command = "true"\npriority = "low"\n',
    "priority 10": 'command = "true"\npriority = 10\n',
    "relative run_at": 'command = "true"\nrun_at = "+30m"\n',
    "relative run_at 1h30m": 'command = "true"\nrun_at = "+1h30m"\n',
    "run_at TOML date-time UTC": 'command = "true"\nrun_at = 2026-12-01T02:00:00Z\n',
    "run_at TOML date-time offset": 'command = "true"\nrun_at = 2026-12-01T02:00:00+01:00\n',
    "run_at local date-time": 'command = "true"\nrun_at = 2026-12-01T02:00:00\ntimezone = "Europe/Berlin"\n',
    "run_at ISO string": 'command = "true"\nrun_at = "2026-12-01T02:00:00Z"\n',
    "cron @daily": 'command = "true"\ncron = "@daily"\n',
    "cron @hourly with jitter": 'command = "true"\ncron = "@hourly"\njitter = "5m"\n',
    "cron 5 fields": 'command = "true"\ncron = "*/5 * * * *"\nconcurrency = "replace"\ncatchup = "all"\n',
    "max_retries alias": 'command = "true"\nmax_retries = 5\n',
    "retries 0": 'command = "true"\nretries = 0\n',
    "backoff_base float": 'command = "true"\nbackoff_base = 1.5\n',
    "env numbers": 'command = "true"\n[env]\nPORT = 8080\nRATIO = 0.5\nDEBUG = true\nHOST = "db"\n',
    "env dotted keys": 'command = "true"\nenv.PATH = "/usr/bin:/bin"\nenv._PRIVATE = "1"\n',
    "empty env": 'command = "true"\nenv = {}\n',
    "name 128 characters": f'command = "true"\nname = "{"a" * 128}"\n',
    "name with dots": 'command = "true"\nname = "backup.db-1_nightly"\n',
    "suspended": 'command = "true"\nenabled = false\n',
    "relative cwd": 'command = "true"\ncwd = "scripts"\n',
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid_manifest_is_accepted_by_both(validator: Draft202012Validator, text: str) -> None:
    assert schema_errors(validator, text) == []
    parsed = manifest.parse(text.encode("utf-8"), "job.toml")
    assert parsed.errors == ()
    assert parsed.spec is not None


def test_manifest_file_read_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "nightly-backup.toml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    path.chmod(0o644)
    read = manifest.read(str(path))
    assert read.errors == ()
    assert read.spec is not None
    assert read.spec.name == "nightly-backup"
    assert read.spec.env == (("PGHOST", "db"),)
    assert read.spec.timeout == 1800.0
