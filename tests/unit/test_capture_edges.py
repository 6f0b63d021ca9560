"""capture.Output at its edges: exactly the cap, long moves, a log that cannot be written, closing twice."""

from __future__ import annotations

import os
import random
import select
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl.capture import CHUNK, MARK_WIDTH, MIN_CAP, Output, marker


class Pipe:
    """A pipe whose read end an Output owns (and closes); the write end is closed once, by `done`."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        self.outputs: list[Output] = []

    def output(self, path: Path, cap: int) -> Output:
        out = Output(self.read_end, str(path), cap)
        self.outputs.append(out)
        return out

    def write(self, data: bytes) -> None:
        os.write(self.write_end, data)

    def done(self) -> None:
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    made = Pipe()
    yield made
    made.done()
    for out in made.outputs:
        out.close()


def _stream(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _pour(out: Output, pipe: Pipe, data: bytes) -> None:
    """Write `data` through the pipe in pieces the pipe can hold, pumping after each until it is empty."""
    for at in range(0, len(data), 60_000):
        pipe.write(data[at : at + 60_000])
        while not out.pump() and select.select([out.fd], [], [], 0)[0]:
            pass


def _tail_region(data: bytes, cap: int) -> bytes:
    return data[cap // 2 + MARK_WIDTH :]


def test_the_marker_starts_the_cut_with_its_own_line() -> None:
    text = marker(123)
    assert len(text) == MARK_WIDTH and text.endswith(b"\n")
    assert text.startswith(b"\n[queuectl: 123 bytes of earlier output dropped here; the end of the output follows]")


def test_a_cap_of_one_byte_means_the_smallest_cap_not_none(tmp_path: Path, pipe: Pipe) -> None:
    out = pipe.output(tmp_path / "x.log", 1)
    _pour(out, pipe, _stream(20_000))
    assert out.cap == MIN_CAP and out.size <= MIN_CAP and out.cut > 0


def test_output_of_exactly_the_cap_is_kept_whole(tmp_path: Path, pipe: Pipe) -> None:
    out = pipe.output(tmp_path / "x.log", 10_000)
    data = _stream(10_000)
    _pour(out, pipe, data)
    assert (tmp_path / "x.log").read_bytes() == data and out.cut == 0


@pytest.mark.parametrize("before", [9_999, 9_998, 10_000])
def test_the_bytes_just_below_the_cap_are_kept_in_the_tail(tmp_path: Path, pipe: Pipe, before: int) -> None:
    """The file is filled to the cap before the first cut: no byte between the head and the new output is lost."""
    cap = 10_000
    out = pipe.output(tmp_path / "x.log", cap)
    data = _stream(before + 10, seed=before)
    _pour(out, pipe, data[:before])
    _pour(out, pipe, data[before:])
    log = (tmp_path / "x.log").read_bytes()
    assert log[: cap // 2] == data[: cap // 2]
    tail = _tail_region(log, cap)
    assert data.endswith(tail) and len(tail) == (cap - cap // 2 - MARK_WIDTH) // 2


def test_a_long_tail_is_moved_intact(tmp_path: Path, pipe: Pipe) -> None:
    """With a large cap the kept half of the tail is more than one CHUNK: moved in pieces, every byte in order."""
    cap = 400_000
    keep = (cap - cap // 2 - MARK_WIDTH) // 2
    assert keep > CHUNK + 10
    out = pipe.output(tmp_path / "x.log", cap)
    data = _stream(cap + 10)
    _pour(out, pipe, data)
    log = (tmp_path / "x.log").read_bytes()
    assert log[cap // 2 : cap // 2 + MARK_WIDTH] == marker(out.cut)
    assert _tail_region(log, cap) == data[-keep:]


def test_a_large_write_keeps_exactly_half_the_tail_region(tmp_path: Path, pipe: Pipe) -> None:
    cap = 10_000
    out = pipe.output(tmp_path / "x.log", cap)
    data = _stream(50_000)
    _pour(out, pipe, data)
    keep = (cap - cap // 2 - MARK_WIDTH) // 2
    assert out.size == cap // 2 + MARK_WIDTH + keep == os.path.getsize(tmp_path / "x.log")
    assert _tail_region((tmp_path / "x.log").read_bytes(), cap) == data[-keep:]
    assert out.cut == len(data) - cap // 2 - keep


def test_the_log_is_the_owner_s_only_whatever_the_umask(tmp_path: Path, pipe: Pipe) -> None:
    old = os.umask(0)
    try:
        out = pipe.output(tmp_path / "x.log", 0)
        _pour(out, pipe, b"secret\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "x.log").st_mode) == 0o600


def test_pump_says_whether_the_writers_are_done(tmp_path: Path, pipe: Pipe) -> None:
    out = pipe.output(tmp_path / "x.log", 0)
    assert out.pump() is False  # nothing yet, writers still there
    pipe.write(b"a" * 100)
    assert out.pump(reads=1) is False  # read what was there; the pipe is still open
    pipe.write(b"b" * 100)
    pipe.done()
    assert out.pump() is True
    assert (tmp_path / "x.log").read_bytes() == b"a" * 100 + b"b" * 100
    out.close()
    assert out.pump() is True  # closed: nothing more will come


def test_a_log_that_cannot_be_written_still_drains_the_pipe(tmp_path: Path, pipe: Pipe) -> None:
    """The command must never block on a full pipe because its log failed (a full disk, a removed directory)."""
    path = tmp_path / "gone" / "x.log"
    out = pipe.output(path, 0)
    pipe.write(b"first\n")
    assert out.pump() is False and out.broken
    (tmp_path / "gone").mkdir()  # the disk has room again: the log stays given up (no hole in it)
    pipe.write(b"x" * 60_000)
    pipe.done()
    assert out.pump() is True  # drained to the end in one go
    assert not path.exists()


def test_closing_twice_closes_once(tmp_path: Path, pipe: Pipe) -> None:
    out = pipe.output(tmp_path / "x.log", 0)
    pipe.write(b"hello\n")
    out.pump()
    log_fd = out.file
    out.close()
    for fd in (pipe.read_end, log_fd):
        with pytest.raises(OSError):
            os.fstat(fd)
    reused = os.open(os.devnull, os.O_RDONLY)  # takes a number just freed
    try:
        out.close()
        os.fstat(reused)  # still open: the second close did not close it
    finally:
        os.close(reused)
