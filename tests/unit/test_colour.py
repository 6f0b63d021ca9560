"""Colour never changes the text: each coloured line, stripped of its escapes, is the plain line."""

from __future__ import annotations

import re

from queuectl.cli import colour

ANSI = re.compile(r"\x1b\[[0-9;]*m")
PLAN = [
    "+ hello: created from jobs.d/hello.toml",
    '~ hello: updated (command "true" -> "false")',
    "- old: deleted (its manifest is gone; history kept)",
    "! jobs.d/broken.toml:1: comand: unknown key (job broken keeps its last good version)",
    "= hello: manifest valid again",
    "applied: 1 created, 0 updated, 0 deleted, 0 unchanged",
    "warning: two files declare hello",
]
LOG = [
    "start     run-1 (attempt 1): echo hi",
    "completed run-1 in 0.01s: now completed",
    "failed    run-2 in 0.01s (exit 3): now dead",
    "fire      hello-1 for 2026-12-01T02:00:00+01:00 (2026-12-01T01:00:00Z)",
    "no start  run-3 (attempt 1): cwd is gone",
    "apply failed: store busy",
    "watching jobs.d for changes",
    "start",
    "burst: 2 runs completed, 1 dead (run-2)",
    "burst: 3 runs completed",
]


def test_colour_keeps_the_text_and_marks_what_it_should() -> None:
    for line in PLAN:
        assert ANSI.sub("", colour.plan_line(line, True)) == line
        assert colour.plan_line(line, False) == line
    for line in LOG + PLAN:
        assert ANSI.sub("", colour.log_line(line, True)) == line
        assert colour.log_line(line, False) == line
    assert colour.plan_line(PLAN[0], True).startswith("\x1b[32m+ hello")
    assert colour.plan_line(PLAN[2], True).startswith("\x1b[31m- old")
    assert colour.log_line(LOG[2], True).endswith(": now \x1b[31m\x1b[1mdead\x1b[0m")
    assert colour.log_line(LOG[-2], True).startswith("\x1b[31mburst:")
    assert colour.log_line(LOG[-1], True).startswith("\x1b[32mburst:")
    assert colour.log_line("watching jobs.d for changes", True) == "watching jobs.d for changes"
