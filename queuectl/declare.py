"""The declarative commands: apply, diff, validate, up, init, schema.

Thin shells over sync (the one apply path), watcher and worker; the plan's
words and JSON shape are made by planview. Only click is imported at start-up.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from queuectl.errors import EXIT_FAILURE, EXIT_USAGE, QueueError, StoreBusyError, UsageError

if TYPE_CHECKING:
    from queuectl.apply import Defaults, Plan
    from queuectl.store import Store
    from queuectl.watcher import Watcher

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
DEFAULT_DIR = "jobs.d"
LOOKAHEAD = 2.0  # fires this close become runs already, due at their time (pools start them on the dot)
SCHEDULER_PAUSE = 0.02  # between the scheduler's batches, so that pools get the store's write lock
APPLY_RETRY = 1.0  # a passing store failure of up's apply: the wait before trying again
LEADER_RETRY = 2.0  # how often a standing-by scheduler tries to become the one that schedules
MAX_SCHEDULER_SLEEP = 60.0  # the scheduler looks at least this often (a clock step, a missed wake)
SETTLE = 0.5  # up: a broken file younger than this is looked at again before it is reported
PATHS_HELP = f"Job directories or .toml files (default: ./{DEFAULT_DIR})."


def _paths(paths: Sequence[str]) -> list[str]:
    if paths:
        return list(paths)
    if not os.path.isdir(DEFAULT_DIR):
        raise UsageError(f"no {DEFAULT_DIR}/ here: give a jobs directory or run 'queuectl init'")
    return [DEFAULT_DIR]


def defaults_of(store: Store) -> Defaults:
    from queuectl import config
    from queuectl.apply import Defaults

    values = config.effective(store.config())
    return Defaults(
        max_retries=int(values["max-retries"]),
        backoff_base=values["backoff-base"],
        backoff_max=values["backoff-max"],
        timeout=values["job-timeout"] or None,
    )


def apply_and_wake(store: Store, paths: Sequence[str], **options: Any) -> Plan:
    """Apply, then wake this host's idle pools when runs were added."""
    from queuectl import apply as applying

    plan = applying.apply(store, paths, defaults=defaults_of(store), **options)
    if not options.get("dry_run") and any(c.kind in ("create", "update", "delete") for c in plan.changes):
        store.wake_pools()
    return plan


def register(cli: click.Group, db_option: Decorator, json_option: Decorator, store_of: Callable[..., Any]) -> None:
    """Add the declarative commands to the `queuectl` group."""
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

    @cli.command()
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
        """
        plan = apply_and_wake(
            store_of(ctx), _paths(paths), dry_run=dry_run, insecure=insecure, status_dir=_abs(status_dir)
        )
        _print_plan(plan, as_json, applied=not dry_run)
        if plan.invalid:
            ctx.exit(EXIT_FAILURE)

    @cli.command()
    @click.argument("paths", nargs=-1, type=click.Path())
    @insecure_option
    @json_option
    @db_option
    @click.pass_context
    def diff(ctx: click.Context, paths: tuple[str, ...], insecure: bool, as_json: bool) -> None:
        """Print what apply would change. Exit 0: nothing; 1: something; 2: an error (like kubectl diff)."""
        try:
            plan = apply_and_wake(_store_or_empty(ctx, store_of), _paths(paths), dry_run=True, insecure=insecure)
        except QueueError as exc:
            raise QueueError(exc.message, EXIT_USAGE) from None
        _print_plan(plan, as_json, applied=False)
        ctx.exit(EXIT_USAGE if plan.invalid else EXIT_FAILURE if plan.changed else 0)

    @cli.command()
    @click.argument("paths", nargs=-1, type=click.Path())
    @insecure_option
    @json_option
    @click.pass_context
    def validate(ctx: click.Context, paths: tuple[str, ...], insecure: bool, as_json: bool) -> None:
        """Check manifests without a store (for CI and pre-commit). Exit 1 when any is invalid.

        Every error of every file is printed: file, line, key and what was expected.
        A file that apply would refuse for its owner or mode is a warning here (a
        CI checkout is often owned by another user): its content is still checked.
        """
        from queuectl import apply as applying
        from queuectl import manifest, planview

        sources, _ = applying.find(_paths(paths))
        manifests = applying.read_all(sources, insecure=True)
        warnings = []
        directories = {s.directory: None if insecure else manifest.check_directory(s.directory) for s in sources}
        for source in sources:
            problem = manifest.check_owner(source.info) if source.info is not None and not insecure else None
            problem = directories[source.directory] or problem
            if problem:
                warnings.append(
                    f"warning: {manifest.shown_path(planview.relative(source.path))}: apply would refuse it: {problem}"
                )
        errors = [e for m in manifests for e in m.errors]
        if as_json:
            click.echo(planview.dumps({**planview.validate_json(manifests), "warnings": warnings}))
        else:
            for line in warnings:  # diagnostics go to stderr, like every error line
                click.echo(line, err=True)
            for error in errors:
                click.echo(planview.relative_error(error), err=True)
            bad = sum(1 for m in manifests if m.errors)
            click.echo(f"{len(manifests) - bad} valid, {bad} invalid manifest(s)", err=bool(errors))
        if errors:
            ctx.exit(EXIT_FAILURE)

    @cli.command()
    @click.argument("directory", default=DEFAULT_DIR, type=click.Path())
    def init(directory: str) -> None:
        """Create a jobs directory with a commented example manifest."""
        from queuectl import templates

        path = templates.init(directory)
        click.echo(f"created {path}: edit it, then run 'queuectl apply {directory}' or 'queuectl up {directory}'")

    @cli.command()
    def schema() -> None:
        """Print the JSON Schema of a manifest (for taplo, Even Better TOML and other editors)."""
        from importlib.resources import files

        click.echo(files("queuectl").joinpath("manifest.schema.json").read_text(encoding="utf-8"), nl=False)

    @cli.command()
    @click.argument("directory", required=False, type=click.Path())
    @click.option(
        "-w",
        "--workers",
        default=2,
        show_default=True,
        type=click.IntRange(1, 1024),
        help="Slots: commands run at once.",
    )
    @insecure_option
    @status_option
    @click.option("-q", "--quiet", is_flag=True, help="Do not log each attempt's start and end.")
    @click.option("--burst", is_flag=True, help="Apply, run what is due (and its retries), then exit; no watching.")
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
    ) -> None:
        """Apply DIRECTORY, keep applying it as it changes, and run its jobs, in the foreground.

        Ctrl-C or SIGTERM stops: no new claims, running commands finish (within
        config stop-grace), then exit; a second signal stops them at once.
        """
        from queuectl.cli import POOL_BUSY_TIMEOUT, Context

        state: Context = ctx.find_object(Context)  # type: ignore[assignment]
        store = state.store(busy_timeout=POOL_BUSY_TIMEOUT)
        options = {"insecure": insecure, "status_dir": _abs(status_dir)}
        run_up(store, _paths([directory] if directory else []), workers, options, quiet=quiet, burst=burst)


def register_schedule(
    cli: click.Group, db_option: Decorator, json_option: Decorator, store_of: Callable[..., Any]
) -> None:
    """trigger, suspend, resume, plan and schedule."""

    @cli.command()
    @click.argument("name")
    @json_option
    @db_option
    @click.pass_context
    def trigger(ctx: click.Context, name: str, as_json: bool) -> None:
        """Run job NAME now, outside its schedule."""
        from queuectl.apply import new_run

        store = store_of(ctx)
        job = _job_named(store, name)
        now = store.now()
        run = new_run(job, defaults_of(store), now)
        if not store.add_job_runs([run]):
            raise QueueError(f"job {name!r} was already triggered at this instant; try again")
        store.wake_pools()
        click.echo(json.dumps({"triggered": run.id}) if as_json else f"triggered {name}: run {run.id}")

    @cli.command()
    @click.argument("name")
    @db_option
    @click.pass_context
    def suspend(ctx: click.Context, name: str) -> None:
        """Stop job NAME's schedule (its runs not yet started are cancelled; a running one finishes)."""
        store = store_of(ctx)
        _job_named(store, name)
        with store.batch():
            store.set_suspended(name, True)
            cancelled = store.cancel_job_runs(name, f"job {name} was suspended")
        click.echo(f"suspended {name}" + (f"; {len(cancelled)} run(s) not yet started cancelled" if cancelled else ""))

    @cli.command()
    @click.argument("name")
    @db_option
    @click.pass_context
    def resume(ctx: click.Context, name: str) -> None:
        """Restart job NAME's schedule (fires missed while suspended are skipped)."""
        from queuectl.apply import runs_for

        store = store_of(ctx)
        _job_named(store, name)
        with store.batch():
            store.set_suspended(name, False)
            job = _job_named(store, name)
            store.add_job_runs(runs_for(job, defaults_of(store)))
        store.wake_pools()
        click.echo(f"resumed {name}")

    @cli.command("plan")
    @click.argument("name")
    @click.option("-n", "--count", default=10, show_default=True, type=click.IntRange(1, 1000), help="How many fires.")
    @json_option
    @db_option
    @click.pass_context
    def plan_cmd(ctx: click.Context, name: str, count: int, as_json: bool) -> None:
        """The next fire times of job NAME, in its zone and in UTC, with DST and overlap warnings."""
        from queuectl import render, schedule
        from queuectl.durations import iso_utc

        store = store_of(ctx)
        job = _job_named(store, name)
        spec = job.spec
        if spec.cron is None:
            raise QueueError(f"job {name!r} has no cron schedule (see 'queuectl show {name}')")
        zone = schedule.zone_of(spec.timezone)
        fires: list[float] = []
        after = time.time()
        while len(fires) < count:
            nxt = schedule.next_fire(spec.cron, zone, after)
            if nxt is None:
                break
            fires.append(nxt)
            after = nxt
        warnings = []
        gaps = [b - a for a, b in itertools.pairwise(fires)]
        if spec.timeout and gaps and spec.timeout > min(gaps):
            warnings.append(
                f"timeout {spec.timeout:g}s is longer than the shortest interval ({min(gaps):g}s): runs may overlap "
                f"(concurrency = {spec.concurrency})"
            )
        rows = [
            {
                "local": render.zone_time(f, zone),
                "utc": iso_utc(f),
                "note": schedule.dst_note(spec.cron, zone, f),
            }
            for f in fires
        ]
        if as_json:
            words = schedule.describe(spec.cron, spec.timezone)
            click.echo(json.dumps({"job": name, "schedule": words, "fires": rows, "warnings": warnings}, indent=2))
            return
        click.echo(f"{name}: {schedule.describe(spec.cron, spec.timezone)}")
        for row in rows:
            note = f"   ({row['note']})" if row["note"] else ""
            click.echo(f"  {row['local']}   {row['utc']}{note}")
        for warning in warnings:
            click.echo(f"warning: {warning}")

    @cli.command("schedule")
    @json_option
    @db_option
    @click.pass_context
    def schedule_cmd(ctx: click.Context, as_json: bool) -> None:
        """Upcoming fires across cron jobs, soonest first."""
        from queuectl import render, schedule
        from queuectl.durations import iso_utc

        store = store_of(ctx)
        now = store.now()
        rows = []
        for job in store.list_jobs():
            spec = job.spec
            if spec.cron is None or not spec.enabled or job.suspended:
                continue
            zone = schedule.zone_of(spec.timezone)
            nxt = schedule.next_fire(spec.cron, zone, now)
            rows.append((nxt, job.name, schedule.describe(spec.cron, spec.timezone), zone))
        rows.sort(key=lambda r: (r[0] is None, r[0] or 0.0, r[1]))
        if as_json:
            data = [{"job": n, "schedule": w, "next_fire": iso_utc(f)} for f, n, w, _ in rows]
            click.echo(json.dumps(data, indent=2))
            return
        if not rows:
            click.echo("no scheduled jobs")
        for fire, name, words, zone in rows:
            when = render.zone_time(fire, zone) if fire is not None else "never"
            click.echo(f"{when}  {name}  ({words})")


def _job_named(store: Store, name: str) -> Any:
    from queuectl.errors import NotFoundError

    job = store.get_job(name)
    if job is None:
        raise NotFoundError(f"no job named {name!r} (see 'queuectl status' or apply its manifest)")
    return job


def _abs(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _store_or_empty(ctx: click.Context, store_of: Callable[..., Any]) -> Store:
    """The store; where there is none yet, an empty one in memory (diff compares, never creates)."""
    from queuectl.errors import NotFoundError

    try:
        return store_of(ctx)  # type: ignore[no-any-return]
    except NotFoundError as exc:
        from queuectl.store.sqlite import SQLiteStore

        click.echo(f"note: {exc.message}: compared with an empty store", err=True)
        return SQLiteStore(":memory:")


def _print_plan(plan: Plan, as_json: bool, applied: bool) -> None:
    from queuectl import planview

    if as_json:
        click.echo(planview.dumps(planview.plan_json(plan, applied)))
        return
    click.echo("\n".join(planview.plan_lines(plan, applied)))


def _just_written(path: str | None) -> bool:
    try:
        return path is not None and time.time() - os.stat(path).st_mtime < SETTLE
    except OSError:
        return False


def run_up(store: Store, paths: list[str], workers: int, options: dict[str, Any], *, quiet: bool, burst: bool) -> None:
    """Apply `paths`, then watch them (unless burst) while a pool of `workers` slots runs the jobs."""
    from queuectl import planview
    from queuectl.apply import Plan
    from queuectl.cli import log_line
    from queuectl.pool import Pool
    from queuectl.scheduler import Scheduler
    from queuectl.store import open_store
    from queuectl.watcher import Watcher

    directories = [os.path.abspath(p) for p in paths]
    for directory in directories:
        if not os.path.isdir(directory):
            raise UsageError(f"not a directory: {directory} (up watches a jobs directory)")
    applier = open_store(store.url)  # the watcher thread's own connection
    clock = open_store(store.url)  # the scheduler thread's
    scheduler = Scheduler(
        clock, lambda: defaults_of(clock), pause=lambda: time.sleep(SCHEDULER_PAUSE), lookahead=LOOKAHEAD
    )
    lock = threading.Lock()
    jobs_changed = threading.Event()
    stopping = threading.Event()
    watcher: Watcher | None = None

    def apply_now(first: bool = False) -> None:
        with lock:
            plan = apply_and_wake(applier, directories, **options)
        jobs_changed.set()
        # A file written a moment ago may still be being written: look again before calling it broken.
        settling = [c for c in plan.of("invalid") if watcher is not None and _just_written(c.path)]
        if settling and watcher is not None:
            watcher.recheck(SETTLE)
            plan = Plan([c for c in plan.changes if c not in settling], plan.notes)
        if first or plan.changed or plan.invalid or plan.notes:
            for line in planview.plan_lines(plan, applied=True, quiet_unchanged=not first):
                log_line(line)

    def apply_failed(exc: BaseException) -> None:
        if isinstance(exc, StoreBusyError) and watcher is not None:
            log_line(f"apply failed: {exc}; trying again in {APPLY_RETRY:g}s")
            watcher.recheck(APPLY_RETRY)  # a deadlock or a lost connection passes: the change must not be lost
        else:
            log_line(f"apply failed: {exc}")

    role = ""  # "leader" or "standby" once known: changes are logged

    def schedule_now() -> float | None:
        nonlocal role
        now = clock.now()
        tick = scheduler.run_once(now)
        if not tick.leader:  # several `up` on one store: one schedules, the others stand by
            if role != "standby":
                log_line("scheduler: standing by, another `up` on this store schedules the fires")
                role = "standby"
            return now + LEADER_RETRY + LOOKAHEAD
        if role == "standby":
            log_line("scheduler: taking over the scheduling of fires")
        role = "leader"
        for run_id in tick.started:
            log_line(f"fire      {run_id}")
        for line in tick.skipped + tick.notes:
            log_line(f"schedule  {line}")
        for run_id in tick.replaced:
            log_line(f"replace   {run_id}: a newer fire replaces it")
        if tick.started or tick.replaced:
            clock.wake_pools()
        return tick.next_at

    def schedule_loop() -> None:
        while not stopping.is_set():
            jobs_changed.clear()  # before looking: a change from now on wakes the next wait
            try:
                next_at = schedule_now()
            except Exception as exc:  # a busy store, or a bug: say so and look again; never stop scheduling
                log_line(f"scheduler: {exc if isinstance(exc, QueueError) else repr(exc)}; looking again in 1s")
                jobs_changed.wait(1.0)
                continue
            until = MAX_SCHEDULER_SLEEP if next_at is None else next_at - LOOKAHEAD - clock.now()
            wait = min(max(0.0, until), MAX_SCHEDULER_SLEEP)
            jobs_changed.wait(wait)

    thread = threading.Thread(target=schedule_loop, name="queuectl-scheduler", daemon=True)
    try:
        apply_now(first=True)
        if burst:
            schedule_now()  # the fires due now; burst does not wait for later ones
        else:
            thread.start()
            watcher = Watcher(directories, apply_now, apply_failed)
            watcher.start()
            log_line(f"watching {', '.join(planview.relative_dir(d) for d in directories)} for changes")
        try:
            pool = Pool(store, workers, burst=burst, log=log_line, verbose=not quiet, owns_process=True)
            pool.on_wake = jobs_changed.set  # a wake-up may mean jobs changed elsewhere (apply, resume)
            pool.run()
        finally:
            stopping.set()
            jobs_changed.set()
            if watcher is not None:
                watcher.stop()
            if thread.is_alive():
                thread.join(timeout=10)
    finally:
        applier.close()
        clock.close()
