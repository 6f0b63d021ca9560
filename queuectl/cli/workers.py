"""Commands about worker pools: worker start, worker stop, worker status."""

from __future__ import annotations

import click

from queuectl import json_views
from queuectl.cli.app import (
    POOL_BUSY_TIMEOUT,
    Duration,
    db_option,
    echo_json,
    json_option,
    log_line,
    store_of,
    workers_option,
)
from queuectl.errors import UsageError
from queuectl.services import pools
from queuectl.supervisor import Supervisor


@click.group()
def worker() -> None:
    """Run, stop and list worker pools.

    \b
    Example:
      queuectl worker start -w 4
      queuectl worker stop
    """


@worker.command("start")
@workers_option(1, "--count", "-c")
@click.option(
    "--burst",
    is_flag=True,
    help="Drain what is runnable (and its retries), then exit: 1 if a run ended dead, else 0.",
)
@click.option("--detach", is_flag=True, help="Run in the background; print its pid and log file.")
@click.option("--foreground", is_flag=True, help="Run in the foreground (the default; for scripts of other tools).")
@click.option("-q", "--quiet", is_flag=True, help="Print only start and stop lines.")
@click.option(
    "--no-scheduler", "no_scheduler", is_flag=True, help="Never schedule cron fires here (another pool or up does)."
)
@db_option
@click.pass_context
def worker_start(
    ctx: click.Context, workers: int, burst: bool, detach: bool, foreground: bool, quiet: bool, no_scheduler: bool
) -> None:
    """Run a pool of --workers slots in the foreground.

    The pools on a store elect one among themselves to turn cron fires into
    runs (as `up` does), so declared cron jobs fire wherever a pool runs.
    Ctrl-C or SIGTERM stops claiming and lets running commands finish (for at
    most config stop-grace seconds); a second signal kills them and returns
    their runs to the queue.

    \b
    Example:
      queuectl worker start --workers 4
      queuectl worker start --burst
    """
    if detach and foreground:
        raise UsageError("give --detach or --foreground, not both")
    store = store_of(ctx, busy_timeout=POOL_BUSY_TIMEOUT)
    if detach:
        started = pools.start_background(store, workers, burst, scheduling=not no_scheduler)
        said = "ran in the background and has already finished" if started.finished else "started in the background"
        click.echo(f"pool {said}: pid {started.pid}, log {started.log_path}")
        return
    with Supervisor(
        store, [], workers, say=log_line, verbose=not quiet, burst=burst, owns_process=True, scheduling=not no_scheduler
    ) as supervisor:
        supervisor.run()
    if burst:
        outcome = supervisor.outcome()
        log_line(outcome.summary())
        ctx.exit(outcome.exit_code)  # 1: a run ended dead (CI relies on it)


@worker.command("stop")
@click.option("--force", is_flag=True, help="Stop at once: kill running commands, return their runs to the queue.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the pools have exited.")
@click.option(
    "--timeout",
    "wait_for",
    type=Duration(max_seconds=86400),
    metavar="DURATION",
    help="How long to wait: seconds or 90s/5m/1h30m (default: stop-grace + 10s).",
)
@json_option
@db_option
@click.pass_context
def worker_stop(ctx: click.Context, force: bool, wait: bool, wait_for: float | None, as_json: bool) -> None:
    """Stop every live pool of this store (gracefully unless --force).

    \b
    Example:
      queuectl worker stop --timeout 5m
    """
    store = store_of(ctx)
    stopping = pools.stop(store, force, lambda line: click.echo(line, err=True))  # diagnostics: stderr
    if as_json:
        waited = wait and bool(stopping.local)
        if waited:
            pools.wait_stopped(stopping.local, pools.stop_wait(store) if wait_for is None else wait_for)
        echo_json(json_views.stopping_json(stopping.local, stopping.remote, stopping.stale, waited))
        return
    if not stopping.local and not stopping.remote:
        stale = f" ({stopping.stale} stale pool(s) elsewhere asked to stop)" if stopping.stale else ""
        click.echo("no pools are running" + stale)
        return
    for w in stopping.remote:
        click.echo(f"pool {w.id} on {w.host}: asked to stop through the store (it checks at its next heartbeat)")
    click.echo(f"stopping {len(stopping.local)} pool(s) on this host" + (" at once" if force else ""))
    if not wait or not stopping.local:
        return
    pools.wait_stopped(stopping.local, pools.stop_wait(store) if wait_for is None else wait_for)
    click.echo("all pools stopped")


@worker.command("status")
@json_option
@db_option
@click.pass_context
def worker_status(ctx: click.Context, as_json: bool) -> None:
    """List pools with pid, host, slots, current runs and last heartbeat.

    \b
    Example:
      queuectl worker status --json
    """
    store = store_of(ctx)
    views = pools.pools(store)
    if as_json:
        echo_json(pools.as_json(views))
        return
    from queuectl.cli import render  # rich: only for a terminal

    con = render.console()
    if not any(pools.is_running(v.state) for v in views):
        con.print("no pools are running")
    if views:
        render.emit(con, render.workers_table(con, views, store.now()))
