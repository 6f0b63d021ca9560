"""What `queuectl init` writes: a jobs directory with one commented example."""

from __future__ import annotations

import os

from queuectl.errors import UsageError

EXAMPLE_NAME = "hello.toml"
EXAMPLE = """\
# A queuectl job: one TOML file per job; the job's name is the file's stem.
# Apply with `queuectl apply DIR`, or keep `queuectl up DIR` running.
# Check with `queuectl validate DIR`; `queuectl schema` prints the JSON Schema.

command = "echo hello from queuectl; date"   # run with /bin/sh -c
description = "A first job: runs once, as soon as it is applied"

# When: neither run_at nor cron = once, now.
# run_at = "+30m"                    # once, 30 minutes after the first apply
# run_at = 2026-12-01T02:00:00Z      # once, at that time
# cron = "0 2 * * *"                 # every day at 02:00 (5 fields or @hourly, @daily, ...)
# timezone = "Europe/Berlin"         # for cron; default: this machine's zone

# How:
# priority = 5                       # 1..10, higher runs first
# timeout = "5m"                     # seconds or 90s / 5m / 1h30m; the whole process group is killed
# retries = 3                        # tries after the first attempt (3 = up to 4 attempts)
# backoff_base = 2                   # retry n waits backoff_base ** n seconds
# cwd = "."                          # relative to this file's directory
# enabled = true                     # false: kept, never run

# [env]
# GREETING = "hi"
"""


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
            handle.write(EXAMPLE)
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}") from None
    return path
