"""The `queuectl` command: parse arguments, call the layer below, render.

Only click is imported at start-up; rich, the store and the worker are
imported inside the commands that use them, so `--help` answers fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from queuectl import __version__
from queuectl.errors import EXIT_USAGE, NotFoundError, QueueError, StoreError, UsageError

if TYPE_CHECKING:
    from queuectl.store import Store

F = TypeVar("F", bound=Callable[..., Any])
POOL_BUSY_TIMEOUT = 1.0  # a pool retries a locked store rather than block its loop
STATE_NAMES = ("pending", "running", "completed", "failed", "dead", "cancelled")
HANDOFF = "QUEUECTL_POOL_STORE"  # how `worker start --detach` hands its store to the background pool
RETRIES_HELP = "Retries after the first attempt (max_retries=2 means up to 3 attempts); default: config max-retries."


READERS = {
    ("status",),
    ("list",),
    ("show",),
    ("logs",),
    ("metrics",),
    ("dlq", "list"),
    ("config", "get"),
    ("config", "show"),
    ("worker", "status"),
    ("db", "info"),
    ("schedule",),
    ("plan",),
    ("diff",),
}
"""Commands that only read: they never create a store (a mistyped --db must not make an empty one)."""


class Context:
    """What every command shares: where the store is, opened on first use."""

    def __init__(self, db: str | None) -> None:
        handoff = os.environ.pop(HANDOFF, None)  # never passed on to what this process starts (a pool's jobs)
        self.db = handoff or db
        _hide_store_password()
        self._store: Store | None = None

    def store(self, busy_timeout: float = 30.0, create: bool | None = None) -> Store:
        """The store, opened once; created if absent unless the command only reads (or `create` is False)."""
        if self._store is None:
            from queuectl.store import open_store

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
        from queuectl.store import without_password

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


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (a stable contract).")(func)


def log_line(message: str) -> None:
    """One line of a long-running command's log, on stderr, with the time."""
    import time

    err = click.get_text_stream("stderr")
    err.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    err.flush()


def store_of(ctx: click.Context) -> Store:
    return ctx.find_object(Context).store()  # type: ignore[union-attr]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


# -- enqueue ---------------------------------------------------------------------
def run_options(func: F) -> F:
    options = [
        click.option("-p", "--priority", metavar="1-10|high|medium|low", help="Higher runs first (default 5)."),
        click.option(
            "--timeout", metavar="DURATION", help="Seconds or 90s/5m/1h30m; 0 = none (default: config job-timeout)."
        ),
        click.option("--retries", "--max-retries", "retries", metavar="N", help=RETRIES_HELP),
        click.option(
            "--backoff-base", metavar="B", help="Retry n waits B ** n seconds (default: config backoff-base)."
        ),
        click.option("--run-at", metavar="TIME", help="Not before this ISO 8601 time (e.g. 2026-12-01T02:00:00Z)."),
        click.option("--delay", metavar="DURATION", help="Not before this long from now (e.g. 30m)."),
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


def _enqueue(store: Store, runs: list[Any]) -> None:
    store.enqueue(runs)
    store.wake_pools()


def _host() -> str:
    from queuectl.runner import HOST

    return HOST


def _defaults(store: Store) -> dict[str, float]:
    from queuectl import config

    return config.effective(store.config())


@cli.command()
@click.argument("spec", required=False, metavar="[JSON]")
@click.option("--id", "run_id", metavar="ID", help="Run id (letters, digits, . _ -); generated if absent.")
@click.option("-c", "--command", metavar="CMD", help="Shell command to run (with /bin/sh -c).")
@click.option("-f", "--file", "file", type=click.File("r"), help="JSON Lines file (- for stdin): all or none.")
@run_options
@json_option
@db_option
@click.pass_context
def enqueue(
    ctx: click.Context, /, spec: str | None, run_id: str | None, file: Any, as_json: bool, **flags: Any
) -> None:
    """Add a run: from JSON, from flags, or many from a JSON Lines file.

    \b
      queuectl enqueue '{"id":"job1","command":"sleep 2","max_retries":3}'
      queuectl enqueue --id job2 --command "echo hi" --priority 8 --retries 3
      queuectl enqueue --file jobs.jsonl
    """

    from queuectl import enqueue as build

    fields = _flag_fields(id=run_id, **flags)
    store = store_of(ctx)
    now = store.now()  # the store's clock: a delay means the same on every host
    if file is not None:
        if spec is not None or "command" in fields:
            raise UsageError("--file takes the runs from the file: give no JSON or --command beside it")
        defaults = _defaults(store)
        lines = build.bounded_lines(file, _name(file))  # a huge line is refused before it is read whole
        runs = build.from_lines(_lines_with_defaults(lines, fields, _name(file)), _name(file), defaults, now)
        _enqueue(store, runs)
        _say_enqueued(runs, as_json)
        return
    base = build.parse_json(spec) if spec is not None else {}
    if spec is None and "command" not in fields:
        raise UsageError("nothing to enqueue: give a JSON object, --command CMD, or --file FILE")
    base.update(fields)
    run = build.build(base, _defaults(store), now)
    _enqueue(store, [run])
    _say_enqueued([run], as_json)


def _lines_with_defaults(lines: Any, fields: dict[str, Any], source: str) -> Any:
    """Flags given beside --file apply to every line that does not set them."""
    if not fields:
        yield from lines
        return
    import json

    from queuectl import enqueue as build

    for number, line in enumerate(lines, 1):
        if not line.strip():
            yield line
            continue
        try:
            obj = build.parse_json(line, f"{source} line {number}: ")
        except UsageError:
            yield line  # reported with its line number by the parser
            continue
        yield json.dumps({**fields, **obj})


def _name(file: Any) -> str:
    name = getattr(file, "name", "-")
    return "stdin" if name in ("-", "<stdin>") else str(name)


def _say_enqueued(runs: list[Any], as_json: bool) -> None:
    if as_json:
        click.echo(_dumps({"enqueued": [r.id for r in runs]}))
    elif len(runs) == 1:
        click.echo(runs[0].id)
    else:
        click.echo(f"enqueued {len(runs)} runs")


@cli.command("run")
@click.argument("command")
@click.option("--id", "run_id", metavar="ID", help="Run id; generated if absent.")
@run_options
@json_option
@db_option
@click.pass_context
def run_cmd(ctx: click.Context, /, command: str, run_id: str | None, as_json: bool, **flags: Any) -> None:
    """Enqueue COMMAND as a new run and print its id."""

    from queuectl import enqueue as build
    from queuectl.errors import DuplicateRunError

    store = store_of(ctx)
    for _ in range(3):
        fields = _flag_fields(id=run_id, command=command, **flags)
        run = build.build(fields, _defaults(store), store.now())
        try:
            _enqueue(store, [run])
            break
        except DuplicateRunError:
            if run_id is not None:
                raise
    _say_enqueued([run], as_json)


# -- workers ---------------------------------------------------------------------
@cli.group()
def worker() -> None:
    """Run, stop and list worker pools."""


@worker.command("start")
@click.option(
    "-n", "--count", default=1, show_default=True, type=click.IntRange(1, 1024), help="Slots: commands run at once."
)
@click.option("--burst", is_flag=True, help="Drain what is runnable (and its retries), then exit.")
@click.option("--detach", is_flag=True, help="Run in the background; print its pid and log file.")
@click.option("-q", "--quiet", is_flag=True, help="Print only start and stop lines.")
@db_option
@click.pass_context
def worker_start(ctx: click.Context, count: int, burst: bool, detach: bool, quiet: bool) -> None:
    """Run a pool of COUNT slots in the foreground.

    Ctrl-C or SIGTERM stops claiming and lets running commands finish (for at
    most config stop-grace seconds); a second signal kills them and returns
    their runs to the queue.
    """
    store = ctx.find_object(Context).store(busy_timeout=POOL_BUSY_TIMEOUT)  # type: ignore[union-attr]
    if detach:
        _detach(store, count, burst)
        return
    from queuectl.pool import Pool

    Pool(store, count, burst=burst, log=log_line, verbose=not quiet, owns_process=True).run()


def _detach(store: Store, count: int, burst: bool) -> None:
    """Start `worker start` in the background; return once it registered (or finished its burst well).

    The store's URL goes to it in an environment variable that it removes at
    once: never on its command line (it may hold a password), and never in its
    jobs' environment, which is the same as a foreground pool's.
    """
    import subprocess
    import time

    from queuectl.store import logs_dir, make_private_dir

    log_path = os.path.join(logs_dir(store), f"pool-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    argv = [sys.executable, "-m", "queuectl", "worker", "start", "--count", str(count)]
    env = dict(os.environ, **{HANDOFF: store.url})
    if burst:
        argv.append("--burst")
    try:
        make_private_dir(logs_dir(store))
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as out:
            child = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=env
            )
    except OSError as exc:
        raise QueueError(f"cannot start a background pool: {exc.strerror or exc} ({log_path})") from None
    _await_detached(store, child, log_path)


def _await_detached(store: Store, child: Any, log_path: str) -> None:
    """Say the background pool started once it registered, or finished (a short burst) with success."""
    import time

    from queuectl.runner import on_this_machine, read_tail

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(w.pid == child.pid and on_this_machine(w.host, w.machine) for w in store.list_workers()):
            click.echo(f"pool started in the background: pid {child.pid}, log {log_path}")
            return
        if child.poll() is not None:
            break
        time.sleep(0.05)
    if child.poll() == 0:
        click.echo(f"pool ran in the background and has already finished: pid {child.pid}, log {log_path}")
        return
    last = read_tail(log_path, 400).strip().splitlines()
    why = last[-1] if last else f"exit status {child.returncode}"
    raise QueueError(f"the background pool did not start: {why} (log: {log_path})")


@worker.command("stop")
@click.option("--force", is_flag=True, help="Stop at once: kill running commands, return their runs to the queue.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until the pools have exited.")
@click.option(
    "--timeout", "wait_for", type=click.FloatRange(min=0, max=86400), help="Seconds to wait (default: stop-grace + 10)."
)
@db_option
@click.pass_context
def worker_stop(ctx: click.Context, force: bool, wait: bool, wait_for: float | None) -> None:
    """Stop every live pool of this store (gracefully unless --force)."""
    import signal
    import time

    from queuectl import config, render
    from queuectl.runner import is_alive, on_this_machine, signal_process

    store = store_of(ctx)
    workers = store.list_workers()
    lease, now = _defaults(store)["lease-seconds"], store.now()
    states = [render.worker_state(w, now, lease) for w in workers]
    running = [w for w, state in zip(workers, states, strict=True) if render.is_running(state)]
    local = [w for w in running if on_this_machine(w.host, w.machine)]
    remote = [w for w in running if not on_this_machine(w.host, w.machine)]
    if not running:
        stale = [w.id for w, state in zip(workers, states, strict=True) if state == "stale"]
        if stale:  # late, perhaps not dead (suspended, cut off): should one come back, it stops
            store.request_stop(stale)
        click.echo("no pools are running" + (f" ({len(stale)} stale pool(s) elsewhere asked to stop)" if stale else ""))
        return
    try:
        store.request_stop([w.id for w in workers])
        store.wake_pools()  # pools elsewhere (PostgreSQL) look at once, not at their next heartbeat
    except StoreError as exc:  # a failing store (a full disk): the signals below still reach this host's pools
        if not local:
            raise
        click.echo(f"could not ask through the store ({exc}); signalling the pools on this host", err=True)
        remote = []
    for w in local:
        # a second, different signal for --force: standard signals of one kind may merge
        signals = (signal.SIGTERM, signal.SIGINT) if force else (signal.SIGTERM,)
        try:
            signal_process(w.pid, w.proc_start, signals)  # never a process that took a dead pool's pid
        except PermissionError:  # another user's pool: the request through the store reaches it
            click.echo(f"pool {w.id} (pid {w.pid}) belongs to another user: asked to stop through the store")
    for w in remote:
        click.echo(f"pool {w.id} on {w.host}: asked to stop through the store (it checks at its next heartbeat)")
    click.echo(f"stopping {len(local)} pool(s) on this host" + (" at once" if force else ""))
    if not wait or not local:
        return
    if wait_for is None:
        wait_for = config.effective(store.config())["stop-grace"] + 10
    deadline = time.monotonic() + wait_for
    while True:
        left = [w for w in local if is_alive(w.pid, w.proc_start)]
        if not left:
            click.echo("all pools stopped")
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    raise QueueError(f"{len(left)} pool(s) still running after {wait_for:g}s: {', '.join(str(w.pid) for w in left)}")


@worker.command("status")
@json_option
@db_option
@click.pass_context
def worker_status(ctx: click.Context, as_json: bool) -> None:
    """List pools with pid, host, slots, current runs and last heartbeat."""

    from queuectl import render

    store = store_of(ctx)
    lease = _defaults(store)["lease-seconds"]
    workers = store.list_workers()
    if as_json:
        click.echo(render.dumps([render.worker_json(w, store.now(), lease) for w in workers]))
        return
    con = render.console()
    if not any(render.is_running(render.worker_state(w, store.now(), lease)) for w in workers):
        con.print("no pools are running")
    if not workers:
        return
    con.print(render.workers_table(con, workers, lease, store.now()))


# -- inspection ------------------------------------------------------------------
@cli.command()
@json_option
@db_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts per state, live pools, declared jobs (drift, manifest errors) and where the store is."""

    from rich.text import Text

    from queuectl import apply as applying
    from queuectl import render

    store = store_of(ctx)
    store.check_integrity()  # a damaged store is said so, not shown as the counts it still reads
    counts = store.counts()
    workers = store.list_workers()
    jobs = store.list_jobs()
    drifted = {job.name: reason for job in jobs if (reason := applying.drift(job))}
    broken = {job.name: job.error for job in jobs if job.error}
    lease = _defaults(store)["lease-seconds"]
    if as_json:
        data = {
            "counts": counts,
            "workers": [render.worker_json(w, store.now(), lease) for w in workers],
            "store": store.location,
            "jobs": {"total": len(jobs), "drift": drifted, "manifest_errors": broken},
        }
        click.echo(render.dumps(data))
        return
    con = render.console()
    grid = render.table(con, "STATE", "RUNS")
    for state, number in counts.items():
        grid.add_row(render.state_text(state), str(number))
    con.print(grid)
    con.print(_pools_line([render.worker_state(w, store.now(), lease) for w in workers], workers))
    if jobs:
        con.print(f"jobs: {len(jobs)} declared, {len(drifted)} drifted, {len(broken)} with manifest errors")
    for name, reason in sorted(drifted.items()):
        con.print(Text(f"  drift: {name}: {reason} (run 'queuectl apply' or 'queuectl diff')"))
    for name, error in sorted(broken.items()):
        con.print(Text(f"  error: {name}: {error} (the last good version stays in force)"))
    con.print(f"store: {store.location}", soft_wrap=True)


def _pools_line(states: list[str], workers: list[Any]) -> str:
    """`pools: 2 live (8 slots), 1 stopping, 1 dead`: live pools run and claim; the rest are named by state."""
    slots = sum(w.slots for w, state in zip(workers, states, strict=True) if state == "alive")
    others = [f"{states.count(state)} {state}" for state in ("stopping", "stale", "dead") if state in states]
    return ", ".join([f"pools: {states.count('alive')} live ({slots} slots)", *others])


@cli.command("list")
@click.option("-s", "--state", type=click.Choice(STATE_NAMES), help="Only runs in this state.")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), help="At most this many (oldest first).")
@click.option("--jobs", "show_jobs", is_flag=True, help="List declared jobs: schedule in words, next fire, last run.")
@click.option("--scheduled", is_flag=True, help="Upcoming cron fires across jobs (same as 'queuectl schedule').")
@json_option
@db_option
@click.pass_context
def list_cmd(
    ctx: click.Context, state: str | None, limit: int | None, show_jobs: bool, scheduled: bool, as_json: bool
) -> None:
    """List runs, oldest first (or declared jobs with --jobs)."""
    if scheduled:
        ctx.invoke(cli.commands["schedule"], as_json=as_json)
        return
    store = store_of(ctx)
    if show_jobs:
        from queuectl import apply as applying
        from queuectl import render

        statuses = [s for job in store.list_jobs()[:limit] if (s := store.job_status(job.name)) is not None]
        if as_json:
            click.echo(render.dumps([render.job_json(s, applying.drift(s.job)) for s in statuses]))
            return
        con = render.console()
        con.print(render.jobs_table(con, statuses) if statuses else "no jobs (apply a jobs directory)")
        return
    from queuectl import listing  # not render: a pipe needs no rich

    out = click.get_text_stream("stdout")
    if as_json:
        listing.write_json_array(out.write, (listing.run_json(r) for r in store.iter_runs(state, limit)))
        return
    if not out.isatty():
        if not listing.write_run_rows(out.write, store.iter_runs(state, limit)):
            out.write(f"no {state} runs\n" if state else "no runs\n")
        return
    _runs_on_terminal(store, state, limit)


TERMINAL_PAGE = 50  # runs `list` shows on a terminal without --limit
TABLE_CHUNK = 500  # runs per rich table when a terminal asked for more


def _runs_on_terminal(store: Store, state: str | None, limit: int | None) -> None:
    """A rich table: one page and how many more there are, or --limit runs a chunk at a time."""
    import itertools

    from queuectl import listing, render

    con = render.console()
    runs = store.iter_runs(state, limit if limit is not None else TERMINAL_PAGE + 1)
    page = list(itertools.islice(runs, TABLE_CHUNK if limit is not None else TERMINAL_PAGE))
    if not page:
        con.print(f"no {state} runs" if state else "no runs")
        return
    headers = listing.RUN_HEADERS
    widths = [max(len(h), *(len(listing.run_cells(r)[i]) for r in page)) for i, h in enumerate(headers)]
    con.print(render.runs_table(con, page, widths))
    if limit is not None:
        while chunk := list(itertools.islice(runs, TABLE_CHUNK)):
            grid = render.runs_table(con, chunk, widths)
            grid.show_header = False
            con.print(grid)
        return
    if next(runs, None) is not None:
        counts = store.counts()
        more = (counts.get(state, 0) if state else sum(counts.values())) - len(page)
        con.print(f"… {more:,} more: use --limit N or pipe the output", style="dim")


def _get_run(store: Store, run_id: str) -> Any:
    from queuectl.model import check_name

    run = store.get_run(check_name(run_id))
    if run is None:
        raise NotFoundError(f"no run with id {run_id!r} (see 'queuectl list')")
    return run


@cli.command()
@click.argument("run_id", metavar="ID")
@json_option
@db_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Every field of a run (or of a declared job): attempts, output tail, origin."""
    from rich.text import Text

    from queuectl import render
    from queuectl.model import check_name

    store = store_of(ctx)
    run = store.get_run(check_name(run_id))
    if run is None:
        if store.get_job(run_id) is None:
            raise NotFoundError(f"no run or job named {run_id!r} (see 'queuectl list' and 'queuectl status')")
        _show_job(store, run_id, as_json)
        return
    attempts = store.attempts(run_id)
    if as_json:
        click.echo(render.dumps(render.show_json(run, attempts)))
        return
    con = render.console()
    con.print(render.fields_table(con, render.show_lines(run, attempts)))
    if attempts:
        con.print("attempts:")
        con.print(render.attempts_table(con, attempts))
    if run.output_tail:
        con.print("output (tail):")
        con.print(Text(run.output_tail.rstrip("\n")))


def _show_job(store: Store, name: str, as_json: bool) -> None:
    from rich.text import Text

    from queuectl import apply as applying
    from queuectl import render

    status = store.job_status(name)
    if status is None:
        raise NotFoundError(f"no run or job named {name!r}")
    drift = applying.drift(status.job)
    if as_json:
        click.echo(render.dumps(render.job_json(status, drift)))
        return
    con = render.console()
    con.print(render.fields_table(con, render.job_lines(status, drift)))
    run = status.last_run
    if run is not None and run.output_tail:
        con.print("output of the last run (tail):")
        con.print(Text(run.output_tail.rstrip("\n")))


cli.add_command(show, "get")


@cli.command()
@click.argument("run_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the run is over.")
@click.option("-a", "--attempt", type=click.IntRange(min=1), help="Attempt number (default: the latest).")
@db_option
@click.pass_context
def logs(ctx: click.Context, run_id: str, follow: bool, attempt: int | None) -> None:
    """Print a run's output (its latest attempt's log)."""
    from queuectl import follow as tail

    tail.print_logs(store_of(ctx), _get_run(store_of(ctx), run_id), attempt, follow, _host())


# -- dead letters ----------------------------------------------------------------
@cli.group()
def dlq() -> None:
    """The dead-letter queue: runs that used up their retries."""


@dlq.command("list")
@click.option("-n", "--limit", type=click.IntRange(1, 10**9), help="At most this many.")
@json_option
@db_option
@click.pass_context
def dlq_list(ctx: click.Context, limit: int | None, as_json: bool) -> None:
    """List dead runs."""
    ctx.invoke(list_cmd, state="dead", limit=limit, as_json=as_json)


@dlq.command("retry")
@click.argument("run_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead run.")
@click.option("--reset-attempts", is_flag=True, help="Start counting attempts from zero again.")
@db_option
@click.pass_context
def dlq_retry(ctx: click.Context, run_ids: tuple[str, ...], retry_all: bool, reset_attempts: bool) -> None:
    """Put dead runs back in the queue (one more attempt unless --reset-attempts)."""

    if bool(run_ids) == retry_all:
        raise UsageError("give the ids of dead runs to retry, or --all")
    store = store_of(ctx)
    for run_id in run_ids:
        run = _get_run(store, run_id)
        if run.state.value != "dead":
            raise QueueError(f"run {run_id!r} is {run.state.value}, not dead: only dead runs can be retried")
    retried = store.retry_dead(None if retry_all else list(run_ids), reset_attempts)
    if retried:
        store.wake_pools()
    click.echo(f"retrying {len(retried)} run(s)" + (": " + ", ".join(retried) if len(retried) <= 10 else ""))


@dlq.command("clear")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
@click.pass_context
def dlq_clear(ctx: click.Context, yes: bool) -> None:
    """Delete every dead run (and its logs)."""
    ctx.invoke(clear, state="dead", yes=yes)


@cli.command()
@click.option(
    "-s", "--state", type=click.Choice(STATE_NAMES), help="Only runs in this state (default: all but running)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@db_option
@click.pass_context
def clear(ctx: click.Context, state: str | None, yes: bool) -> None:
    """Delete runs and their logs (running runs are never deleted)."""
    if state == "running":
        raise UsageError("running runs cannot be cleared: stop their pool first")
    what = f"all {state} runs" if state else "all runs that are not running"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to delete {what} without --yes")
        click.confirm(f"Delete {what}?", abort=True)
    store = store_of(ctx)
    deleted = store.delete_runs(state)
    _remove_logs(store, deleted)
    click.echo(f"deleted {len(deleted)} run(s)")


def _remove_logs(store: Store, run_ids: list[str]) -> None:
    """Remove this host's log files of deleted runs (`<id>.<attempt>.log`)."""
    from queuectl.store import logs_dir

    gone = set(run_ids)
    try:
        entries = list(os.scandir(logs_dir(store)))
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith(".log") and entry.name.rsplit(".", 2)[0] in gone:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# -- config and metrics ----------------------------------------------------------
@cli.group("db")
def db_group() -> None:
    """The store itself: its schema and where it is."""


@db_group.command("migrate")
@db_option
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Create the store or bring its schema up to date (also done on first use)."""
    store = store_of(ctx)  # opening migrates
    click.echo(f"{store.engine} store at {store.location}: schema version {store.schema_version()}")


@db_group.command("info")
@json_option
@db_option
@click.pass_context
def db_info(ctx: click.Context, as_json: bool) -> None:
    """The engine, the schema version and the location (password masked)."""
    from queuectl import render

    store = store_of(ctx)
    info = {"engine": store.engine, "schema_version": store.schema_version(), "location": store.location}
    if as_json:
        click.echo(render.dumps(info))
        return
    for key, value in info.items():
        click.echo(f"{key + ':':16}{value}")


@cli.group("config")
def config_group() -> None:
    """Show and change settings kept in the store."""


@config_group.command("show")
@json_option
@db_option
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Every setting with its value."""
    from queuectl import config, render

    stored = store_of(ctx).config()
    values = config.effective(stored)
    if as_json:
        click.echo(render.dumps({k: values[k] for k in config.SETTINGS}))
        return
    con = render.console()
    grid = render.table(con, "KEY", "VALUE", "", "MEANING")
    for key, setting in config.SETTINGS.items():
        grid.add_row(key, config.render_value(values[key]), "" if key in stored else "(default)", setting.help)
    con.print(grid)


@config_group.command("get")
@click.argument("key")
@db_option
@click.pass_context
def config_get(ctx: click.Context, key: str) -> None:
    """Print one setting's value."""
    from queuectl import config

    canonical = config.normalize_key(key)
    click.echo(config.render_value(config.effective(store_of(ctx).config())[canonical]))


@config_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@db_option
@click.pass_context
def config_set(ctx: click.Context, key: str, value: str) -> None:
    """Change a setting (dashes or underscores both work in KEY)."""
    from queuectl import config

    canonical = config.normalize_key(key)
    parsed = config.parse_value(canonical, value)
    store_of(ctx).set_config(canonical, config.render_value(parsed))
    click.echo(f"{canonical} = {config.render_value(parsed)}")


@cli.command()
@json_option
@db_option
@click.pass_context
def metrics(ctx: click.Context, as_json: bool) -> None:
    """Counts, success rate, attempt durations and recent throughput."""
    from queuectl import render
    from queuectl.durations import format_duration

    store = store_of(ctx)
    data = render.metrics_json(store.counts(), store.attempt_stats())
    if as_json:
        click.echo(render.dumps(data))
        return
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
    con.print(grid)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)


from queuectl import declare  # noqa: E402 (the declarative commands join the group)

declare.register(cli, db_option, json_option, store_of)
declare.register_schedule(cli, db_option, json_option, store_of)


# -- entry point -----------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; every error ends as one line on stderr and an exit code."""
    code = 0
    try:
        result = cli.main(args=argv, prog_name="queuectl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "")
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort as exc:
        interrupted = isinstance(exc.__context__, KeyboardInterrupt)
        if not interrupted:
            click.echo("aborted", err=True)
        code = 130 if interrupted else 1
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"queuectl: error: {_one_line(exc.format_message())}{hint}", err=True)
        code = EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"queuectl: error: {_one_line(exc.format_message())}", err=True)
        code = exc.exit_code
    except QueueError as exc:
        click.echo(f"queuectl: error: {_one_line(exc.message)}", err=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        _silence_stdout()
        code = 0
    except Exception as exc:  # a bug of ours: still one line, but say what it was
        if os.environ.get("QUEUECTL_DEBUG"):
            raise
        click.echo(f"queuectl: error: internal error: {type(exc).__name__}: {_one_line(str(exc))}", err=True)
        code = 1
    sys.exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":  # `python -m queuectl.cli`: run the module every other import sees, not this copy
    from queuectl.cli import main as _main

    _main()
