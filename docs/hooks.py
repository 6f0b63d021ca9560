"""MkDocs hook: what the docs generate from the code, so that they cannot go stale.

- The tables of manifest keys, of settings and of every setting's spellings, from
  queuectl/fields.py: a page says `<!-- fields-table -->`, `<!-- settings-table -->` or
  `<!-- spellings-table -->` where the table goes.
- The command reference: commands.md has a `::: mkdocs-click` block over `queuectl_docs:reference`,
  the real `queuectl` group with each alias listed once (mkdocs-click would document `get` as a second
  `show`); `<!-- aliases -->` says which names are aliases.

tests/unit/test_docs.py builds the site and checks what it generated.
"""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

import click

from queuectl import fields
from queuectl.cli.app import cli
from queuectl.config import SETTINGS, render_value

FIELDS_MARKER = "<!-- fields-table -->"
SETTINGS_MARKER = "<!-- settings-table -->"
ALIASES_MARKER = "<!-- aliases -->"
SPELLINGS_MARKER = "<!-- spellings-table -->"


def settings_table() -> str:
    """The settings kept in the store (`config set KEY VALUE`) as a markdown table: key, default, meaning."""
    rows = ["| Key | Default | Meaning |", "|---|---|---|"]
    for key, setting in SETTINGS.items():
        meaning = setting.help.replace("|", "\\|")
        rows.append(f"| `{key}` | {render_value(setting.default)} | {meaning} |")
    return "\n".join(rows) + "\n"


def spellings_table() -> str:
    """Every setting's spelling in a manifest, an `enqueue` JSON object, on the command line and in `config set`."""
    rows = ["| Setting | Manifest | enqueue JSON | enqueue / run flags | config set |", "|---|---|---|---|---|"]
    for fld in fields.FIELDS:
        cells = [", ".join(f"`{name}`" for name in names) or "-" for names in (fld.manifest, fld.json, fld.flags)]
        config_key = f"`{fld.config}`" if fld.config else "-"
        rows.append(f"| {fld.name} | {' | '.join(cells)} | {config_key} |")
    return "\n".join(rows) + "\n"


def aliases(group: click.Group = cli) -> dict[str, str]:
    """Names of `group` that call a command listed under another name: alias -> that name."""
    ctx = click.Context(group, info_name="queuectl")
    names = group.list_commands(ctx)
    found = {}
    for name in names:
        command = group.get_command(ctx, name)
        if command is not None and command.name != name and command.name in names:
            found[name] = str(command.name)
    return found


def help_markdown(text: str | None) -> str | None:
    """A command's help as markdown: each `\\b` block (click's unwrapped lines: the examples) as a code block."""
    if not text:
        return text
    out: list[str] = []
    block: list[str] | None = None
    for line in [*inspect.cleandoc(text).splitlines(), ""]:
        if line.strip() == "\b":
            block = []
        elif block is not None and line.strip():
            block.append(line)
        elif block is not None:
            out += ["```sh", *inspect.cleandoc("\n".join(block)).splitlines(), "```", ""]
            block = None
        else:
            out.append(line)
    return "\n".join(out).strip("\n")


def for_docs(command: click.Command) -> click.Command:
    """A copy of `command` (and of its subcommands) whose help is markdown; the command itself is untouched."""
    shown = copy.copy(command)
    shown.help = help_markdown(command.help)
    if isinstance(command, click.Group) and isinstance(shown, click.Group):
        shown.commands = {name: for_docs(sub) for name, sub in command.commands.items()}
    return shown


class Reference(click.Group):
    """The `queuectl` group as the reference shows it: its options, help and commands, each alias once."""

    def __init__(self, group: click.Group) -> None:
        super().__init__(name=group.name, params=group.params, help=group.help, context_settings=group.context_settings)
        self.real = group

    def list_commands(self, ctx: click.Context) -> list[str]:
        skip = aliases(self.real)
        return [name for name in self.real.list_commands(ctx) if name not in skip]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.real.get_command(ctx, cmd_name)
        return None if command is None else for_docs(command)


reference = Reference(cli)


def aliases_said() -> str:
    pairs = [f"`{alias}` is another name for [`{name}`](#queuectl-{name})" for alias, name in aliases().items()]
    return ("Aliases: " + "; ".join(pairs) + ".\n") if pairs else ""


def fill(markdown: str) -> str:
    """A page's markdown with its markers replaced by what they stand for."""
    return (
        markdown.replace(FIELDS_MARKER, fields.markdown_table())
        .replace(SETTINGS_MARKER, settings_table())
        .replace(ALIASES_MARKER, aliases_said())
        .replace(SPELLINGS_MARKER, spellings_table())
    )


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return fill(markdown)


sys.modules["queuectl_docs"] = sys.modules[__name__]  # for commands.md's `:module: queuectl_docs`
