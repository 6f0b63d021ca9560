"""`queuectl shell`: the command; the prompt itself is queuectl/shell.py."""

from __future__ import annotations

import click

from queuectl.cli.app import Context, cli, db_option, run


@click.command()
@click.option(
    "-c",
    "--command",
    metavar="COMMANDS",
    help="Run COMMANDS (separated by ';') without a prompt and exit with the last one's exit code.",
)
@db_option
@click.pass_context
def shell(ctx: click.Context, command: str | None) -> None:
    """An interactive prompt for every command, with Tab completion and history.

    Type commands without the `queuectl` prefix: `status`, `list --state dead`,
    `logs ID`. Tab completes commands, options, states, priorities, job names
    and run ids; `help [COMMAND]` explains; Ctrl-C cancels the line (or stops
    a command running in the foreground); Ctrl-D, `exit` or `quit` leaves.
    History is kept in the state directory. --db applies to every line.

    \b
    Example:
      queuectl shell
      queuectl shell -c "status; list --state dead"
    """
    from queuectl import shell as front  # the shell front end: not for the other commands

    db = ctx.find_object(Context).db  # type: ignore[union-attr]
    session = front.Shell(run, cli, db)
    if command is not None:
        ctx.exit(session.script([command]))
    ctx.exit(front.interact(session))
