"""keep_children: a manifest key that leaves every job applied before it unchanged."""

from __future__ import annotations

from queuectl import manifest
from queuectl.model import JobSpec


def _spec(text: str) -> JobSpec:
    parsed = manifest.parse(text.encode(), "/jobs/x.toml")
    assert parsed.parsed is not None, parsed.errors
    return parsed.parsed


def test_keep_children_is_read_from_a_manifest() -> None:
    assert _spec('command = "d &"\nkeep_children = true\n').keep_children is True
    assert _spec('command = "d &"\n').keep_children is False


def test_keep_children_must_be_a_boolean() -> None:
    parsed = manifest.parse(b'command = "d &"\nkeep_children = "yes"\n', "/jobs/x.toml")
    assert [str(e) for e in parsed.errors] == ['/jobs/x.toml:2: keep_children: expected true or false, got "yes"']


def test_jobs_without_the_key_keep_their_hashes() -> None:
    """A job applied before the key existed must not count as changed (nor re-run) after an upgrade."""
    plain = _spec('command = "backup"\n')
    assert "keep_children" not in plain.canonical
    kept = _spec('command = "backup"\nkeep_children = true\n')
    assert kept.spec_hash != plain.spec_hash and kept.run_hash != plain.run_hash
    assert JobSpec.from_json(kept.to_json()) == kept
