"""What `up` says about its plans and its jobs, beyond the plan's own lines (planview.py).

`ApplyLines` keeps what `up` last said about each broken file: a file's errors are said
again only when they change, and a broken file that is mended is said so
(`hello: manifest fixed, applied`). `Suspensions` notices jobs suspended and resumed
(by `queuectl suspend` / `resume`, seen through the store). Pure: no clock, no printing.
"""

from __future__ import annotations

from collections.abc import Iterable

from queuectl import planview
from queuectl.apply import Plan
from queuectl.durations import fire_time as fire_time  # the fire lines: the one time policy (durations.py)
from queuectl.model import Job

MENDED = ("create", "update", "unchanged")  # a broken file's change once it is valid again


class ApplyLines:
    """The lines of a plan `up` applied, with each broken file's errors said once while unchanged."""

    def __init__(self) -> None:
        self._broken: dict[str, list[str]] = {}  # path -> the error lines said for it

    def lines(self, plan: Plan, first: bool, settling: Iterable[str] = ()) -> list[str]:
        """What to say of `plan` (nothing when nothing is new); `settling`: broken files left for a second look."""
        said = {c.path: planview.invalid_lines(c) for c in plan.of("invalid") if c.path}
        repeated = {p for p, lines in said.items() if self._broken.get(p) == lines}
        fixed = [c for c in plan.changes if c.kind in MENDED and c.path in self._broken]
        fixed_names = {c.name for c in fixed}
        present = {c.path for c in plan.changes if c.kind != "delete"} | set(settling)
        self._broken = {p: lines for p, lines in self._broken.items() if p in present and p not in said}
        self._broken.update(said)
        for change in fixed:
            self._broken.pop(change.path or "", None)
        if not (first or plan.changed or plan.notes or fixed or set(said) - repeated):
            return []
        skip = {line for p in repeated for line in said[p]}
        skip |= {f"= {name}: manifest valid again" for name in fixed_names}  # said as fixed below
        lines = planview.plan_lines(plan, applied=True, quiet_unchanged=not first)
        lines = [line for line in lines if line not in skip]
        return lines + [f"{c.name}: manifest fixed, applied" for c in fixed]


class Suspensions:
    """Which of `up`'s jobs are suspended; what changed since the last look, as lines."""

    def __init__(self, directories: Iterable[str]) -> None:
        self.directories = set(directories)
        self._suspended: set[str] | None = None  # None: not looked yet (what is suspended at start is not news)

    def lines(self, jobs: Iterable[Job]) -> list[str]:
        suspended = {j.name for j in jobs if j.suspended and j.source in self.directories}
        before, self._suspended = self._suspended, suspended
        if before is None:
            return []
        return [f"suspend   {name}: suspended, its schedule stops" for name in sorted(suspended - before)] + [
            f"resume    {name}: resumed, fires from now on" for name in sorted(before - suspended)
        ]
