"""`service install|uninstall`: the real CLI writes a systemd unit that `systemd-analyze verify` accepts,
into a HOME and XDG directories of the test's own (--user; the system directory through
$QUEUECTL_SYSTEMD_DIR), so nothing under /etc or the user's home is touched."""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Queue

ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


@pytest.fixture
def q(q: Queue) -> Queue:
    q.env.update(HOME=str(q.tmp / "home"), XDG_CONFIG_HOME=str(q.tmp / "config"))
    q.env.pop("QUEUECTL_SYSTEMD_DIR", None)
    (q.tmp / "jobs.d").mkdir(mode=0o700)
    return q


def user_units(q: Queue) -> Path:
    return q.tmp / "config" / "systemd" / "user"


def verify(q: Queue, unit: Path, user: bool) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify`, offline (no running systemd here): --man=no, a runtime directory of our own."""
    runtime = q.tmp / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    args = [ANALYZE, "verify", "--man=no", *(["--user"] if user else []), str(unit)]
    env = dict(q.env, XDG_RUNTIME_DIR=str(runtime))
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_install_user_writes_a_unit_systemd_accepts_and_says_what_to_run(q: Queue) -> None:
    out = q("service", "install", "--user", "jobs.d").stdout
    unit = user_units(q) / "queuectl-jobs.d.service"
    env_file = user_units(q) / "queuectl-jobs.d.env"
    assert f"wrote: {unit}" in out
    assert "systemctl --user daemon-reload && systemctl --user enable --now queuectl-jobs.d" in out
    s = settings(unit.read_text())
    assert s["ExecStart"].split()[-2:] == ["up", str((q.tmp / "jobs.d").resolve())]
    assert Path(s["ExecStart"].split()[0]).is_absolute()
    assert s["EnvironmentFile"] == f"-{env_file}"
    assert env_file.read_text() == f'QUEUECTL_DB="{q.db}"\n'
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    checked = verify(q, unit, user=True)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr


def test_the_units_command_line_serves_the_directory(q: Queue) -> None:
    """What ExecStart runs, run here in the unit's working directory with its environment file's store."""
    (q.tmp / "jobs.d" / "hello.toml").write_text('command = "echo hi > done.txt"\n')
    (q.tmp / "jobs.d" / "hello.toml").chmod(0o600)
    q("service", "install", "--user", "jobs.d")
    s = settings((user_units(q) / "queuectl-jobs.d.service").read_text())
    db = (user_units(q) / "queuectl-jobs.d.env").read_text().split("=", 1)[1].strip().strip('"')
    env = {k: v for k, v in q.env.items() if k != "QUEUECTL_DB"} | {"QUEUECTL_DB": db}
    done = subprocess.run(
        [*shlex.split(s["ExecStart"]), "--burst"],
        cwd=s["WorkingDirectory"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (q.tmp / "jobs.d" / "done.txt").read_text() == "hi\n"


def test_a_broken_unit_fails_the_same_check(q: Queue) -> None:
    """The check is meaningful: a unit whose ExecStart is missing, or with a bad setting, does not pass it."""
    q("service", "install", "--user", "jobs.d")
    good = (user_units(q) / "queuectl-jobs.d.service").read_text()
    missing = q.tmp / "queuectl-missing.service"
    missing.write_text(good.replace("ExecStart=/", "ExecStart=/nonexistent/"))
    assert verify(q, missing, user=True).returncode != 0
    bad = q.tmp / "queuectl-bad.service"
    bad.write_text(good.replace("KillMode=mixed", "KillMode=bogus"))
    assert "kill mode" in verify(q, bad, user=True).stderr  # a warning: our units pass with none


def test_print_writes_nothing_and_prints_the_unit(q: Queue) -> None:
    out = q("service", "install", "--user", "jobs.d", "--print").stdout
    assert not (q.tmp / "config").exists()
    assert settings(out)["KillMode"] == "mixed"
    printed = q.tmp / "queuectl-printed.service"
    printed.write_text(out)
    checked = verify(q, printed, user=True)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr


def test_a_system_unit_goes_to_the_units_directory_and_outlasts_the_stores_stop_grace(q: Queue) -> None:
    q("config", "set", "stop-grace", "100")
    units = q.tmp / "system"
    q.env["QUEUECTL_SYSTEMD_DIR"] = str(units)
    result = q.json("service", "install", "jobs.d")
    unit = units / "queuectl-jobs.d.service"
    assert result["path"] == str(unit)
    assert result["next"] == "systemctl daemon-reload && systemctl enable --now queuectl-jobs.d"
    s = settings(unit.read_text())
    assert int(s["TimeoutStopSec"]) > 100 + 5
    assert s["WantedBy"] == "multi-user.target"
    checked = verify(q, unit, user=False)
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr


def test_bad_directory_and_a_different_unit_are_refused_in_one_line(q: Queue) -> None:
    missing = q("service", "install", "--user", "nope", check=False)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "not a directory" in missing.stderr
    unit = user_units(q) / "queuectl-jobs.d.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    other = q("service", "install", "--user", "jobs.d", check=False)
    assert other.returncode == 1
    assert other.stderr.count("\n") == 1 and "--force" in other.stderr
    assert unit.read_text() == "[Service]\nExecStart=/bin/true\n"
    q("service", "install", "--user", "jobs.d", "--force")
    assert "KillMode=mixed" in unit.read_text()
    assert "unchanged" in q("service", "install", "--user", "jobs.d").stdout


def test_uninstall_removes_the_unit_and_its_environment_file_unless_enabled(q: Queue) -> None:
    q("service", "install", "--user", "jobs.d")
    units = user_units(q)
    wants = units / "default.target.wants"
    wants.mkdir()
    (wants / "queuectl-jobs.d.service").symlink_to(units / "queuectl-jobs.d.service")
    refused = q("service", "uninstall", "--user", "jobs.d", check=False)
    assert refused.returncode == 1
    assert "systemctl --user disable --now queuectl-jobs.d" in refused.stderr
    assert (units / "queuectl-jobs.d.service").exists()
    (wants / "queuectl-jobs.d.service").unlink()
    result = json.loads(q("service", "uninstall", "--user", "jobs.d", "--json").stdout)
    assert sorted(result["removed"]) == sorted(str(units / f"queuectl-jobs.d.{e}") for e in ("env", "service"))
    assert not list(units.iterdir()) or list(units.iterdir()) == [wants]
    again = q("service", "uninstall", "--user", "jobs.d", check=False)
    assert again.returncode == 1 and "nothing to uninstall" in again.stderr


def test_a_relative_store_is_written_absolute_and_force_uninstalls_an_enabled_unit(q: Queue) -> None:
    """The unit runs in the jobs directory: a store given relative to here is named by its absolute path."""
    q("service", "install", "--user", "jobs.d", "--db", "mine.db")
    units = user_units(q)
    assert (units / "queuectl-jobs.d.env").read_text() == f'QUEUECTL_DB="{q.tmp / "mine.db"}"\n'
    assert not (q.tmp / "mine.db").exists()  # install reads the store's settings, never creates one
    wants = units / "default.target.wants"
    wants.mkdir()
    (wants / "queuectl-jobs.d.service").symlink_to(units / "queuectl-jobs.d.service")
    q("service", "uninstall", "--user", "jobs.d", "--force")
    assert not (units / "queuectl-jobs.d.service").exists() and not (units / "queuectl-jobs.d.env").exists()
