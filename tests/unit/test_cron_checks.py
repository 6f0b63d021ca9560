"""Cron expressions that never fire, or fire otherwise than they read, are refused with the reason."""

from __future__ import annotations

import pytest

from queuectl import manifest
from queuectl.schedule import cron_problem

REFUSED = [
    # (expression, words the reason must contain)
    ("0 0 30 2 *", ["never fires", "February", "day 30", "29"]),
    ("0 0 31 4 *", ["never fires", "April", "day 31", "30"]),
    ("0 0 31 2,4,6,9,11 *", ["never fires", "day 31"]),
    ("0 0 30,31 feb *", ["never fires", "February", "day 30"]),
    ("0 0 31 4-6/2 *", ["never fires", "April, June"]),
    ("*/61 * * * *", ["step 61", "minute", "larger", "only at minute 0", "not every 61 minutes"]),
    ("0 */25 * * *", ["step 25", "hour", "larger"]),
    ("0 0 */32 * *", ["step 32", "day-of-month"]),
    ("0 0 1 */13 *", ["step 13", "month"]),
    ("0 0 * * */8", ["step 8", "day-of-week"]),
    ("0-10/12 * * * *", ["step 12", "range 0-10"]),
    ("5/60 * * * *", ["step 60", "range 5-59"]),
    ("1-0 * * * *", ["reversed range '1-0'", "minute", "1-59,0"]),
    ("0 23-1 * * *", ["reversed range '23-1'", "hour", "23,0-1"]),
    ("0 0 20-10 * *", ["reversed range", "day-of-month"]),
    ("0 0 1 dec-jan *", ["reversed range 'dec-jan'", "month", "12,1"]),
    ("0 0 * * sat-sun", ["reversed range 'sat-sun'", "day-of-week", "6,0"]),
    ("60 * * * *", ["minute 60 is out of range", "0-59"]),
    ("0 24 * * *", ["hour 24 is out of range", "0-23"]),
    ("0 0 0 * *", ["day-of-month 0 is out of range", "1-31"]),
    ("0 0 32 * *", ["day-of-month 32 is out of range"]),
    ("0 0 1 13 *", ["month 13 is out of range", "1-12"]),
    ("0 0 * * 8", ["day-of-week 8 is out of range", "0-7"]),
    ("0-60 * * * *", ["minute 60 is out of range"]),
]

ACCEPTED = [
    "* * * * *",
    "*/5 * * * *",
    "*/60 * * * *",  # every 60 minutes is hourly, as it reads
    "0 */24 * * *",
    "0 2 * * 1-5",
    "0 0 29 2 *",  # leap years only, but it does fire
    "0 0 31 1-12 *",
    "0 0 31 */2 *",  # January has a 31st
    "0 0 30 2 mon",  # day-of-month or day-of-week: fires every Monday in February
    "0 0 L 2 *",
    "0 0 * * 5#3",
    "0 0 * * 7",
    "0 0 * * */7",
    "0 0 1 jan-dec/2 *",
    "0-59/60 * * * *",
    "5/55 * * * *",
    "@hourly",
    "@yearly",
]


@pytest.mark.parametrize(("expression", "words"), REFUSED)
def test_refused_with_the_reason(expression: str, words: list[str]) -> None:
    problem = cron_problem(expression)
    assert problem is not None, expression
    for word in words:
        assert word in problem, (expression, problem)


@pytest.mark.parametrize("expression", ACCEPTED)
def test_accepted(expression: str) -> None:
    assert cron_problem(expression) is None


@pytest.mark.parametrize(("expression", "words"), REFUSED[:3] + REFUSED[5:6] + REFUSED[12:13])
def test_a_manifest_names_file_line_and_key(expression: str, words: list[str]) -> None:
    text = f'command = "true"\ncron = "{expression}"\n'
    parsed = manifest.parse(text.encode(), "/jobs/x.toml")
    assert parsed.spec is None
    [error] = parsed.errors
    assert str(error).startswith("/jobs/x.toml:2: cron: invalid cron expression")
    assert words[0] in str(error)
