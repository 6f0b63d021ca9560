"""The manifest's JSON Schema, generated from the table of fields (fields.py).

Editors (taplo, Even Better TOML) check manifests with it; `queuectl
validate` checks them with manifest.py. The package ships the generated text
as manifest.schema.json (a unit test holds the two equal); regenerate it with
`python -m queuectl.manifest_schema > queuectl/manifest.schema.json`.
"""

from __future__ import annotations

import sys
from typing import Any

from queuectl import fields
from queuectl.durations import MAX_SECONDS
from queuectl.fields import Field, Kind
from queuectl.json_views import dumps
from queuectl.model import NAME_RE

SCHEMA_ID = "https://queuectl.dev/schema/manifest.json"
DESCRIPTION = (
    "One queuectl job, declared in one TOML file (for example jobs.d/nightly-backup.toml). Only `command` is "
    "required. With neither `run_at` nor `cron` the job runs once, as soon as it is applied. Check a file with "
    "`queuectl validate FILE`."
)
# What durations.parse_duration reads: plain seconds, or number-unit parts (units d, h, m, s, ms).
_DURATION = r"(?:\d+(?:\.\d+)?|(?:\d+(?:\.\d+)? *(?:[Mm][Ss]|[DdHhMmSs]) *)+)"
DURATION_PATTERN = rf"^\s*{_DURATION}\s*$"
_DATE_TIME = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}"
_LONGEST = int(MAX_SECONDS)  # 100 years, a whole number of seconds


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a manifest."""
    exclusive = [list(pair) for pair in fields.EXCLUSIVE]
    exclusive += [[f.manifest[0], alias] for f in fields.MANIFEST_FIELDS for alias in f.manifest[1:]]
    properties: dict[str, Any] = {}
    for fld in fields.MANIFEST_FIELDS:
        properties[fld.manifest[0]] = _property(fld)
        for alias in fld.manifest[1:]:
            properties[alias] = {
                "description": f"Another spelling of `{fld.manifest[0]}` (the queue CLI's); give one or the other.",
                **_value(fld, fld.in_manifest),
                **_examples(fld),
            }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "queuectl job manifest",
        "description": DESCRIPTION,
        "type": "object",
        "required": [f.manifest[0] for f in fields.MANIFEST_FIELDS if f.kind is Kind.COMMAND],
        "additionalProperties": False,
        "not": {"anyOf": [{"required": pair} for pair in exclusive]},
        "properties": properties,
    }


def text() -> str:
    """The schema as shipped in manifest.schema.json."""
    return dumps(schema()) + "\n"


def _property(fld: Field) -> dict[str, Any]:
    said = fld.default_said
    description = fld.description if said is None else f"{fld.description} Default: {said}."
    prop: dict[str, Any] = {"description": description, **_value(fld, fld.in_manifest)}
    if fld.default is not None and fld.config is None:
        prop["default"] = fld.default
    return {**prop, **_examples(fld)}


def _examples(fld: Field) -> dict[str, Any]:
    return {"examples": list(fld.examples)} if fld.examples else {}


def _value(fld: Field, kind: Kind) -> dict[str, Any]:
    """What a value of this kind may be, in JSON Schema words."""
    if kind is Kind.NAME:
        return {"type": "string", "pattern": f"^{NAME_RE.pattern}$"}
    if kind is Kind.COMMAND:
        return {"type": "string", "minLength": 1, "pattern": r"\S"}
    if kind in (Kind.TIMEZONE, Kind.PATH):
        return {"type": "string", "minLength": 1}
    if kind is Kind.PRIORITY and fld.bound is not None:
        number = {"type": "integer", "minimum": fld.bound.low, "maximum": fld.bound.high}
        return {"anyOf": [number, {"type": "string", "enum": list(fld.choices)}]}
    if kind in (Kind.COUNT, Kind.NUMBER) and fld.bound is not None:
        which = "integer" if fld.bound.whole else "number"
        return {"type": which, "minimum": fld.bound.low, "maximum": fld.bound.high}
    if kind is Kind.DURATION:
        number = {"type": "number", "minimum": 0, "maximum": _LONGEST}
        return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}
    if kind is Kind.POSITIVE_DURATION:
        number = {"type": "number", "exclusiveMinimum": 0, "maximum": _LONGEST}
        above_zero = [{"type": "string", "pattern": DURATION_PATTERN}, {"type": "string", "pattern": "[1-9]"}]
        return {"anyOf": [number, {"allOf": above_zero}]}
    if kind is Kind.CHOICE:
        return {"type": "string", "enum": list(fld.choices)}
    if kind is Kind.BOOL:
        return {"type": "boolean"}
    if kind is Kind.MOMENT:
        return _moment()
    if kind is Kind.CRON:
        return _cron(fld.choices)
    if kind is Kind.ENV:
        return {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        }
    return {"type": "string"}


def _moment() -> dict[str, Any]:
    return {
        "anyOf": [
            {
                "description": 'A relative time: "+" and a duration.',
                "type": "string",
                "pattern": rf"^\s*\+\s*{_DURATION}\s*$",
            },
            {
                "description": "A date-time with an offset or Z.",
                "type": "string",
                "format": "date-time",
                "pattern": rf"{_DATE_TIME}:\d{{2}}(?:\.\d+)?(?:[Zz]|[+-]\d{{2}}:\d{{2}})$",
            },
            {
                "description": "A local date-time (no offset), read in `timezone` or the machine's zone.",
                "type": "string",
                "pattern": rf"{_DATE_TIME}(?::\d{{2}}(?:\.\d+)?)?$",
            },
        ]
    }


def _cron(words: tuple[str, ...]) -> dict[str, Any]:
    shorthands = "|".join(word.lstrip("@") for word in words)
    return {"type": "string", "pattern": rf"^\s*(?:@(?:{shorthands})|[^\s@]\S*(?:\s+\S+){{4}})\s*$"}


if __name__ == "__main__":
    sys.stdout.write(text())
