"""The one apply path: manifests on disk -> a plan -> jobs and runs in the store.

`queuectl apply`, `diff`, the watcher and `up` all call `apply()`. The plan
compares the canonical hash of each normalized spec with the store's; the
whole plan is applied in one transaction, so a crash leaves either the old
jobs or the new ones. A broken manifest is reported and its job keeps its
last good version.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from queuectl import manifest, status_files
from queuectl.config import Defaults
from queuectl.errors import StoreError, UsageError
from queuectl.manifest import Manifest, ManifestError
from queuectl.model import NAME_RE, Job, JobSource, JobSpec, NewRun
from queuectl.store.contract import Store

STATUS_DIRNAME = ".status"


@dataclass(frozen=True)
class Source:
    """One manifest file found on disk, and the directory that owns its job."""

    path: str  # absolute
    directory: str  # absolute; the owner of the job
    data: bytes | None  # None when unreadable (the error is in `problem`)
    problem: str | None = None
    info: os.stat_result | None = None


@dataclass(frozen=True)
class Change:
    kind: str  # create | update | unchanged | delete | invalid
    name: str | None
    path: str | None
    fields: tuple[tuple[str, object, object], ...] = ()  # an update's (key, old, new)
    errors: tuple[ManifestError, ...] = ()
    spec: JobSpec | None = None
    file_hash: str = ""
    cancelled: int = 0  # runs not yet started that the change cancelled
    refresh: bool = False  # same spec from different bytes (say, a comment): record the new file hash


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what went wrong after the commit (status files)

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def changed(self) -> bool:
        return any(c.kind in ("create", "update", "delete") for c in self.changes)

    @property
    def invalid(self) -> bool:
        return any(c.kind == "invalid" for c in self.changes)

    def counts(self) -> dict[str, int]:
        kinds = ("create", "update", "unchanged", "delete", "invalid")
        return {kind: len(self.of(kind)) for kind in kinds}


# -- finding manifests -------------------------------------------------------
def is_manifest_name(filename: str) -> bool:
    """A file the directory's jobs come from: `*.toml`, not hidden, not an editor's temp file."""
    return filename.endswith(".toml") and not filename.startswith((".", "#", "~"))


def find(paths: Sequence[str]) -> tuple[list[Source], list[str]]:
    """Manifests under `paths` (directories or files) and the directories applied whole."""
    sources: dict[str, Source] = {}
    directories: list[str] = []
    for given in paths:
        if os.path.isdir(given):
            path = os.path.realpath(given)  # one directory, however it is reached
            if path not in directories:
                directories.append(path)
            try:
                with os.scandir(path) as entries:
                    names = sorted(e.name for e in entries if is_manifest_name(e.name) and not _is_dir(e))
            except OSError as exc:
                raise UsageError(f"cannot read directory {given}: {exc.strerror}") from None
            for name in names:
                full = os.path.join(path, name)
                sources.setdefault(full, _load(full, path))
        elif os.path.lexists(given):
            path = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(given))), os.path.basename(given))
            sources.setdefault(path, _load(path, os.path.dirname(path)))
        else:
            raise UsageError(f"no such file or directory: {given} (expected a jobs directory or a .toml manifest)")
    return list(sources.values()), directories


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A directory (or a link to one); a link that cannot be followed (a loop) is a file to report."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _load(path: str, directory: str) -> Source:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return Source(shown, directory, None, "file name is not UTF-8: rename the file")
    try:
        data, info = manifest.read_file(path)
    except OSError as exc:
        return Source(path, directory, None, f"cannot read: {exc.strerror}")
    return Source(path, directory, data, info=info)


def read_all(sources: Iterable[Source], insecure: bool, current: Sequence[Job] = ()) -> list[Manifest]:
    """Validate every source. A file whose bytes match the job applied from it is not parsed again."""
    known = {(job.file, job.file_hash): job for job in current}
    found = []
    refused: dict[str, str | None] = {}  # directory -> why its manifests are not trusted
    for source in sources:
        if not insecure and source.directory not in refused:
            refused[source.directory] = manifest.check_directory(source.directory)
        if source.data is None:
            found.append(Manifest(source.path, "", None, (ManifestError(source.path, source.problem or "unreadable"),)))
            continue
        file_hash = hashlib.sha256(source.data).hexdigest()
        problem = refused.get(source.directory) or _file_problem(source, insecure)
        if problem:
            found.append(Manifest(source.path, file_hash, None, (ManifestError(source.path, problem),)))
            continue
        job = known.get((source.path, file_hash))
        if job is not None and job.error is None:
            found.append(Manifest(source.path, file_hash, None, applied=job))
        else:
            found.append(manifest.parse(source.data, source.path, file_hash))
    return _unique_names(found, {job.name: job.file for job in current})


def _file_problem(source: Source, insecure: bool) -> str | None:
    if source.info is not None and not stat.S_ISREG(source.info.st_mode):
        return "not a regular file"
    if source.info is not None and not insecure:
        return manifest.check_owner(source.info)
    return None


def _unique_names(found: list[Manifest], owners: dict[str, str] | None = None) -> list[Manifest]:
    """Refuse a second file declaring a name; the file that holds the job already keeps it."""
    owners = owners or {}
    claims: dict[str, list[Manifest]] = {}
    for item in found:
        if item.name is not None:
            claims.setdefault(item.name, []).append(item)
    losers: dict[str, str] = {}
    for name, items in claims.items():
        if len(items) > 1:
            keeper = next((i for i in items if owners.get(name) == i.path), items[0])
            losers.update({i.path: keeper.path for i in items if i is not keeper})
    out = []
    for item in found:
        if item.path in losers:
            message = f"job name {item.name!r} is already used by {losers[item.path]}"
            item = Manifest(item.path, item.file_hash, None, (ManifestError(item.path, message, None, "name"),))
        out.append(item)
    return out


# -- planning ----------------------------------------------------------------
def plan(manifests: Sequence[Manifest], directories: Sequence[str], current: Sequence[Job]) -> Plan:
    """Compare what the files declare with what the store holds."""
    by_name = {job.name: job for job in current}
    by_file = {job.file: job for job in current}
    result = Plan()
    present = {m.path for m in manifests}
    for item in manifests:
        if item.applied is not None and item.applied.name in by_name:  # the very bytes applied last
            result.changes.append(Change("unchanged", item.applied.name, item.path, file_hash=item.file_hash))
            continue
        if item.spec is None:
            result.changes.append(
                Change("invalid", _job_of_broken(item, by_file, by_name), item.path, errors=item.errors)
            )
            continue
        spec = item.spec
        old = by_name.get(spec.name)
        directory = os.path.dirname(item.path)
        moved_here = old is not None and old.source in directories and old.file not in present
        if old is not None and old.source != directory and old.file != item.path and not moved_here:
            error = ManifestError(
                item.path,
                f"job name {spec.name!r} is already declared by {old.file}; rename one of them",
                None,
                "name",
            )
            result.changes.append(Change("invalid", None, item.path, errors=(error,)))
            continue
        if old is None:
            result.changes.append(Change("create", spec.name, item.path, spec=spec, file_hash=item.file_hash))
        elif old.spec_hash != spec.spec_hash or old.file != item.path:
            fields = _differences(old.spec, spec)
            if old.file != item.path:
                fields += (("file", old.file, item.path),)
            result.changes.append(Change("update", spec.name, item.path, fields, spec=spec, file_hash=item.file_hash))
        else:
            fixed = (("error", old.error, None),) if old.error else ()
            refresh = old.file_hash != item.file_hash
            result.changes.append(
                Change("unchanged", spec.name, item.path, fixed, spec=spec, file_hash=item.file_hash, refresh=refresh)
            )
    declared = {c.name for c in result.changes if c.kind != "invalid"}
    names_in = {m.path: m.name for m in manifests}
    applied_whole = set(directories)
    for job in current:
        if job.name in declared:
            continue
        gone = job.source in applied_whole and job.file not in present
        renamed = job.file in names_in and names_in[job.file] not in (None, job.name)  # its file names another job
        if gone or renamed:
            result.changes.append(Change("delete", job.name, job.file))
    return result


def _job_of_broken(item: Manifest, by_file: dict[str, Job], by_name: dict[str, Job]) -> str | None:
    """The job a broken file held (it keeps its last good version)."""
    if item.path in by_file:
        return by_file[item.path].name
    job = by_name.get(manifest.default_name(item.path))
    return job.name if job is not None and job.file == item.path else None


def _differences(old: JobSpec, new: JobSpec) -> tuple[tuple[str, object, object], ...]:
    """An update's (key, old, new); for env only which keys changed, never a value (they hold secrets)."""
    before, after = old.to_json(), new.to_json()
    return tuple(
        ("env", None, env_changes(before.get("env") or {}, after["env"] or {}))
        if key == "env"
        else (key, before.get(key), after[key])
        for key in after
        if before.get(key) != after[key]
    )


def env_changes(old: dict[str, str], new: dict[str, str]) -> dict[str, list[str]]:
    """The env keys added, removed and changed: what a plan may show of [env]."""
    return {
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "changed": sorted(k for k in old.keys() & new.keys() if old[k] != new[k]),
    }


# -- applying ----------------------------------------------------------------
def apply(
    store: Store,
    paths: Sequence[str],
    *,
    defaults: Defaults,
    dry_run: bool = False,
    insecure: bool = False,
    status_dir: str | None = None,
) -> Plan:
    """Plan and (unless dry_run) apply the manifests under `paths`, in one transaction."""
    sources, directories = find(paths)
    if not insecure:  # a file gone from a refused directory proves nothing: its job is not deleted
        directories = [d for d in directories if manifest.check_directory(d) is None]
    git = GitInfo.of(sorted({s.directory for s in sources} | set(directories)))
    token = store.data_token()
    current = store.list_jobs()
    manifests = read_all(sources, insecure, current)  # parsed before the write lock is taken
    with store.batch():
        store.lock_jobs()  # one apply at a time, whatever the engine
        if store.data_token() != token:  # another process wrote meanwhile: look again
            current = store.list_jobs()
            manifests = read_all(sources, insecure, current)
        result = plan(manifests, directories, current)
        result.changes[:] = _refreshes(result.changes, {job.name: job for job in current}, git, status_dir)
        if dry_run:
            return result
        result.changes[:] = _carry_out(store, result.changes, defaults, git, status_dir)
    before = {job.name: job for job in current}
    result.notes.extend(write_statuses(store, result, before, status_dir, directories))
    return result


def _status_dir_of(path: str, status_dir: str | None) -> str:
    return status_dir or path.rpartition("/")[0] + "/" + STATUS_DIRNAME


def _refreshes(changes: list[Change], jobs: dict[str, Job], git: GitInfo, status_dir: str | None) -> list[Change]:
    """Unchanged jobs whose record needs a touch: a new status directory, a new commit."""
    out = []
    for change in changes:
        job = jobs.get(change.name or "")
        if change.kind == "unchanged" and not change.refresh and job is not None and change.path:
            stale = job.status_dir != _status_dir_of(change.path, status_dir)
            stale = stale or git.describe(change.path) != (job.git_commit, job.git_dirty)
            if stale:
                change = dataclasses.replace(change, spec=job.spec, refresh=True)
        out.append(change)
    return out


def write_statuses(
    store: Store, result: Plan, before: dict[str, Job], status_dir: str | None, directories: Sequence[str] = ()
) -> list[str]:
    """Bring the status files of an applied plan up to date (after its commit); what failed, in words."""
    notes: list[str] = []
    writer = status_files.StatusWriter(store, say=notes.append)
    names: list[str] = []
    alive = set(before)
    documented: dict[str, set[str]] = {}  # status directory -> names given an error document now
    present: dict[str, set[str]] = {}  # status directory -> the status files in it
    for change in result.changes:
        if change.kind == "unchanged" and not change.fields and not change.refresh:
            continue
        directory = _status_dir_of(change.path or "", status_dir)
        documented.setdefault(directory, set())
        if change.kind == "create" and change.name:
            alive.add(change.name)
            # Ready (with its .gitignore) before any status lands there; no stale file speaks for the new job.
            if directory not in present:
                writer.attempt(directory, status_files.ensure_dir, directory)
                present[directory] = status_files.names_in(directory)
            if change.name in present[directory]:
                writer.attempt(directory, status_files.remove, directory, change.name)
        elif change.kind == "delete" and change.name in before:
            alive.discard(change.name)
            folder = before[change.name].status_dir or directory
            writer.attempt(folder, status_files.remove, folder, change.name)
        elif change.kind == "invalid" and change.name is None and change.path:
            name = manifest.default_name(change.path)
            if NAME_RE.fullmatch(name) and name not in before:
                documented[directory].add(name)
                document = status_files.error_document(change.path, change.errors)
                writer.attempt(directory, status_files.write, directory, name, document)
        elif change.name is not None and change.kind != "create" and (change.kind != "unchanged" or change.fields):
            names.append(change.name)  # changed, broken or mended; a new job's file comes with its first attempt
    try:
        writer.update(names)
    except StoreError as exc:
        notes.append(f"could not read job status for status files: {exc}")
    for applied in directories:
        documented.setdefault(_status_dir_of(applied + "/", status_dir), set())
    for directory, keep in documented.items():  # error documents of files since fixed or removed
        writer.attempt(directory, status_files.prune_errors, directory, alive | keep)
    return notes


def _carry_out(
    store: Store, changes: Sequence[Change], defaults: Defaults, git: GitInfo, status_dir: str | None
) -> list[Change]:
    """Write the plan (inside the caller's transaction); the changes as carried out."""
    done: dict[int, Change] = {}
    writes: list[tuple[int, JobSource]] = []
    for index, change in enumerate(changes):
        if change.kind == "invalid":
            if change.name is not None:
                store.set_job_error(change.name, "; ".join(str(e) for e in change.errors))
        elif change.kind == "delete":
            assert change.name is not None
            gone = store.delete_job(change.name, f"job {change.name} was deleted (its manifest is gone)")
            change = Change(change.kind, change.name, change.path, cancelled=len(gone))
        elif change.kind == "unchanged" and not change.refresh:
            if change.fields and change.name is not None:  # its file is good again
                store.set_job_error(change.name, None)
        else:
            assert change.spec is not None and change.path is not None
            directory = os.path.dirname(change.path)
            commit, dirty = git.describe(change.path)
            folder = status_dir or os.path.join(directory, STATUS_DIRNAME)
            writes.append(
                (index, JobSource(change.spec, directory, change.path, change.file_hash, commit, dirty, folder))
            )
        done[index] = change
    runs: list[NewRun] = []
    for (index, _), job in zip(writes, store.put_jobs([entry for _, entry in writes]), strict=True):
        change = done[index]
        if change.kind == "unchanged":
            continue
        rerun = change.kind == "create" or any(key not in ("description", "file") for key, _, _ in change.fields)
        cancelled = 0
        if rerun:
            if change.kind == "update":
                cancelled = len(store.cancel_job_runs(job.name, f"superseded: job {job.name} was updated"))
            runs.extend(runs_for(job, defaults))
        done[index] = Change(
            change.kind, change.name, change.path, change.fields, spec=change.spec, cancelled=cancelled
        )
    store.add_job_runs(runs)
    return [done[index] for index in range(len(changes))]


def runs_for(job: Job, defaults: Defaults) -> list[NewRun]:
    """The runs a job's declaration asks for now (cron fires are the scheduler's)."""
    spec = job.spec
    if not spec.enabled or job.suspended or spec.cron is not None:
        return []
    if spec.run_at is not None:
        due = spec.run_at
    elif spec.run_after is not None:
        due = job.created_at + spec.run_after
    else:
        due = job.version_at  # a one-off: once per version of what it runs
    return [new_run(job, defaults, due)]


def new_run(job: Job, defaults: Defaults, due: float) -> NewRun:
    spec = job.spec
    return NewRun(
        id=f"{job.name[:119]}.{os.urandom(4).hex()}",
        command=spec.command,
        priority=spec.priority,
        max_retries=defaults.max_retries if spec.retries is None else spec.retries,
        backoff_base=defaults.backoff_base if spec.backoff_base is None else spec.backoff_base,
        backoff_max=defaults.backoff_max if spec.backoff_max is None else spec.backoff_max,
        timeout=defaults.timeout if spec.timeout is None else spec.timeout,
        run_at=due,
        job=job.name,
        cwd=spec.cwd,
        env=dict(spec.env),
        scheduled_for=due,
        keep_children=spec.keep_children,
    )


# -- git -----------------------------------------------------------------------
@dataclass
class GitInfo:
    """HEAD and the changed files of the repositories holding some directories."""

    commits: dict[str, str | None] = field(default_factory=dict)  # directory -> HEAD
    dirty: set[str] = field(default_factory=set)  # absolute paths differing from HEAD
    roots: dict[str, str] = field(default_factory=dict)  # directory -> repository root

    @classmethod
    def of(cls, directories: Sequence[str]) -> GitInfo:
        info = cls()
        for directory in directories:
            info._add(directory)
        return info

    def _add(self, directory: str) -> None:
        top = _git(directory, "rev-parse", "--show-toplevel")
        if top is None:
            return
        root = top.strip()
        self.roots[directory] = root
        head = _git(directory, "rev-parse", "--verify", "-q", "HEAD")
        self.commits[directory] = head.strip() if head else None
        status = _git(directory, "status", "--porcelain", "-z", "--untracked-files=all", "--", ".")
        for entry in (status or "").split("\0"):
            if len(entry) > 3:
                self.dirty.add(os.path.join(root, entry[3:]))

    def describe(self, path: str) -> tuple[str | None, bool]:
        """(commit, file differs from it) for a manifest, or (None, False) outside git."""
        directory = path.rpartition("/")[0]
        if directory not in self.roots:
            return None, False
        real = os.path.realpath(path) if self.dirty else path
        return self.commits.get(directory), path in self.dirty or real in self.dirty


def _git(directory: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", directory, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git here: jobs simply carry no commit
    return done.stdout if done.returncode == 0 else None


def drift(job: Job) -> str | None:
    """How the job's manifest on disk differs from what was applied, or None."""
    try:
        data, info = manifest.read_file(job.file)
    except FileNotFoundError:
        return "manifest removed since apply"
    except OSError as exc:
        return f"manifest unreadable: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return "manifest is no longer a regular file"
    if hashlib.sha256(data).hexdigest() != job.file_hash:
        return "manifest changed since apply"
    return None
