"""Turn what a user typed (JSON or flags) into NewRun values.

Accepts the spellings of the classic queuectl tools: `max_retries` or
`retries`, priorities 1-10 or high/medium/low, and the bookkeeping fields
(`state`, `attempts`, `created_at`, `updated_at`) their job files carry.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from queuectl import config
from queuectl.durations import parse_duration, parse_time
from queuectl.errors import DuplicateRunError, UsageError
from queuectl.model import NewRun, check_name

PRIORITY_WORDS = {"high": 10, "medium": 5, "normal": 5, "low": 1}
DEFAULT_PRIORITY = 5
_KNOWN = {
    "id",
    "command",
    "priority",
    "max_retries",
    "retries",
    "timeout",
    "backoff_base",
    "run_at",
    "delay",
    "cwd",
    "env",
    "keep_children",
}
_IGNORED = {"created_at", "updated_at"}


# Linux refuses to start a command (E2BIG, "Argument list too long") when one argument or
# environment string, its NUL included, is longer than MAX_ARG_STRLEN (32 pages), or when the
# arguments and environment together, with a pointer each, pass sysconf(ARG_MAX). A run starts as
# `/bin/sh -c COMMAND` with the pool's own environment beside the run's env: room is left for that.
MAX_ARG_STRLEN = 131072
POOL_ENV_ROOM = 64 * 1024
_POINTER = 8
_SHELL_ARGS = len("/bin/sh") + 1 + len("-c") + 1 + 3 * _POINTER
MAX_LINE = 16 * 1024 * 1024  # characters in one --file line: far above what can start, far below memory


def arg_max() -> int:
    """The kernel's limit on arguments and environment together (sysconf ARG_MAX), in bytes."""
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        value = -1
    return value if value > 0 else MAX_ARG_STRLEN


class SizeProblem(NamedTuple):
    """Why a run could never start: `field` is "command", "env" (one string: `name`) or "total"."""

    field: str
    name: str | None
    why: str


def size_problem(command: str, env: Mapping[str, str]) -> SizeProblem | None:
    """Why the kernel would refuse to start `/bin/sh -c command` with this env (and the pool's), or None.

    Sizes are counted in UTF-8 bytes without encoding an ASCII string (a huge one costs no copy).
    """
    single = MAX_ARG_STRLEN if sys.platform.startswith("linux") else None
    size = _utf8_size(command) + 1
    if single is not None and size > single:
        return SizeProblem("command", None, _over_single(size, "argument"))
    total = _SHELL_ARGS + size + _POINTER
    for name, value in env.items():
        pair = _utf8_size(name) + 1 + _utf8_size(value) + 1
        if single is not None and pair > single:
            return SizeProblem("env", name, _over_single(pair, "environment string NAME=VALUE"))
        total += pair + _POINTER
    budget = arg_max() - POOL_ENV_ROOM
    if total > budget:
        why = (
            f"the command and env take {total:,} bytes together, over the {budget:,} bytes the kernel "
            f"allows them (ARG_MAX {arg_max():,} less {POOL_ENV_ROOM:,} for the pool's own environment)"
        )
        return SizeProblem("total", None, why)
    return None


def _over_single(size: int, what: str) -> str:
    limit = MAX_ARG_STRLEN - 1
    advice = "; put a long script in a file and run the file" if what == "argument" else ""
    return f"{size - 1:,} bytes, over the kernel's limit of {limit:,} bytes for one {what} (MAX_ARG_STRLEN){advice}"


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def new_id() -> str:
    return f"run-{os.urandom(6).hex()}"


def parse_priority(value: object) -> int:
    if isinstance(value, str) and value.strip().lower() in PRIORITY_WORDS:
        return PRIORITY_WORDS[value.strip().lower()]
    number: int | None = None
    if isinstance(value, int | str) and not isinstance(value, bool):
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or not 1 <= number <= 10:
        raise UsageError(f"invalid priority {value!r}: expected 1-10 (higher runs first) or high/medium/low")
    return number


def _bounded(bound: config.Bound, value: object, what: str) -> float:
    """A number within the setting's one rule (config.py), said as manifests and `config set` say it."""
    try:
        return bound.check(value)
    except ValueError as exc:
        raise UsageError(f"invalid {what} {value!r}: {exc}") from None


def build(fields: Mapping[str, Any], defaults: Mapping[str, float], now: float) -> NewRun:
    """A NewRun from user fields; defaults are the store's effective config."""
    unknown = sorted(set(fields) - _KNOWN - _IGNORED - {"state", "attempts"})
    if unknown:
        raise UsageError(f"unknown field {unknown[0]!r}: expected some of {', '.join(sorted(_KNOWN))}")
    if fields.get("state", "pending") != "pending":
        raise UsageError(f"invalid state {fields['state']!r}: a new run can only be 'pending'")
    if fields.get("attempts", 0) != 0:
        raise UsageError(f"invalid attempts {fields['attempts']!r}: a new run has 0 attempts")
    command = fields.get("command")
    if not isinstance(command, str) or not command.strip():
        raise UsageError("missing command: expected a non-empty shell command string")
    _check_size(command, {})  # before anything copies a huge command
    _check_text(command, "command")
    run_id = fields.get("id")
    run_id = new_id() if run_id is None else check_name(run_id)
    if "max_retries" in fields and "retries" in fields and fields["max_retries"] != fields["retries"]:
        raise UsageError("conflicting max_retries and retries: give one of them")
    retries = fields.get("max_retries", fields.get("retries"))
    timeout = defaults["job-timeout"] if fields.get("timeout") is None else parse_duration(fields["timeout"], "timeout")
    if fields.get("run_at") is not None and fields.get("delay") is not None:
        raise UsageError("conflicting run_at and delay: give one of them")
    run_at = None
    if fields.get("run_at") is not None:
        if not isinstance(fields["run_at"], str):
            raise UsageError(f"invalid run_at {fields['run_at']!r}: expected an ISO 8601 time string")
        run_at = parse_time(fields["run_at"], "run_at")
    elif fields.get("delay") is not None:
        run_at = now + parse_duration(fields["delay"], "delay")
    cwd = fields.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise UsageError(f"invalid cwd {cwd!r}: expected an absolute directory path")
    if cwd is not None:
        _check_text(cwd, "cwd")
    env = fields.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise UsageError("invalid env: expected an object of string names to string values")
    for name, value in env.items():
        if not name or "=" in name:
            raise UsageError(f"invalid env name {name!r}: expected a name without '='")
        _check_text(name, "env name")
        _check_text(value, f"env {name}")
    keep_children = fields.get("keep_children", False)
    if not isinstance(keep_children, bool):
        raise UsageError(f"invalid keep_children {keep_children!r}: expected true or false")
    _check_size(command, env)
    return NewRun(
        id=run_id,
        command=command,
        priority=DEFAULT_PRIORITY if fields.get("priority") is None else parse_priority(fields["priority"]),
        max_retries=int(
            defaults["max-retries"] if retries is None else _bounded(config.MAX_RETRIES, retries, "max_retries")
        ),
        backoff_base=float(
            defaults["backoff-base"]
            if fields.get("backoff_base") is None
            else _bounded(config.BACKOFF_BASE, fields["backoff_base"], "backoff_base")
        ),
        backoff_max=defaults["backoff-max"],
        timeout=timeout or None,
        run_at=run_at,
        cwd=cwd,
        env=dict(env),
        keep_children=keep_children,
    )


def _check_size(command: str, env: Mapping[str, str]) -> None:
    problem = size_problem(command, env)
    if problem is not None:
        what = {"command": "command", "env": f"env {problem.name}", "total": "command and env"}[problem.field]
        raise UsageError(f"invalid {what}: {problem.why}")


def _check_text(value: str, what: str) -> None:
    """Commands, paths and environment go to the kernel: no NUL, valid UTF-8."""
    if "\0" in value:
        raise UsageError(f"invalid {what}: it contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"invalid {what}: not valid UTF-8 text") from None


def parse_json(text: str, where: str = "") -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}malformed JSON: {exc.msg} at column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # absurd numbers or nesting
        raise UsageError(f"{where}malformed JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f'{where}expected a JSON object like {{"command": "echo hi"}}')
    return value


def bounded_lines(file: IO[str], source: str) -> Iterator[str]:
    """The lines of a JSON Lines file, refusing one longer than MAX_LINE before it is read whole.

    A run that long could never start, and reading it whole (then parsing and copying it)
    would cost memory many times its size.
    """
    number = 0
    while line := file.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE and not (len(line) == MAX_LINE + 1 and line.endswith("\n")):
            raise UsageError(
                f"{source} line {number}: longer than {MAX_LINE:,} characters; no run that large could start "
                f"(one argument may hold {MAX_ARG_STRLEN - 1:,} bytes, a command and its env {arg_max():,})"
            )
        yield line


def from_lines(lines: Iterable[str], source: str, defaults: Mapping[str, float], now: float) -> list[NewRun]:
    """Runs from JSON Lines; the first bad line aborts with its line number."""
    try:
        return _from_lines(lines, source, defaults, now)
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text; expected JSON Lines") from None


def _from_lines(lines: Iterable[str], source: str, defaults: Mapping[str, float], now: float) -> list[NewRun]:
    runs = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source} line {number}: "
        try:
            run = build(parse_json(line, where), defaults, now)
        except UsageError as exc:
            msg = exc.message if exc.message.startswith(where) else where + exc.message
            raise UsageError(msg) from None
        if run.id in seen:
            raise DuplicateRunError(f"{where}duplicate id {run.id!r}: already given on line {seen[run.id]}")
        seen[run.id] = number
        runs.append(run)
    return runs
