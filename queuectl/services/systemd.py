"""`service install|uninstall`: a systemd unit that runs `queuectl up DIR` in the foreground.

The unit's text is a pure function of `UnitInputs`; install and uninstall are plain file operations
(systemctl is never called: what to run next is printed)."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
from typing import NamedTuple

from queuectl.errors import QueueError, UsageError

SYSTEM_DIR = "/etc/systemd/system"
DIR_OVERRIDE = "QUEUECTL_SYSTEMD_DIR"  # where units go instead (packaging, tests)
STOP_MARGIN = 15  # seconds beyond stop-grace + kill-grace before systemd kills what is left


class UnitInputs(NamedTuple):
    name: str  # the unit's name without `.service`
    directory: str  # absolute jobs directory
    command: list[str]  # absolute: the queuectl that runs `up`
    stop_grace: float
    kill_grace: float
    env_file: str | None  # absolute path of the environment file (QUEUECTL_DB), when a store is given
    user: bool  # a user unit (systemctl --user)


class Installed(NamedTuple):
    unit_path: str
    env_path: str | None
    changed: bool


def unit_name(directory: str) -> str:
    """`queuectl-NAME`: NAME is the jobs directory's last component, each character outside
    [A-Za-z0-9_.-] turned into `-` (`/srv/my jobs` -> `queuectl-my-jobs`; `/` -> `queuectl-root`)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", os.path.basename(directory.rstrip("/")))[:200]
    return f"queuectl-{base or 'root'}"


def queuectl_command() -> list[str]:
    """The queuectl running now, absolute: the `queuectl` script beside its Python, else `python -m queuectl`."""
    python = os.path.abspath(sys.executable)
    script = os.path.join(os.path.dirname(python), "queuectl")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [python, "-m", "queuectl"]


def stop_timeout(stop_grace: float, kill_grace: float) -> int:
    """TimeoutStopSec: longer than up's graceful stop (stop-grace, then kill-grace before SIGKILL)."""
    return math.ceil(stop_grace + kill_grace) + STOP_MARGIN


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _quoted(arg: str) -> str:
    """One ExecStart word as systemd reads it: `%` and `$` doubled, quoted when it has blanks or quotes."""
    arg = _specifiers(arg).replace("$", "$$")
    if re.search(r"[\s\"'\\;]", arg) or not arg:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def unit_text(u: UnitInputs) -> str:
    """The unit file of `u`."""
    exec_start = " ".join(_quoted(a) for a in [*u.command, "up", u.directory])
    lines = [
        "[Unit]",
        f"Description=queuectl up {_specifiers(u.directory)}",
        "Documentation=https://github.com/queuectl/queuectl",
    ]
    if not u.user:  # the user manager has no network-online.target
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += ["", "[Service]", "Type=simple"]
    if u.env_file:
        lines.append(f"EnvironmentFile=-{_specifiers(u.env_file)}")
    lines += [
        f"WorkingDirectory={_specifiers(u.directory)}",
        f"ExecStart={exec_start}",
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=on-failure",
        "RestartSec=5",
        "KillMode=mixed",  # SIGTERM to up alone: it stops its commands itself; SIGKILL to all at the timeout
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={stop_timeout(u.stop_grace, u.kill_grace)}",
        "",
        "[Install]",
        f"WantedBy={'default.target' if u.user else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def env_text(db: str) -> str:
    return 'QUEUECTL_DB="' + db.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"\n'


def units_dir(user: bool) -> str:
    """Where the unit goes: $QUEUECTL_SYSTEMD_DIR if set; else the user's systemd/user directory under
    $XDG_CONFIG_HOME (~/.config) for --user; else /etc/systemd/system."""
    override = os.environ.get(DIR_OVERRIDE)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    if user:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return os.path.join(config, "systemd", "user")
    return SYSTEM_DIR


def jobs_directory(directory: str) -> str:
    """The jobs directory as the unit names it (absolute, real); a usage error when it is no directory."""
    path = os.path.realpath(directory)
    if not os.path.isdir(path):
        raise UsageError(f"not a directory: {os.path.abspath(directory)} (the service runs up on a jobs directory)")
    if "\n" in path or "\r" in path:
        raise UsageError(f"a jobs directory with a line break cannot be named in a unit: {path!r}")
    return path


def store_for_unit(db: str) -> str:
    """A store as the unit's environment gives it: a file made absolute (the unit runs in the jobs directory)."""
    if "://" in db:
        return db
    return os.path.abspath(os.path.expanduser(db))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QueueError(f"cannot read {path}: {exc.strerror}") from None


def _write(path: str, text: str, mode: int) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise QueueError(f"cannot write {path}: {exc.strerror}") from None


def install(u: UnitInputs, db: str | None, where: str, force: bool) -> Installed:
    """Write `u`'s unit into `where` (and its environment file, 0600, when `db` is given); a unit there
    with other content is refused unless `force`."""
    unit_path = os.path.join(where, u.name + ".service")
    text = unit_text(u)
    old = _read(unit_path)
    if old is not None and old != text and not force:
        raise QueueError(f"{unit_path} exists with other content (--force replaces it)")
    try:
        os.makedirs(where, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise QueueError(f"cannot create {where}: {exc.strerror}") from None
    changed = old != text
    if u.env_file and db is not None:
        wanted = env_text(db)
        if _read(u.env_file) != wanted:
            _write(u.env_file, wanted, 0o600)
            changed = True
    else:
        changed = _unlink(env_path(where, u.name)) or changed  # no store given: none of an earlier install
    if old != text:
        _write(unit_path, text, 0o644)
    return Installed(unit_path, u.env_file, changed)


def env_path(where: str, name: str) -> str:
    return os.path.join(where, name + ".env")


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise QueueError(f"cannot remove {path}: {exc.strerror}") from None
    return True


def enabled(where: str, name: str) -> bool:
    """Whether the unit is enabled: a link to it in a `*.wants` directory beside it."""
    import glob  # only for uninstall

    return bool(glob.glob(os.path.join(glob.escape(where), "*.wants", glob.escape(name) + ".service")))


def uninstall(where: str, name: str) -> list[str]:
    """Remove the unit `name` from `where` and its environment file; the paths removed (none: an error)."""
    removed = [p for p in (os.path.join(where, name + ".service"), env_path(where, name)) if _unlink(p)]
    if not removed:
        raise QueueError(f"no unit {name}.service in {where} (nothing to uninstall)")
    return removed
