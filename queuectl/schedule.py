"""When cron jobs fire: pure functions of time, following cron's daylight-saving rule.

Nothing here reads the clock: every function takes the moment it starts from
(`after`, `start`, `end`: epoch seconds, a UTC instant). croniter walks the
expression over *wall times* (naive local times); each wall time is then mapped
to the instants at which the job fires, by this rule (Debian/Vixie cron's):

- A job is *fixed-time* when neither its minute nor its hour field contains
  `*` or `/` (`30 2 * * *`, `0 1,13 * * 1-5`, `15 2-4 * * *`, @daily, @weekly,
  @monthly, @yearly). @hourly (`0 * * * *`) is not.
- A fixed-time job whose wall time is skipped (spring forward) fires once, at the
  instant of the change; several of its wall times in one gap fire once together.
  One whose wall time is repeated (fall back) fires once, in the first pass.
- Any other job follows real elapsed time: a wall time in a gap does not exist
  (no fire, no catch-up), and a wall time in a repeated interval fires in both
  passes.

Europe/Berlin, 2026-03-29 (02:00 CET becomes 03:00 CEST): `30 2 * * *` fires at
03:00 CEST (01:00Z); `*/30 * * * *` fires at 01:30 CET then 03:00 CEST.
2026-10-25 (03:00 CEST becomes 02:00 CET): `30 2 * * *` fires at 02:30 CEST
(00:30Z) only; `0 * * * *` fires at 02:00 CEST (00:00Z) and 02:00 CET (01:00Z).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import heapq
import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from queuectl.model import JobStatus

SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# How far ahead a next fire is looked for: 9 years, since Feb 29 skips 2100.
HORIZON_YEARS = 9
_HORIZON = HORIZON_YEARS * 366 * 86400.0
# Wider than any change of a zone's UTC offset (Pacific/Apia skipped a whole day).
_MAX_SHIFT_HOURS = 26
_EPOCH = datetime(1970, 1, 1)

GAP_NOTE = "in a DST gap: runs at the change"
FOLD_ONCE_NOTE = "in a repeated hour: runs once"
FOLD_BOTH_NOTE = "in a repeated hour: runs in both passes"


def five_fields(cron: str) -> str:
    """The expression with an @-shorthand replaced by its 5 fields."""
    return SHORTHANDS.get(cron.strip().lower(), cron.strip())


def is_fixed_time(cron: str) -> bool:
    """True when neither the minute nor the hour field has `*` (or its alias `?`) or `/`."""
    minute, hour = five_fields(cron).split()[:2]
    return not any(mark in field for field in (minute, hour) for mark in "*/?")


def next_fire(cron: str, zone: tzinfo, after: float) -> float | None:
    """The first fire strictly after `after`, or None if there is none within HORIZON_YEARS.

    Successive calls `next_fire(c, z, previous)` give strictly increasing instants.
    An expression croniter rejects raises ValueError (manifests are checked before).
    """
    expr = five_fields(cron)
    fixed = is_fixed_time(expr)
    # A wall time earlier than the one `after` reads may still come after it (the second
    # pass of a repeated hour ahead), so the walk starts from the lowest reading in reach.
    first_wall = after + _lowest_offset(zone, after)
    best: float | None = None
    for wall in _walls(expr, math.floor(first_wall), backward=False):
        if wall > first_wall + _HORIZON:
            break
        instants = _instants(wall, zone, fixed)
        if not instants:
            continue
        if best is not None and instants[0] > best:
            break  # the earliest instant of each later wall time is later still
        if instants[0] > after:
            return instants[0]  # not after `best`, or the loop would have stopped
        if instants[-1] > after and (best is None or instants[-1] < best):
            best = instants[-1]  # a second pass: an earlier first pass may follow
    return best


def fires_between(cron: str, zone: tzinfo, start: float, end: float, limit: int) -> list[float]:
    """The LAST `limit` fires t with start < t <= end, in increasing order.

    Catch-up wants the most recent missed fires, so the walk goes backwards from
    `end` (croniter's get_prev over wall times, with the rule of `next_fire`) and
    stops after `limit` fires or at `start`: its cost grows with `limit`, not with
    the length of the span (a minute cron over 3 years costs `limit` steps).
    """
    if limit <= 0 or end <= start:
        return []
    expr = five_fields(cron)
    fixed = is_fixed_time(expr)
    # Mirror of next_fire: an instant before `end` may read a later wall time (first pass
    # of a repeated hour behind), so the walk starts from the highest reading in reach.
    last_wall = end + _highest_offset(zone, end)
    kept: list[float] = []  # a min-heap of the latest fires found so far
    seen: set[float] = set()  # several wall times in one gap share a fire
    for wall in _walls(expr, math.floor(last_wall) + 1, backward=True):
        instants = _instants(wall, zone, fixed)
        if not instants:
            continue
        latest = instants[-1]
        if latest <= start or (len(kept) >= limit and latest <= kept[0]):
            break  # the latest instant of each earlier wall time is earlier still
        for instant in instants:
            if start < instant <= end and instant not in seen:
                seen.add(instant)
                heapq.heappush(kept, instant)
                if len(kept) > limit:
                    heapq.heappop(kept)
    return sorted(kept)


def dst_note(cron: str, zone: tzinfo, fire: float) -> str | None:
    """What `queuectl plan` says about a fire (from next_fire) whose wall time is in a gap or fold."""
    expr = five_fields(cron)
    fixed = is_fixed_time(expr)
    before, now = _offset(zone, fire - 1), _offset(zone, fire)
    if fixed and now > before:
        # The fire is a change instant: do any of the job's wall times fall in the gap?
        gap_start, gap_end = fire + before, fire + now
        for wall in _walls(expr, math.floor(gap_start) - 1, backward=False):
            if wall >= gap_start:
                if wall < gap_end:
                    return GAP_NOTE
                break
    if len(_instants(fire + now, zone, fixed=False)) == 2:
        return FOLD_ONCE_NOTE if fixed else FOLD_BOTH_NOTE
    return None


def jitter_offset(name: str, jitter: float | None) -> float:
    """A delay in [0, jitter) derived from the job's name: the same on every host, process and Python."""
    if not jitter or jitter <= 0:
        return 0.0
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53  # 53 bits: exact, below 1
    return min(fraction * jitter, math.nextafter(jitter, 0.0))


def describe(cron: str, zone_name: str | None) -> str:
    """The schedule in words, e.g. "At 02:00, every day (Europe/Berlin)" or "Every 5 minutes".

    Worded by cron-descriptor (English, 24-hour clock); "cron <expr>" when it cannot.
    """
    from cron_descriptor import (  # type: ignore[import-untyped]
        CasingTypeEnum,
        ExpressionDescriptor,
        FormatException,
        MissingFieldException,
        Options,
        WrongArgumentException,
    )

    expr = five_fields(cron)
    try:
        # Its terse form says "At 02:00" for a daily job; the verbose one adds "every day",
        # but also "every hour, every day" to "Every 5 minutes": use it for daily times only.
        daily = is_fixed_time(expr) and expr.split()[2:] == ["*", "*", "*"]
        options = Options(CasingTypeEnum.Sentence, verbose=daily, locale_code="en_US", use_24hour_time_format=True)
        text = str(ExpressionDescriptor(expr, options).get_description())
    except (FormatException, MissingFieldException, WrongArgumentException, ValueError, KeyError, IndexError):
        text = f"cron {cron}"
    return f"{text} ({zone_name})" if zone_name else text


def zone_of(name: str | None) -> tzinfo:
    """The zone of a job: ZoneInfo(name), or the machine's zone when name is None.

    The machine's zone is what the C library uses: $TZ when it names an IANA zone
    (or a zone file), else /etc/localtime, else UTC. It is read once per process
    (per value of $TZ). A POSIX rule in $TZ ("EST5EDT,M3.2.0,M11.1.0") is ignored.
    """
    if name:
        return ZoneInfo(name)
    return _local_zone(os.environ.get("TZ"))


@functools.lru_cache(maxsize=8)
def _local_zone(tz_env: str | None) -> tzinfo:
    if tz_env is not None:
        key = tz_env.removeprefix(":")
        if not key:
            return UTC  # TZ set but empty: UTC, as in the C library
        try:
            return _zone_file(key) if key.startswith("/") else ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        return _zone_file("/etc/localtime")
    except (ValueError, OSError):
        return UTC


def _zone_file(path: str) -> tzinfo:
    """The zone in a TZif file, by its IANA name when the path reveals one."""
    real = os.path.realpath(path)
    if "/zoneinfo/" in real:
        try:
            return ZoneInfo(real.rsplit("/zoneinfo/", 1)[1])
        except (ZoneInfoNotFoundError, ValueError):
            pass
    with open(path, "rb") as f:
        return ZoneInfo.from_file(f, key=os.path.basename(path))


# -- wall times ----------------------------------------------------------------
# A wall time is held as "wall seconds": the naive local time counted as if it were UTC.


def _offset(zone: tzinfo, instant: float) -> float:
    """The zone's UTC offset in seconds at an instant."""
    offset = datetime.fromtimestamp(instant, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _lowest_offset(zone: tzinfo, after: float) -> float:
    """A lower bound of the zone's offset over the _MAX_SHIFT_HOURS after `after`."""
    return min(_offsets_around(zone, math.floor(after / 86400.0)))


def _highest_offset(zone: tzinfo, before: float) -> float:
    """An upper bound of the zone's offset over the _MAX_SHIFT_HOURS before `before`."""
    return max(_offsets_around(zone, math.floor(before / 86400.0)))


@functools.lru_cache(maxsize=4096)
def _offsets_around(zone: tzinfo, day: int) -> frozenset[float]:
    """The offsets the zone takes within _MAX_SHIFT_HOURS (and an hour) of UTC day `day`.

    Sampled hourly: a zone changes its offset months apart, never twice within hours.
    """
    start, reach = day * 86400.0, _MAX_SHIFT_HOURS + 1
    return frozenset(_offset(zone, start + hour * 3600.0) for hour in range(-reach, 24 + reach))


def _instants(wall: float, zone: tzinfo, fixed: bool) -> tuple[float, ...]:
    """The instants (ascending) at which a job whose cron matches this wall time fires.

    PEP 495: for a repeated wall time fold=0 is the first pass and fold=1 the second;
    for a skipped one fold=0 reads it with the old offset and so lands *later* than
    fold=1, which is how a gap is told from a fold.
    """
    local = (_EPOCH + timedelta(seconds=wall)).replace(tzinfo=zone)
    first, second = local.timestamp(), local.replace(fold=1).timestamp()
    if first == second:
        return (first,)
    if first > second:  # skipped
        return (_change_instant(zone, second, first),) if fixed else ()
    return (first,) if fixed else (first, second)


def _change_instant(zone: tzinfo, before: float, after: float) -> float:
    """The instant (to the second) in (before, after] at which the zone's offset changes."""
    low, high = math.floor(before), math.ceil(after)
    old = _offset(zone, low)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(zone, middle) == old:
            low = middle
        else:
            high = middle
    return float(high)


@functools.lru_cache(maxsize=1024)
def _parsed(expr: str) -> croniter:
    """A parsed expression to copy: croniter's parsing costs several times a step."""
    return croniter(expr, 0.0, max_years_between_matches=HORIZON_YEARS + 1)


def _walls(expr: str, start: float, *, backward: bool) -> Iterator[float]:
    """The wall seconds the expression matches, strictly after (or before) `start`."""
    # A shallow copy behaves as one croniter stepped again from a new start, which croniter
    # is made for: a step copies what it changes, except caches it fills the same way each time.
    walker = copy.copy(_parsed(expr))
    walker.set_current(start, force=True)
    step = walker.get_prev if backward else walker.get_next
    try:
        while True:
            yield float(step(float))
    except CroniterBadDateError:  # no match within its horizon (e.g. Feb 30)
        return


def next_run(status: JobStatus, now: float) -> float | None:
    """A job's next run: the time of a run waiting for it, or its next cron fire after `now`."""
    job, spec = status.job, status.job.spec
    moments = [status.next_at] if status.next_at is not None else []
    if spec.cron is not None and spec.enabled and not job.suspended:
        fire = next_fire(spec.cron, zone_of(spec.timezone), now)
        if fire is not None:
            moments.append(fire)
    return min(moments) if moments else None
