"""Other users: nothing of a job may be read or redirected by them.

Where the test runs as root (always in CI), a real second user tries: a
system user made once (idempotently, like tests/pg.py's server user), whose
reads go through `runuser`. The test's files live in a 0755 directory under
/tmp that this user can reach, so only queuectl's own modes protect them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.conftest import QUEUECTL, Queue, wait_for

OTHER_USER = "queuectl_other"
SECRET = "s3cret-token-value"


@pytest.fixture(scope="session")
def other_user() -> str:
    """A second, unprivileged user (root only: skipped elsewhere, which fails CI)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second user")
    if shutil.which("runuser") is None or shutil.which("useradd") is None:
        pytest.skip("needs runuser and useradd")
    return pg.system_user(OTHER_USER)  # one useradd at a time across test processes


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory the other user can reach and list (0755, under /tmp)."""
    path = Path(tempfile.mkdtemp(prefix="queuectl-users-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def readable_by(user: str, paths: list[Path]) -> list[str]:
    """The paths `user` can read (a file's bytes, a directory's names)."""
    script = (
        'for p in "$@"; do if [ -d "$p" ]; then ls "$p" >/dev/null 2>&1 && echo "$p"; '
        'else cat "$p" >/dev/null 2>&1 && echo "$p"; fi; done'
    )
    done = subprocess.run(
        ["runuser", "-u", user, "--", "sh", "-c", script, "sh", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.split()


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command under umask 000: only queuectl's own modes may close its files."""
    return subprocess.run(
        [*QUEUECTL, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=lambda: os.umask(0),
    )


def everything_under(root: Path) -> set[Path]:
    return {Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files}


def test_every_file_of_a_run_of_up_is_closed_to_other_users(other_user: str, shared: Path) -> None:
    jobs, store_dir = shared / "jobs.d", shared / "stores"
    for directory in (jobs, store_dir):
        directory.mkdir(mode=0o755)
        directory.chmod(0o755)
    (jobs / "leak.toml").write_text(f'command = "echo $TOKEN"\n[env]\nTOKEN = "{SECRET}"\n')
    (jobs / "leak.toml").chmod(0o644)
    before = everything_under(shared)
    env = {k: v for k, v in os.environ.items() if k != "QUEUECTL_DB"} | {"XDG_STATE_HOME": str(shared / "xdg")}
    db = ["--db", str(store_dir / "q.db")]
    assert run(shared, env, "up", "--burst", str(jobs), *db).returncode == 0
    started = run(shared, env, "worker", "start", "--detach", *db)  # a pool log; the pool keeps WAL and SHM open
    assert started.returncode == 0, started.stderr
    try:
        wait_for(lambda: Path(f"{store_dir}/q.db-shm").exists(), what="the pool's store open")
        assert run(shared, env, "run", "echo default-store").returncode == 0  # the default store, in the state dir
        created = everything_under(shared) - before
        names = {p.relative_to(shared).as_posix() for p in created}
        assert {"stores/q.db", "stores/q.db-wal", "stores/q.db-shm", "stores/q-logs"} <= names
        assert any(n.startswith("stores/q-logs/pool-") for n in names)  # the detached pool's log
        assert any(n.startswith("stores/q-logs/leak.") for n in names)  # the attempt's log
        assert {"jobs.d/.status", "jobs.d/.status/leak.json", "jobs.d/.status/.gitignore"} <= names
        assert {"xdg", "xdg/queuectl", "xdg/queuectl/queue.db"} <= names
        assert readable_by(other_user, [shared, jobs, store_dir, jobs / "leak.toml"]) == [
            str(p) for p in (shared, jobs, store_dir, jobs / "leak.toml")
        ]  # they reach the place: what protects the files is queuectl's modes
        assert readable_by(other_user, sorted(created)) == []
        for path in created:  # each file is its owner's only, not merely hidden by its directory
            allowed = 0o700 if path.is_dir() else 0o600
            assert stat.S_IMODE(path.lstat().st_mode) & ~allowed == 0, path
        assert SECRET in (jobs / ".status" / "leak.json").read_text()  # the output the modes protect
    finally:
        run(shared, env, "worker", "stop", *db)


def shared_jobs(shared: Path) -> Path:
    jobs = shared / "jobs.d"
    jobs.mkdir()
    (jobs / "a.toml").write_text('command = "echo from-a"\n')
    return jobs


@pytest.mark.parametrize("target", ["attacker directory", "victim directory"])
def test_a_status_symlink_is_never_followed(q: Queue, tmp_path: Path, target: str) -> None:
    jobs = shared_jobs(tmp_path)
    elsewhere = tmp_path / target.replace(" ", "-")
    elsewhere.mkdir()
    precious = elsewhere / "a.json"
    precious.write_text("precious\n")
    (jobs / ".status").symlink_to(elsewhere)
    applied = q("apply", str(jobs))
    assert f"refused: {jobs}/.status is a symbolic link" in applied.stdout
    done = q("up", "--burst", str(jobs))
    assert f"refused: {jobs}/.status is a symbolic link" in done.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["a.json"]
    assert precious.read_text() == "precious\n"
    assert [r["state"] for r in q.json("list")] == ["completed"]  # the job itself ran


def test_a_status_directory_made_by_another_user_is_refused(other_user: str, shared: Path, q: Queue) -> None:
    jobs = shared_jobs(shared)
    jobs.chmod(0o1777)  # a shared jobs directory: only --insecure takes it
    made = subprocess.run(
        ["runuser", "-u", other_user, "--", "mkdir", "-m", "0777", str(jobs / ".status")], check=False
    )
    assert made.returncode == 0
    done = q("up", "--burst", "--insecure", str(jobs))
    assert f"refused: {jobs}/.status is owned by uid {pwd.getpwnam(other_user).pw_uid}, not by you" in done.stderr
    assert list((jobs / ".status").iterdir()) == []


def test_a_symlink_made_by_another_user_in_a_shared_directory_is_not_followed(
    other_user: str, shared: Path, q: Queue
) -> None:
    jobs = shared_jobs(shared)
    jobs.chmod(0o1777)
    public = shared / "public"
    public.mkdir()
    public.chmod(0o1777)
    trap = public / "trap"
    subprocess.run(["runuser", "-u", other_user, "--", "mkdir", "-m", "0777", str(trap)], check=True)
    subprocess.run(["runuser", "-u", other_user, "--", "ln", "-s", str(trap), str(jobs / ".status")], check=True)
    done = q("up", "--burst", "--insecure", str(jobs))
    assert "is a symbolic link" in done.stderr
    assert list(trap.iterdir()) == []  # the job's output never reached the other user's directory


def test_status_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    jobs = shared_jobs(tmp_path)
    (jobs / "broken.toml").write_text("command = 5\n")
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), QUEUECTL_DB=str(tmp_path / "q.db"))
    assert run(tmp_path, env, "up", "--burst", str(jobs)).returncode == 1  # broken.toml refused: exit 1
    status = jobs / ".status"
    assert stat.S_IMODE(status.stat().st_mode) == 0o700
    files = sorted(p.name for p in status.iterdir())
    assert files == [".gitignore", "a.json", "broken.json"]
    assert all(stat.S_IMODE((status / f).stat().st_mode) == 0o600 for f in files)


def test_an_older_open_status_directory_is_closed(q: Queue, tmp_path: Path) -> None:
    jobs = shared_jobs(tmp_path)
    (jobs / ".status").mkdir(mode=0o755)
    (jobs / ".status").chmod(0o755)
    q("up", "--burst", str(jobs))
    assert stat.S_IMODE((jobs / ".status").stat().st_mode) == 0o700
    assert stat.S_IMODE((jobs / ".status" / "a.json").stat().st_mode) == 0o600


# -- the jobs directory and the directories above it ------------------------------------------
def jobs_in(parent: Path, mode: int = 0o755) -> Path:
    jobs = parent / "jobs.d"
    jobs.mkdir(parents=True)
    (jobs / "a.toml").write_text('command = "echo a"\n')
    jobs.chmod(mode)
    return jobs


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775], ids=["0777", "1777", "0775"])
def test_a_jobs_directory_others_can_write_is_refused(q: Queue, tmp_path: Path, mode: int) -> None:
    jobs = jobs_in(tmp_path, mode)
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    who = "group" if mode == 0o775 else "others"
    assert f"jobs.d/a.toml: refused: the jobs directory, {jobs}, is writable by {who} (mode {mode:04o})" in done.stdout
    assert q.json("list", "--jobs") == [] and q.json("list") == []
    assert "a" in q.json("apply", str(jobs), "--insecure")["created"]


def test_a_directory_above_that_others_can_write_is_refused(q: Queue, tmp_path: Path) -> None:
    parent = tmp_path / "open"
    jobs = jobs_in(parent)
    parent.chmod(0o777)
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert f"refused: a directory above the manifests, {parent}, is writable by others (mode 0777)" in done.stdout
    assert q.json("list") == []


def test_a_sticky_directory_above_is_fine_as_sshd_allows(q: Queue, tmp_path: Path) -> None:
    parent = tmp_path / "sticky"
    jobs = jobs_in(parent)
    parent.chmod(0o1777)  # as /tmp: others may add entries, not replace ours
    assert q.json("apply", str(jobs))["created"] == ["a"]


def test_validate_only_warns_of_a_refused_directory(q: Queue, tmp_path: Path) -> None:
    jobs = jobs_in(tmp_path, 0o777)
    done = q("validate", str(jobs))
    assert done.returncode == 0
    assert f"warning: jobs.d/a.toml: apply would refuse it: refused: the jobs directory, {jobs}" in done.stderr


def test_a_file_gone_from_a_refused_directory_deletes_no_job(q: Queue, tmp_path: Path) -> None:
    jobs = jobs_in(tmp_path)
    (jobs / "b.toml").write_text('command = "echo b"\n')
    q("apply", str(jobs))
    jobs.chmod(0o777)
    (jobs / "b.toml").unlink()  # say, by another user
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1 and "- b" not in done.stdout
    assert sorted(j["job"] for j in q.json("list", "--jobs")) == ["a", "b"]


def test_up_applies_nothing_from_a_refused_directory(q: Queue, tmp_path: Path) -> None:
    jobs = jobs_in(tmp_path, 0o777)
    done = q("up", "--burst", str(jobs), check=False)
    assert "is writable by others (mode 0777)" in done.stderr
    assert q.json("list") == []


def test_a_jobs_directory_of_another_user_is_refused(other_user: str, shared: Path, q: Queue) -> None:
    jobs = jobs_in(shared)
    shutil.chown(jobs, other_user)
    uid = pwd.getpwnam(other_user).pw_uid
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert f"refused: the jobs directory, {jobs}, is owned by uid {uid}, not by you or root" in done.stdout
    assert q.json("list") == []


def test_a_symlink_to_a_directory_of_another_user_is_refused(other_user: str, shared: Path, q: Queue) -> None:
    theirs = jobs_in(shared / "theirs")
    shutil.chown(theirs, other_user)
    mine = shared / "mine"
    mine.symlink_to(theirs)
    done = q("apply", str(mine), check=False)
    assert done.returncode == 1
    assert f"the jobs directory, {theirs}, is owned by uid" in done.stdout
    assert q.json("list") == []


def test_a_directory_above_owned_by_another_user_is_refused(other_user: str, shared: Path, q: Queue) -> None:
    theirs = shared / "theirs"
    jobs = jobs_in(theirs)
    shutil.chown(theirs, other_user)  # they may rename jobs.d and put their own in its place
    done = q("apply", str(jobs), check=False)
    assert done.returncode == 1
    assert f"a directory above the manifests, {theirs}, is owned by uid" in done.stdout


@pytest.mark.parametrize("kind", ["symlink", "theirs"])
def test_a_log_directory_that_is_a_symlink_or_another_users_is_refused(
    other_user: str, shared: Path, kind: str
) -> None:
    """Logs hold job output: a pool never writes them where another user could read or plant them."""
    trap = shared / "trap"
    trap.mkdir(mode=0o777)
    trap.chmod(0o777)
    shutil.chown(trap, other_user)
    logs = shared / "q-logs"
    if kind == "symlink":
        logs.symlink_to(trap)
    else:
        logs.mkdir(mode=0o777)
        shutil.chown(logs, other_user)
    env = {k: v for k, v in os.environ.items() if k != "QUEUECTL_DB"} | {"XDG_STATE_HOME": str(shared / "xdg")}
    db = ["--db", str(shared / "q.db")]
    assert run(shared, env, "enqueue", "--id", "secret", "--command", "echo TOKEN=hunter2", *db).returncode == 0
    done = run(shared, env, "worker", "start", "--burst", *db)
    assert done.returncode == 1
    assert "refused: the log directory" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert list(trap.iterdir()) == []
