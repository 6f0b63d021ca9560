"""Words and JSON for plans and manifest errors (pure; no rich, so validate starts fast).

The JSON shapes are a contract (see the README): add fields, never rename.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import Any

from queuectl.apply import Change, Plan
from queuectl.manifest import Manifest, ManifestError

SHOWN = 60  # values longer than this are cut in the plan's text


def relative(path: str) -> str:
    """A path as short as it can be said from the current directory."""
    directory, name = os.path.split(path)
    if not name:
        return relative_dir(directory)
    base = relative_dir(directory)
    return name if base == "." else os.path.join(base, name)


@functools.lru_cache(maxsize=256)
def relative_dir(directory: str) -> str:
    try:
        rel = os.path.relpath(directory)
    except ValueError:
        return directory
    return directory if rel.startswith("../..") else rel


def relative_error(error: ManifestError) -> str:
    return str(ManifestError(relative(error.path), error.message, error.line, error.key))


def _value(value: object) -> str:
    text = (
        json.dumps(value, ensure_ascii=False)
        if not isinstance(value, int | float) or isinstance(value, bool)
        else repr(value)
    )
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _field_change(key: str, old: object, new: object) -> str:
    if key == "file":
        return f"{key} {relative(str(old))} -> {relative(str(new))}"
    if key == "env" and isinstance(new, dict):
        words = [f"{how} {', '.join(keys)}" for how, keys in new.items() if keys]
        return "env: " + "; ".join(words) + " (values not shown)"
    if isinstance(old, str) and isinstance(new, str) and _value(old) == _value(new):
        start = max(0, _first_difference(old, new) - SHOWN // 3)  # cut alike: show where they differ
        return f"{key} {_window(old, start)} -> {_window(new, start)}"
    return f"{key} {_value(old)} -> {_value(new)}"


def _first_difference(old: str, new: str) -> int:
    return next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))


def _window(text: str, start: int) -> str:
    """`text` from `start`, cut to SHOWN characters, as JSON, with ... where it was cut."""
    body = json.dumps(text[start:], ensure_ascii=False)[1:-1]
    head = "..." if start else ""
    if len(body) > SHOWN:
        body = body[: SHOWN - 3] + "..."
    return f'"{head}{body}"'


def _change_line(change: Change, applied: bool) -> str:
    verbs = {
        "create": ("created", "to create"),
        "update": ("updated", "to update"),
        "delete": ("deleted", "to delete"),
    }
    verb = verbs[change.kind][0 if applied else 1]
    mark = {"create": "+", "update": "~", "delete": "-"}[change.kind]
    line = f"{mark} {change.name}: {verb}"
    if change.kind == "create" and change.path:
        line += f" from {relative(change.path)}"
    if change.kind == "update":
        line += " (" + "; ".join(_field_change(key, old, new) for key, old, new in change.fields) + ")"
    if change.kind == "delete":
        line += " (its manifest is gone; history kept"
        if change.cancelled:
            line += f"; {change.cancelled} run(s) not yet started cancelled"
        line += ")"
    elif change.cancelled:
        line += f" [{change.cancelled} run(s) of the old version cancelled]"
    return line


def invalid_lines(change: Change) -> list[str]:
    """The lines of a refused manifest: one per error."""
    keeps = f" (job {change.name} keeps its last good version)" if change.name else ""
    return [f"! {relative_error(error)}{keeps}" for error in change.errors]


def plan_lines(plan: Plan, applied: bool, quiet_unchanged: bool = False) -> list[str]:
    lines = []
    for change in plan.changes:
        if change.kind in ("create", "update", "delete"):
            lines.append(_change_line(change, applied))
        elif change.kind == "unchanged" and change.fields:
            lines.append(f"= {change.name}: manifest valid again")
    for change in plan.of("invalid"):
        lines.extend(invalid_lines(change))
    counts = plan.counts()
    if applied:
        words = ["created", "updated", "deleted", "unchanged"]
        keys = ["create", "update", "delete", "unchanged"]
        head = "applied"
    else:
        words = ["to create", "to update", "to delete", "unchanged"]
        keys = ["create", "update", "delete", "unchanged"]
        head = "plan"
    summary = ", ".join(f"{counts[k]} {w}" for k, w in zip(keys, words, strict=True))
    if counts["invalid"]:
        summary += f"; {counts['invalid']} invalid manifest(s)"
    if not (quiet_unchanged and not plan.changed and not plan.invalid):
        lines.append(f"{head}: {summary}")
    lines.extend(f"warning: {note}" for note in plan.notes)
    return lines


def _error_json(error: ManifestError) -> dict[str, Any]:
    return {"file": error.path, "line": error.line, "key": error.key, "message": error.message}


def plan_json(plan: Plan, applied: bool) -> dict[str, Any]:
    return {
        "applied": applied,
        "created": [c.name for c in plan.of("create")],
        "updated": [
            {"name": c.name, "changes": {key: new if key == "env" else [old, new] for key, old, new in c.fields}}
            for c in plan.of("update")
        ],
        "deleted": [c.name for c in plan.of("delete")],
        "unchanged": [c.name for c in plan.of("unchanged")],
        "invalid": [
            {"file": c.path, "job": c.name, "errors": [_error_json(e) for e in c.errors]} for c in plan.of("invalid")
        ],
        "counts": plan.counts(),
        "warnings": plan.notes,
    }


def validate_json(manifests: Sequence[Manifest]) -> dict[str, Any]:
    return {
        "valid": [{"file": m.path, "job": m.spec.name} for m in manifests if m.spec is not None],
        "invalid": [{"file": m.path, "errors": [_error_json(e) for e in m.errors]} for m in manifests if m.errors],
    }
