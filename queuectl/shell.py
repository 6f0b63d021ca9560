"""The interactive shell: every queuectl command at a prompt, run by the same click group as the CLI.

A front end with no queue logic: a line is split as a shell splits it and
handed to the CLI's own `run` (so output, errors and exit codes are the
CLI's, one line per error); completion asks the services for job names and
run ids. prompt_toolkit is imported for the prompt only, never for
`shell -c` or a script read from a pipe.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

import click

from queuectl import fields
from queuectl.errors import EXIT_USAGE, QueueError
from queuectl.model import STATE_ALIASES, STATES
from queuectl.paths import make_private_dir, state_dir

if TYPE_CHECKING:
    from prompt_toolkit.completion import Completer

    from queuectl.store.contract import Store

RunArgv = Callable[[list[str]], int]
"""The CLI's `run`: one command line (without `queuectl`) to its exit code, errors said in one line."""

PROMPT = "queuectl> "
PREFIX = "queuectl"  # a line may still start with it
HISTORY_FILE = "shell-history"
LOOKUP_LIMIT = 50  # names and ids read per Tab: one indexed read, whatever the store's size
SLOW_FAILURE = 0.5  # seconds: a store that took this long to fail to open (a server down) is let be...
RETRY_AFTER = 60.0  # ...for this long, so that not every Tab waits for it again
BUILTINS = ("help", "exit", "quit")
INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C (as the CLI's)
JOB_NAME_COMMANDS = {("trigger",), ("suspend",), ("resume",), ("plan",), ("show",), ("get",), ("logs",)}
RUN_ID_COMMANDS = {("show",), ("get",), ("logs",), ("dlq", "retry"), ("cancel",)}
BUILTIN_HELP = {
    "help": "help [COMMAND [SUBCOMMAND]]: the list of commands, or a command's --help (help dlq retry).",
    "exit": "exit [N]: leave the shell, with exit code N (0-255) when given; Ctrl-D leaves too.",
    "quit": "quit [N]: leave the shell, with exit code N (0-255) when given; Ctrl-D leaves too.",
}
INTRO = "queuectl shell: 'help' lists the commands, 'help COMMAND' explains one; Tab completes; Ctrl-D leaves."


class Leave(Exception):
    """`exit [N]` or `quit [N]`: the shell ends, with N when given (else 0 at the prompt, the last code in a script)."""

    def __init__(self, code: int | None = None) -> None:
        super().__init__(code)
        self.code = code


def split_commands(text: str) -> list[str]:
    """`text` cut at each `;` outside quotes (a backslash escapes the next character, as in sh)."""
    pieces: list[str] = []
    current: list[str] = []
    quote, escaped = "", False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ";":
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return [piece for piece in pieces if piece.strip()]


class Shell:
    """Lines to commands of the CLI's group; `--db` given to `shell` goes before every line's own words."""

    def __init__(self, run: RunArgv, group: click.Group, db: str | None) -> None:
        self.run = run
        self.group = group
        self.db = db
        self.last = 0

    def script(self, lines: Iterable[str]) -> int:
        """Run each command of `lines` (each split on `;`); the last one's exit code (`exit` stops early)."""
        try:
            for line in lines:
                self.line(line)
        except Leave as leave:
            return self.last if leave.code is None else leave.code
        return self.last

    def line(self, text: str) -> None:
        """One line (commands split on `;`); raises Leave on `exit`/`quit`. Ctrl-C drops the rest, as in sh."""
        for piece in split_commands(text):
            self.one(piece)
            if self.last == INTERRUPTED:
                return

    def one(self, command: str) -> None:
        try:
            words = shlex.split(command)
        except ValueError as exc:  # an unclosed quote: the one line the CLI would say
            click.echo(f"queuectl: error: {exc} in {command.strip()!r}", err=True)
            self.last = EXIT_USAGE
            return
        if words[0] == PREFIX:  # typed out of habit: the same command
            words = words[1:]
            if not words:
                return
        if words[0] in ("exit", "quit"):
            self.leave(words)
        if words[0] == "help" and words[1:2] and words[1] in BUILTINS:  # the shell's own: not a command
            click.echo(BUILTIN_HELP[words[1]])
            self.last = 0
            return
        if words[0] == "help":
            self.last = self.invoke([*words[1:], "--help"])
            if len(words) == 1:
                click.echo("\nIn the shell: help [COMMAND], exit, quit; Tab completes; Ctrl-C cancels, Ctrl-D leaves.")
            return
        self.last = self.invoke(words)

    def leave(self, words: list[str]) -> None:
        """`exit`, `exit N` (0-255, as sh takes it): raise Leave; anything else is a usage error, said in one line."""
        if len(words) == 1:
            raise Leave
        if len(words) == 2 and words[1].isdigit() and int(words[1]) <= 255:
            raise Leave(int(words[1]))
        click.echo(f"queuectl: error: {words[0]} takes one exit code (0-255), not {' '.join(words[1:])!r}", err=True)
        self.last = EXIT_USAGE

    def invoke(self, words: list[str]) -> int:
        """Run one command in this process, as the CLI would; the signal handlers it changes are put back.

        A pool (`up`, `worker start`) takes Ctrl-C for its graceful stop and leaves it
        ignored when done; here the shell must get it back for the next command.
        It also made the process a subreaper, which the shell stops being.
        """
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        argv = ["--db", self.db, *words] if self.db else words
        try:
            return self.run(argv)
        except KeyboardInterrupt:  # between the command's own handlers: still back to the prompt
            return INTERRUPTED
        except SystemExit as exc:  # a command that left the click way
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            for sig, handler in saved.items():
                if handler is not None:  # None: a handler not set from Python, which none of ours is
                    signal.signal(sig, handler)
            _stop_adopting()
            sys.stdout.flush()
            sys.stderr.flush()


def _stop_adopting() -> None:
    """A pool run here (`up`, `worker start`) made this process adopt orphans; the shell, after it, does not."""
    reaper = sys.modules.get("queuectl.reaper")  # loaded by a pool only: no other line pays for this
    if reaper is not None:
        reaper.become_subreaper(False)


# -- completion ------------------------------------------------------------------------------------


class Lookup:
    """Job names and run ids for completion, through the services; read once per prompt and prefix."""

    def __init__(self, db: str | None) -> None:
        self.default = db
        self.db = db
        self._store: Store | None = None
        self._cache: dict[tuple[str, str], list[str]] = {}
        self._failed: dict[str | None, float] = {}  # store -> when a slow open of it failed (across prompts)

    def use(self, db: str | None) -> None:
        """Read the store a line names with its own --db (else the shell's)."""
        if (db or self.default) != self.db:
            self.reset()
            self.db = db or self.default

    def reset(self) -> None:
        """A new prompt: forget what was read (runs come and go between commands) and let the store go."""
        self._cache.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    def job_names(self, prefix: str) -> list[str]:
        from queuectl.services import jobs  # the store's job verbs: only once a name is completed

        return self._read("job", prefix, lambda store: jobs.names(store, prefix, LOOKUP_LIMIT))

    def run_ids(self, prefix: str) -> list[str]:
        from queuectl.services import runs  # the store's run verbs: only once an id is completed

        return self._read("run", prefix, lambda store: runs.ids_starting(store, prefix, LOOKUP_LIMIT))

    def _read(self, kind: str, prefix: str, read: Callable[[Store], list[str]]) -> list[str]:
        key = (kind, prefix)
        if key not in self._cache:
            self._cache[key] = []
            if time.monotonic() < self._failed.get(self.db, 0.0) + RETRY_AFTER:
                return []  # it did not answer a moment ago: Tab does not wait for it again
            began = time.monotonic()
            try:
                self._cache[key] = read(self._opened())
            except (QueueError, OSError):  # no store yet, or an unreadable one: nothing to offer
                if time.monotonic() - began >= SLOW_FAILURE:
                    self._failed[self.db] = time.monotonic()
        return self._cache[key]

    def _opened(self) -> Store:
        if self._store is None:
            from queuectl.store.factory import open_store  # sqlite3 and the engines: only when completing

            self._store = open_store(self.db, busy_timeout=1.0, create=False)
        return self._store


def _words_and_partial(before: str) -> tuple[list[str], str]:
    """The words of the command being typed (after its last `;`) and the partial word under the cursor."""
    pieces = split_commands(before + "x")  # the marker keeps a trailing empty command in place
    piece = pieces[-1][:-1] if pieces else ""
    partial = "" if not piece or piece[-1].isspace() else piece.split()[-1]
    head = piece[: len(piece) - len(partial)]
    try:
        words = shlex.split(head)
    except ValueError:  # an open quote: its words as they stand
        words = head.split()
    return words, partial


def _db_given(words: list[str]) -> str | None:
    """The store a line names with --db (the last one, as click takes it), if any."""
    given = None
    for word, following in zip(words, [*words[1:], None], strict=True):
        if word == "--db" and following is not None:
            given = following
        elif word.startswith("--db="):
            given = word.split("=", 1)[1]
    return given


def _option_named(command: click.Command, name: str) -> click.Option | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _takes_value(option: click.Option) -> bool:
    return not option.is_flag and not option.count


class Completions:
    """What Tab offers after the text before the cursor: walks the click group as the CLI parses."""

    def __init__(self, group: click.Group, lookup: Lookup) -> None:
        self.group = group
        self.lookup = lookup

    def complete(self, before: str) -> tuple[str, list[str]]:
        """(the partial word to replace, the words that may replace it), each ending with a space."""
        words, partial = _words_and_partial(before)
        if words[:1] == [PREFIX]:
            words = words[1:]
        folded = partial.casefold()  # `--state PEN` finds pending, as the command takes any case
        return partial, [f"{word} " for word in self.candidates(words, partial) if word.casefold().startswith(folded)]

    def candidates(self, words: list[str], partial: str) -> list[str]:
        helping = bool(words) and words[0] == "help"
        command, path, pending = self._walk(words[1:] if helping else words)
        if pending is not None:
            return self.option_values(pending)
        if isinstance(command, click.Group) and not partial.startswith("-"):
            names = command.list_commands(click.Context(command))
            return [*names, *BUILTINS] if command is self.group and not words else names
        if helping:
            return []
        if partial.startswith("-"):
            return self.options(command)
        found: list[str] = []
        self.lookup.use(_db_given(words))
        if path in RUN_ID_COMMANDS:
            found += self.lookup.run_ids(partial)
        if path in JOB_NAME_COMMANDS:
            found += [name for name in self.lookup.job_names(partial) if name not in found]
        return found

    def _walk(self, words: list[str]) -> tuple[click.Command, tuple[str, ...], click.Option | None]:
        """The command the words lead to, its path, and the option whose value comes next (if one does)."""
        command: click.Command = self.group
        path: tuple[str, ...] = ()
        pending: click.Option | None = None
        for word in words:
            if pending is not None:
                pending = None
                continue
            if word.startswith("-"):
                option = _option_named(command, word.split("=", 1)[0]) or _option_named(self.group, word)
                pending = option if option is not None and _takes_value(option) and "=" not in word else None
                continue
            if isinstance(command, click.Group):
                sub = command.get_command(click.Context(command), word)
                if sub is not None:
                    command, path = sub, (*path, word)
        return command, path, pending

    def options(self, command: click.Command) -> list[str]:
        names = [n for p in command.params if isinstance(p, click.Option) for n in (*p.opts, *p.secondary_opts)]
        return sorted({*names, "--help"}, key=lambda name: (name.startswith("--"), name))

    def option_values(self, option: click.Option) -> list[str]:
        """An option's values: a Choice's choices, or those of the setting it spells (fields.py)."""
        if isinstance(option.type, click.Choice):
            choices = [str(choice) for choice in option.type.choices]
            return [*choices, *STATE_ALIASES] if set(choices) == set(STATES) else choices  # `processing` too
        for name in option.opts:
            setting = fields.FLAGS.get(name)
            if setting is not None and setting.choices:
                return list(setting.choices)
        return []


# -- the prompt ------------------------------------------------------------------------------------


def history_path() -> str | None:
    """The shell's history file in the state directory, made 0600 like every file queuectl writes.

    None (said in one line) when it cannot be: the shell then keeps this session's lines only.
    """
    directory = state_dir()
    path = os.path.join(directory, HISTORY_FILE)
    try:
        make_private_dir(directory)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600))
        os.chmod(path, 0o600)
    except OSError as exc:
        why = exc.strerror or str(exc)
        click.echo(f"warning: history is not kept: cannot write {path}: {why}", err=True)
        return None
    return path


def _warm_completion() -> None:
    """Load what the first Tab on a job name or run id needs (the services, the store engines: ~60 ms), in
    a thread while the first line is typed, so that Tab is as quick as the later ones (~1 ms)."""
    import importlib  # the loader itself is in memory already: no cost
    import threading  # already loaded by prompt_toolkit: no cost

    def load() -> None:
        for name in ("queuectl.services.jobs", "queuectl.services.runs", "queuectl.store.factory"):
            with contextlib.suppress(Exception):  # a Tab would load it again, and say nothing either
                importlib.import_module(name)

    threading.Thread(target=load, name="queuectl-shell-warm", daemon=True).start()


def _prompt_completer(completion: Completions) -> Completer:
    from prompt_toolkit.completion import Completer, Completion  # the prompt library: for the prompt only

    class Adapter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Completion]:
            partial, offered = completion.complete(document.text_before_cursor)
            for word in offered:
                yield Completion(word, start_position=-len(partial))

    return Adapter()


def interact(shell: Shell) -> int:
    """The prompt, until Ctrl-D, `exit` or `quit`: 0. From a pipe, the lines are run as a script."""
    if not sys.stdin.isatty():
        return shell.script(_lines(_unread_lines(sys.stdin)))
    from prompt_toolkit import PromptSession  # the prompt library (tens of ms): only for the interactive prompt
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.shortcuts import CompleteStyle

    lookup = Lookup(shell.db)
    kept = history_path()
    session: PromptSession[str] = PromptSession(
        history=FileHistory(kept) if kept else InMemoryHistory(),
        completer=_prompt_completer(Completions(shell.group, lookup)),
        complete_while_typing=False,
        complete_style=CompleteStyle.READLINE_LIKE,
    )
    click.echo(INTRO)
    _warm_completion()
    while True:
        lookup.reset()
        try:
            text = session.prompt(PROMPT)
        except KeyboardInterrupt:  # Ctrl-C: the line is dropped, a new prompt comes
            continue
        except EOFError:  # Ctrl-D
            click.echo()
            return 0
        try:
            shell.line(text)
        except Leave as leave:
            return leave.code or 0
        except KeyboardInterrupt:  # between two commands of the line: the rest is dropped
            click.echo()


def _unread_lines(stream: TextIO) -> Iterator[str]:
    """The lines of a script on stdin, read as sh reads one: a byte at a time, nothing read ahead, so that
    a command of the script that reads stdin (`enqueue --file -`) gets the lines after its own."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's stream): its lines as they come
        yield from stream
        return
    line = bytearray()
    while byte := os.read(fd, 1):
        line += byte
        if byte == b"\n":
            yield line.decode(errors="replace")
            line.clear()
    if line:
        yield line.decode(errors="replace")


def _lines(stream: Iterable[str]) -> Iterator[str]:
    for line in stream:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield stripped
