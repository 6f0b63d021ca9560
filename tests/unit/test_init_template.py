"""The init template names only keys the table of settings has, with their defaults and allowed values."""

from __future__ import annotations

import re

import pytest
import tomli

from queuectl import fields, templates

TEMPLATE = templates.example()
SETTING = re.compile(r"^(?:# )?([a-z_]+) = (.+?)(?:\s+#.*)?$")


def settings() -> list[tuple[str, str]]:
    """(key, value as written) for every setting the template shows, commented out or not."""
    return [(m.group(1), m.group(2)) for line in TEMPLATE.splitlines() if (m := SETTING.match(line))]


def test_every_key_the_template_mentions_is_a_manifest_key() -> None:
    keys = {key for key, _ in settings()}
    assert keys <= set(fields.MANIFEST_KEYS), keys - set(fields.MANIFEST_KEYS)
    assert "[env]" in TEMPLATE and "env" in fields.MANIFEST_KEYS
    assert {"command", "description", "run_at", "cron", *templates.SCHEDULE_KEYS} <= keys


@pytest.mark.parametrize("key", templates.SCHEDULE_KEYS)
def test_each_schedule_key_shows_its_default_and_allowed_values_from_fields(key: str) -> None:
    fld = fields.BY_NAME[key]
    [(line_number, line)] = [(n, li) for n, li in enumerate(TEMPLATE.splitlines()) if li.startswith(f"# {key} = ")]
    value = tomli.loads(line[2:])[key]
    if fld.default is not None:
        assert value == fld.default and line.endswith("# the default"), line
    else:
        assert line.endswith(f"# default: {fld.default_said}"), line
    said = " ".join(TEMPLATE.splitlines()[line_number - 3 : line_number])
    for choice in fld.choices:
        assert choice in said, (key, choice, said)


def test_the_active_lines_say_nothing_about_when_the_job_runs() -> None:
    active = tomli.loads(TEMPLATE)
    assert set(active) == {"command", "description"}
    assert not re.search(r"\b(once|every|daily|applied|at \d)", active["description"]), active["description"]


def test_a_directory_that_cannot_go_in_a_comment_is_said_as_dir() -> None:
    assert "queuectl validate jobs.d " in templates.example("jobs.d")
    odd = templates.example("evil\ncron = '* * * * *'")
    assert "queuectl validate DIR " in odd and tomli.loads(odd).keys() == {"command", "description"}
