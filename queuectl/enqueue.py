"""Turn what a user typed (JSON or flags) into NewRun values.

Accepts the spellings of the classic queuectl tools: `max_retries` or
`retries`, priorities 1-10 or high/medium/low, and the bookkeeping fields
(`state`, `attempts`, `created_at`, `updated_at`) their job files carry.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

from queuectl import fields
from queuectl.config import Defaults
from queuectl.durations import parse_duration, parse_time
from queuectl.errors import DuplicateRunError, UsageError
from queuectl.model import NewRun, RunState, check_name, parse_state

DEFAULT_PRIORITY: int = fields.BY_NAME["priority"].default
_KNOWN = set(fields.JSON_KEYS)
RETRIES = "max_retries"  # how messages name the retries, under either spelling
BASE = "backoff_base"
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
    try:
        return fields.priority(value)
    except ValueError as exc:
        raise UsageError(f"invalid priority {value!r}: {exc}") from None


def _bounded(bound: fields.Bound, value: object, what: str) -> float:
    """A number within the setting's one rule (fields.py), said as manifests and `config set` say it."""
    try:
        return bound.check(value)
    except ValueError as exc:
        raise UsageError(f"invalid {what} {value!r}: {exc}") from None


def build(given: Mapping[str, Any], defaults: Defaults | Mapping[str, float], now: float) -> NewRun:
    """A NewRun from user fields; defaults are the store's (`config.defaults`, or the effective config)."""
    if not isinstance(defaults, Defaults):
        defaults = Defaults.of(defaults)
    _check_known(given)
    command = _command(given)
    run_id = given.get("id")
    run_id = new_id() if run_id is None else check_name(run_id)
    retries = _retries(given)
    timeout = defaults.timeout if given.get("timeout") is None else _timeout(given["timeout"])
    run_at = _run_at(given, now)
    cwd = _cwd(given.get("cwd"))
    env = _env(given.get("env") or {})
    keep_children = given.get("keep_children", False)
    if not isinstance(keep_children, bool):
        raise UsageError(f"invalid keep_children {keep_children!r}: expected true or false")
    _check_size(command, env)
    base = given.get("backoff_base")
    return NewRun(
        id=run_id,
        command=command,
        priority=DEFAULT_PRIORITY if given.get("priority") is None else parse_priority(given["priority"]),
        max_retries=defaults.max_retries if retries is None else int(_bounded(fields.MAX_RETRIES, retries, RETRIES)),
        backoff_base=defaults.backoff_base if base is None else float(_bounded(fields.BACKOFF_BASE, base, BASE)),
        backoff_max=defaults.backoff_max,
        timeout=timeout,
        run_at=run_at,
        cwd=cwd,
        env=dict(env),
        keep_children=keep_children,
    )


def _check_known(given: Mapping[str, Any]) -> None:
    """Every key is one of the table's enqueue keys, or bookkeeping a new run may carry."""
    unknown = sorted(set(given) - _KNOWN - _IGNORED - {"state", "attempts"})
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(_KNOWN), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise UsageError(f"unknown field {unknown[0]!r}{suggestion}: expected some of {', '.join(sorted(_KNOWN))}")
    state = given.get("state", "pending")
    if not isinstance(state, str) or parse_state(state) not in (RunState.PENDING, RunState.SCHEDULED):
        raise UsageError(f"invalid state {state!r}: a new run can only be 'pending' (or 'scheduled')")
    if given.get("attempts", 0) != 0:
        raise UsageError(f"invalid attempts {given['attempts']!r}: a new run has 0 attempts")


def _command(given: Mapping[str, Any]) -> str:
    command = given.get("command")
    if not isinstance(command, str) or not command.strip():
        raise UsageError("missing command: expected a non-empty shell command string")
    _check_size(command, {})  # before anything copies a huge command
    _check_text(command, "command")
    return command


def _retries(given: Mapping[str, Any]) -> object:
    """The retries given under either spelling (None: not given); both given must agree."""
    first, second = fields.BY_NAME["retries"].json
    if first in given and second in given and given[first] != given[second]:
        raise UsageError(f"conflicting {first} and {second}: give one of them")
    return given.get(first, given.get(second))


def _timeout(value: object) -> float | None:
    return parse_duration(value, "timeout") or None  # 0: no limit


RUN_AT_FORMS = 'an ISO 8601 time like 2026-12-01T02:00:00Z or "+30m" (from now)'


def _run_at(given: Mapping[str, Any], now: float) -> float | None:
    """When the run may start: run_at (an ISO time, or "+5m" from now) or now + delay, or None (at once)."""
    run_at, delay = given.get("run_at"), given.get("delay")
    if run_at is not None and delay is not None:
        raise UsageError("conflicting run_at and delay: give one of them")
    if run_at is not None:
        if not isinstance(run_at, str):
            raise UsageError(f'invalid run_at {run_at!r}: expected an ISO 8601 time string or "+30m" (from now)')
        if run_at.strip().startswith("+"):
            return now + _relative(run_at)
        return parse_time(run_at, "run_at", RUN_AT_FORMS)  # "-5m", "soon": the error names both forms
    if delay is not None:
        return now + parse_duration(delay, "delay")
    return None


def _relative(run_at: str) -> float:
    """The seconds of a relative run_at ("+30m", "+1h30m", "+90"), as the manifests' run_at reads it."""
    try:
        return parse_duration(run_at.strip()[1:], "run_at")
    except UsageError:
        raise UsageError(f'invalid run_at {run_at!r}: expected a relative time like "+30m" or "+1h30m"') from None


def _cwd(cwd: object) -> str | None:
    if cwd is None:
        return None
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise UsageError(f"invalid cwd {cwd!r}: expected an absolute directory path")
    _check_text(cwd, "cwd")
    return cwd


def _env(env: object) -> dict[str, str]:
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise UsageError("invalid env: expected an object of string names to string values")
    for name, value in env.items():
        if not name or "=" in name:
            raise UsageError(f"invalid env name {name!r}: expected a name without '='")
        _check_text(name, "env name")
        _check_text(value, f"env {name}")
    return env


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


def from_lines(lines: Iterable[str], source: str, defaults: Defaults | Mapping[str, float], now: float) -> list[NewRun]:
    """Runs from JSON Lines; the first bad line aborts with its line number."""
    try:
        return _from_lines(lines, source, defaults, now)
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text; expected JSON Lines") from None


def _from_lines(
    lines: Iterable[str], source: str, defaults: Defaults | Mapping[str, float], now: float
) -> list[NewRun]:
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
