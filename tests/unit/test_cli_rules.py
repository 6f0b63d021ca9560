"""One set of rules for every command: walks every click command (groups' subcommands too) and checks them.

The rules a user can rely on: a short letter means one thing everywhere (`-n` a limit, `-f` follow),
`--yes` has `-y`, slots are `--workers`/`-w`, every duration option takes 90s / 5m / 1h30m, every command
that changes something has `--json`, every help shows an example, and `queuectl --help` groups the
commands by what users do, cuts no description and lists an alias once.
"""

from __future__ import annotations

import re
from collections import defaultdict

import click
import pytest

from queuectl.cli.app import ALIASES, COMMANDS, READERS, SECTIONS, Duration, cli, run

Path = tuple[str, ...]

# Commands that run in the foreground until stopped: they print a log, not a result, so no --json.
# The shell too: the commands typed in it have their own --json.
FOREGROUND: set[Path] = {("up",), ("worker", "start"), ("shell",)}
# Commands that change nothing and open no store (so they are not in READERS): schema prints a file.
PRINTS_ONLY: set[Path] = {("schema",)}
DURATION_NAMES = {"--timeout", "--delay", "--grace", "--interval", "--stop-grace"}


def _walk() -> list[tuple[Path, click.Command]]:
    ctx = click.Context(cli)
    found: list[tuple[Path, click.Command]] = []

    def visit(command: click.Command, path: Path) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                visit(sub, (*path, name))

    for name in sorted(COMMANDS):
        if name not in ALIASES:
            command = cli.get_command(ctx, name)
            assert command is not None
            visit(command, (name,))
    return found


COMMAND_LIST = _walk()
LEAVES = [(path, command) for path, command in COMMAND_LIST if not isinstance(command, click.Group)]


def _ids(items: list[tuple[Path, click.Command]]) -> list[str]:
    return [" ".join(path) for path, _ in items]


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def _all_names(option: click.Option) -> list[str]:
    return [*option.opts, *option.secondary_opts]


def _letters() -> dict[str, set[tuple[str | None, str]]]:
    """Each short letter -> the (parameter name, command) pairs that use it."""
    meanings: dict[str, set[tuple[str | None, str]]] = defaultdict(set)
    for path, command in [((), cli), *COMMAND_LIST]:
        for option in _options(command):
            for name in _all_names(option):
                if re.fullmatch(r"-[A-Za-z]", name):
                    meanings[name].add((option.name, " ".join(path) or "queuectl"))
    return meanings


# A letter another queue tool gives one option, kept for its users on that one command (docs/cli.md says so):
# (letter, command) -> the option it names there. Everywhere else the letter keeps its one meaning.
BORROWED = {("-c", "worker start"): "workers"}  # `worker start -c N`, as their `--count N`; -c is --command elsewhere


def test_a_short_letter_means_one_thing_everywhere() -> None:
    for letter, uses in _letters().items():
        own = {(name, path) for name, path in uses if BORROWED.get((letter, path)) != name}
        assert len({name for name, _ in own}) == 1, f"{letter} means several things: {sorted(own, key=str)}"


def test_a_borrowed_letter_is_used_where_it_is_listed() -> None:
    letters = _letters()
    for (letter, path), name in BORROWED.items():
        assert (name, path) in letters[letter]
        assert len({n for n, p in letters[letter] if p != path}) == 1, letter


def test_n_is_a_limit_and_f_is_follow() -> None:
    letters = _letters()
    assert {name for name, _ in letters["-n"]} == {"limit"}
    assert {name for name, _ in letters["-f"]} == {"follow"}
    assert {name for name, _ in letters["-w"]} == {"workers"}


def test_long_names_that_lost_a_short_letter_still_work() -> None:
    names = {" ".join(path): {n for o in _options(c) for n in _all_names(o)} for path, c in COMMAND_LIST}
    assert {"--file"} <= names["enqueue"]
    assert {"--count", "--workers", "-w"} <= names["worker start"]
    assert {"--count", "-n"} <= names["plan"]


@pytest.mark.parametrize(("path", "command"), COMMAND_LIST, ids=_ids(COMMAND_LIST))
def test_every_yes_has_y(path: Path, command: click.Command) -> None:
    for option in _options(command):
        if "--yes" in option.opts:
            assert "-y" in option.opts, " ".join(path)


def test_slots_are_workers_on_up_and_on_worker_start() -> None:
    by_path = dict(COMMAND_LIST)
    for path in (("up",), ("worker", "start")):
        slots = [o for o in _options(by_path[path]) if "--workers" in o.opts]
        assert slots and "-w" in slots[0].opts, path


def _duration_options() -> list[tuple[str, click.Option]]:
    found = []
    for path, command in COMMAND_LIST:
        for option in _options(command):
            if set(_all_names(option)) & DURATION_NAMES or option.metavar == "DURATION":
                found.append((f"{' '.join(path)} {option.opts[-1]}", option))
    return found


DURATION_OPTIONS = _duration_options()


def test_the_duration_options_are_found() -> None:
    names = {name for name, _ in DURATION_OPTIONS}
    assert {"enqueue --timeout", "enqueue --delay", "run --timeout", "worker stop --timeout"} <= names


@pytest.mark.parametrize(("name", "option"), DURATION_OPTIONS, ids=[n for n, _ in DURATION_OPTIONS])
def test_every_duration_option_accepts_90s_5m_1h30m(name: str, option: click.Option) -> None:
    assert isinstance(option.type, Duration), name
    ctx = click.Context(cli)
    for typed, seconds in (("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400)):
        assert option.type_cast_value(ctx, typed) == seconds, (name, typed)


def _changes(path: Path) -> bool:
    return path not in READERS and path not in FOREGROUND and path not in PRINTS_ONLY


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=_ids(LEAVES))
def test_every_command_that_changes_something_has_json(path: Path, command: click.Command) -> None:
    if _changes(path):
        assert any("--json" in o.opts for o in _options(command)), f"{' '.join(path)} has no --json"


def test_the_commands_that_change_something_include_the_obvious_ones() -> None:
    changing = {" ".join(path) for path, _ in LEAVES if _changes(path)}
    assert {"enqueue", "run", "apply", "trigger", "suspend", "resume", "clear", "init"} <= changing
    assert {"dlq retry", "dlq clear", "config set", "worker stop", "db migrate"} <= changing


@pytest.mark.parametrize(("path", "command"), COMMAND_LIST, ids=_ids(COMMAND_LIST))
def test_every_help_has_an_example(path: Path, command: click.Command) -> None:
    text = command.help or ""
    block = text.split("Example:", 1)
    assert len(block) == 2, f"{' '.join(path)}: no 'Example:' in its help"
    lines = [line.strip() for line in block[1].splitlines() if line.strip()]
    assert lines and lines[0].startswith("queuectl "), " ".join(path)


def _top_help(capsys: pytest.CaptureFixture[str]) -> str:
    assert run(["--help"]) == 0
    return capsys.readouterr().out


def test_top_help_cuts_no_description(capsys: pytest.CaptureFixture[str]) -> None:
    text = _top_help(capsys)
    listing = text.split(f"\n{SECTIONS[0][0]}:\n", 1)[1]
    assert "..." not in listing and "…" not in listing
    flat = " ".join(text.split())
    for name, entry in COMMANDS.items():
        assert " ".join(entry[2].split()) in flat, name


def test_top_help_groups_commands_by_what_users_do_with_up_first(capsys: pytest.CaptureFixture[str]) -> None:
    text = _top_help(capsys)
    titles = [f"{title}:" for title, _ in SECTIONS]
    assert [t.lower() for t in titles] == ["declare and run:", "inspect:", "the queue:", "the store:"]
    positions = [text.index(f"\n{title}\n") for title in titles]
    assert positions == sorted(positions)
    first_row = text.split(f"\n{titles[0]}\n", 1)[1].splitlines()[0].split()
    assert first_row[0] == "up"
    shown = [name for _, names in SECTIONS for name in names]
    assert sorted(shown) == sorted(set(COMMANDS) - set(ALIASES))


def test_top_help_lists_an_alias_once_beside_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    text = _top_help(capsys)
    rows = [line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.strip()]
    assert "get" not in rows and "add" not in rows
    assert re.search(r"^  show \(get\) ", text, re.MULTILINE)
    assert re.search(r"^  run \(add\) ", text, re.MULTILINE)
    assert sum(1 for line in text.splitlines() if "Every field of a run" in line) == 1
