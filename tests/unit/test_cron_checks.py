"""Cron expressions that never fire, fire otherwise than they read or cannot be read are refused, naming the field."""

from __future__ import annotations

import pytest

from queuectl import manifest
from queuectl.cron_checks import cron_problem

REFUSED = [
    # (expression, words the reason must contain)
    ("0 0 30 2 *", ["never fires", "February", "day 30", "29"]),
    ("0 0 31 4 *", ["never fires", "April", "day 31", "30"]),
    ("0 0 31 2,4,6,9,11 *", ["never fires", "day 31"]),
    ("0 0 30,31 feb *", ["never fires", "February", "day 30"]),
    ("0 0 31 4-6/2 *", ["never fires", "April, June"]),
    ("*/61 * * * *", ["minute field '*/61' has step 61", "larger", "only at minute 0", "not every 61 minutes"]),
    ("0 */25 * * *", ["hour field '*/25' has step 25", "larger"]),
    ("0 0 */32 * *", ["day of month field '*/32' has step 32"]),
    ("0 0 1 */13 *", ["month field '*/13' has step 13"]),
    ("0 0 * * */8", ["day of week field '*/8' has step 8"]),
    ("0-10/12 * * * *", ["step 12", "range 0-10"]),
    ("5/60 * * * *", ["step 60", "range 5-59"]),
    ("1-0 * * * *", ["minute field '1-0' is a reversed range", "1-59,0"]),
    ("0 23-1 * * *", ["hour field '23-1' is a reversed range", "23,0-1"]),
    ("0 0 20-10 * *", ["day of month field '20-10' is a reversed range"]),
    ("0 0 1 dec-jan *", ["month field 'dec-jan' is a reversed range", "12,1"]),
    ("0 0 * * sat-sun", ["day of week field 'sat-sun' is a reversed range", "6,0"]),
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


# Each field's own errors, word for word: (expression, the message).
FIELD_ERRORS = [
    ("61 * * * *", "minute field '61' is out of range 0-59"),
    ("60 * * * *", "minute field '60' is out of range 0-59"),
    ("0-60 * * * *", "minute field '0-60' is out of range 0-59"),
    ("5,61 * * * *", "minute field '61' is out of range 0-59"),
    ("* 24 * * *", "hour field '24' is out of range 0-23"),
    ("* 25 * * *", "hour field '25' is out of range 0-23"),
    ("* * 0 * *", "day of month field '0' is out of range 1-31"),
    ("* * 32 * *", "day of month field '32' is out of range 1-31"),
    ("* * * 0 *", "month field '0' is out of range 1-12 or jan-dec"),
    ("* * * 13 *", "month field '13' is out of range 1-12 or jan-dec"),
    ("* * * * 8", "day of week field '8' is out of range 0-6 or sun-sat (7 is also Sunday)"),
    ("*/0 * * * *", "minute field '*/0' has step 0: a step is 1 or more"),
    ("* 1-5/0 * * *", "hour field '1-5/0' has step 0: a step is 1 or more"),
    ("* * * */0 *", "month field '*/0' has step 0: a step is 1 or more"),
    (
        "5-2 * * * *",
        "minute field '5-2' is a reversed range: a range runs from low to high (0-59); "
        "to wrap around, list both ends, e.g. 5-59,0-2",
    ),
    ("* * 20-10 * *", "day of month field '20-10' is a reversed range: a range runs from low to high (1-31)"),
    ("* * * * 5-1", "day of week field '5-1' is a reversed range: a range runs from low to high (0-6)"),
    ("a * * * *", "minute field 'a' is not valid: expected values in 0-59, a range (a-b), a list (a,b), a step"),
    ("*/x * * * *", "minute field '*/x' is not valid: expected values in 0-59"),
    ("* x * * *", "hour field 'x' is not valid: expected values in 0-23"),
    ("* * x * *", "day of month field 'x' is not valid: expected values in 1-31"),
    ("* * * foo *", "month field 'foo' is not valid: expected values in 1-12 or jan-dec"),
    ("* * * jan-xyz *", "month field 'jan-xyz' is not valid: expected values in 1-12 or jan-dec"),
    ("* * * * funday", "day of week field 'funday' is not valid: expected values in 0-6 or sun-sat"),
    (
        "* * * * * *",
        "expected 5 fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly, "
        "got 6",
    ),
    ("* * *", "expected 5 fields (minute hour day-of-month month day-of-week) or @hourly/@daily/"),
    ("0 0 30 2 *", "'0 0 30 2 *' never fires: no listed month (February) has a day 30, at most 29"),
]


@pytest.mark.parametrize(("expression", "message"), FIELD_ERRORS)
def test_each_field_error_names_the_field_its_text_and_its_range(expression: str, message: str) -> None:
    problem = cron_problem(expression)
    assert problem is not None and problem.startswith(message), (expression, problem)


@pytest.mark.parametrize(("expression", "message"), FIELD_ERRORS[::3])
def test_a_manifest_names_file_line_key_and_the_field(expression: str, message: str) -> None:
    text = f'command = "true"\ncron = "{expression}"\n'
    parsed = manifest.parse(text.encode(), "/jobs/x.toml")
    assert parsed.spec is None
    [error] = parsed.errors
    assert str(error).startswith(f"/jobs/x.toml:2: cron: {message}"), str(error)
