"""One TOML manifest -> one JobSpec, or every error it has.

Pure apart from reading the file: no store, no clock beyond what a relative
`run_at` needs (it stays relative here; the apply resolves it). Each error
names the file, the line where it can be found, the key and what was
expected, and every error of a file is reported, not just the first.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import json
import os
import pwd
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tomli

from queuectl import fields
from queuectl.durations import LATEST, parse_duration
from queuectl.enqueue import size_problem
from queuectl.errors import UsageError
from queuectl.fields import Field, Kind
from queuectl.model import NAME_RE, Job, JobSpec

MAX_BYTES = 1 << 20  # a manifest is a few lines; a huge file is a mistake
KEYS = fields.MANIFEST_KEYS
ALIASES = fields.MANIFEST_ALIASES  # other spellings (the queue CLI's max_retries) -> the key
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = fields.DURATION_RULE


@dataclass(frozen=True)
class ManifestError:
    """One problem in one file."""

    path: str
    message: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        path = shown_path(self.path)
        where = path if self.line is None else f"{path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


def shown_path(path: str) -> str:
    """A file name as an error line shows it: control characters escaped (\\n, \\x1b), so it stays one line."""
    if path.isprintable():
        return path
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)


@dataclass(frozen=True)
class Manifest:
    """What reading one file gave: a spec, or the errors (never both).

    `applied` is the job already applied from these very bytes, when there is
    one: its spec is then taken from the store, decoded only if asked for.
    """

    path: str
    file_hash: str
    parsed: JobSpec | None
    errors: tuple[ManifestError, ...] = ()
    applied: Job | None = None

    @property
    def spec(self) -> JobSpec | None:
        return self.applied.spec if self.applied is not None else self.parsed

    @property
    def name(self) -> str | None:
        """The job's name, when the file is valid."""
        if self.applied is not None:
            return self.applied.name
        return self.parsed.name if self.parsed is not None else None


def read(path: str, *, insecure: bool = False) -> Manifest:
    """Read and validate the manifest at `path`."""
    try:
        data, info = read_file(path)
    except OSError as exc:
        return _failed(path, "", f"cannot read: {exc.strerror}")
    file_hash = hashlib.sha256(data).hexdigest()
    if not insecure:
        problem = check_owner(info)
        if problem:
            return _failed(path, file_hash, problem)
    return parse(data, path, file_hash)


def read_file(path: str) -> tuple[bytes, os.stat_result]:
    """A manifest's bytes (at most MAX_BYTES + 1 of them) and its status, from one open."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not hang us
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", info
        chunks = []
        left = MAX_BYTES + 1
        while left > 0:
            want = min(left, max(info.st_size + 1, 4096))
            chunk = os.read(fd, want)
            chunks.append(chunk)
            left -= len(chunk)
            if len(chunk) < want:  # a short read of a regular file: its end
                break
        return b"".join(chunks), info
    finally:
        os.close(fd)


def check_owner(info: os.stat_result) -> str | None:
    """Why a file must not be trusted to run commands as us, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid != os.geteuid():
        return (
            f"refused: owned by uid {info.st_uid}, not by you (uid {os.geteuid()}); "
            "whoever owns it could run commands as you (use --insecure for shared setups)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"refused: writable by {'group' if info.st_mode & stat.S_IWGRP else 'others'} "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod go-w on it (or use --insecure)"
        )
    return None


def check_directory(directory: str) -> str | None:
    """Why the manifests of `directory` must not be trusted to run commands as us, or None.

    The rule sshd applies to authorized_keys: the directory and each one
    above it, up to your home directory (included) or the root, is owned by
    you or root and writable by no one else, since whoever can write one can
    swap the manifests below it. A sticky directory above (as /tmp) is fine
    when it is yours or root's: others may add entries there, not replace
    yours. The jobs directory itself must not be writable by others, sticky
    or not.
    """
    home = _home()
    current = os.path.realpath(directory)
    while True:
        try:
            info = os.stat(current)
        except OSError as exc:
            return f"refused: cannot check directory {current}: {exc.strerror}"
        problem = _directory_problem(current, info, above=current != os.path.realpath(directory))
        if problem or current in (home, "/"):
            return problem
        current = os.path.dirname(current)


def _directory_problem(path: str, info: os.stat_result, above: bool) -> str | None:
    which = "a directory above the manifests" if above else "the jobs directory"
    if info.st_uid not in (os.geteuid(), 0):
        return (
            f"refused: {which}, {path}, is owned by uid {info.st_uid}, not by you or root; "
            "whoever owns it could swap the manifests (use --insecure for shared setups)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (above and info.st_mode & stat.S_ISVTX):
        who = "group" if not info.st_mode & stat.S_IWOTH else "others"
        return (
            f"refused: {which}, {path}, is writable by {who} (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"run chmod go-w on it (or use --insecure)"
        )
    return None


def _home() -> str | None:
    try:
        return os.path.realpath(pwd.getpwuid(os.geteuid()).pw_dir)
    except (KeyError, OSError):
        return None


def _failed(path: str, file_hash: str, message: str, line: int | None = None) -> Manifest:
    return Manifest(path, file_hash, None, (ManifestError(path, message, line),))


def parse(data: bytes, path: str, file_hash: str | None = None) -> Manifest:
    """Validate manifest bytes; `path` names it in errors and gives the default name."""
    if file_hash is None:
        file_hash = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_BYTES:
        return _failed(path, file_hash, f"too large: a manifest is at most {MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _failed(path, file_hash, f"not UTF-8 text (bad byte at offset {exc.start}); expected a TOML file")
    try:
        doc = tomli.loads(text)
    except tomli.TOMLDecodeError as exc:
        return _failed(path, file_hash, f"invalid TOML: {exc.msg} (column {exc.colno})", exc.lineno)
    except RecursionError:
        return _failed(path, file_hash, "invalid TOML: nested too deeply")
    checker = _Checker(path, text)
    spec = checker.spec(doc)
    if checker.errors:
        return Manifest(path, file_hash, None, tuple(checker.errors))
    return Manifest(path, file_hash, spec)


def default_name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


class _Checker:
    """Collects every error of one document while building its spec."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.errors: list[ManifestError] = []
        self.default_name = default_name(path)
        self.suggested: set[str] = set()  # keys an unknown key's suggestion names: not also "missing"

    def fail(self, key: str | None, message: str) -> None:
        self.errors.append(ManifestError(self.path, message, self.line_of(key), key))

    def line_of(self, key: str | None) -> int | None:
        """The line where a top-level key (or `env.NAME`) is set, when it can be found."""
        if key is None:
            return None
        table, _, name = key.rpartition(".")
        current = ""
        for number, line in enumerate(self.text.splitlines(), 1):
            stripped = line.strip()
            header = re.fullmatch(r"\[\s*([^\]]+?)\s*\]\s*(#.*)?", stripped)
            if header:
                current = header.group(1).strip("\"' ")
                if current == key:
                    return number  # a key written as a table: [options]
                continue
            if current == table and re.match(rf"""["']?{re.escape(name)}["']?\s*=""", stripped):
                return number
            if not table and current == "" and stripped.startswith(f"{name}."):
                return number  # a dotted key such as env.PATH = "..."
        return None

    def spec(self, doc: dict[str, Any]) -> JobSpec | None:
        values: dict[str, Any] = {}
        for key, value in doc.items():
            canonical = ALIASES.get(key, key)
            if canonical not in KEYS:
                self._unknown(key)
                continue
            if canonical in values:
                self.fail(key, f"given twice (as {canonical!r} and {key!r}); give one")
                continue
            values[canonical] = (key, value)
        out: dict[str, Any] = {}
        for canonical, (key, value) in values.items():
            fld = fields.BY_NAME[canonical]
            try:
                out[canonical] = _CHECKS[fld.in_manifest](self, fld, key, value)
            except _Bad as bad:
                self.fail(key, bad.message)
        self._relations(values, out)
        if self.errors:
            return None
        run_at = out.pop("run_at", None)
        if isinstance(run_at, _Relative):
            out["run_after"] = run_at.seconds
        elif run_at is not None:
            out["run_at"] = self._resolve_local(run_at, out.get("timezone"))
        if "name" not in out:
            out["name"] = self.default_name
        return JobSpec(**out)

    def _unknown(self, key: str) -> None:
        """An unknown key, with the key it is likely a typo of (which is then not also reported missing)."""
        hint = difflib.get_close_matches(key, KEYS + tuple(ALIASES), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        if hint:
            self.suggested.add(ALIASES.get(hint[0], hint[0]))
        self.fail(key, f"unknown key{suggestion}; expected one of: {', '.join(KEYS)}")

    def _relations(self, values: Mapping[str, Any], out: dict[str, Any]) -> None:
        if "command" not in values and "command" not in self.suggested:
            self.errors.append(ManifestError(self.path, "missing key: expected a shell command", None, "command"))
        if "run_at" in values and "cron" in values:
            self.fail("cron", "give either run_at (once) or cron (repeatedly), not both")
        if "command" in out:
            self._size(out["command"], dict(out.get("env", ())))
        if "name" not in values and not NAME_RE.fullmatch(self.default_name):
            self.fail(
                None,
                f"the file name {self.default_name!r} is not a valid job name; rename the file or set "
                "name = \"...\" (letters, digits, '.', '_' or '-', starting with a letter or digit)",
            )

    def _size(self, command: str, env: dict[str, str]) -> None:
        """Refuse a command and env the kernel would never start (the rule of `enqueue`)."""
        problem = size_problem(command, env)
        if problem is not None:
            key = {"command": "command", "env": f"env.{problem.name}", "total": "env" if env else "command"}
            self.fail(key[problem.field], problem.why)

    def _resolve_local(self, moment: dt.datetime, zone: str | None) -> float:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(zone)) if zone else moment.astimezone()
        return moment.timestamp()

    # -- one check per kind of value ------------------------------------------
    def _name(self, fld: Field, key: str, value: Any) -> str:
        text = self._text(key, value)
        if not NAME_RE.fullmatch(text) or not text.isascii():
            raise _Bad(
                f"invalid job name {text!r}: expected 1-128 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return text

    def _text(self, key: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"expected a string, got {_kind(value)}")
        if "\0" in value:
            raise _Bad("contains a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad("not valid UTF-8 text") from None
        return value

    def _description(self, fld: Field, key: str, value: Any) -> str:
        return self._text(key, value)

    def _command(self, fld: Field, key: str, value: Any) -> str:
        text = self._text(key, value)
        if not text.strip():
            raise _Bad("empty: expected a shell command")
        return text

    def _priority(self, fld: Field, key: str, value: Any) -> int:
        try:
            if isinstance(value, str) and value.strip().lower() not in fields.PRIORITY_WORDS:
                raise ValueError(value)  # TOML gives numbers as numbers: text is a word or a mistake
            return fields.priority(value)
        except ValueError:
            raise _Bad(f"expected {fields.priority_rule()}, got {value!r}") from None

    def _run_at(self, fld: Field, key: str, value: Any) -> dt.datetime | _Relative:
        if isinstance(value, str) and value.strip().startswith("+"):
            try:
                return _Relative(parse_duration(value.strip()[1:], key))
            except UsageError:
                raise _Bad(f'expected a relative time like "+30m" or "+1h30m", got {value!r}') from None
        if isinstance(value, str):
            text = value.strip()
            if _is_date(text):
                raise _Bad(f"expected a date and a time (like 2026-12-01T02:00:00Z), got only {value!r}")
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            try:
                value = dt.datetime.fromisoformat(text)
            except ValueError:
                raise _Bad(f'expected a TOML date-time, an ISO 8601 time or "+30m", got {value!r}') from None
        if isinstance(value, dt.datetime):
            try:
                epoch = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
            except (OverflowError, ValueError, OSError):
                epoch = -1.0
            if not 86400 <= epoch <= LATEST - 86400:
                raise _Bad(f"expected a time between 1970 and 9999, got {value.isoformat()}")
            return value
        if isinstance(value, dt.date | dt.time):
            raise _Bad(f"expected a date and a time (like 2026-12-01T02:00:00Z), got only {value.isoformat()}")
        raise _Bad(f'expected a TOML date-time, an ISO 8601 time or "+30m", got {_kind(value)}')

    def _cron(self, fld: Field, key: str, value: Any) -> str:
        text = " ".join(self._text(key, value).split())
        if text.startswith("@"):
            if text.lower() not in fld.choices:
                raise _Bad(f"unknown shorthand {text!r}: expected 5 fields or one of {', '.join(fld.choices)}")
            return text.lower()
        problem = _cron_problem(text)
        if problem:
            raise _Bad(problem)
        return text

    def _timezone(self, fld: Field, key: str, value: Any) -> str:
        text = self._text(key, value)
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise _Bad(f"unknown time zone {text!r}: expected an IANA name like Europe/Berlin or UTC") from None
        return text

    def _duration(self, fld: Field, key: str, value: Any) -> float:
        try:
            return parse_duration(value, key)
        except UsageError:
            raise _Bad(f"expected {_DURATION} (zero or more), got {_shown(value)}") from None

    def _positive_duration(self, fld: Field, key: str, value: Any) -> float:
        try:
            seconds = parse_duration(value, key)
        except UsageError:
            seconds = -1.0
        if seconds <= 0:
            raise _Bad(f"expected a duration above zero ({_DURATION}), got {_shown(value)}")
        return seconds

    def _bounded(self, fld: Field, key: str, value: Any) -> float:
        """A number within the setting's one rule (fields.py), said as `config set` and `enqueue` say it."""
        bound = fld.bound
        assert bound is not None, fld.name  # every COUNT and NUMBER row has one (test_fields checks)
        if isinstance(value, str):  # TOML gives numbers as numbers: a string is a mistake here
            raise _Bad(f"expected {bound.rule}, got {_shown(value)}")
        try:
            number = bound.check(value)
        except ValueError as exc:
            raise _Bad(f"{exc}, got {_shown(value)}") from None
        return int(number) if bound.whole else float(number)

    def _choice(self, fld: Field, key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in fld.choices:
            raise _Bad(f"expected one of {', '.join(fld.choices)}, got {_shown(value)}")
        return value

    def _cwd(self, fld: Field, key: str, value: Any) -> str:
        text = self._text(key, value)
        if not text:
            raise _Bad("empty: expected a directory path")
        expanded = os.path.expanduser(text)
        if not os.path.isabs(expanded):  # relative to the manifest's own directory
            expanded = os.path.join(os.path.dirname(os.path.abspath(self.path)), expanded)
        return os.path.normpath(expanded)

    def _env(self, fld: Field, key: str, value: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, dict):
            raise _Bad(f'expected a table of NAME = "value" (an [env] section), got {_kind(value)}')
        pairs = []
        for name, item in value.items():
            where = f"env.{name}"
            if not _ENV_NAME.fullmatch(name):
                self.fail(where, "invalid variable name: expected letters, digits and '_', not starting with a digit")
                continue
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, int | float):
                item = str(item)
            if not isinstance(item, str):
                self.fail(where, f"expected a string (or a number or boolean), got {_kind(item)}")
                continue
            try:
                pairs.append((name, self._text(where, item)))
            except _Bad as bad:
                self.fail(where, bad.message)
        return tuple(sorted(pairs))

    def _bool(self, fld: Field, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Bad(f"expected true or false, got {_shown(value)}")
        return value


# The check of each kind of value a manifest takes (the kind of each key is in fields.py).
_CHECKS: dict[Kind, Callable[[_Checker, Field, str, Any], Any]] = {
    Kind.NAME: _Checker._name,
    Kind.COMMAND: _Checker._command,
    Kind.TEXT: _Checker._description,
    Kind.PRIORITY: _Checker._priority,
    Kind.MOMENT: _Checker._run_at,
    Kind.CRON: _Checker._cron,
    Kind.TIMEZONE: _Checker._timezone,
    Kind.DURATION: _Checker._duration,
    Kind.POSITIVE_DURATION: _Checker._positive_duration,
    Kind.COUNT: _Checker._bounded,
    Kind.NUMBER: _Checker._bounded,
    Kind.CHOICE: _Checker._choice,
    Kind.PATH: _Checker._cwd,
    Kind.ENV: _Checker._env,
    Kind.BOOL: _Checker._bool,
}


class _Bad(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class _Relative:
    seconds: float


@functools.lru_cache(maxsize=4096)
def _cron_problem(expression: str) -> str | None:
    """What is wrong with a 5-field expression, naming its field (cached: repos repeat a few schedules)."""
    from queuectl.cron_checks import cron_problem  # croniter is slow to import: only for cron manifests

    return cron_problem(expression)


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _kind(value: Any) -> str:
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "an array",
        dict: "a table",
        dt.datetime: "a date-time",
        dt.date: "a date",
        dt.time: "a time",
    }
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    return _kind(value)
