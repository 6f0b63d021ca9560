"""The `queuectl` group: the store option, what commands share, the one place errors become exit codes.

Commands live in modules by subject (runs, workers, jobs, schedules, store)
and are imported only when called, so `queuectl --help` loads none of them
and `queuectl status` only its own.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from queuectl import __version__
from queuectl.errors import EXIT_USAGE, QueueError, UsageError
from queuectl.paths import POOL_STORE_HANDOFF

if TYPE_CHECKING:
    from queuectl.store import Store

F = TypeVar("F", bound=Callable[..., Any])
BANNER_HINT = "type 'queuectl shell' for an interactive shell, 'queuectl --help' for the commands"
POOL_BUSY_TIMEOUT = 1.0  # a pool retries a locked store rather than block its loop

# name -> (module in queuectl.cli, attribute, the command's short help as click makes it).
# --help lists commands from here without importing them; a unit test checks it against the commands.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "apply": ("jobs", "apply", "Make the store's jobs match the manifests under PATHS, in one transaction."),
    "cancel": ("runs", "cancel", "Cancel runs: a waiting one is not run, a running one is stopped."),
    "clear": ("runs", "clear", "Delete runs and their logs (running runs are never deleted)."),
    "config": ("store", "config_group", "Show and change settings kept in the store."),
    "dashboard": (
        "dashboard",
        "dashboard",
        "Serve the web dashboard: pages, the JSON API and its actions under /api/, and /metrics.",
    ),
    "db": ("store", "db_group", "The store itself: its schema and where it is."),
    "diff": ("jobs", "diff", "Print what apply would change."),
    "down": ("service", "down", "Stop the background up of this store (`up --detach`), gracefully unless --force."),
    "dlq": ("runs", "dlq", "The dead-letter queue: runs that used up their retries."),
    "enqueue": ("runs", "enqueue", "Add a run: from JSON, from flags, or many from a JSON Lines file."),
    "get": ("runs", "show", "Every field of a run (or of a declared job): attempts, output tail, origin."),
    "init": ("jobs", "init", "Create a jobs directory with a commented example manifest."),
    "list": ("runs", "list_cmd", "List runs, oldest first (or declared jobs with --jobs)."),
    "logs": ("runs", "logs", "Print a run's output (its latest attempt's log), or the output of a job's latest run."),
    "metrics": ("store", "metrics", "Counts, success rate, attempt durations and recent throughput."),
    "plan": (
        "schedules",
        "plan_cmd",
        "The next fire times of job NAME, in its zone and in UTC, with DST and overlap warnings.",
    ),
    "resume": ("schedules", "resume", "Restart job NAME's schedule (fires missed while suspended are skipped)."),
    "add": ("runs", "run_cmd", "Enqueue COMMAND as a new run and print its id."),
    "run": ("runs", "run_cmd", "Enqueue COMMAND as a new run and print its id."),
    "scheduler": (
        "service",
        "scheduler",
        "The background up under the other queuectl tool's names: start, stop, status, logs.",
    ),
    "schedule": (
        "schedules",
        "schedule_cmd",
        "Cron fires and delayed runs ahead, soonest first.",
    ),
    "schema": (
        "jobs",
        "schema",
        "Print the JSON Schema of a manifest (for taplo, Even Better TOML and other editors).",
    ),
    "service": (
        "service",
        "service_group",
        "The background up as a service: `service status`, and `service install|uninstall` of a systemd unit.",
    ),
    "shell": ("interactive", "shell", "An interactive prompt for every command, with Tab completion and history."),
    "show": ("runs", "show", "Every field of a run (or of a declared job): attempts, output tail, origin."),
    "status": (
        "store",
        "status",
        "Counts per state, live pools, declared jobs (drift, manifest errors) and where the store is.",
    ),
    "suspend": (
        "schedules",
        "suspend",
        "Stop job NAME's schedule (its runs not yet started are cancelled; a running one finishes).",
    ),
    "trigger": ("schedules", "trigger", "Run job NAME now, outside its schedule."),
    "up": ("jobs", "up", "Apply DIRECTORY, keep applying it as it changes, and run its jobs, in the foreground."),
    "validate": ("jobs", "validate", "Check manifests without a store (for CI and pre-commit)."),
    "worker": ("workers", "worker", "Run, stop and list worker pools."),
}

# --help groups the commands by what users do, in this order; an alias is shown beside its command.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Declare and run",
        ("up", "down", "scheduler", "service", "init", "validate", "diff", "apply", "trigger", "suspend", "resume"),
    ),
    ("Inspect", ("status", "list", "show", "logs", "plan", "schedule", "metrics", "dashboard", "shell")),
    ("The queue", ("enqueue", "run", "cancel", "worker", "dlq", "clear")),
    ("The store", ("db", "config", "schema")),
)
ALIASES = {"get": "show", "add": "run"}
"""Another name of a command: it works, and --help lists it once, beside the command (`show (get)`)."""

READERS = {
    ("status",),
    ("dashboard",),
    ("list",),
    ("show",),
    ("get",),
    ("logs",),
    ("metrics",),
    ("dlq", "list"),
    ("config", "get"),
    ("config", "show"),
    ("config", "list"),
    ("worker", "status"),
    ("db", "info"),
    ("schedule",),
    ("plan",),
    ("diff",),
    ("service", "status"),
    ("scheduler", "status"),
    ("scheduler", "logs"),
}
"""Commands that only read: they never create a store (a mistyped --db must not make an empty one)."""


class LazyGroup(click.Group):
    """A group whose commands are imported when one is called (or its help is asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """No arguments: the banner on a terminal (see `cli`), the help elsewhere (as click does)."""
        if not args and not ctx.resilient_parsing and not _on_terminal():
            raise click.exceptions.NoArgsIsHelpError(ctx)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"queuectl.cli.{entry[0]}")
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, from COMMANDS and SECTIONS: no command module is imported for it.

        Descriptions are whole (a long one wraps); an alias stands beside its command.
        """
        width = max(len(_listed_name(name)) for _, names in SECTIONS for name in names)
        for title, names in SECTIONS:
            rows = [(_listed_name(name).ljust(width), COMMANDS[name][2]) for name in names]  # one column across
            with formatter.section(title):
                formatter.write_dl(rows)


def _on_terminal() -> bool:
    return click.get_text_stream("stdout").isatty()


def _listed_name(name: str, table: dict[str, str] = ALIASES) -> str:
    aliases = [alias for alias, target in table.items() if target == name]
    return f"{name} ({', '.join(aliases)})" if aliases else name


class AliasedGroup(click.Group):
    """A group where some subcommands have another name: it works, and the help lists it beside its command."""

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases = aliases or {}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        commands = [(name, self.commands[name]) for name in self.list_commands(ctx)]
        rows = [(_listed_name(name, self.aliases), command.get_short_help_str(limit=200)) for name, command in commands]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


if TYPE_CHECKING:
    _SecondsParam = click.ParamType[float]
else:
    _SecondsParam = click.ParamType  # generic from click 8.2 on; pyproject allows 8.1


class Duration(_SecondsParam):
    """A duration option: seconds, or 90s / 5m / 1h30m (as everywhere in queuectl); the value is seconds."""

    name = "duration"

    def __init__(self, max_seconds: float | None = None) -> None:
        self.max_seconds = max_seconds

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from queuectl.durations import parse_duration  # parsed when given, not for --help

        what = param.opts[-1] if param is not None and param.opts else "duration"
        seconds = parse_duration(value, what)
        if self.max_seconds is not None and seconds > self.max_seconds:
            raise UsageError(f"invalid {what} {value!r}: expected at most {self.max_seconds:g} seconds")
        return seconds


DURATION = Duration()


class Context:
    """What every command shares: where the store is, opened on first use."""

    def __init__(self, db: str | None) -> None:
        handoff = os.environ.pop(POOL_STORE_HANDOFF, None)  # never passed on to what this process starts
        self.db = handoff or db
        _hide_store_password()
        self._store: Store | None = None

    def store(self, busy_timeout: float = 30.0, create: bool | None = None) -> Store:
        """The store, opened once; created if absent unless the command only reads (or `create` is False)."""
        if self._store is None:
            from queuectl.store.factory import open_store  # sqlite3 and the engines: not for --help

            if create is None:
                words = _command_words()
                create = not any(words[:n] in READERS for n in (1, 2))  # `dlq list` invokes `list` inside
            self._store = open_store(self.db, busy_timeout=busy_timeout, create=create)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _hide_store_password() -> None:
    """Keep a store password in $QUEUECTL_DB from the processes started from here (a pool's jobs).

    Read already by this process, the variable stays for them without its
    password: libpq then takes one from their PGPASSWORD or ~/.pgpass, if any.
    """
    url = os.environ.get("QUEUECTL_DB")
    if url:
        from queuectl.store.urls import without_password  # the store package: not for --help

        os.environ["QUEUECTL_DB"] = without_password(url)


def _command_words() -> tuple[str, ...]:
    """The running subcommand's words, as typed after `queuectl` (say, ("dlq", "list"))."""
    ctx = click.get_current_context(silent=True)
    words: list[str] = []
    while ctx is not None and ctx.parent is not None:
        words.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return tuple(words)


def db_option(func: F) -> F:
    """`--db` on every command, so it may stand before or after the command name."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value:
            ctx.find_object(Context).db = value  # type: ignore[union-attr]

    return click.option(
        "--db",
        metavar="PATH|URL",
        expose_value=False,
        callback=remember,
        help="Store file or postgresql:// URL (default: $QUEUECTL_DB, else the user's state directory).",
    )(func)


def workers_option(default: int, *other_names: str) -> Callable[[F], F]:
    """`-w/--workers N`, the slots of a pool: one meaning on `up`, `worker start` and `scheduler start`."""
    return click.option(
        "-w",
        "--workers",
        *other_names,
        "workers",
        default=default,
        show_default=True,
        type=click.IntRange(1, 1024),
        help="Slots: commands run at once.",
    )


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (a stable contract).")(func)


def yes_option(func: F) -> F:
    return click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")(func)


def store_of(ctx: click.Context, busy_timeout: float = 30.0) -> Store:
    return ctx.find_object(Context).store(busy_timeout=busy_timeout)  # type: ignore[union-attr]


def echo_json(value: Any) -> None:
    from queuectl.json_views import dumps  # the model's dataclasses: not for --help

    click.echo(dumps(value))


def log_line(message: str) -> None:
    """One line of a long-running command's log, on stderr, with the time."""
    from queuectl.cli import colour  # a command module: --help loads none (test_cli_layout)

    err = click.get_text_stream("stderr")
    err.write(f"{time.strftime('%H:%M:%S')} {colour.log_line(message, colour.wanted(err))}\n")
    err.flush()


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,  # alone: the banner on a terminal (the help elsewhere, see LazyGroup.parse_args)
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db", metavar="PATH|URL", envvar="QUEUECTL_DB", help="Store file or postgresql:// URL (env: QUEUECTL_DB)."
)
@click.version_option(__version__, "-V", "--version", prog_name="queuectl")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """Run shell commands in the background, reliably.

    Enqueue commands, run a worker pool, inspect results. The store is one
    SQLite file (--db PATH, else $QUEUECTL_DB, else
    ~/.local/state/queuectl/queue.db) or a PostgreSQL database
    (--db postgresql://user@host/dbname, with queuectl[postgres] installed).
    """
    state = Context(db)
    ctx.obj = state
    ctx.call_on_close(state.close)
    if ctx.invoked_subcommand is None:  # `queuectl` alone, or with only --db
        if not _on_terminal():
            ctx.fail("Missing command.")
        _banner(state)


def _banner(state: Context) -> None:
    """What a bare `queuectl` on a terminal says: the version, the store and its counts, the way on."""
    from queuectl.services import overview  # the store's verbs: only when the banner is shown

    click.echo(f"queuectl {__version__}")
    try:
        store = state.store(create=False)
        click.echo(f"store: {store.location}")
        counts = overview.counts(store)
    except QueueError as exc:  # no store yet, or one that cannot be read: said, the hint still given
        click.echo(f"store: {exc.message}")
    else:
        click.echo("runs:  " + ", ".join(f"{number} {name}" for name, number in counts.items()))
    click.echo(BANNER_HINT)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error ends as one line on stderr and an exit code."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Run one command line; its exit code. Errors are said in one line on stderr, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="queuectl", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort as exc:
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        if not interrupted:
            click.echo("aborted", err=True)
        return 130 if interrupted else 1
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _error(exc.format_message() + hint, EXIT_USAGE)
    except click.ClickException as exc:
        return _error(exc.format_message(), exc.exit_code)
    except QueueError as exc:
        return _error(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:  # a bug of ours: still one line, but say what it was
        if os.environ.get("QUEUECTL_DEBUG"):
            raise
        return _error(f"internal error: {type(exc).__name__}: {exc}", 1)


def _error(message: str, code: int) -> int:
    click.echo(f"queuectl: error: {' '.join(message.split())}", err=True)
    return code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
