"""log-max-bytes holds at every moment, however fast a command writes, and the pool's memory stays small."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import Queue, wait_for

CAP = 1024 * 1024
MARGIN = 64 * 1024
RSS_LIMIT_KB = 50 * 1024
MARKER = "bytes of earlier output dropped here"


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Sampler:
    """Samples a log's size and a pool's RSS until told to stop."""

    def __init__(self, log: Path, pool_pid: int) -> None:
        self.log, self.pool_pid = log, pool_pid
        self.sizes: list[int] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sizes.append(_size(self.log))
            self.rss.append(_rss_kb(self.pool_pid))
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _lines(proc: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    return lines


def _logs_dir(q: Queue) -> Path:
    """Where the store's attempt logs go, as a run that printed something shows it."""
    q("enqueue", "--id", "probe", "--command", "echo probe")
    q.burst()
    return Path(q.run("probe")["history"][0]["log_path"]).parent


def _log_path(q: Queue, run_id: str) -> Path:
    return _logs_dir(q) / f"{run_id}.1.log"


def _check_kept_ends(text: str) -> None:
    assert text.startswith("START-OF-OUTPUT\n")  # the start is kept...
    assert MARKER in text  # ...with a marker of what was cut...
    assert text.endswith("END-OF-OUTPUT\n")  # ...and the end


def test_a_200_mb_flood_never_passes_the_cap_and_keeps_both_ends(q: Queue) -> None:
    log = _log_path(q, "flood")
    q("config", "set", "log-max-bytes", str(CAP))
    q("enqueue", "--id", "flood", "--command", "echo START-OF-OUTPUT; yes | head -c 200000000; echo END-OF-OUTPUT")
    pool = q.start_pool("--count", "1")
    lines = _lines(pool)
    sampler = Sampler(log, pool.pid)
    try:
        wait_for(lambda: any("completed flood" in line for line in lines), timeout=120, what="the flood to end")
    finally:
        sampler.stop()
    q("worker", "stop")
    pool.wait(timeout=30)
    written = [s for s in sampler.sizes if s]
    assert len(written) > 10, "the log was not sampled while the command ran"
    assert max(sampler.sizes) <= CAP + MARGIN, f"the log reached {max(sampler.sizes)} bytes against a cap of {CAP}"
    assert max(sampler.rss) < RSS_LIMIT_KB, f"the pool's RSS reached {max(sampler.rss)} kB"
    _check_kept_ends(log.read_text())
    run = q.run("flood")
    assert run["state"] == "completed" and run["output_tail"].endswith("END-OF-OUTPUT\n")
    assert MARKER in q("logs", "flood").stdout


def test_a_writer_left_behind_cannot_grow_the_log_after_its_run(q: Queue) -> None:
    log = _log_path(q, "bg")
    q("config", "set", "log-max-bytes", str(CAP))
    q("enqueue", "--id", "bg", "--command", "(yes | head -c 200000000; echo END-OF-OUTPUT) & echo START-OF-OUTPUT")
    pool = q.start_pool("--count", "1")
    lines = _lines(pool)
    wait_for(lambda: any("completed bg" in line for line in lines), timeout=60, what="bg to complete")
    at_completion = _size(log)
    sizes = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the writer would have written ~100s of MB by now
        sizes.append(_size(log))
        time.sleep(0.01)
    q("worker", "stop")
    pool.wait(timeout=30)
    assert max(sizes) == at_completion <= CAP + MARGIN


def test_a_kept_daemon_writing_after_its_run_stays_within_the_cap(q: Queue) -> None:
    log = _log_path(q, "daemon")
    q("config", "set", "log-max-bytes", str(CAP))
    command = "(echo START-OF-OUTPUT; yes | head -c 200000000; echo END-OF-OUTPUT) &"
    q("enqueue", "--id", "daemon", "--keep-children", "--command", command)
    pool = q.start_pool("--count", "1")
    sampler = Sampler(log, pool.pid)
    try:
        wait_for(lambda: q.state("daemon") == "completed", timeout=60, what="the run to complete")
        wait_for(lambda: log.read_bytes().endswith(b"END-OF-OUTPUT\n") if log.exists() else False, timeout=120)
    finally:
        sampler.stop()
    q("worker", "stop")
    pool.wait(timeout=30)
    assert max(sampler.sizes) <= CAP + MARGIN, f"the log reached {max(sampler.sizes)} bytes against a cap of {CAP}"
    assert max(sampler.rss) < RSS_LIMIT_KB
    _check_kept_ends(log.read_text())


def test_an_attempt_that_printed_nothing_leaves_no_file_even_when_timed_out(q: Queue) -> None:
    for name in ("quiet1", "quiet2"):
        q("enqueue", "--id", name, "--timeout", "1", "--retries", "0", "--command", "sleep 30")
    q("enqueue", "--id", "silent", "--command", "true")
    q.burst("--count", "2", dead=True)
    assert {q.state(n) for n in ("quiet1", "quiet2")} == {"dead"}
    assert all(q.run(n)["history"][0]["log_path"] is None for n in ("quiet1", "quiet2", "silent"))
    assert sorted(os.listdir(_logs_dir(q))) == ["probe.1.log"]
