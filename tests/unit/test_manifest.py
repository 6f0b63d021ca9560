"""Manifest parsing: every input ends as a spec or precise errors, never an exception."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queuectl import manifest
from queuectl.model import JobSpec


def parse(text: str, name: str = "job.toml") -> manifest.Manifest:
    return manifest.parse(text.encode(), f"/jobs/{name}")


def errors(text: str, name: str = "job.toml") -> list[str]:
    found = parse(text, name)
    assert found.spec is None, f"expected errors, got {found.spec}"
    return [str(e) for e in found.errors]


# -- invalid manifests: each with its precise message -------------------------------
INVALID = [
    ('command = "x\n', "/jobs/job.toml:1: invalid TOML: "),
    ('command = "x"\ncomand = "y"\n', "/jobs/job.toml:2: comand: unknown key (did you mean 'command'?)"),
    ('command = "x"\npriority = "urgent"\n', "/jobs/job.toml:2: priority: expected a whole number from 1 to 10"),
    ('command = "x"\npriority = 11\n', "priority: expected a whole number from 1 to 10 (higher runs first)"),
    ('command = "x"\npriority = true\n', "priority: expected a whole number from 1 to 10"),
    ('command = "x"\ntimeout = -5\n', "/jobs/job.toml:2: timeout: expected a duration above zero"),
    ('command = "x"\ntimeout = "soon"\n', "timeout: expected a duration above zero (seconds or a duration like 90s"),
    (
        'command = "x"\nretries = 1.5\n',
        "retries: expected a whole number from 0 to 1000 (tries after the first), got 1.5",
    ),
    ('command = "x"\nretries = -1\n', "retries: expected a whole number from 0 to 1000"),
    (
        'command = "x"\nrun_at = 2026-12-01T02:00:00Z\ncron = "0 2 * * *"\n',
        "/jobs/job.toml:3: cron: give either run_at",
    ),
    ('command = "x"\nrun_at = "tomorrow"\n', 'run_at: expected a TOML date-time, an ISO 8601 time or "+30m"'),
    (
        'command = "x"\nrun_at = 2026-12-01\n',
        "run_at: expected a date and a time (like 2026-12-01T02:00:00Z), got only",
    ),
    ('command = "x"\nrun_at = "+soon"\n', 'run_at: expected a relative time like "+30m"'),
    ('command = "x"\ncron = "* * *"\n', "cron: expected 5 fields (minute hour day-of-month month day-of-week)"),
    ('command = "x"\ncron = "61 * * * *"\n', "/jobs/job.toml:2: cron: minute field '61' is out of range 0-59"),
    ('command = "x"\ncron = "@reboot"\n', "cron: unknown shorthand '@reboot'"),
    ('command = "x"\ncron = "0 2 * * *"\ntimezone = "Mars/Olympus"\n', "timezone: unknown time zone 'Mars/Olympus'"),
    ('command = "x"\nname = "../etc"\n', "/jobs/job.toml:2: name: invalid job name '../etc'"),
    ('command = ""\n', "/jobs/job.toml:1: command: empty: expected a shell command"),
    ('command = "   "\n', "command: empty: expected a shell command"),
    ("command = 42\n", "command: expected a string, got an integer"),
    ('description = "no command"\n', "/jobs/job.toml: command: missing key: expected a shell command"),
    ('command = "x"\nenabled = "yes"\n', 'enabled: expected true or false, got "yes"'),
    (
        'command = "x"\nconcurrency = "sometimes"\n',
        'concurrency: expected one of allow, forbid, replace, got "sometimes"',
    ),
    ('command = "x"\ncatchup = 1\n', "catchup: expected one of none, latest, all, got 1"),
    ('command = "x"\nenv = "A=1"\n', "env: expected a table"),
    ('command = "x"\n[env]\n"1BAD" = "x"\n', "/jobs/job.toml:3: env.1BAD: invalid variable name"),
    ('command = "x"\n[env]\nLIST = [1, 2]\n', "env.LIST: expected a string (or a number or boolean), got an array"),
    ('command = "x"\nbackoff_base = "fast"\n', "backoff_base: expected a number from 0 to 1000"),
    ('command = "x"\nretries = 2\nmax_retries = 3\n', "max_retries: given twice (as 'retries' and 'max_retries')"),
    ('command = "a\\u0000b"\n', "command: contains a NUL character"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_manifest_names_file_line_key_and_expectation(text: str, expected: str) -> None:
    messages = errors(text)
    assert any(expected in m for m in messages), messages


def test_every_error_of_a_file_is_reported() -> None:
    messages = errors('comand = "x"\npriority = 0\ntimeout = "never"\nenabled = 1\n')
    assert len(messages) == 4  # four bad keys (the typo of command is not also "missing key: command")
    assert [m.split(":")[1] for m in messages] == ["1", "2", "3", "4"]


ONE_TYPO_ONE_ERROR = [
    # (manifest, the one error it gives)
    ('comand = "echo hi"\n', "/jobs/job.toml:1: comand: unknown key (did you mean 'command'?)"),
    ('Command = "echo hi"\n', "/jobs/job.toml:1: Command: unknown key (did you mean 'command'?)"),
    ('commands = "echo hi"\ncron = "* * * * *"\n', "/jobs/job.toml:1: commands: unknown key (did you mean 'command'?)"),
    ('cmmand = "echo hi"\ndescription = "d"\n', "/jobs/job.toml:1: cmmand: unknown key (did you mean 'command'?)"),
]


@pytest.mark.parametrize(("text", "expected"), ONE_TYPO_ONE_ERROR)
def test_a_typo_of_a_required_key_gives_one_error(text: str, expected: str) -> None:
    [message] = errors(text)
    assert message.startswith(expected), message
    assert "missing key" not in message


def test_an_unknown_key_like_no_required_key_leaves_the_missing_key_error() -> None:
    messages = errors('zzz = "echo hi"\n')
    assert len(messages) == 2, messages
    assert messages[0].startswith("/jobs/job.toml:1: zzz: unknown key; expected one of:")
    assert messages[1] == "/jobs/job.toml: command: missing key: expected a shell command"
    [typo_elsewhere] = errors('command = "x"\npriorty = 3\n')
    assert "priorty: unknown key (did you mean 'priority'?)" in typo_elsewhere


def test_invalid_file_name_needs_a_name_key() -> None:
    assert any("not a valid job name" in m for m in errors('command = "x"\n', name="my job.toml"))
    found = parse('command = "x"\nname = "my-job"\n', name="my job.toml")
    assert found.spec is not None and found.spec.name == "my-job"


def test_not_utf8() -> None:
    found = manifest.parse(b'command = "\xff\xfe"\n', "/jobs/x.toml")
    assert found.spec is None and "not UTF-8 text" in str(found.errors[0])


def test_too_large() -> None:
    found = manifest.parse(b"#" * (manifest.MAX_BYTES + 1), "/jobs/x.toml")
    assert found.spec is None and "too large" in str(found.errors[0])


# -- valid manifests: normalized ------------------------------------------------------
def spec_of(text: str, name: str = "job.toml") -> JobSpec:
    found = parse(text, name)
    assert found.spec is not None, [str(e) for e in found.errors]
    return found.spec


def test_full_manifest_normalizes() -> None:
    spec = spec_of(
        """
command  = "pg_dump app > /tmp/app.sql"
cron     = "0  2 * * *"
timezone = "Europe/Berlin"
priority = "high"
timeout  = "1h30m"
max_retries = 3
backoff_base = 2
concurrency = "replace"
catchup = "all"
catchup_window = "2h"
jitter = "5m"
description = "Nightly dump"
cwd = "sub/dir"
enabled = false
[env]
PGHOST = "db"
PORT = 5432
DEBUG = true
""",
        name="nightly-backup.toml",
    )
    assert spec.name == "nightly-backup"
    assert spec.cron == "0 2 * * *"
    assert spec.priority == 10
    assert spec.timeout == 5400
    assert spec.retries == 3
    assert spec.backoff_base == 2.0
    assert (spec.concurrency, spec.catchup) == ("replace", "all")
    assert (spec.catchup_window, spec.jitter) == (7200, 300)
    assert spec.cwd == "/jobs/sub/dir"  # relative to the manifest's directory
    assert spec.enabled is False
    assert dict(spec.env) == {"PGHOST": "db", "PORT": "5432", "DEBUG": "true"}


def test_run_at_forms() -> None:
    when = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC).timestamp()
    assert spec_of('command = "x"\nrun_at = 2026-12-01T02:00:00Z\n').run_at == when
    assert spec_of('command = "x"\nrun_at = 2026-12-01T03:00:00+01:00\n').run_at == when
    assert spec_of('command = "x"\nrun_at = "2026-12-01T02:00:00Z"\n').run_at == when
    berlin = spec_of('command = "x"\nrun_at = 2026-12-01T03:00:00\ntimezone = "Europe/Berlin"\n')
    assert berlin.run_at == when  # a local time in the job's zone (CET = UTC+1 in December)
    relative = spec_of('command = "x"\nrun_at = "+1h30m"\n')
    assert (relative.run_at, relative.run_after) == (None, 5400)


@pytest.mark.parametrize("cron", ["@hourly", "@DAILY", "*/5 * * * *", "0 2 * * 1-5", "0 0 1 jan *"])
def test_cron_forms_accepted(cron: str) -> None:
    expected = cron.lower() if cron.startswith("@") else cron
    assert spec_of(f'command = "x"\ncron = "{cron}"\n').cron == expected


def test_equal_meaning_gives_equal_hash() -> None:
    a = spec_of('command = "x"\ntimeout = 90\n[env]\nB = "2"\nA = "1"\n')
    b = spec_of('# a comment\ntimeout = "1m30s"\ncommand = "x"\nenv = { A = "1", B = "2" }\n')
    assert a.spec_hash == b.spec_hash
    c = spec_of('command = "x"\ntimeout = 91\n')
    assert c.spec_hash != a.spec_hash


def test_run_hash_ignores_description_priority_enabled() -> None:
    a = spec_of('command = "x"\n')
    b = spec_of('command = "x"\ndescription = "d"\npriority = 9\nenabled = false\n')
    assert a.run_hash == b.run_hash and a.spec_hash != b.spec_hash
    assert spec_of('command = "y"\n').run_hash != a.run_hash


def test_spec_survives_a_json_round_trip() -> None:
    spec = spec_of('command = "x"\ncron = "@daily"\n[env]\nA = "1"\n')
    assert JobSpec.from_json(spec.to_json()) == spec


# -- ownership and permissions -------------------------------------------------------
def test_group_writable_manifest_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('command = "x"\n')
    os.chmod(path, 0o664)
    found = manifest.read(str(path))
    assert found.spec is None and "writable by group (mode 0664); run chmod go-w" in str(found.errors[0])
    assert manifest.read(str(path), insecure=True).spec is not None
    os.chmod(path, 0o646)
    assert "writable by others" in str(manifest.read(str(path)).errors[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file away")
def test_manifest_owned_by_someone_else_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text('command = "x"\n')
    os.chmod(path, 0o644)
    os.chown(path, 65534, 65534)
    found = manifest.read(str(path))
    assert found.spec is None and "owned by uid 65534, not by you" in str(found.errors[0])
    assert manifest.read(str(path), insecure=True).spec is not None


# -- property: never an exception ----------------------------------------------------
scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from([*manifest.KEYS, "max_retries", "comand", "x"]) | st.text(min_size=1, max_size=10)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise AssertionError(value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_random_documents_end_as_spec_or_clear_errors(doc: dict[str, object]) -> None:
    text = "".join(f"{_toml_value(k)} = {_toml_value(v)}\n" for k, v in doc.items())
    found = manifest.parse(text.encode("utf-8", "surrogatepass"), "/jobs/random.toml")
    assert (found.spec is None) != (not found.errors)
    for error in found.errors:
        assert str(error).startswith("/jobs/random.toml") and error.message


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_end_as_spec_or_clear_errors(data: bytes) -> None:
    found = manifest.parse(data, "/jobs/bytes.toml")
    assert (found.spec is None) != (not found.errors)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_random_text_end_as_spec_or_clear_errors(text: str) -> None:
    found = manifest.parse(text.encode("utf-8", "surrogatepass"), "/jobs/text.toml")
    assert (found.spec is None) != (not found.errors)


def test_concurrent_status_writers_never_show_a_partial_file(tmp_path: Path) -> None:
    import json
    import threading

    from queuectl import status_files

    directory = str(tmp_path / ".status")
    stop = threading.Event()
    bad: list[str] = []
    failed: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(300):
                status_files.write(directory, "job", {"writer": n, "i": i, "pad": "x" * (n * 500)})
        except BaseException as exc:  # the test reports it
            failed.append(exc)

    def reader() -> None:
        while not stop.is_set():
            try:
                with open(f"{directory}/job.json") as handle:
                    text = handle.read()
            except FileNotFoundError:
                continue
            try:
                json.loads(text)
            except ValueError:
                bad.append(text)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2, 3)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    watcher.join()
    assert not failed and not bad
    assert [name for name in os.listdir(directory) if name.endswith(".tmp")] == []
