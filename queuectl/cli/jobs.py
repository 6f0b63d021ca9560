"""Commands about declared jobs: apply, diff, validate, init, schema and up."""

from __future__ import annotations

import os
from importlib.resources import files
from typing import Any

import click

from queuectl import json_views, planview, templates
from queuectl.apply import Plan
from queuectl.cli import colour, service
from queuectl.cli.app import POOL_BUSY_TIMEOUT, db_option, echo_json, json_option, log_line, store_of, workers_option
from queuectl.errors import EXIT_FAILURE, EXIT_USAGE, NotFoundError, QueueError, UsageError
from queuectl.services import daemon, jobs
from queuectl.store.contract import Store
from queuectl.supervisor import Supervisor
from queuectl.web.binding import TOKEN_ENV

insecure_option = click.option(
    "--insecure",
    is_flag=True,
    help="Accept manifests not owned by you or writable by group/others (shared setups).",
)
status_option = click.option(
    "--status-dir",
    metavar="DIR",
    help="Where job status files go (default: .status/ inside each jobs directory).",
)


def _abs(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _print_plan(plan: Plan, as_json: bool, applied: bool) -> None:
    if as_json:
        echo_json(planview.plan_json(plan, applied))
        return
    on = colour.wanted(click.get_text_stream("stdout"))
    click.echo("\n".join(colour.plan_line(line, on) for line in planview.plan_lines(plan, applied)))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@insecure_option
@status_option
@json_option
@db_option
@click.pass_context
def apply(
    ctx: click.Context,
    paths: tuple[str, ...],
    dry_run: bool,
    insecure: bool,
    status_dir: str | None,
    as_json: bool,
) -> None:
    """Make the store's jobs match the manifests under PATHS, in one transaction.

    Prints the plan (created / updated / unchanged / deleted). A job whose
    file left an applied directory is deleted (its history stays). Exit 1
    when some file was invalid: its job keeps its last good version.

    \b
    Example:
      queuectl apply jobs.d
      queuectl apply jobs.d --dry-run --json
    """
    options = {"dry_run": dry_run, "insecure": insecure, "status_dir": _abs(status_dir)}
    plan = jobs.apply(store_of(ctx), jobs.job_dirs(paths), **options)
    _print_plan(plan, as_json, applied=not dry_run)
    if plan.invalid:
        ctx.exit(EXIT_FAILURE)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@insecure_option
@json_option
@db_option
@click.pass_context
def diff(ctx: click.Context, paths: tuple[str, ...], insecure: bool, as_json: bool) -> None:
    """Print what apply would change. Exit 0: nothing; 1: something; 2: an error (like kubectl diff).

    \b
    Example:
      queuectl diff jobs.d
    """
    try:
        plan = jobs.apply(_store_or_empty(ctx), jobs.job_dirs(paths), dry_run=True, insecure=insecure)
    except QueueError as exc:
        raise QueueError(exc.message, EXIT_USAGE) from None
    _print_plan(plan, as_json, applied=False)
    ctx.exit(EXIT_USAGE if plan.invalid else EXIT_FAILURE if plan.changed else 0)


def _store_or_empty(ctx: click.Context) -> Store:
    """The store; where there is none yet, an empty one in memory (diff compares, never creates)."""
    try:
        return store_of(ctx)
    except NotFoundError as exc:
        from queuectl.store.sqlite import SQLiteStore  # the engine, only for a diff against no store

        click.echo(f"note: {exc.message}: compared with an empty store", err=True)
        return SQLiteStore(":memory:")


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@insecure_option
@json_option
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], insecure: bool, as_json: bool) -> None:
    """Check manifests without a store (for CI and pre-commit). Exit 1 when any is invalid.

    Every error of every file is printed: file, line, key and what was expected.
    A file that apply would refuse for its owner or mode is a warning here (a
    CI checkout is often owned by another user): its content is still checked.

    \b
    Example:
      queuectl validate jobs.d
    """
    checked = jobs.validate(paths, insecure)
    errors = checked.errors
    if as_json:
        echo_json({**planview.validate_json(checked.manifests), "warnings": checked.warnings})
    else:
        _say_checked(checked)
    if errors:
        ctx.exit(EXIT_FAILURE)


def _say_checked(checked: jobs.Checked) -> None:
    """validate's lines: warnings and errors on stderr, then the count (on stderr when some file is invalid)."""
    on = colour.wanted(click.get_text_stream("stderr"))
    for line in checked.warnings:  # diagnostics go to stderr, like every error line
        click.echo(colour.paint(line, colour.WARNING, on), err=True)
    for error in checked.errors:
        click.echo(colour.paint(planview.relative_error(error), colour.ERROR, on), err=True)
    bad = sum(1 for m in checked.manifests if m.errors)
    summary = f"{len(checked.manifests) - bad} valid, {bad} invalid manifest(s)"
    stream = click.get_text_stream("stderr" if checked.errors else "stdout")
    style = colour.ERROR if checked.errors else colour.GOOD
    click.echo(colour.paint(summary, style, colour.wanted(stream)), err=bool(checked.errors))


@click.command()
@click.argument("directory", default=jobs.DEFAULT_DIR, type=click.Path())
@json_option
def init(directory: str, as_json: bool) -> None:
    """Create a jobs directory with a commented example manifest.

    \b
    Example:
      queuectl init jobs.d
    """
    path = templates.init(directory)
    if as_json:
        echo_json(json_views.created_json(path))
        return
    click.echo(f"created {path}: edit it, then run 'queuectl apply {directory}' or 'queuectl up {directory}'")


@click.command()
def schema() -> None:
    """Print the JSON Schema of a manifest (for taplo, Even Better TOML and other editors).

    \b
    Example:
      queuectl schema > manifest.schema.json
    """
    click.echo(files("queuectl").joinpath("manifest.schema.json").read_text(encoding="utf-8"), nl=False)


@click.command()
@click.argument("directory", required=False, type=click.Path())
@workers_option(2)
@insecure_option
@status_option
@click.option("-q", "--quiet", is_flag=True, help="Do not log each attempt's start and end.")
@click.option(
    "--burst",
    is_flag=True,
    help="Apply, run what is due (and its retries), then exit: 1 if a run ended dead or a manifest was refused.",
)
@click.option("--detach", is_flag=True, help="Run in the background; return once it serves (see 'queuectl down').")
@click.option("--status", "show_status", is_flag=True, help="Whether a background up runs (exit 1 when none does).")
@click.option(
    "--dashboard", "dashboard_at", metavar="[HOST:]PORT", help="Serve the web dashboard there too (HOST: 127.0.0.1)."
)
@click.option(
    "--dashboard-token",
    metavar="T",
    envvar=TOKEN_ENV,
    help=f"The dashboard's token (env: {TOKEN_ENV}); needed off loopback.",
)
@click.option("--dashboard-read-only", is_flag=True, help="The dashboard serves no actions (pages, API, metrics only).")
@json_option
@db_option
@click.pass_context
def up(
    ctx: click.Context,
    directory: str | None,
    workers: int,
    insecure: bool,
    status_dir: str | None,
    quiet: bool,
    burst: bool,
    detach: bool,
    show_status: bool,
    dashboard_at: str | None,
    dashboard_token: str | None,
    dashboard_read_only: bool,
    as_json: bool,
) -> None:
    """Apply DIRECTORY, keep applying it as it changes, and run its jobs, in the foreground.

    Ctrl-C or SIGTERM stops: no new claims, running commands finish (within
    config stop-grace), then exit; a second signal stops them at once.
    With --detach it runs in the background (pid and log files in the state
    directory) until 'queuectl down'; --status says whether one runs, since
    when, its pools and its jobs directory. --json goes with these two.

    \b
    Example:
      queuectl up jobs.d --workers 4
      queuectl up jobs.d --burst
      queuectl up jobs.d --detach
      queuectl up jobs.d --dashboard 127.0.0.1:8080
    """
    if sum((burst, detach, show_status)) > 1:
        raise UsageError("--burst, --detach and --status go one at a time")
    if dashboard_at is not None and (burst or show_status):
        raise UsageError("--dashboard serves while up runs: not with --burst or --status")
    if dashboard_read_only and dashboard_at is None:
        raise UsageError("--dashboard-read-only goes with --dashboard [HOST:]PORT")
    if show_status:
        ctx.exit(service.show_status(ctx, directory, as_json))
    if detach:
        forwarded = (["--insecure"] if insecure else []) + (["--quiet"] if quiet else [])
        forwarded += ["--status-dir", os.path.abspath(status_dir)] if status_dir else []
        forwarded += _dashboard_forwarded(dashboard_at, dashboard_token)
        forwarded += ["--dashboard-read-only"] if dashboard_read_only else []
        service.detach(ctx, directory, workers, forwarded, as_json)
        return
    if as_json:
        raise UsageError("--json goes with --detach or --status (up in the foreground prints a log)")
    store = store_of(ctx, busy_timeout=POOL_BUSY_TIMEOUT)
    options: dict[str, Any] = {"insecure": insecure, "status_dir": _abs(status_dir)}
    paths = jobs.job_dirs([directory] if directory else [])
    if dashboard_at is not None:
        from queuectl.cli.dashboard import beside_up  # the web extra: only with --dashboard

        options["beside"] = [beside_up(ctx, dashboard_at, dashboard_token, dashboard_read_only)]
    try:
        code = run_up(store, paths, workers, options, quiet=quiet, burst=burst)
    finally:
        for path in paths:
            daemon.release(store, path)  # started by `up --detach`: its pid file goes with it
    ctx.exit(code)


def _dashboard_forwarded(address: str | None, token: str | None) -> list[str]:
    """`--dashboard ADDR` for the background up, checked here first; its token goes by the environment (not argv)."""
    if address is None:
        return []
    from queuectl.cli.dashboard import check_beside_up  # the dashboard's options: only with --dashboard

    check_beside_up(address, token)
    if token:
        os.environ[TOKEN_ENV] = token  # inherited by the background up, never shown in its command line
    return ["--dashboard", address]


def run_up(store: Store, paths: list[str], workers: int, options: dict[str, Any], *, quiet: bool, burst: bool) -> int:
    """Apply `paths`, then watch them (unless burst) while a pool of `workers` slots runs the jobs; the exit code."""
    with Supervisor(
        store, paths, workers, say=log_line, verbose=not quiet, burst=burst, owns_process=True, **options
    ) as supervisor:
        supervisor.run()
        if not burst:
            return 0
        outcome = supervisor.outcome()
        log_line(outcome.summary())
        return outcome.exit_code  # 1: a run ended dead or a manifest was refused (CI relies on it)
