"""What is wrong with a cron expression, said as a user can fix it: the field, its text and its range.

croniter accepts expressions that never fire or fire otherwise than they read
(`0 0 30 2 *`, `*/61 * * * *`, `1-0 * * * *`) and says little more than "not
acceptable" for those it refuses: these checks refuse the first kind with the
reason and name the field of the second. Pure: no clock, no store.
"""

from __future__ import annotations

import calendar
from typing import NamedTuple

from croniter import croniter

from queuectl.schedule import five_fields

SHAPE = "5 fields (minute hour day-of-month month day-of-week) or @hourly/@daily/@weekly/@monthly/@yearly"


class CronField(NamedTuple):
    """One of the five fields: its name as messages say it, its values and how its range is said."""

    name: str
    low: int
    high: int  # the highest value accepted (7 in day of week: Sunday again)
    top: int  # the highest distinct value (6 in day of week)
    names: dict[str, int]
    range_said: str
    unit: str


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
FIELDS: tuple[CronField, ...] = (
    CronField("minute", 0, 59, 59, {}, "0-59", "minutes"),
    CronField("hour", 0, 23, 23, {}, "0-23", "hours"),
    CronField("day of month", 1, 31, 31, {}, "1-31", "days"),
    CronField("month", 1, 12, 12, dict(zip(_MONTHS, range(1, 13), strict=True)), "1-12 or jan-dec", "months"),
    CronField(
        "day of week", 0, 7, 6, dict(zip(_WEEKDAYS, range(7), strict=True)), "0-6 or sun-sat (7 is also Sunday)", "days"
    ),
)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29, as in a leap year


class _CronFieldError(ValueError):
    pass


def cron_problem(cron: str) -> str | None:
    """What is wrong with a cron expression (5 fields or an @-shorthand), or None when it is fine.

    Refused, each naming its field: a wrong number of fields, a value out of a field's
    range, a step of 0, a reversed range (`1-0`: croniter wraps it around), a step
    larger than the values it steps over (`*/61` fires hourly), text croniter cannot
    read; and a day of the month that no listed month has (`30 2`, `31 4`; February
    counts 29 days).
    """
    expression = five_fields(cron)
    texts = expression.split()
    if len(texts) != 5:
        return f"expected {SHAPE}, got {len(texts) if texts else 'an empty string'}"
    values: list[set[int] | None] = []
    try:
        for text, fld in zip(texts, FIELDS, strict=True):
            values.append(_field_values(text, fld))
    except _CronFieldError as exc:
        return str(exc)
    problem = _unreadable(expression, texts)
    if problem:
        return problem
    return _impossible_day(expression, values[2], values[3], texts[4])


def _field_values(text: str, fld: CronField) -> set[int] | None:
    """The values a field lists, or None for `*` or a form left to croniter (L, W, #, H)."""
    found: set[int] | None = set()
    for item in text.lower().split(","):
        part, slash, step_text = item.partition("/")
        if part in ("*", "?"):
            first, last, wildcard = fld.low, fld.top, True
        else:
            wildcard = False
            start, dash, end = part.partition("-")
            begin = _value(start, item, fld)
            finish = _value(end, item, fld) if dash else (fld.high if slash else begin)
            if begin is None or finish is None:
                found = None
                continue
            first, last = begin, finish
            if dash and first > last:
                raise _CronFieldError(
                    f"{fld.name} field {item!r} is a reversed range: a range runs from low to high "
                    f"({fld.low}-{fld.top}); to wrap around, list both ends, e.g. {_wrapped(first, last, fld)}"
                )
        if slash:
            step = int(step_text) if step_text.isdigit() and step_text.isascii() else None
            if step == 0:
                raise _CronFieldError(f"{fld.name} field {item!r} has step 0: a step is 1 or more")
            span = last - first + 1
            if step is not None and step > span:
                what = f"the field's {span} values ({first}-{last})" if wildcard else f"the range {first}-{last}"
                raise _CronFieldError(
                    f"{fld.name} field {item!r} has step {step}, larger than {what}: it fires only at "
                    f"{fld.name} {first}, not every {step} {fld.unit}"
                )
            if step is not None and found is not None:
                found.update(range(first, last + 1, step))
        elif wildcard:
            found = None
        elif found is not None:
            found.update(range(first, last + 1))
    return found


def _value(text: str, item: str, fld: CronField) -> int | None:
    """One number or name of a field, checked against its range; None for forms croniter reads itself."""
    if text in fld.names:
        return fld.names[text]
    if not text.isdigit() or not text.isascii():
        return None
    number = int(text)
    if not fld.low <= number <= fld.high:
        raise _CronFieldError(f"{fld.name} field {item!r} is out of range {fld.range_said}")
    return number


def _wrapped(first: int, last: int, fld: CronField) -> str:
    upper = str(first) if first == fld.top else f"{first}-{fld.top}"
    lower = str(last) if last == fld.low else f"{fld.low}-{last}"
    return f"{upper},{lower}"


def _unreadable(expression: str, texts: list[str]) -> str | None:
    """croniter's refusal of what our checks let through, naming the field it is about."""
    try:
        croniter(expression)
    except (ValueError, KeyError, TypeError) as exc:  # croniter's errors derive from ValueError
        for index, (text, fld) in enumerate(zip(texts, FIELDS, strict=True)):
            alone = ["*"] * 5
            alone[index] = text
            try:
                croniter(" ".join(alone))
            except (ValueError, KeyError, TypeError):
                return (
                    f"{fld.name} field {text!r} is not valid: expected values in {fld.range_said}, "
                    "a range (a-b), a list (a,b), a step (*/n or a-b/n) or *"
                )
        return f"invalid cron expression {expression!r}: {exc}"
    return None


def _impossible_day(expression: str, days: set[int] | None, months: set[int] | None, weekday: str) -> str | None:
    """A day of the month that none of the listed months has (when the weekday does not widen it)."""
    if not days or weekday not in ("*", "?"):
        return None  # cron fires on either field when both are restricted
    listed = sorted(months) if months else list(range(1, 13))
    longest = max(_MONTH_DAYS[m - 1] for m in listed)
    if min(days) <= longest:
        return None
    shown = ", ".join(calendar.month_name[m] for m in listed)
    leap = " (February counted with 29, as in a leap year)" if 2 in listed else ""
    return f"{expression!r} never fires: no listed month ({shown}) has a day {min(days)}, at most {longest}{leap}"
