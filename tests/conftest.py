"""Shared helpers: run the real `queuectl` command against a store in a temp dir."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

QUEUECTL = [sys.executable, "-m", "queuectl"]
LOCAL = "http://127.0.0.1:8080"  # a test client's base URL: a Host the dashboard serves (not "testserver")


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        # A condition that runs a queuectl process costs ~0.1 s of CPU: look at most half the time,
        # so that waiting tests leave the cores to the others (the suite is CPU-bound on 2 cores).
        time.sleep(max(interval, time.monotonic() - started))


class Queue:
    """The queuectl CLI bound to one store file."""

    def __init__(self, tmp: Path, db: str | None = None) -> None:
        self.tmp = tmp
        self.db: Any = db or tmp / "queue.db"  # a Path for SQLite, a URL for PostgreSQL
        self.env = dict(os.environ, QUEUECTL_DB=str(self.db), PYTHONUNBUFFERED="1", XDG_STATE_HOME=str(tmp / "state"))
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*QUEUECTL, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
            cwd=self.tmp,  # paths in messages are said relative to here: the same wherever pytest runs
        )
        if check and done.returncode != 0:
            raise AssertionError(f"queuectl {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def spawn(
        self,
        *args: str,
        stdout: int | None = subprocess.PIPE,
        stderr: int | None = subprocess.STDOUT,
        cwd: Path | None = None,
    ) -> subprocess.Popen[str]:
        """`queuectl ARGS` in the background (no stdin), killed at the test's end if still running."""
        proc = subprocess.Popen(
            [*QUEUECTL, *args], env=self.env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, text=True
        )
        self.procs.append(proc)
        return proc

    def start_pool(self, *args: str) -> subprocess.Popen[str]:
        return self.spawn("worker", "start", *args)

    def wait_pool_registered(self, proc: subprocess.Popen[str]) -> None:
        wait_for(lambda: any(w["pid"] == proc.pid for w in self.json("worker", "status")), what="pool registered")

    def gate(self, name: str = "gate") -> tuple[str, Path]:
        """A command that runs until the test creates the returned file (no race with a fixed sleep)."""
        path = self.tmp / name
        return f"while [ ! -e {path} ]; do sleep 0.02; done", path

    @staticmethod
    def read_until(proc: subprocess.Popen[str], text: str) -> None:
        """Read a process's output until a line holds `text` (it exiting first fails the test)."""
        assert proc.stdout is not None
        for line in proc.stdout:
            if text in line:
                return
        raise AssertionError(f"the process exited without printing {text!r}")

    def run(self, run_id: str) -> dict[str, Any]:
        return self.json("show", run_id)  # type: ignore[no-any-return]

    def state(self, run_id: str) -> str:
        return str(self.run(run_id)["state"])

    def burst(self, *args: str, dead: bool = False) -> subprocess.CompletedProcess[str]:
        """A burst pool; it must exit 0, or 1 when `dead` (a run ended dead: see test_burst_exit.py)."""
        done = self("worker", "start", "--burst", *args, check=False)
        if done.returncode != (1 if dead else 0):
            raise AssertionError(f"queuectl worker start --burst exited {done.returncode}: {done.stderr}")
        return done

    def write_job(self, name: str, text: str) -> Path:
        """Write jobs.d/NAME.toml (mode 0644: not writable by others, as apply demands); the directory."""
        jobs = self.tmp / "jobs.d"
        jobs.mkdir(exist_ok=True)
        path = jobs / f"{name}.toml"
        path.write_text(text)
        os.chmod(path, 0o644)
        return jobs

    def on_terminal(self, *args: str, **env: str | None) -> tuple[int, str]:
        """Exit code and what `queuectl ARGS` writes (stdout and stderr) on a pseudo-terminal.

        `env` adds to the queue's environment; a None value removes that variable."""
        merged = {k: v for k, v in {**self.env, **env}.items() if v is not None}
        return on_terminal([*QUEUECTL, *args], merged, self.tmp)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def q(tmp_path: Path) -> Iterator[Queue]:
    queue = Queue(tmp_path)
    yield queue
    queue.cleanup()


def on_terminal(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Exit code and all that ARGV writes (stdout and stderr) to a pseudo-terminal, until it exits."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def each_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Queue]:
    """A queue on each engine in turn (PostgreSQL: a fresh database on the test server)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    queue = Queue(tmp_path, db=url)
    yield queue
    queue.cleanup()


def process_state(pid: int) -> str | None:
    """The /proc state letter of `pid` (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def is_running(pid: int) -> bool:
    state = process_state(pid)
    return state is not None and state not in ("Z", "X")


def _live_processes() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process that is not a zombie."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                yield int(entry), int(fields[1]), int(fields[2])


def children_of(ppid: int) -> list[int]:
    return [pid for pid, parent, _ in _live_processes() if parent == ppid]


def group_members(pgid: int) -> list[int]:
    return [pid for pid, _, group in _live_processes() if group == pgid]


# Test modules that start processes carrying fixed run markers (QUEUECTL_RUN_ID=r1, ...) or look for such
# processes machine-wide (`runner.kill_leftovers`, a pool's `rescue`): beside one another on several xdist
# workers, one test's scan would kill or count another test's processes. They share one worker (`--dist
# loadgroup`), one after another, as in a serial run.
RUN_MARKER_MODULES = frozenset(
    {
        "tests/unit/test_reaper.py",
        "tests/unit/test_runner.py",
        "tests/integration/test_pool_paths.py",
        "tests/integration/test_pool_rescue_more.py",
        "tests/integration/test_pool_store_outage.py",
        "tests/integration/test_rescue_machine.py",
        "tests/integration/test_pool_inprocess.py",  # (on main) an in-process pool runs r1
        "tests/e2e/test_store_open.py",  # a run with the id r1, which the scans above look for
    }
)


# Tests that spend a minute or more waiting (on cron's minutes) go first: beside the others, not after them.
WAITING_LONGEST = frozenset(
    {
        "tests/e2e/test_cron_minutes.py::test_cron_minutes_fire_once_wherever_pools_run_and_a_standby_takes_over",
        "tests/e2e/test_readme.py::test_the_readme_tutorial_runs_as_written",  # waits for early in a minute
    }
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0] in RUN_MARKER_MODULES:
            item.add_marker(pytest.mark.xdist_group("run-markers"))
    items.sort(key=lambda item: item.nodeid not in WAITING_LONGEST)  # stable: the rest keep their order


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject.toml's addopts): two workers more than cores.

    Measured on the 2-core machine with 1,658 tests: 3 workers 165 s, 4 workers 152 s, 5 workers 146 s.
    The tests mostly wait on the processes they start; waiting tests look at the store at most half
    the time (wait_for), so more workers overlap more waits without starving the cores. Four, not
    five: each worker also runs its own PostgreSQL server.
    """
    return len(os.sched_getaffinity(0)) + 2


def pytest_configure(config: pytest.Config) -> None:
    """Each test process (xdist worker) gets its own XDG state directory, not the user's.

    What a test runs without a state directory of its own (an in-process pool's logs, a command
    given no XDG_STATE_HOME) writes there, apart from the other workers and from the user's queues.
    """
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="queuectl-tests-state-")
    if not hasattr(config, "workerinput"):
        _byte_compile_queuectl()


def _byte_compile_queuectl() -> None:
    """Compile the package once, before the workers start, as `pip install` does.

    The tests run `python -m queuectl` about 1,200 times. Where PYTHONDONTWRITEBYTECODE is set
    (this machine, many containers), each of those would compile every module it imports again.
    """
    import compileall

    import queuectl

    compileall.compile_dir(os.path.dirname(queuectl.__file__), quiet=1)


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["XDG_STATE_HOME"], ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: every test here is mandatory."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller, which sees every worker's reports, decides
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; every test is mandatory here", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """One real PostgreSQL server for the whole run, one per xdist worker (skipped, which fails CI, where none
    can start). Not shared between workers: tests stop and restart it."""
    from tests import pg

    why = pg.available()
    if why:
        pytest.skip(why)
    server = pg.PgServer()
    yield server
    server.close()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """A fresh, empty database on the test server."""
    return str(pg_server.create_database())
