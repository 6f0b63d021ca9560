"""The reference docs (docs/, mkdocs.yml): built as CI builds them, with what they generate from the code.

The manifest keys, the settings and the command reference are generated at build
time (docs/hooks.py, mkdocs-click), so a key, a setting or a command added to the
code appears in the docs without anyone editing them; these tests read the built
pages and fail when a generated part is missing (the hook unregistered, a marker
dropped, a command the lazy group does not list).
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from queuectl import config, fields
from queuectl.cli.app import ALIASES, COMMANDS
from tests.conftest import Queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    build = ["build", "--strict", "--quiet", "-f", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", *build],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"
    return out


def table_after(page: str, heading_id: str) -> str:
    """The text of the first table after the heading `heading_id` of a built page."""
    start = page.index(f'id="{heading_id}"')
    table = page[page.index("<table", start) : page.index("</table>", start)]
    return html.unescape(table)


def codes(table: str) -> set[str]:
    return set(re.findall(r"<code>([^<]*)</code>", table))


def test_manifest_page_lists_every_manifest_key_and_spelling(site: Path) -> None:
    page = (site / "manifest" / "index.html").read_text(encoding="utf-8")
    listed = codes(table_after(page, "every-key"))
    expected = set(fields.MANIFEST_KEYS) | set(fields.MANIFEST_ALIASES)
    assert expected <= listed, f"missing from the manifest table: {sorted(expected - listed)}"
    assert "max_retries" in listed and "keep_children" in listed


def test_settings_page_lists_every_setting_with_its_default(site: Path) -> None:
    page = (site / "settings" / "index.html").read_text(encoding="utf-8")
    table = table_after(page, "settings")
    for key, setting in config.SETTINGS.items():
        row = re.search(rf"<code>{re.escape(key)}</code></td>\s*<td>([^<]*)</td>", table)
        assert row is not None, f"setting {key} missing from the settings table"
        assert row.group(1) == config.render_value(setting.default)


def test_command_reference_documents_every_command_of_the_lazy_group(site: Path) -> None:
    page = (site / "commands" / "index.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<h[2-6] id="([^"]+)"', page))
    for name, (_module, _attr, _help) in COMMANDS.items():
        if name in ALIASES:  # an alias: said once, beside its command
            assert f"<code>{name}</code> is another name for" in page
            continue
        assert f"queuectl-{name}" in anchors, f"command {name} missing from the reference"
    for sub in ("worker-start", "worker-stop", "worker-status", "dlq-retry", "config-set", "db-migrate"):
        assert f"queuectl-{sub}" in anchors
    assert "--reset-attempts" in page  # options are there too, read from the commands
    assert "\b" not in page  # click's no-rewrap marker: the examples became code blocks


def keys_of(value: Any) -> set[str]:
    """The field names of a JSON output: of the object, or of a list's first element, and one level down."""
    found: set[str] = set()
    items = value if isinstance(value, list) else [value]
    for item in items[:1]:
        if isinstance(item, dict):
            found |= set(item)
            for inner in item.values():
                if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                    found |= set(inner[0])
    return found


def test_json_page_names_every_field_the_json_commands_print(q: Queue) -> None:
    jobs = q.tmp / "jobs.d"
    jobs.mkdir()
    for name, text in {"tick": 'command = "true"\ncron = "*/5 * * * *"\n', "once": 'command = "true"\n'}.items():
        (jobs / f"{name}.toml").write_text(text)
        (jobs / f"{name}.toml").chmod(0o600)
    page = (ROOT / "docs" / "json.md").read_text(encoding="utf-8")
    outputs = {
        "apply": q.json("apply", str(jobs)),
        "diff": q.json("diff", str(jobs)),
        "validate": q.json("validate", str(jobs)),
        "enqueue": q.json("enqueue", "--command", "true"),
        "run": q.json("run", "true"),
        "trigger": q.json("trigger", "tick"),
        "list": q.json("list"),
        "list --jobs": q.json("list", "--jobs"),
        "schedule": q.json("schedule"),
        "plan": q.json("plan", "tick"),
        "show": q.json("show", "once"),
        "status": q.json("status"),
        "metrics": q.json("metrics"),
        "metrics --detailed": q.json("metrics", "--detailed"),
        "db info": q.json("db", "info"),
    }
    run_id = outputs["trigger"]["triggered"]
    outputs["show RUN"] = q.json("show", run_id)
    outputs["suspend"] = q.json("suspend", "tick")
    outputs["resume"] = q.json("resume", "tick")
    outputs["config set"] = q.json("config", "set", "max-retries", "2")
    outputs["db migrate"] = q.json("db", "migrate")
    outputs["clear"] = q.json("clear", "-s", "completed", "-y")
    outputs["dlq clear"] = q.json("dlq", "clear", "-y")
    outputs["dlq retry"] = q.json("dlq", "retry", "--all")
    outputs["cancel"] = q.json("cancel", outputs["enqueue"]["enqueued"][0])
    outputs["worker stop"] = q.json("worker", "stop")
    outputs["init"] = q.json("init", str(q.tmp / "fresh.d"))
    for command, value in outputs.items():
        assert f"`{command.split()[0]}" in page, f"{command} --json is not in docs/json.md"
        missing = sorted(key for key in keys_of(value) if f'"{key}"' not in page)
        assert not missing, f"{command} --json prints fields docs/json.md does not name: {missing}"
