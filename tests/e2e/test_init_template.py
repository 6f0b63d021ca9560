"""The file `queuectl init` writes stays valid and coherent with any one of its settings uncommented."""

from __future__ import annotations

import re
from pathlib import Path

import tomli

from tests.conftest import Queue

COMMENTED = re.compile(r"^# ([a-z_]+) = ")


def uncommented(text: str, *keys: str, first_only: bool = False) -> str:
    """The text with the commented lines setting `keys` made live (only the first of each when asked)."""
    done: set[str] = set()
    lines = []
    for line in text.splitlines(keepends=True):
        match = COMMENTED.match(line)
        if match and match.group(1) in keys and not (first_only and match.group(1) in done):
            done.add(match.group(1))
            line = line[2:]
        lines.append(line)
    return "".join(lines)


def test_each_setting_uncommented_alone_and_the_tutorials_edit_validate(q: Queue) -> None:
    q("init")  # jobs.d/hello.toml, as the README's tutorial starts
    template = (q.tmp / "jobs.d" / "hello.toml").read_text()
    lines = template.splitlines()
    variants: dict[str, str] = {}
    for number, line in enumerate(lines):
        if COMMENTED.match(line):
            live = "\n".join([*lines[:number], line[2:], *lines[number + 1 :]]) + "\n"
            variants[f"line{number + 1}-{COMMENTED.match(line).group(1)}"] = live  # type: ignore[union-attr]
    keys = {name.split("-", 1)[1] for name in variants}
    assert {"run_at", "cron", "timezone", "concurrency", "catchup", "catchup_window", "jitter"} <= keys, keys
    variants["cron-with-timezone"] = uncommented(template, "cron", "timezone")
    variants["cron-every-minute"] = uncommented(template, "cron").replace('cron = "0 2 * * *"', 'cron = "* * * * *"')
    assert 'cron = "* * * * *"\n' in variants["cron-every-minute"]
    checked = q.tmp / "variants"
    checked.mkdir()
    for name, text in variants.items():
        document = tomli.loads(text)  # each variant is TOML with the setting live
        assert len(document) == 3 or name == "cron-with-timezone", (name, document)
        (checked / f"{name}.toml").write_text(text)
    done = q("validate", str(checked), check=False)
    assert done.returncode == 0, done.stderr
    assert f"{len(variants)} valid, 0 invalid manifest(s)" in done.stdout
    every_minute = q.json("validate", str(checked / "cron-every-minute.toml"))
    assert every_minute["valid"] == [{"file": str(checked / "cron-every-minute.toml"), "job": "cron-every-minute"}]
    # the tutorial's edit, applied: a job that fires every minute
    Path(q.tmp / "jobs.d" / "hello.toml").write_text(variants["cron-every-minute"])
    assert "+ hello: created" in q("apply").stdout
    [job] = q.json("list", "--jobs")
    assert (job["job"], job["spec"]["cron"], job["spec"]["description"]) == (
        "hello",
        "* * * * *",
        "Says hello and prints the date",
    )
