"""Commands about the store as a whole: status, metrics, db and config."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from queuectl import config, json_views
from queuectl.cli import colour
from queuectl.cli.app import AliasedGroup, db_option, echo_json, json_option, store_of
from queuectl.durations import format_duration
from queuectl.errors import UsageError
from queuectl.services import overview as overviews
from queuectl.services.pools import PoolView

if TYPE_CHECKING:
    from queuectl.metrics import Detailed


@click.command()
@json_option
@db_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts per state, live pools, declared jobs (drift, manifest errors) and where the store is.

    \b
    Example:
      queuectl status --json
    """
    store = store_of(ctx)
    seen = overviews.overview(store)
    if as_json:
        echo_json(overviews.as_json(seen))
        return
    width = max(len("STATE"), *(len(state) for state in seen.counts))
    on = colour.wanted(click.get_text_stream("stdout"))
    click.echo(f"{'STATE':<{width}}  RUNS")
    for state, number in seen.counts.items():
        style = colour.STATES.get(state, {})
        click.echo(f"{colour.paint(f'{state:<{width}}', style, on)}  {number}")
    click.echo(_pools_line(seen.pools))
    click.echo(_scheduler_line(seen.scheduler, store.now()))
    if seen.scheduler.warning:
        click.echo(f"  warning: {seen.scheduler.warning}")
    if seen.jobs:
        click.echo(f"jobs: {seen.jobs} declared, {len(seen.drift)} drifted, {len(seen.broken)} with manifest errors")
    for name, reason in sorted(seen.drift.items()):
        click.echo(f"  drift: {name}: {reason} (run 'queuectl apply' or 'queuectl diff')")
    for name, error in sorted(seen.broken.items()):
        click.echo(f"  error: {name}: {error} (the last good version stays in force)")
    click.echo(f"store: {seen.location}")


def _pools_line(views: list[PoolView]) -> str:
    """`pools: 2 live (8 slots), 1 stopping, 1 dead`: live pools run and claim; the rest are named by state."""
    states = [v.state for v in views]
    slots = sum(v.worker.slots for v in views if v.state == "alive")
    others = [f"{states.count(state)} {state}" for state in ("stopping", "stale", "dead") if state in states]
    return ", ".join([f"pools: {states.count('alive')} live ({slots} slots)", *others])


def _scheduler_line(view: overviews.SchedulerView, now: float) -> str:
    """`scheduler: pool ID on HOST, last looked 4s ago`, or who held it last when nobody does now."""
    seat = view.seat
    if seat is None:
        return "scheduler: none running"
    who = f"pool {seat.pool_id}" if seat.pool_id else f"pid {seat.pid}"
    looked = "never" if seat.last_tick_at is None else f"{format_duration(max(0.0, now - seat.last_tick_at))} ago"
    if view.alive:
        return f"scheduler: {who} on {seat.host}, last looked {looked}"
    return f"scheduler: none running (the last was {who} on {seat.host}, which looked {looked})"


@click.command()
@click.option("--detailed", is_flag=True, help="Per job and overall: rates, duration spread, queue wait, utilisation.")
@click.option("--prometheus", is_flag=True, help="Print the Prometheus text exposition (what /metrics serves).")
@json_option
@db_option
@click.pass_context
def metrics(ctx: click.Context, detailed: bool, prometheus: bool, as_json: bool) -> None:
    """Counts, success rate, attempt durations and recent throughput.

    \b
    Example:
      queuectl metrics
      queuectl metrics --detailed --json
      queuectl metrics --prometheus
    """
    if prometheus and (detailed or as_json):
        raise UsageError("--prometheus prints the Prometheus text format: without --detailed or --json")
    store = store_of(ctx)
    if prometheus:
        from queuectl.services.prometheus import exposition  # prometheus_client: status needs none of it

        click.echo(exposition(store, store.now()).decode(), nl=False)
        return
    if detailed:
        from queuectl.services.metrics import detailed_metrics  # status shares this module: it needs none of it

        _detailed_metrics(detailed_metrics(store), as_json)
        return
    data = json_views.metrics_json(store.counts(), store.attempt_stats())
    if as_json:
        echo_json(data)
        return
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    grid = render.table(con, "METRIC", "VALUE")
    for state, number in data["counts"].items():
        grid.add_row(f"runs {state}", str(number))
    rate = data["success_rate"]
    grid.add_row("attempts", str(data["attempts"]))
    grid.add_row("success rate", "-" if rate is None else f"{rate * 100:.1f}%")
    grid.add_row("mean duration", format_duration(data["mean_duration"]))
    grid.add_row("p95 duration", format_duration(data["p95_duration"]))
    grid.add_row("completed, last hour", str(data["completed_last_hour"]))
    grid.add_row("throughput", f"{data['throughput_per_minute']:g} runs/min (last hour)")
    render.emit(con, grid)


def _detailed_metrics(found: Detailed, as_json: bool) -> None:
    if as_json:
        echo_json(json_views.detailed_metrics_json(found))
        return
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    ratio = found.utilisation
    busy = f"{format_duration(found.busy_slot_seconds)} busy of {format_duration(found.available_slot_seconds)}"
    con.print(f"worker utilisation, last hour: {'-' if ratio is None else f'{ratio * 100:.1f}%'} ({busy} slot time)")
    for n, part in enumerate(render.figures_view(con, found)):
        if n:
            con.print()  # a line between the blocks of a narrow terminal
        render.emit(con, part)


@click.group("db")
def db_group() -> None:
    """The store itself: its schema and where it is.

    \b
    Example:
      queuectl db info
    """


@db_group.command("migrate")
@json_option
@db_option
@click.pass_context
def db_migrate(ctx: click.Context, as_json: bool) -> None:
    """Create the store or bring its schema up to date (also done on first use).

    \b
    Example:
      queuectl db migrate --db postgresql://queue@db.example/queue
    """
    store = store_of(ctx)  # opening migrates
    if as_json:
        echo_json(json_views.store_json(store.engine, store.schema_version(), store.location))
        return
    click.echo(f"{store.engine} store at {store.location}: schema version {store.schema_version()}")


@db_group.command("info")
@json_option
@db_option
@click.pass_context
def db_info(ctx: click.Context, as_json: bool) -> None:
    """The engine, the schema version and the location (password masked).

    \b
    Example:
      queuectl db info --json
    """
    store = store_of(ctx)
    info = json_views.store_json(store.engine, store.schema_version(), store.location)
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        click.echo(f"{key + ':':16}{value}")


@click.group("config", cls=AliasedGroup, aliases={"list": "show"})
def config_group() -> None:
    """Show and change settings kept in the store.

    \b
    Example:
      queuectl config show
      queuectl config get job-timeout
      queuectl config set max-retries 5
    """


@config_group.command("show")
@json_option
@db_option
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Every setting with its value.

    \b
    Example:
      queuectl config show --json
    """
    stored = store_of(ctx).config()
    values = config.effective(stored)
    if as_json:
        echo_json({k: values[k] for k in config.SETTINGS})
        return
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    grid = render.table(con, "KEY", "VALUE", "", "MEANING", give="MEANING", give_lines=None)
    for key, setting in config.SETTINGS.items():
        grid.add_row(key, config.render_value(values[key]), "" if key in stored else "(default)", setting.help)
    render.emit(con, grid)


@config_group.command("get")
@click.argument("key", required=False)
@db_option
@click.pass_context
def config_get(ctx: click.Context, key: str | None) -> None:
    """Print one setting's value (every setting without KEY, as config show).

    \b
    Example:
      queuectl config get job-timeout
    """
    if key is None:
        ctx.invoke(config_show, as_json=False)
        return
    canonical = config.normalize_key(key)
    click.echo(config.render_value(config.effective(store_of(ctx).config())[canonical]))


@config_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@json_option
@db_option
@click.pass_context
def config_set(ctx: click.Context, key: str, value: str, as_json: bool) -> None:
    """Change a setting (dashes or underscores both work in KEY).

    \b
    Example:
      queuectl config set job-timeout 30m
    """
    canonical = config.normalize_key(key)
    parsed = config.parse_value(canonical, value)
    store = store_of(ctx)
    store.set_config(canonical, config.render_value(parsed))
    if as_json:
        echo_json(json_views.setting_json(canonical, config.effective(store.config())[canonical]))
        return
    click.echo(f"{canonical} = {config.render_value(parsed)}")
