"""The README's tutorial, run verbatim: every `$ command` in it, and the output it shows.

The tutorial lies between `<!-- tutorial -->` and `<!-- /tutorial -->` in README.md. Each ```console
block holds `$ command` lines, each followed by the output the reader should see. The commands run
one by one with bash in an empty directory, as a new user would run them: no `--db`, no
QUEUECTL_DB, a fresh home whose default store is used. An HTML comment just before a block changes
how it is read:

- `<!-- background: NAME -->`: the block's one command keeps running (like `queuectl up` in a
  second terminal); the lines shown are the first lines it prints.
- `<!-- output of: NAME -->`: the next lines the background command prints.
- `<!-- stop: NAME -->`: Ctrl-C (SIGINT) to it; the block is the rest of what it prints, and it
  must exit 0.

Output is compared line by line after the parts that change from run to run are replaced by
placeholders (clock times, dates, run and pool ids, durations, the home directory, the host name),
so the README shows a real run's output and a changed message or column fails the test.

`python tests/e2e/test_readme.py --update` runs the tutorial and writes what it printed into the
README, for a reviewer to read in the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- tutorial -->", "<!-- /tutorial -->"
HOME_SHOWN = "/home/me"  # the reader's home, as the README shows it
HOST_SHOWN = "myhost"
DIRECTIVE = re.compile(r"<!-- (background|output of|stop): ([\w-]+) -->")
LATEST_START_SECOND = 30  # `up` starts early in a minute, so no cron fire falls inside the tutorial


@dataclass
class Block:
    first: int  # index in the README's lines of the block's first content line
    lines: list[str]
    directive: str = ""  # "", "background", "output of", "stop"
    name: str = ""

    def steps(self) -> list[tuple[str, list[str]]]:
        """(command, shown output) pairs; a block without `$` is output only (command "")."""
        steps: list[tuple[str, list[str]]] = []
        for line in self.lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
            else:
                steps.append(("", [line]))
        return steps or [("", [])]


def blocks(text: str) -> list[Block]:
    lines = text.split("\n")
    start, end = lines.index(START), lines.index(END)
    found: list[Block] = []
    i = start
    while i < end:
        if lines[i].strip() == "```console":
            j = lines.index("```", i + 1)
            before = next((line for line in reversed(lines[start:i]) if line.strip()), "")
            match = DIRECTIVE.fullmatch(before.strip())
            block = Block(i + 1, lines[i + 1 : j])
            if match:
                block.directive, block.name = match.groups()
            found.append(block)
            i = j
        i += 1
    return found


PLACEHOLDERS = [
    (re.compile(r"\b\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \w+ \d{4}\b"), "<date>"),  # date(1)
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:?\d\d|Z)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d(:\d\d)?\b"), "<clock>"),
    (re.compile(r"\b([\w-]+)\.[0-9a-f]{8}\b"), r"\1.<id>"),  # a job's run
    (re.compile(r"\brun-[0-9a-f]{12}\b"), "run-<id>"),
    (re.compile(r"\b[\w.-]+-\d+-[0-9a-f]{6}\b"), "<pool>"),
    (re.compile(r"\b\d+(\.\d+)?(ms|s|m|h)\b"), "<duration>"),
    (re.compile(r" +"), " "),
]


def normal(line: str) -> str:
    for pattern, placeholder in PLACEHOLDERS:
        line = pattern.sub(placeholder, line)
    return line.strip()


@dataclass
class Session:
    """One reader's terminal: an empty directory, a fresh home, commands in the background."""

    root: Path
    background: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # lines of each background's output consumed

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.cwd = self.home / "demo"
        self.cwd.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUEUECTL_", "XDG_"))}
        self.env = dict(env, HOME=str(self.home), PYTHONUNBUFFERED="1")

    def shown(self, text: str) -> list[str]:
        """Output as the README shows it: the home and host names a reader would see."""
        text = text.replace(str(self.home), HOME_SHOWN)
        text = re.sub(rf"\b{re.escape(os.uname().nodename)}\b", HOST_SHOWN, text)
        return [line.rstrip() for line in text.rstrip("\n").split("\n")] if text.strip() else []

    def run(self, command: str) -> list[str]:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        return self.shown(done.stdout.decode())

    def start(self, name: str, command: str) -> None:
        log = self.root / f"{name}.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background[name] = (proc, log)
        self.seen[name] = 0

    def lines_of(self, name: str) -> list[str]:
        return self.shown(self.background[name][1].read_text())

    def next_lines(self, name: str, count: int | None, deadline: float = 30.0) -> list[str]:
        """The next `count` lines NAME prints (None: all it prints until it is quiet for 1.5 s)."""
        end = time.monotonic() + deadline
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < end:
            lines = self.lines_of(name)[self.seen[name] :]
            if count is not None and len(lines) >= count:
                break
            if len(lines) != last:
                last, quiet_since = len(lines), time.monotonic()
            elif count is None and lines and time.monotonic() - quiet_since > 1.5:
                break
            time.sleep(0.05)
        lines = self.lines_of(name)[self.seen[name] :]
        lines = lines if count is None else lines[:count]
        self.seen[name] += len(lines)
        return lines

    def stop(self, name: str) -> int:
        proc, _ = self.background[name]
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=60)

    def close(self) -> None:
        for proc, _ in self.background.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for_early_in_a_minute() -> None:
    """Start `up` between seconds 1 and 30 of a minute: its cron job then fires after the tutorial."""
    second = time.time() % 60
    if not 1 <= second <= LATEST_START_SECOND:
        time.sleep((61 - second) % 60)


def play(session: Session, block: Block, update: bool) -> list[tuple[str, list[str], list[str]]]:
    """Run one block; (command, shown, got) for each of its steps."""
    results = []
    for command, shown in block.steps():
        count = None if update else len(shown)
        if block.directive == "background":
            wait_for_early_in_a_minute()
            session.start(block.name, command)
            got = session.next_lines(block.name, count)
        elif block.directive == "output of":
            got = session.next_lines(block.name, count)
        elif block.directive == "stop":
            code = session.stop(block.name)
            assert code == 0, f"{block.name} exited {code} on Ctrl-C"
            got = session.lines_of(block.name)[session.seen[block.name] :]
        else:
            got = session.run(command) if command else shown
        results.append((command, shown, got))
    return results


def test_the_readme_tutorial_runs_as_written(tmp_path: Path) -> None:
    session = Session(tmp_path)
    try:
        for block in blocks(README.read_text()):
            for command, shown, got in play(session, block, update=False):
                what = f"$ {command}" if command else f"the output of {block.name}"
                assert [normal(line) for line in got] == [normal(line) for line in shown], (
                    f"README line {block.first + 1}, {what}: the README shows\n"
                    + "\n".join(shown)
                    + "\n---- but it printed\n"
                    + "\n".join(got)
                )
    finally:
        session.close()


def update() -> None:
    """Run the tutorial and write what each command printed into the README."""
    lines = README.read_text().split("\n")
    root = Path(tempfile.mkdtemp(prefix="queuectl-readme-"))
    session = Session(root)
    try:
        for block in reversed([(b, play(session, b, update=True)) for b in blocks("\n".join(lines))]):
            source, results = block
            new: list[str] = []
            for command, _, got in results:
                new += ([f"$ {command}"] if command else []) + got
            lines[source.first : source.first + len(source.lines)] = new
    finally:
        session.close()
        shutil.rmtree(root, ignore_errors=True)
    README.write_text("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/e2e/test_readme.py --update")
    update()
