"""`up` as a background service: `up --detach`, `up --status`, `down`, `service status`, and the other
tool's names for them, `scheduler start|stop|status|logs`."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import click

from queuectl import config, json_views
from queuectl.cli.app import Context, Duration, db_option, echo_json, json_option, store_of, workers_option
from queuectl.durations import format_time
from queuectl.errors import EXIT_FAILURE, NotFoundError, QueueError, StoreError
from queuectl.model import Service
from queuectl.paths import default_location
from queuectl.services import daemon, pools, systemd
from queuectl.services.jobs import DEFAULT_DIR, job_dirs
from queuectl.store.contract import Store

NOTHING_RUNS = "no background up runs on this store"


def _store_if_any(ctx: click.Context) -> Store | None:
    """The store, never created: where there is none, no service can be serving it."""
    try:
        return ctx.find_object(Context).store(create=False)  # type: ignore[union-attr]
    except NotFoundError:
        return None


def _store_or_location(ctx: click.Context) -> Store | str | None:
    """The store (None where there is none); its location when it cannot be opened (a server down), said in a
    warning line: the background ups are found by their pid files all the same."""
    try:
        return _store_if_any(ctx)
    except StoreError as exc:
        click.echo(f"warning: {exc.message} (background ups found by their pid files)", err=True)
        return ctx.find_object(Context).db or default_location()  # type: ignore[union-attr]


def _say_stale(stale: list[Service]) -> None:
    for s in stale:
        click.echo(f"removed a stale pid file: up (pid {s.pid}) for {s.directory} is no longer running", err=True)


def detach(ctx: click.Context, directory: str | None, workers: int, options: list[str], as_json: bool) -> None:
    """`up DIR --detach`: start it in the background, return once it serves; print one line."""
    path = job_dirs([directory] if directory else [])[0]
    store = store_of(ctx)
    service = daemon.start(store, path, workers, options)
    for problem in daemon.refused(service):  # said as a foreground up says it: the others are served
        click.echo(f"warning: not applied: {problem} (the others are served; saving a fix applies it)", err=True)
    if as_json:  # with the pool it registered, as `up --status --json` shows it
        views, _ = daemon.status(store, service.directory)
        mine = [(p.worker, p.state) for v in views if v.service.pid == service.pid for p in v.pools]
        echo_json(json_views.service_json(service, mine))
        return
    click.echo(
        f"up started in the background: pid {service.pid}, log {service.log_path}, jobs directory {service.directory}"
    )


def show_status(ctx: click.Context, directory: str | None, as_json: bool) -> int:
    """`up --status`: the background ups of this store (of DIRECTORY only, when given); exit 1 when none runs."""
    store = _store_or_location(ctx)
    views, stale = daemon.status(store, directory) if store is not None else ([], [])
    if as_json:
        found = [json_views.service_json(v.service, [(p.worker, p.state) for p in v.pools]) for v in views]
        echo_json(json_views.services_json(found, stale))
    else:
        _say_stale(stale)
        if not views:
            click.echo(NOTHING_RUNS + (f" for {daemon.named(directory)}" if directory else ""))
        for view in views:
            _print_view(view, readable=not isinstance(store, str))
    return 0 if views else EXIT_FAILURE


def _print_view(view: daemon.ServiceView, readable: bool) -> None:
    s = view.service
    click.echo(f"up is running: pid {s.pid}, since {format_time(s.started_at)}")
    click.echo(f"  jobs directory  {s.directory}")
    click.echo(f"  store           {s.store}")
    click.echo(f"  log             {s.log_path}")
    for p in view.pools:
        w = p.worker
        runs = f": {', '.join(w.running)}" if w.running else ""
        click.echo(f"  pool            {w.id} ({p.state}): {w.slots} slot(s), {len(w.running)} run(s) in flight{runs}")
    if not view.pools:
        said = "none registered (starting or stopping)" if readable else "unknown: the store cannot be read"
        click.echo(f"  pool            {said}")


def stop_services(
    ctx: click.Context, directory: str | None, force: bool, wait: bool, wait_for: float | None, as_json: bool
) -> None:
    """`down`: stop the background ups of this store (of DIRECTORY only, when given)."""
    store = _store_or_location(ctx)  # a server down: its ups are stopped all the same
    found = daemon.stop(store, directory, force) if store is not None else daemon.Found([], [])
    waited = wait and bool(found.running)
    if waited:
        if not as_json:
            click.echo(_stopping_line(found.running, force))
        daemon.wait_stopped(found.running, _default_wait(store) if wait_for is None else wait_for)
    if as_json:
        echo_json(json_views.down_json(found.running, found.stale, waited))
        return
    _say_stale(found.stale)
    if not found.running:
        click.echo(NOTHING_RUNS)  # exit 0: what `down` was asked for holds (nothing runs)
    elif waited:
        click.echo("stopped")
    else:
        click.echo(_stopping_line(found.running, force) + " (not waiting: 'queuectl up --status' shows when it ends)")


def _default_wait(store: Store | str | None) -> float:
    """`worker stop`'s wait (the store's stop-grace and a margin); the default stop-grace's for a store not open."""
    if store is None or isinstance(store, str):
        return float(config.effective({})["stop-grace"]) + 10
    return pools.stop_wait(store)


def _stopping_line(services: list[Service], force: bool) -> str:
    pids = ", ".join(str(s.pid) for s in services)
    how = (
        "at once: running commands are killed, their runs go back to the queue" if force else "running commands finish"
    )
    return f"stopping up (pid {pids}): {how}"


force_option = click.option(
    "--force", is_flag=True, help="Stop at once: kill running commands, return their runs to the queue."
)
wait_option = click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until it has exited.")
timeout_option = click.option(
    "--timeout",
    "wait_for",
    type=Duration(max_seconds=86400),
    metavar="DURATION",
    help="How long to wait: seconds or 90s/5m/1h30m (default: stop-grace + 10s).",
)
directory_argument = click.argument("directory", required=False, type=click.Path())


def stop_options(command: Callable[..., None]) -> Callable[..., None]:
    """`down`'s arguments and options, shared with `scheduler stop` (the same operation)."""
    for option in (click.pass_context, db_option, json_option, timeout_option, wait_option, force_option):
        command = option(command)
    return directory_argument(command)


@click.command()
@stop_options
def down(
    ctx: click.Context, directory: str | None, force: bool, wait: bool, wait_for: float | None, as_json: bool
) -> None:
    """Stop the background up of this store (`up --detach`), gracefully unless --force.

    Running commands finish (within config stop-grace); with --force they are
    killed and their runs go back to the queue (a `down --force` after a
    `down` stops at once). With DIRECTORY, only that directory's up. Exit 0
    when nothing runs (it says so): `down` is safe in a script's teardown.

    \b
    Example:
      queuectl down
      queuectl down --force --no-wait
    """
    stop_services(ctx, directory, force, wait, wait_for, as_json)


@click.group("service")
def service_group() -> None:
    """The background up as a service: `service status`, and `service install|uninstall` of a systemd unit.

    \b
    Example:
      queuectl service install --user jobs.d
      queuectl service status --json
    """


@service_group.command("status")
@directory_argument
@json_option
@db_option
@click.pass_context
def service_status(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Whether a background up runs: as `up --status`.

    Since when, its pid, its pools (slots, runs in flight) and its jobs
    directory; of DIRECTORY's up only, when given. Exit 0 when one runs, 1
    when none does.

    \b
    Example:
      queuectl service status
    """
    ctx.exit(show_status(ctx, directory, as_json))


@click.group()
def scheduler() -> None:
    """The background up under the other queuectl tool's names: start, stop, status, logs.

    \b
    Example:
      queuectl scheduler start --workers 2
      queuectl scheduler logs -f
    """


@scheduler.command("start")
@directory_argument
@workers_option(2)
@json_option
@db_option
@click.pass_context
def scheduler_start(ctx: click.Context, directory: str | None, workers: int, as_json: bool) -> None:
    """Start up in the background: `up DIRECTORY --detach`.

    DIRECTORY is jobs.d by default, as for up; returns once it serves.

    \b
    Example:
      queuectl scheduler start --workers 2 jobs.d
    """
    detach(ctx, directory, workers, [], as_json)


@scheduler.command("stop")
@stop_options
def scheduler_stop(
    ctx: click.Context, directory: str | None, force: bool, wait: bool, wait_for: float | None, as_json: bool
) -> None:
    """Stop the background up, gracefully unless --force: `down`.

    \b
    Example:
      queuectl scheduler stop
    """
    stop_services(ctx, directory, force, wait, wait_for, as_json)


@scheduler.command("status")
@directory_argument
@json_option
@db_option
@click.pass_context
def scheduler_status(ctx: click.Context, directory: str | None, as_json: bool) -> None:
    """Whether the background up runs: `up --status`.

    Since when, its pid, its pools and its jobs directory. Exit 0 when one
    runs, 1 when none does.

    \b
    Example:
      queuectl scheduler status --json
    """
    ctx.exit(show_status(ctx, directory, as_json))


@scheduler.command("logs")
@directory_argument
@click.option("-f", "--follow", is_flag=True, help="Keep printing what it logs until it exits.")
@click.option("-n", "--limit", type=click.IntRange(0, 10**9), help="Only the last N lines.")
@db_option
@click.pass_context
def scheduler_logs(ctx: click.Context, directory: str | None, follow: bool, limit: int | None) -> None:
    """Print the background up's log; -f follows it.

    The log of DIRECTORY's up, else of the one running on this store, else of
    ./jobs.d's (also after it stopped). -f prints what it logs until it exits.

    \b
    Example:
      queuectl scheduler logs -f -n 50
    """
    store = _store_if_any(ctx)
    if store is None:
        raise QueueError("no store here, so no background up has run on it: see 'queuectl scheduler start --help'")
    path, service = daemon.log_of(store, directory)
    data, end = daemon.tail(path, limit)
    out = sys.stdout.buffer
    out.write(data)
    out.flush()
    if follow:

        def write(chunk: bytes) -> None:
            out.write(chunk)
            out.flush()

        daemon.follow(path, service, end, write)


user_option = click.option("--user", is_flag=True, help="A user unit (systemctl --user), in ~/.config/systemd/user.")


def _systemctl(user: bool) -> str:
    return "systemctl --user" if user else "systemctl"


def _graces(ctx: click.Context) -> tuple[float, float]:
    """The store's stop-grace and kill-grace; the defaults where there is no store yet (or it cannot be read)."""
    try:
        store = _store_if_any(ctx)
        stored = store.config() if store is not None else {}
    except StoreError as exc:
        click.echo(f"warning: {exc.message} (the default stop-grace and kill-grace are used)", err=True)
        stored = {}
    values = config.effective(stored)
    return values["stop-grace"], values["kill-grace"]


@service_group.command("install")
@click.argument("directory", required=False, default=DEFAULT_DIR, type=click.Path())
@user_option
@click.option("--print", "show", is_flag=True, help="Print the unit; write nothing.")
@click.option("--force", is_flag=True, help="Replace a unit of the same name with other content.")
@json_option
@db_option
@click.pass_context
def service_install(ctx: click.Context, directory: str, user: bool, show: bool, force: bool, as_json: bool) -> None:
    """Write a systemd unit that runs `queuectl up DIRECTORY` (default jobs.d).

    The unit is queuectl-NAME.service, NAME the directory's last component
    (characters outside A-Z a-z 0-9 _ . - become -), in ~/.config/systemd/user
    with --user, else /etc/systemd/system ($QUEUECTL_SYSTEMD_DIR overrides
    both). It restarts up on failure and gives it stop-grace + kill-grace
    (+15s) to stop; a store given (--db, $QUEUECTL_DB) goes in
    queuectl-NAME.env beside it, readable by its owner only. systemctl is not
    called: the commands to run next are printed.

    \b
    Example:
      queuectl service install --user jobs.d
      queuectl service install jobs.d --print
    """
    path = systemd.jobs_directory(directory)
    where = systemd.units_dir(user)
    name = systemd.unit_name(path)
    db = ctx.find_object(Context).db  # type: ignore[union-attr]
    db = systemd.store_for_unit(db) if db else None
    stop_grace, kill_grace = _graces(ctx)
    env_file = systemd.env_path(where, name) if db else None
    unit = systemd.UnitInputs(name, path, systemd.queuectl_command(), stop_grace, kill_grace, env_file, user)
    if show:
        text = systemd.unit_text(unit)
        if as_json:
            echo_json({"unit": name + ".service", "text": text})
        else:
            click.echo(text, nl=False)
        return
    done = systemd.install(unit, db, where, force)
    systemctl = _systemctl(user)
    next_step = f"{systemctl} daemon-reload && {systemctl} enable --now {name}"
    if as_json:
        echo_json(
            {
                "unit": name + ".service",
                "path": done.unit_path,
                "environment_file": done.env_path,
                "changed": done.changed,
                "next": next_step,
            }
        )
        return
    click.echo(f"{'wrote' if done.changed else 'unchanged'}: {done.unit_path}")
    if done.env_path:
        click.echo(f"  store in {done.env_path} (mode 0600)")
    click.echo(f"next: {next_step}")


@service_group.command("uninstall")
@click.argument("directory", required=False, default=DEFAULT_DIR, type=click.Path())
@user_option
@click.option("--force", is_flag=True, help="Remove it even while it is enabled.")
@json_option
@click.pass_context
def service_uninstall(ctx: click.Context, directory: str, user: bool, force: bool, as_json: bool) -> None:
    """Remove the systemd unit of DIRECTORY (default jobs.d) and its environment file.

    An enabled unit is refused (exit 1) with the command to run first
    (systemctl disable --now), unless --force. systemctl is not called.

    \b
    Example:
      queuectl service uninstall --user jobs.d
    """
    where = systemd.units_dir(user)
    name = systemd.unit_name(os.path.realpath(directory))
    systemctl = _systemctl(user)
    if systemd.enabled(where, name) and not force:
        raise QueueError(f"{name} is enabled: run '{systemctl} disable --now {name}' first (or --force)")
    removed = systemd.uninstall(where, name)
    if as_json:
        echo_json({"unit": name + ".service", "removed": removed, "next": f"{systemctl} daemon-reload"})
        return
    for path in removed:
        click.echo(f"removed: {path}")
    click.echo(f"next: {systemctl} daemon-reload (if it still runs: {systemctl} stop {name} first)")
