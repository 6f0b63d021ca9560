"""Commands about a declared job's schedule: trigger, suspend, resume, plan and schedule."""

from __future__ import annotations

from collections.abc import Mapping

import click

from queuectl import json_views
from queuectl.cli.app import db_option, echo_json, json_option, store_of
from queuectl.durations import fire_time, format_time, iso_utc, zone_time
from queuectl.listing import one_line, write_rows
from queuectl.model import Run
from queuectl.services import jobs, schedules


@click.command()
@click.argument("name")
@json_option
@db_option
@click.pass_context
def trigger(ctx: click.Context, name: str, as_json: bool) -> None:
    """Run job NAME now, outside its schedule.

    \b
    Example:
      queuectl trigger nightly-backup
    """
    run = jobs.trigger(store_of(ctx), name)
    if as_json:
        echo_json(json_views.triggered_json(run.id))
    else:
        click.echo(f"triggered {name}: run {run.id}")


@click.command()
@click.argument("name")
@json_option
@db_option
@click.pass_context
def suspend(ctx: click.Context, name: str, as_json: bool) -> None:
    """Stop job NAME's schedule (its runs not yet started are cancelled; a running one finishes).

    \b
    Example:
      queuectl suspend nightly-backup
    """
    done = jobs.suspend(store_of(ctx), name)
    if as_json:
        echo_json(json_views.suspended_json(name, done.cancelled, done.already))
    elif done.already:
        click.echo(f"{name} is already suspended (see 'queuectl resume {name}')")
    else:
        cancelled = done.cancelled
        click.echo(f"suspended {name}" + (f"; {len(cancelled)} run(s) not yet started cancelled" if cancelled else ""))


@click.command()
@click.argument("name")
@json_option
@db_option
@click.pass_context
def resume(ctx: click.Context, name: str, as_json: bool) -> None:
    """Restart job NAME's schedule (fires missed while suspended are skipped).

    \b
    Example:
      queuectl resume nightly-backup
    """
    jobs.resume(store_of(ctx), name)
    if as_json:
        echo_json(json_views.resumed_json(name))
    else:
        click.echo(f"resumed {name}")


@click.command("plan")
@click.argument("name")
@click.option(
    "-n", "--count", "limit", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many fires."
)
@json_option
@db_option
@click.pass_context
def plan_cmd(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """The next fire times of job NAME, in its zone and in UTC, with DST and overlap warnings.

    A suspended job fires nothing: plan says so, and lists the fires it would have once resumed.

    \b
    Example:
      queuectl plan nightly-backup -n 5
    """
    store = store_of(ctx)
    fires = schedules.plan(store, name, limit, store.now())
    pairs = list(zip(fires.times, fires.notes, strict=True))
    if as_json:
        rows = [{"local": zone_time(t, fires.zone), "utc": iso_utc(t), "note": note} for t, note in pairs]
        plan = {"job": name, "schedule": fires.words, "suspended": fires.suspended}
        echo_json({**plan, "fires": rows, "warnings": fires.warnings})
        return
    click.echo(f"{name}: {fires.words}")
    if fires.suspended:
        click.echo(f"suspended: nothing fires until 'queuectl resume {name}'; resumed now, it would fire at:")
    for t, note in pairs:
        click.echo(f"  {fire_time(t, fires.zone)}" + (f"   ({note})" if note else ""))
    for warning in fires.warnings:
        click.echo(f"warning: {warning}")


@click.command("schedule")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), help="At most this many (soonest first).")
@json_option
@db_option
@click.pass_context
def schedule_cmd(ctx: click.Context, as_json: bool, limit: int | None = None) -> None:
    """Cron fires and delayed runs ahead, soonest first.

    Each cron job's next fire, and each run not yet due (a --delay, --run-at or a job's run_at);
    suspended jobs last, marked suspended.

    \b
    Example:
      queuectl schedule --json
      queuectl schedule -n 20
    """
    store = store_of(ctx)
    rows = schedules.ahead(store, store.now(), limit)
    if as_json:
        echo_json([_row_json(r) for r in rows])
        return
    if not rows:
        click.echo("no scheduled jobs or runs")
        return
    write_rows(click.get_text_stream("stdout").write, map(_row_cells, rows), ("NEXT", "JOB OR RUN", "WHAT"))


def _row_cells(row: schedules.NextFire | Run) -> tuple[str, str, str]:
    """A line of `schedule`: when, the job's name or the run's id, and the schedule in words or what runs."""
    if isinstance(row, Run):
        return format_time(row.run_at), row.id, f"run of job {row.job}" if row.job else f"run: {one_line(row.command)}"
    when = "suspended" if row.suspended else fire_time(row.at, row.zone) if row.at is not None else "never"
    return when, row.job, row.words


def _row_json(row: schedules.NextFire | Run) -> Mapping[str, object]:
    if isinstance(row, Run):
        return json_views.scheduled_run_json(row)
    return json_views.schedule_row_json(row.job, row.words, iso_utc(row.at), row.suspended)
