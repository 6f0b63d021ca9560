"""What `queuectl init` writes: a jobs directory with one commented example."""

from __future__ import annotations

import json
import os
import textwrap

from queuectl import fields
from queuectl.errors import UsageError

EXAMPLE_NAME = "hello.toml"
# The keys that shape how a cron schedule fires, shown commented out under the cron line.
SCHEDULE_KEYS = ("timezone", "concurrency", "catchup", "catchup_window", "jitter")

_HEAD = """\
# {name}: one queuectl job. One TOML file per job; the job's name is the file's
# name without .toml ({stem}). A line starting with # is a comment: to use one of
# the settings below, delete the "# " before it.
#
#   queuectl validate {directory}    check the files ('queuectl schema' prints the JSON Schema)
#   queuectl diff {directory}        what applying them would change
#   queuectl up {directory}          apply them, then run the jobs and their schedules

command = "echo hello from queuectl; date"   # run with /bin/sh -c
description = "Says hello and prints the date"

# When it runs. With neither run_at nor cron set, a job runs once, as soon as it
# is applied; uncomment one run_at line or the cron line to change that.

# Once, later:
# run_at = "+30m"                    # 30 minutes after the job's first apply
# run_at = 2026-12-01T02:00:00Z      # at that time (without Z or an offset: in timezone)

# Repeatedly: cron's 5 fields (minute hour day-of-month month day-of-week) or
# @hourly, @daily, @weekly, @monthly, @yearly. "0 2 * * *" is every day at 02:00,
# "*/15 * * * *" every 15 minutes, "* * * * *" every minute.
# cron = "0 2 * * *"

# How cron fires (each line shows the default, or an example and the default):

"""

_TAIL = """
# How each run runs:
# priority = 5                       # 1..10, higher runs first
# timeout = "5m"                     # seconds or 90s / 5m / 1h30m; the whole process group is killed
# retries = 3                        # tries after the first attempt (3 = up to 4 attempts)
# backoff_base = 2                   # retry n waits backoff_base ** n seconds
# cwd = "."                          # relative to this file's directory
# enabled = true                     # false: kept, never run

# [env]
# GREETING = "hi"
"""


def example(directory: str = "jobs.d") -> str:
    """The example manifest, naming `directory` in its commands (DIR when it cannot go in a comment)."""
    shown = directory if directory.isprintable() and "\n" not in directory else "DIR"
    stem = EXAMPLE_NAME.removesuffix(".toml")
    head = _HEAD.format(name=EXAMPLE_NAME, stem=stem, directory=shown)
    return head + "\n".join(_schedule_key(fields.BY_NAME[key]) for key in SCHEDULE_KEYS) + _TAIL


def _schedule_key(fld: fields.Field) -> str:
    """A schedule key as the template shows it: its description and default from fields.py, then the line."""
    description = fld.description.replace(f" {fields.DURATION_TEXT}", "")
    shown = fld.default if fld.default is not None and fld.config is None else fld.examples[0]
    value = json.dumps(shown) if isinstance(shown, str) else str(shown)
    line = f"# {fld.manifest[0]} = {value}"
    default = "the default" if shown == fld.default else f"default: {fld.default_said}"
    said = "".join(f"# {text}\n" for text in textwrap.wrap(description, width=84))
    return f"{said}{line.ljust(37)}# {default}\n"


def init(directory: str) -> str:
    """Create `directory` with the example manifest; the path written."""
    path = os.path.join(directory, EXAMPLE_NAME)
    if os.path.isdir(directory) and any(name.endswith(".toml") for name in os.listdir(directory)):
        raise UsageError(f"{directory} already holds manifests: not touching it")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)  # whatever the umask: group-writable manifests are refused
            handle.write(example(directory))
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    return path
