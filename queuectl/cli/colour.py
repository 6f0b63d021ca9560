"""Colour on a terminal, the same for every command (no rich: `apply`, `validate` and `up` start fast).

Colour only when the stream is a terminal and NO_COLOR is unset or empty (https://no-color.org).
Styling never changes the text: strip the escapes and the line is the same as into a pipe.
The colours are the states' (STATES, also in rich tables and `status`): scheduled blue, pending cyan,
running yellow, completed green, failed magenta, dead red; a plan's + created green, ~ updated yellow,
- deleted red, ! error red.
"""

from __future__ import annotations

import os
from typing import Any, TextIO

import click

Style = dict[str, Any]

PLAN_MARKS: dict[str, Style] = {  # a plan line's first character (planview.plan_lines)
    "+": {"fg": "green"},
    "~": {"fg": "yellow"},
    "-": {"fg": "red"},
    "!": {"fg": "red"},
    "=": {"fg": "cyan"},
}
LOG_WORDS: dict[str, Style] = {  # an `up` / `worker start` log line's first word (pool/lines.py, supervisor.py)
    "start": {"fg": "yellow"},
    "fire": {"fg": "cyan"},
    "completed": {"fg": "green"},
    "failed": {"fg": "magenta"},
    "timeout": {"fg": "magenta"},
    "lost": {"fg": "magenta"},
    "interrupted": {"fg": "magenta"},
    "cancel": {"dim": True},
    "cancelled": {"dim": True},
    "replace": {"dim": True},
    "suspend": {"fg": "yellow"},
    "resume": {"fg": "green"},
    "rescued": {"fg": "yellow"},
}
STATES: dict[str, Style] = {  # a run's state, wherever it is shown: tables, `status`, `now STATE` in the log
    "scheduled": {"fg": "blue"},
    "pending": {"fg": "cyan"},
    "running": {"fg": "yellow"},
    "completed": {"fg": "green"},
    "failed": {"fg": "magenta"},
    "dead": {"fg": "red", "bold": True},
    "cancelled": {"dim": True},
}
ERROR: Style = {"fg": "red"}
WARNING: Style = {"fg": "yellow"}
GOOD: Style = {"fg": "green"}


def wanted(stream: TextIO) -> bool:
    """Colour on `stream`: a terminal, and NO_COLOR unset or empty."""
    return not os.environ.get("NO_COLOR") and stream.isatty()


def paint(text: str, style: Style, on: bool) -> str:
    return click.style(text, **style) if on and text else text


def plan_line(line: str, on: bool) -> str:
    """A line of `apply` / `diff` / `up`'s plan: its mark's colour on the whole line."""
    if line.startswith("warning:"):
        return paint(line, WARNING, on)
    style = PLAN_MARKS.get(line[:1]) if line[1:2] == " " else None
    return paint(line, style, on) if style else line


def log_line(message: str, on: bool) -> str:
    """A line of `up`'s log: a plan line as `apply` colours it, else its first word, and `now STATE`."""
    if not on:
        return message
    if message[:2] in {f"{mark} " for mark in PLAN_MARKS} or message.startswith("warning:"):
        return plan_line(message, on)
    if message.startswith(("apply failed", "store error", "could not")):
        return paint(message, ERROR, on)
    if message.startswith("burst: "):  # the summary: red when the burst exits 1 (pool/outcome.py)
        failed = " dead (" in message or " refused (" in message
        return paint(message, ERROR if failed else GOOD, on)
    word, _, rest = message.partition(" ")
    if word == "no" and rest.startswith("start"):
        return paint(message, ERROR, on)
    if word not in LOG_WORDS:
        return message
    head = paint(word, LOG_WORDS[word], on) + message[len(word) :]
    before, sep, state = head.rpartition(": now ")
    if sep and state in STATES:
        return before + sep + paint(state, STATES[state], on)
    return head


def rich_style(style: Style) -> str:
    """The same style in rich's words (for tables)."""
    return " ".join(
        [*(["bold"] if style.get("bold") else []), *(["dim"] if style.get("dim") else []), style.get("fg") or ""]
    ).strip()
