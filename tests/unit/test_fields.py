"""The table of fields: one rule per setting, wherever a user gives it.

A setting given in a manifest, to `enqueue` (JSON key, flag, --file line) or
with `config set` is checked against the same row of queuectl/fields.py; the
shipped JSON Schema and the docs' key table are generated from the rows.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import click
import pytest

from queuectl import config, enqueue, fields, manifest, manifest_schema
from queuectl.errors import UsageError
from queuectl.fields import Kind
from tests.conftest import Queue

NOW = 1_800_000_000.0
BOUNDED = [f for f in fields.FIELDS if f.bound is not None and f.kind in (Kind.COUNT, Kind.NUMBER)]


def manifest_errors(text: str) -> list[str]:
    found = manifest.parse(text.encode("utf-8"), "/jobs/job.toml")
    assert found.spec is None, "the manifest was accepted"
    return [str(error) for error in found.errors]


# -- what is generated from the table ------------------------------------------------
def test_shipped_schema_is_the_generated_one() -> None:
    shipped = resources.files("queuectl").joinpath("manifest.schema.json").read_text(encoding="utf-8")
    assert shipped == manifest_schema.text(), "regenerate: python -m queuectl.manifest_schema"
    assert json.loads(shipped) == manifest_schema.schema()


def test_schema_states_each_bound_and_default_of_the_table() -> None:
    properties = manifest_schema.schema()["properties"]
    for fld in BOUNDED:
        assert fld.bound is not None
        for key in fld.manifest:
            assert (properties[key]["minimum"], properties[key]["maximum"]) == (fld.bound.low, fld.bound.high)
        if fld.config is not None:
            assert f"Default: config {fld.config} ({fld.default:g})." in properties[fld.name]["description"]
    assert properties["concurrency"]["enum"] == list(fields.CONCURRENCY)
    assert properties["priority"]["anyOf"][1]["enum"] == list(fields.PRIORITY_WORDS)


def test_markdown_table_lists_every_manifest_key() -> None:
    table = fields.markdown_table()
    lines = table.splitlines()
    assert lines[0] == "| Key | Type | Default | Description |"
    assert len(lines) == 2 + len(manifest.KEYS)
    for key in (*manifest.KEYS, *manifest.ALIASES):
        assert f"`{key}`" in table, key
    retries = next(line for line in lines if line.startswith("| `retries`"))
    assert "`max_retries`" in retries and "integer 0 to 1000" in retries and "config max-retries (3)" in retries
    for line in lines[2:]:
        assert line.count(" | ") == 3, line  # a | inside a cell is escaped


# -- the places a setting is given agree with the table ------------------------------
def test_a_manifest_key_is_its_fields_name_and_the_aliases_come_from_the_table() -> None:
    assert tuple(f.name for f in fields.FIELDS if f.manifest) == manifest.KEYS  # the checker looks keys up by name
    assert manifest.ALIASES == {"max_retries": "retries"}


def test_every_manifest_kind_has_one_check() -> None:
    for fld in fields.MANIFEST_FIELDS:
        assert fld.in_manifest in manifest._CHECKS, fld.name


def test_every_numeric_setting_has_its_bound() -> None:
    for fld in fields.FIELDS:
        if fld.kind in (Kind.COUNT, Kind.NUMBER, Kind.PRIORITY):
            assert fld.bound is not None, fld.name


def test_config_settings_are_the_tables() -> None:
    assert set(fields.CONFIG_ORDER) == {f.config for f in fields.FIELDS if f.config}
    assert list(config.SETTINGS) == list(fields.CONFIG_ORDER)
    for key, setting in config.SETTINGS.items():
        assert setting.default == fields.BY_CONFIG[key].default
        assert setting.help == fields.BY_CONFIG[key].setting_help


def test_enqueue_json_keys_are_the_tables() -> None:
    with pytest.raises(UsageError) as caught:
        enqueue.build({"command": "true", "colour": "red"}, config.effective({}), NOW)
    listed = caught.value.message.split("expected some of ", 1)[1].split(", ")
    assert listed == sorted(fields.JSON_KEYS)


def test_enqueue_flags_are_the_tables() -> None:
    from queuectl.cli.app import cli

    not_settings = {"-f", "--file", "--json", "--db", "-h", "--help"}
    for name in ("enqueue", "run"):
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        given = {opt for param in command.params for opt in param.opts if opt.startswith("-")} - not_settings
        table = {flag for flag in fields.FLAGS if name == "enqueue" or flag not in ("-c", "--command")}
        assert given == table, name


def test_priority_words_are_defined_once() -> None:
    assert not hasattr(enqueue, "PRIORITY_WORDS") and not hasattr(manifest, "PRIORITY_WORDS")
    for word, value in fields.PRIORITY_WORDS.items():
        assert enqueue.parse_priority(word) == value
        spec = manifest.parse(f'command = "x"\npriority = "{word}"\n'.encode(), "/jobs/job.toml").spec
        assert spec is not None and spec.priority == value


# -- one rule per setting: the same value refused with the same words -----------------
def _over(fld: fields.Field) -> list[Any]:
    assert fld.bound is not None
    return [fld.bound.high + 1, fld.bound.low - 1, *([] if fld.bound.whole else [fld.bound.high + 0.5])]


@pytest.mark.parametrize("fld", BOUNDED, ids=lambda f: f.name)
def test_out_of_range_is_refused_with_the_same_rule_everywhere(fld: fields.Field) -> None:
    assert fld.bound is not None
    rule = f"expected {fld.bound.rule}"
    for value in _over(fld):
        for key in fld.manifest:
            assert any(
                f"{key}: {rule}, got {value!r}" in m for m in manifest_errors(f'command = "x"\n{key} = {value}\n')
            )
        for key in fld.json:
            for given in (value, str(value)):  # a JSON number, or the text of a flag
                with pytest.raises(UsageError) as caught:
                    enqueue.build({"command": "x", key: given}, config.effective({}), NOW)
                assert caught.value.message.endswith(rule), caught.value.message
        if fld.config is not None:
            with pytest.raises(UsageError) as caught:
                config.parse_value(fld.config, str(value))
            assert caught.value.message == f"invalid value {str(value)!r} for {fld.config}: {rule}"


@pytest.mark.parametrize("fld", BOUNDED, ids=lambda f: f.name)
def test_the_limits_themselves_are_accepted_everywhere(fld: fields.Field) -> None:
    assert fld.bound is not None
    for value in (fld.bound.low, fld.bound.high):
        for key in fld.manifest:
            found = manifest.parse(f'command = "x"\n{key} = {value:g}\n'.encode(), "/jobs/job.toml")
            assert found.spec is not None and getattr(found.spec, fld.name) == value
        for key in fld.json:
            run = enqueue.build({"command": "x", key: value}, config.effective({}), NOW)
            assert getattr(run, "max_retries" if fld.name == "retries" else fld.name) == value
        if fld.config is not None:
            assert config.parse_value(fld.config, f"{value:g}") == value


@pytest.mark.parametrize("value", [0, 11, -1, "11", 5.5, True, "urgent"])
def test_priority_out_of_range_is_refused_by_manifest_and_enqueue(value: object) -> None:
    toml = json.dumps(value) if not isinstance(value, bool) else "true"
    assert any(
        "priority: expected a whole number from 1 to 10" in m
        for m in manifest_errors(f'command = "x"\npriority = {toml}\n')
    )
    with pytest.raises(UsageError, match=r"expected 1-10 \(higher runs first\) or high/medium/low"):
        enqueue.parse_priority(value)


# -- one Defaults, built in one place -------------------------------------------------
class _Settings:
    def __init__(self, stored: dict[str, str]) -> None:
        self.stored = stored

    def config(self) -> dict[str, str]:
        return self.stored


def test_defaults_are_built_from_the_stores_config() -> None:
    got = config.defaults(_Settings({"max-retries": "7", "backoff-base": "1.5", "job-timeout": "0"}))
    assert got == config.Defaults(max_retries=7, backoff_base=1.5, backoff_max=3600, timeout=None)
    from_mapping = enqueue.build({"command": "x", "id": "a"}, config.effective({"max-retries": "7"}), NOW)
    from_defaults = enqueue.build({"command": "x", "id": "a"}, config.defaults(_Settings({"max-retries": "7"})), NOW)
    assert from_mapping == from_defaults and from_defaults.max_retries == 7


# -- the real command: every place a user gives a setting -----------------------------
CLI_RULES = [
    # (config key, manifest key, JSON key, flag, one past the limit, the one rule)
    ("max-retries", "retries", "max_retries", "--max-retries", "1001", fields.MAX_RETRIES.rule),
    ("backoff-base", "backoff_base", "backoff_base", "--backoff-base", "1000.5", fields.BACKOFF_BASE.rule),
]


@pytest.mark.parametrize(("key", "toml_key", "json_key", "flag", "value", "rule"), CLI_RULES)
def test_the_cli_refuses_one_past_the_limit_everywhere_with_one_rule(
    q: Queue, key: str, toml_key: str, json_key: str, flag: str, value: str, rule: str
) -> None:
    jobs = Path(q.tmp / "jobs.d")
    jobs.mkdir()
    (jobs / "big.toml").write_text(f'command = "true"\n{toml_key} = {value}\n')
    line = f'{{"command": "true", "{json_key}": {value}}}'
    attempts = {
        "config set": q("config", "set", key, value, check=False),
        "enqueue flag": q("enqueue", "--command", "true", flag, value, check=False),
        "enqueue JSON": q("enqueue", line, check=False),
        "enqueue --file": q("enqueue", "--file", "-", input=line + "\n", check=False),
        "validate": q("validate", str(jobs), check=False),
    }
    for where, done in attempts.items():
        assert done.returncode != 0, where
        assert f"expected {rule}" in done.stderr + done.stdout, (where, done.stderr)
    assert "big.toml:2: " + toml_key in attempts["validate"].stdout + attempts["validate"].stderr
    assert "for " + key + ": expected" in attempts["config set"].stderr
    assert q.json("list") == []


def test_the_cli_takes_the_backoff_base_limit_itself(q: Queue) -> None:
    assert q("config", "set", "backoff-base", "1000").stdout.strip() == "backoff-base = 1000"
    run_id = q("enqueue", "--command", "true", "--backoff-base", "1000").stdout.strip()
    assert q.json("show", run_id)["backoff_base"] == 1000


def test_a_jobs_defaults_are_the_tables() -> None:
    import dataclasses

    from queuectl.model import JobSpec

    spec_fields = {f.name: f for f in dataclasses.fields(JobSpec)}
    for fld in fields.MANIFEST_FIELDS:
        if fld.default is not None and fld.config is None:
            assert spec_fields[fld.name].default == fld.default, fld.name
        if fld.config is not None:  # unset, the run takes the store's configured value
            assert spec_fields[fld.name].default is None, fld.name


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


@pytest.mark.parametrize("fld", [f for f in fields.MANIFEST_FIELDS if f.examples], ids=lambda f: f.name)
def test_the_tables_examples_are_valid_manifests(fld: fields.Field) -> None:
    for example in fld.examples:
        text = f"{fld.name} = {_toml(example)}\n" + ("" if fld.name == "command" else 'command = "x"\n')
        found = manifest.parse(text.encode(), "/jobs/job.toml")
        assert found.errors == (), [str(e) for e in found.errors]
