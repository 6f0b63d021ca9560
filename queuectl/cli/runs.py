"""Commands about runs: enqueue, run, list, show, logs, clear and the dead-letter queue."""

from __future__ import annotations

import itertools
import sys
from typing import Any

import click

from queuectl import enqueue as build
from queuectl import follow as tail
from queuectl import json_views, listing
from queuectl.cli.app import DURATION, db_option, echo_json, json_option, store_of, yes_option
from queuectl.errors import LISTS_HINT, NotFoundError, UsageError
from queuectl.fields import MAX_RETRIES
from queuectl.model import STATE_ALIASES, STATES, NewRun, RunState, check_name, parse_state
from queuectl.runner import HOST
from queuectl.services import runs
from queuectl.store.contract import Store


class StateName(click.Choice):  # type: ignore[type-arg]  # generic from click 8.2 on; pyproject allows 8.1
    """A state option: any case, `processing` for running (model.parse_state); the value is the state's name."""

    name = "state"

    def __init__(self) -> None:
        # the aliases too: the shell and click's completion offer `processing` as well
        super().__init__((*STATES, *STATE_ALIASES), case_sensitive=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return parse_state(value).value if isinstance(value, str) else str(super().convert(value, param, ctx))

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:
        return "[" + "|".join((*STATES, *STATE_ALIASES)) + "]"


STATE = StateName()
RETRIES_HELP = "Retries after the first attempt (max_retries=2 means up to 3 attempts); default: config max-retries."
TERMINAL_PAGE = 50  # runs `list` shows on a terminal without --limit
TABLE_CHUNK = 500  # runs per rich table when a terminal asked for more


def run_options(func: Any) -> Any:
    options = [
        click.option("-p", "--priority", metavar="1-10|high|medium|low", help="Higher runs first (default 5)."),
        click.option(
            "--timeout",
            type=DURATION,
            metavar="DURATION",
            help="Seconds or 90s/5m/1h30m; 0 = none (default: config job-timeout).",
        ),
        click.option("--retries", "--max-retries", "retries", metavar="N", help=RETRIES_HELP),
        click.option(
            "--backoff-base", metavar="B", help="Retry n waits B ** n seconds (default: config backoff-base)."
        ),
        click.option(
            "--run-at",
            metavar="TIME",
            help="Not before this ISO 8601 time (e.g. 2026-12-01T02:00:00Z), or from now (+30m).",
        ),
        click.option("--delay", type=DURATION, metavar="DURATION", help="Not before this long from now (e.g. 30m)."),
        click.option("--cwd", metavar="DIR", help="Absolute directory to run the command in."),
        click.option("--env", "env_pairs", metavar="NAME=VALUE", multiple=True, help="Extra environment (repeatable)."),
        click.option(
            "--keep-children",
            is_flag=True,
            default=None,
            help="Let what the command starts outlive its run (daemons); by default it is killed with the run.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _flag_fields(**flags: Any) -> dict[str, Any]:
    """The fields of a run the flags give, named as in the JSON form."""
    fields: dict[str, Any] = {}
    for name in ("priority", "timeout", "backoff_base", "run_at", "delay", "cwd", "command", "id"):
        if flags.get(name) is not None:
            fields[name] = flags[name]
    if flags.get("retries") is not None:
        fields["max_retries"] = flags["retries"]
    if flags.get("keep_children"):
        fields["keep_children"] = True
    if flags.get("env_pairs"):
        env = {}
        for pair in flags["env_pairs"]:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise UsageError(f"invalid --env {pair!r}: expected NAME=VALUE")
            env[name] = value
        fields["env"] = env
    return fields


@click.command()
@click.argument("spec", required=False, metavar="[JSON]")
@click.option("--id", "run_id", metavar="ID", help="Run id (letters, digits, . _ -); generated if absent.")
@click.option("-c", "--command", metavar="CMD", help="Shell command to run (with /bin/sh -c).")
@click.option("--file", "file", type=click.File("r"), help="JSON Lines file (- for stdin): all or none.")
@run_options
@json_option
@db_option
@click.pass_context
def enqueue(
    ctx: click.Context, /, spec: str | None, run_id: str | None, file: Any, as_json: bool, **flags: Any
) -> None:
    """Add a run: from JSON, from flags, or many from a JSON Lines file.

    \b
    Example:
      queuectl enqueue '{"id":"job1","command":"sleep 2","max_retries":3}'
      queuectl enqueue --id job2 --command "echo hi" --priority 8 --retries 3
      queuectl enqueue --file jobs.jsonl
    """
    fields = _flag_fields(id=run_id, **flags)
    store = store_of(ctx)
    if file is not None:
        if spec is not None:
            raise UsageError("--file takes the runs from the file: give no JSON or --command beside it")
        source = _name(file)
        lines = build.bounded_lines(file, source)  # a huge line is refused before it is read whole
        _say_enqueued(runs.add_lines(store, lines, source, fields), as_json)
        return
    base = build.parse_json(spec) if spec is not None else {}
    if spec is None and "command" not in fields:
        raise UsageError("nothing to enqueue: give a JSON object, --command CMD, or --file FILE")
    _say_enqueued([runs.add_one(store, {**base, **fields})], as_json)


def _name(file: Any) -> str:
    name = getattr(file, "name", "-")
    return "stdin" if name in ("-", "<stdin>") else str(name)


def _say_enqueued(added: list[NewRun], as_json: bool) -> None:
    if as_json:
        echo_json(json_views.enqueued_json([r.id for r in added]))
    elif len(added) == 1:
        click.echo(added[0].id)
    else:
        click.echo(f"enqueued {len(added)} runs")


@click.command("run")
@click.argument("command")
@click.option("--id", "run_id", metavar="ID", help="Run id; generated if absent.")
@run_options
@json_option
@db_option
@click.pass_context
def run_cmd(ctx: click.Context, /, command: str, run_id: str | None, as_json: bool, **flags: Any) -> None:
    """Enqueue COMMAND as a new run and print its id.

    \b
    Example:
      queuectl run "make backup" --retries 3 --timeout 10m
    """
    run = runs.add_command(store_of(ctx), _flag_fields(id=run_id, command=command, **flags))
    _say_enqueued([run], as_json)


@click.command("list")
@click.option("-s", "--state", type=STATE, help="Only runs in this state.")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), help="At most this many (oldest first).")
@click.option("--job", metavar="NAME", help="Only the runs of job NAME.")
@click.option("--jobs", "show_jobs", is_flag=True, help="List declared jobs: schedule in words, next fire, last run.")
@click.option("--scheduled", is_flag=True, help="Cron fires and delayed runs ahead (same as 'queuectl schedule').")
@json_option
@db_option
@click.pass_context
def list_cmd(
    ctx: click.Context,
    state: str | None,
    limit: int | None,
    job: str | None,
    show_jobs: bool,
    scheduled: bool,
    as_json: bool,
) -> None:
    """List runs, oldest first (or declared jobs with --jobs).

    \b
    Example:
      queuectl list --state failed -n 20
      queuectl list --job nightly-backup
      queuectl list --jobs
    """
    if scheduled:
        from queuectl.cli.schedules import schedule_cmd  # croniter: only for --scheduled

        ctx.invoke(schedule_cmd, as_json=as_json, limit=limit)
        return
    store = store_of(ctx)
    if show_jobs:
        _list_jobs(store, limit, as_json)
        return
    out = click.get_text_stream("stdout")
    if as_json:
        json_views.write_array(out.write, (json_views.run_json(r) for r in runs.listed(store, state, limit, job)))
        return
    if not out.isatty():
        if not listing.write_run_rows(out.write, runs.listed(store, state, limit, job), store.now()):
            out.write(_none(state, job) + "\n")
        return
    _runs_on_terminal(store, state, limit, job)


def _none(state: str | None, job: str | None) -> str:
    return f"no {state + ' ' if state else ''}runs{f' of job {job}' if job else ''}"


def _list_jobs(store: Store, limit: int | None, as_json: bool) -> None:
    from queuectl.cli import render  # rich: only for a terminal
    from queuectl.services import jobs  # the manifests' parser: only for declared jobs

    statuses = jobs.statuses(store, limit)
    if as_json:
        echo_json(jobs.all_json(statuses))
        return
    con = render.console()
    if statuses:
        render.emit(con, render.jobs_table(con, [s.status for s in statuses]))
    else:
        con.print("no jobs (apply a jobs directory)")


def _runs_on_terminal(store: Store, state: str | None, limit: int | None, job: str | None = None) -> None:
    """A rich table: one page and how many more there are, or --limit runs a chunk at a time."""
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    found = runs.listed(store, state, limit if limit is not None else TERMINAL_PAGE + 1, job)
    page = list(itertools.islice(found, TABLE_CHUNK if limit is not None else TERMINAL_PAGE))
    if not page:
        con.print(_none(state, job))
        return
    due = listing.shows_due(page, store.now())
    headers = listing.run_headers(due)
    widths = [max(len(h), *(len(listing.run_cells(r, due)[i]) for r in page)) for i, h in enumerate(headers)]
    render.emit(con, render.runs_table(con, page, widths, due))
    if limit is not None:
        while chunk := list(itertools.islice(found, TABLE_CHUNK)):
            grid = render.runs_table(con, chunk, widths, due)
            grid.show_header = False
            render.emit(con, grid)
        return
    if next(found, None) is not None:
        counts = store.counts() if job is None else store.job_counts().get(job, {})
        more = (counts.get(state, 0) if state else sum(counts.values())) - len(page)
        con.print(f"… {more:,} more: use --limit N or pipe the output", style="dim")


@click.command()
@click.argument("run_id", metavar="ID")
@json_option
@db_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Every field of a run (or of a declared job): attempts, output tail, origin.

    \b
    Example:
      queuectl show job1
    """
    store = store_of(ctx)
    if as_json:
        echo_json(runs.show_json(store, run_id))
        return
    run = store.get_run(check_name(run_id))
    if run is None:
        if store.get_job(run_id) is None:
            raise NotFoundError(f"no run or job named {run_id!r} {LISTS_HINT}")
        _show_job(store, run_id)
        return
    attempts = store.attempts(run_id)
    from rich.text import Text  # rich: only for a terminal

    from queuectl.cli import render

    con = render.console()
    render.emit(con, render.fields_table(con, render.show_lines(run, attempts)))
    if attempts:
        con.print("attempts:")
        render.emit(con, render.attempts_table(con, attempts))
    if run.output_tail:
        con.print("output (tail):")
        con.print(Text(run.output_tail.rstrip("\n")))


def _show_job(store: Store, name: str) -> None:
    from rich.text import Text

    from queuectl.cli import render  # rich: only for a terminal
    from queuectl.services import jobs  # the manifests' parser: only for declared jobs

    view = jobs.status(store, name)
    con = render.console()
    render.emit(con, render.fields_table(con, render.job_lines(view.status, view.drift, view.settings)))
    run = view.status.last_run
    if run is not None and run.output_tail:
        con.print("output of the last run (tail):")
        con.print(Text(run.output_tail.rstrip("\n")))


@click.command()
@click.argument("run_id", metavar="ID|JOB")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the run is over.")
@click.option("-a", "--attempt", type=click.IntRange(min=1), help="Attempt number (default: the latest).")
@db_option
@click.pass_context
def logs(ctx: click.Context, run_id: str, follow: bool, attempt: int | None) -> None:
    """Print a run's output (its latest attempt's log), or the output of a job's latest run.

    A run id wins over a job of the same name.

    \b
    Example:
      queuectl logs job1 -f
      queuectl logs nightly-backup
    """
    store = store_of(ctx)
    tail.print_logs(store, runs.find_for_logs(store, run_id, follow), attempt, follow, HOST)


@click.group()
def dlq() -> None:
    """The dead-letter queue: runs that used up their retries.

    \b
    Example:
      queuectl dlq list
      queuectl dlq retry job1
    """


@dlq.command("list")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), help="At most this many.")
@json_option
@db_option
@click.pass_context
def dlq_list(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List dead runs, each with its last error.

    \b
    Example:
      queuectl dlq list -n 10 --json
    """
    if as_json:
        ctx.invoke(list_cmd, state="dead", limit=limit, as_json=as_json)
        return
    dead = store_of(ctx).iter_runs(RunState.DEAD.value, limit)
    out = click.get_text_stream("stdout")
    if not out.isatty():
        if not listing.write_rows(out.write, (listing.dead_cells(r) for r in dead), listing.DEAD_HEADERS):
            out.write("no dead runs\n")
        return
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    page = list(itertools.islice(dead, TABLE_CHUNK if limit is not None else TERMINAL_PAGE))
    if not page:
        con.print("no dead runs")
        return
    render.emit(con, render.dead_table(con, page))


@dlq.command("retry")
@click.argument("run_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead run.")
@click.option("--reset-attempts", is_flag=True, help="Start counting attempts from zero again.")
@click.option(
    "--retries",
    "--max-retries",
    "retries",
    type=click.IntRange(int(MAX_RETRIES.low), int(MAX_RETRIES.high)),
    metavar="N",
    help="Retry up to N times if the next attempt fails (default: that attempt only).",
)
@click.option("--timeout", type=DURATION, metavar="DURATION", help="A new timeout for the retried runs; 0 = none.")
@click.option("--job", metavar="NAME", help="With --all: only the dead runs of job NAME.")
@json_option
@db_option
@click.pass_context
def dlq_retry(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    retry_all: bool,
    reset_attempts: bool,
    retries: int | None,
    timeout: float | None,
    job: str | None,
    as_json: bool,
) -> None:
    """Put dead runs back in the queue (one more attempt unless --retries or --reset-attempts).

    \b
    Example:
      queuectl dlq retry job1 job2
      queuectl dlq retry job1 --timeout 5m --retries 2
      queuectl dlq retry --all --reset-attempts
      queuectl dlq retry --all --job nightly-backup
    """
    ids = _dead_selection(run_ids, retry_all, job, "retry")
    retried = runs.retry_dead(store_of(ctx), ids, reset_attempts, retries, timeout, job=job)
    if as_json:
        echo_json(json_views.retried_json(retried))
        return
    click.echo(f"retrying {len(retried)} run(s)" + (": " + ", ".join(retried) if len(retried) <= 10 else ""))


@dlq.command("clear")
@click.argument("run_ids", nargs=-1, metavar="[ID]...")
@click.option("--job", metavar="NAME", help="Only the dead runs of job NAME.")
@yes_option
@json_option
@db_option
@click.pass_context
def dlq_clear(ctx: click.Context, run_ids: tuple[str, ...], job: str | None, yes: bool, as_json: bool) -> None:
    """Delete dead runs (and their logs): every one, those of one job, or those named.

    \b
    Example:
      queuectl dlq clear -y
      queuectl dlq clear job1 job2
      queuectl dlq clear --job nightly-backup -y
    """
    if not run_ids and job is None:
        ctx.invoke(clear, state="dead", yes=yes, as_json=as_json)
        return
    ids = _dead_selection(run_ids, not run_ids, job, "delete")
    if ids is None:
        _confirm(f"all dead runs of job {job}", yes)
    deleted = runs.delete_dead(store_of(ctx), ids, job=job)
    if as_json:
        echo_json(json_views.deleted_json(deleted))
        return
    click.echo(f"deleted {len(deleted)} run(s)")


def _dead_selection(run_ids: tuple[str, ...], every: bool, job: str | None, verb: str) -> list[str] | None:
    """The dead runs a dlq command names: ids, or all of them (None), maybe of one job."""
    if bool(run_ids) == every:
        raise UsageError(f"give the ids of dead runs to {verb}, or --all")
    if job is not None and run_ids:
        raise UsageError("--job goes with all the dead runs, not with ids")
    return None if every else list(run_ids)


def _confirm(what: str, yes: bool) -> None:
    """Ask before deleting `what` (refused without --yes off a terminal)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"refusing to delete {what} without --yes")
    click.confirm(f"Delete {what}?", abort=True)


@click.command()
@click.argument("run_ids", nargs=-1, required=True, metavar="ID...")
@json_option
@db_option
@click.pass_context
def cancel(ctx: click.Context, run_ids: tuple[str, ...], as_json: bool) -> None:
    """Cancel runs: a waiting one is not run, a running one is stopped.

    A running run's pool, on whatever host, stops its process group (SIGTERM,
    then SIGKILL after config kill-grace) and records it cancelled. A finished
    run is left alone.

    \b
    Example:
      queuectl cancel run-0a1b2c3d4e5f
    """
    done = runs.cancel(store_of(ctx), run_ids)
    if as_json:
        echo_json(json_views.cancelled_json(done.cancelled, done.stopping, done.finished))
        return
    for run_id in done.cancelled:
        click.echo(f"cancelled {run_id}")
    for run_id in done.stopping:
        click.echo(f"stopping {run_id}: its pool stops its process group; it ends cancelled")
    for run_id, state in done.finished.items():
        click.echo(f"{run_id} is {state} already: left alone")


@click.command()
@click.option("-s", "--state", type=STATE, help="Only runs in this state (default: all but running).")
@yes_option
@json_option
@db_option
@click.pass_context
def clear(ctx: click.Context, state: str | None, yes: bool, as_json: bool) -> None:
    """Delete runs and their logs (running runs are never deleted).

    \b
    Example:
      queuectl clear --state completed -y
    """
    if state == "running":
        raise UsageError("running runs cannot be cleared: stop their pool first")
    _confirm(f"all {state} runs" if state else "all runs that are not running", yes)
    deleted = runs.delete(store_of(ctx), state)
    if as_json:
        echo_json(json_views.deleted_json(deleted))
        return
    click.echo(f"deleted {len(deleted)} run(s)")
