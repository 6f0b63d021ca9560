"""Turning what a user typed into NewRun values: build() and from_lines()."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from queuectl.config import effective
from queuectl.enqueue import build, from_lines
from queuectl.errors import DuplicateRunError, UsageError
from queuectl.model import NewRun

NOW = 1_800_000_000.0
DEFAULTS = {**effective({}), "max-retries": 4, "backoff-base": 3, "backoff-max": 120, "job-timeout": 600}


def make(**fields: Any) -> NewRun:
    return build({"command": "echo hi", **fields}, DEFAULTS, NOW)


def test_defaults_come_from_the_config_mapping() -> None:
    run = make(id="a")
    assert (run.id, run.command, run.priority) == ("a", "echo hi", 5)
    assert (run.max_retries, run.backoff_base, run.backoff_max, run.timeout) == (4, 3, 120, 600)
    assert (run.run_at, run.cwd, run.env) == (None, None, {})


def test_missing_id_gets_a_fresh_valid_one() -> None:
    first, second = make(), make()
    assert first.id != second.id
    assert make(id=first.id).id == first.id


@pytest.mark.parametrize("command", [None, "", "   ", 5, ["echo"]])
def test_command_is_required(command: object) -> None:
    with pytest.raises(UsageError, match="command"):
        build({"command": command}, DEFAULTS, NOW)


@pytest.mark.parametrize(
    ("priority", "value"),
    [("high", 10), ("medium", 5), ("low", 1), ("HIGH", 10), (" low ", 1), (1, 1), (10, 10), ("7", 7), (None, 5)],
)
def test_priority_words_and_numbers(priority: object, value: int) -> None:
    assert make(priority=priority).priority == value


@pytest.mark.parametrize("priority", [0, 11, -1, "x", "0", True, False, 5.5, "urgent"])
def test_priority_rejects(priority: object) -> None:
    with pytest.raises(UsageError, match="invalid priority"):
        make(priority=priority)


@pytest.mark.parametrize("key", ["max_retries", "retries"])
def test_max_retries_under_either_name(key: str) -> None:
    assert make(**{key: 0}).max_retries == 0
    assert make(**{key: "7"}).max_retries == 7


def test_max_retries_and_retries_agreeing_is_fine() -> None:
    assert make(max_retries=2, retries=2).max_retries == 2


def test_max_retries_and_retries_conflict() -> None:
    with pytest.raises(UsageError, match="conflicting max_retries and retries"):
        make(max_retries=2, retries=3)


@pytest.mark.parametrize("retries", [-1, "x", 1.5, True])
def test_max_retries_rejects(retries: object) -> None:
    with pytest.raises(UsageError, match="invalid max_retries"):
        make(max_retries=retries)


def test_max_retries_beyond_64_bits_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        make(max_retries=10**30)


@pytest.mark.parametrize(("timeout", "value"), [("90s", 90.0), (30, 30.0), ("1h", 3600.0), (None, 600)])
def test_timeout(timeout: object, value: float) -> None:
    assert make(timeout=timeout).timeout == value


@pytest.mark.parametrize("timeout", [0, "0", "0s"])
def test_timeout_zero_means_no_limit(timeout: object) -> None:
    assert make(timeout=timeout).timeout is None


def test_job_timeout_zero_in_config_means_no_limit() -> None:
    assert build({"command": "x"}, {**DEFAULTS, "job-timeout": 0}, NOW).timeout is None


@pytest.mark.parametrize("timeout", ["-5", "soon", True])
def test_timeout_rejects(timeout: object) -> None:
    with pytest.raises(UsageError, match="invalid timeout"):
        make(timeout=timeout)


def test_backoff_base_field_overrides_config() -> None:
    assert make(backoff_base=1.5).backoff_base == 1.5


@pytest.mark.parametrize("base", [-1, "x", True, float("inf"), float("nan")])
def test_backoff_base_rejects(base: object) -> None:
    with pytest.raises(UsageError, match="invalid backoff_base"):
        make(backoff_base=base)


def test_run_at_is_parsed_as_iso_time() -> None:
    assert make(run_at="2027-01-01T00:00:00Z").run_at == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_delay_is_relative_to_now() -> None:
    assert make(delay="5m").run_at == NOW + 300


@pytest.mark.parametrize(("run_at", "seconds"), [("+5m", 300), ("+1h30m", 5400), ("+90", 90), (" +2s", 2)])
def test_a_relative_run_at_counts_from_now(run_at: str, seconds: float) -> None:
    assert make(run_at=run_at).run_at == NOW + seconds


@pytest.mark.parametrize("run_at", ["+5x", "+", "+-5m", "+soon"])
def test_a_bad_relative_run_at_is_one_clear_line(run_at: str) -> None:
    with pytest.raises(UsageError, match=r'invalid run_at .*: expected a relative time like "\+30m"'):
        make(run_at=run_at)


@pytest.mark.parametrize("run_at", ["-5m", "5m", "soon", "2026-13-01"])
def test_a_run_at_that_is_neither_form_names_both(run_at: str) -> None:
    with pytest.raises(UsageError) as caught:
        make(run_at=run_at)
    assert caught.value.message == (
        f'invalid run_at {run_at!r}: expected an ISO 8601 time like 2026-12-01T02:00:00Z or "+30m" (from now)'
    )


def test_run_at_and_delay_conflict() -> None:
    with pytest.raises(UsageError, match="conflicting run_at and delay"):
        make(run_at="2027-01-01T00:00:00Z", delay="5m")


@pytest.mark.parametrize("run_at", [1_900_000_000, "next week"])
def test_run_at_rejects(run_at: object) -> None:
    with pytest.raises(UsageError, match="invalid run_at"):
        make(run_at=run_at)


@pytest.mark.parametrize("run_id", ["a", "job-1", "Run_2.b", "9", "x" * 128])
def test_id_accepts_safe_names(run_id: str) -> None:
    assert make(id=run_id).id == run_id


@pytest.mark.parametrize("run_id", ["../x", "a/b", "", "-a", ".a", "_a", "x" * 129, "a b", "é", 5])
def test_id_rejects_unsafe_names(run_id: object) -> None:
    with pytest.raises(UsageError, match="invalid id"):
        make(id=run_id)


def test_unknown_field_names_the_field() -> None:
    with pytest.raises(UsageError, match="unknown field 'colour'"):
        make(colour="red")


def test_a_typo_of_command_gives_one_error_with_its_suggestion() -> None:
    with pytest.raises(UsageError) as caught:
        build({"id": "a", "comand": "x"}, DEFAULTS, NOW)
    assert str(caught.value).startswith("unknown field 'comand' (did you mean 'command'?): expected some of")
    assert "missing" not in str(caught.value)
    with pytest.raises(UsageError, match=r"^jobs\.jsonl line 1: unknown field 'comand' \(did you mean 'command'\?\)"):
        lines('{"id": "a", "comand": "x"}')


def test_cwd_must_be_absolute() -> None:
    assert make(cwd="/tmp").cwd == "/tmp"
    with pytest.raises(UsageError, match="invalid cwd"):
        make(cwd="tmp")


def test_env_must_map_strings_to_strings() -> None:
    assert make(env={"A": "1"}).env == {"A": "1"}
    with pytest.raises(UsageError, match="invalid env"):
        make(env={"A": 1})


def test_compatibility_fields_of_a_new_run_are_accepted() -> None:
    run = make(id="a", state="pending", attempts=0, created_at="2020-01-01", updated_at="2020-01-01")
    assert run.id == "a"
    assert make(id="b", state="PENDING").id == "b"  # state names in any case, as everywhere


def test_a_waiting_run_as_list_json_writes_it_is_accepted() -> None:
    run = make(id="a", state="scheduled", run_at="+5m", created_at="2020-01-01")
    assert run.run_at == NOW + 300


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "completed"),
        ("state", "dead"),
        ("state", "processing"),
        ("state", "bogus"),
        ("state", 3),
        ("attempts", 2),
    ],
)
def test_compatibility_fields_of_a_used_run_are_rejected(field: str, value: object) -> None:
    with pytest.raises(UsageError, match=f"invalid {field}"):
        make(**{field: value})


def lines(*texts: str) -> list[NewRun]:
    return from_lines(texts, "jobs.jsonl", DEFAULTS, NOW)


def test_from_lines_skips_blank_lines() -> None:
    runs = lines('{"id": "a", "command": "x"}\n', "\n", "   \n", '{"id": "b", "command": "y"}\n')
    assert [r.id for r in runs] == ["a", "b"]


def test_from_lines_names_the_first_bad_line() -> None:
    with pytest.raises(UsageError, match=r"^jobs\.jsonl line 3: unknown field 'oops'"):
        lines('{"command": "x"}', "", '{"command": "y", "oops": 1}', '{"command": "z", "bad": 1}')


def test_from_lines_malformed_json_names_its_line() -> None:
    with pytest.raises(UsageError, match=r"^jobs\.jsonl line 2: malformed JSON"):
        lines('{"command": "x"}', "{nope")


def test_from_lines_rejects_a_line_that_is_not_an_object() -> None:
    with pytest.raises(UsageError, match=r"^jobs\.jsonl line 1: expected a JSON object"):
        lines('["echo hi"]')


def test_from_lines_duplicate_id_names_both_lines() -> None:
    with pytest.raises(DuplicateRunError) as caught:
        lines('{"id": "a", "command": "x"}', '{"id": "b", "command": "x"}', "", '{"id": "a", "command": "y"}')
    assert caught.value.message.startswith("jobs.jsonl line 4: ")
    assert "'a'" in caught.value.message
    assert "line 1" in caught.value.message
