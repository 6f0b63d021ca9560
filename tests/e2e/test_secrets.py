"""Secrets: `[env]` values and store passwords never reach output meant for logs, nor jobs.

CI logs are public more often than not: plans show which env keys changed,
never their values. A job's environment is the same however its pool was
started, and never holds the store's password.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Queue, wait_for

OLD, NEW, GONE, ADDED = "old-SECRET-1f9", "new-SECRET-7c2", "gone-SECRET-44a", "added-SECRET-0d3"


def manifest(jobs: Path, command: str, env: dict[str, str]) -> None:
    lines = [f"command = {command!r}", "[env]", *(f"{k} = {v!r}" for k, v in env.items())]
    (jobs / "deploy.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def changed(q: Queue, tmp_path: Path) -> Path:
    """A job applied with secrets, whose file now changes, removes and adds some."""
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    manifest(jobs, "echo deploy", {"TOKEN": OLD, "OLD_KEY": GONE, "PLAIN": "same"})
    q("apply", str(jobs))
    manifest(jobs, "echo deploy", {"TOKEN": NEW, "NEW_KEY": ADDED, "PLAIN": "same"})
    return jobs


def assert_no_secret(text: str) -> None:
    for secret in (OLD, NEW, GONE, ADDED, "SECRET"):
        assert secret not in text, text


@pytest.mark.parametrize(
    "args",
    [["diff"], ["diff", "--json"], ["apply", "--dry-run"], ["apply", "--dry-run", "--json"], ["apply"]],
    ids=" ".join,
)
def test_a_plan_names_the_env_keys_that_changed_never_their_values(q: Queue, changed: Path, args: list[str]) -> None:
    done = q(*args, str(changed), check=False)
    assert done.returncode in (0, 1), done.stderr
    assert_no_secret(done.stdout + done.stderr)
    if "--json" in args:
        update = json.loads(done.stdout)["updated"][0]
        assert update["changes"]["env"] == {"added": ["NEW_KEY"], "removed": ["OLD_KEY"], "changed": ["TOKEN"]}
    else:
        assert "env: added NEW_KEY; removed OLD_KEY; changed TOKEN (values not shown)" in done.stdout


def test_up_logs_no_env_value(q: Queue, changed: Path) -> None:
    done = q("up", "--burst", str(changed))
    assert "env: added NEW_KEY; removed OLD_KEY; changed TOKEN (values not shown)" in done.stderr
    assert_no_secret(done.stdout + done.stderr)


def test_an_update_line_shows_where_long_commands_differ(q: Queue, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.d"
    jobs.mkdir()
    prefix = "cd /srv/app && ./manage.py migrate --settings=app.settings.production && "
    manifest(jobs, prefix + "curl -fsS https://example.com/hooks/v1/deployed", {})
    q("apply", str(jobs))
    manifest(jobs, prefix + "curl -fsS https://example.com/hooks/v2/deployed", {})
    line = next(x for x in q("diff", str(jobs), check=False).stdout.splitlines() if x.startswith("~ deploy"))
    old, new = re.fullmatch(r'~ deploy: to update \(command "(.*)" -> "(.*)"\)', line).groups()  # type: ignore[union-attr]
    assert old != new
    assert "hooks/v1/deployed" in old and "hooks/v2/deployed" in new


def job_environments(out: Path) -> list[dict[str, str]]:
    """What each job that ran `env > out/ID.env` saw, without what differs by run."""
    volatile = {"QUEUECTL_RUN_ID", "QUEUECTL_ATTEMPT", "QUEUECTL_POOL", "_", "SHLVL", "OLDPWD"}
    found = []
    for path in sorted(out.glob("*.env")):
        pairs = (line.partition("=") for line in path.read_text().splitlines() if "=" in line)
        found.append({k: v for k, _, v in pairs if k not in volatile})
    return found


def run_in_both_pools(q: Queue, out: Path) -> list[dict[str, str]]:
    """One job run by a foreground pool, one by a detached pool, both started from the same environment."""
    out.mkdir()
    q("enqueue", "--id", "foreground", "--command", f"env > {out}/foreground.env")
    q("worker", "start", "--burst")
    q("enqueue", "--id", "detached", "--command", f"env > {out}/detached.env")
    q("worker", "start", "--detach")
    try:
        wait_for(lambda: (out / "detached.env").exists() and q.state("detached") == "completed", what="detached run")
    finally:
        q("worker", "stop")
    return job_environments(out)


def test_jobs_get_the_same_environment_from_a_detached_pool_sqlite(q: Queue, tmp_path: Path) -> None:
    foreground, detached = run_in_both_pools(q, tmp_path / "out")
    assert foreground == detached
    assert foreground["QUEUECTL_DB"] == str(q.db)  # the user's own variable, as they set it


def test_jobs_get_the_same_environment_and_no_store_password_postgresql(tmp_path: Path, pg_url: str) -> None:
    secret = "pw-Xy7-not-for-jobs"
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    q = Queue(tmp_path, db=url)
    try:
        foreground, detached = run_in_both_pools(q, tmp_path / "out")
    finally:
        q.cleanup()
    assert foreground == detached
    for environment in (foreground, detached):
        assert not any(secret in value for value in environment.values())
        assert environment["QUEUECTL_DB"] == pg_url  # the same store, its password left out


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_store_given_with_db_reaches_no_job(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    url = str(tmp_path / "given.db")
    if engine == "postgresql":
        pg_url = request.getfixturevalue("pg_url")
        url = pg_url.replace("postgresql://postgres@", "postgresql://postgres:pw-on-the-command-line@")
    q = Queue(tmp_path)
    q.env.pop("QUEUECTL_DB")
    out = tmp_path / "out"
    out.mkdir()
    try:
        for mode in ("foreground", "detached"):
            q("enqueue", "--db", url, "--id", mode, "--command", f"env > {out}/{mode}.env")
            q("worker", "start", "--db", url, *(["--detach"] if mode == "detached" else ["--burst"]))
            wait_for(lambda m=mode: (out / f"{m}.env").exists(), what=f"{mode} run")
        q("worker", "stop", "--db", url)
    finally:
        q.cleanup()
    detached, foreground = job_environments(out)  # sorted by name
    assert foreground == detached and "QUEUECTL_DB" not in foreground
