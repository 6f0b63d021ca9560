"""capture.Output: the log holds its cap after every chunk, and keeps the start and the end of the output."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from queuectl.capture import MARK_WIDTH, MIN_CAP, Output, marker


def _feed(tmp_path: Path, cap: int, chunks: list[bytes]) -> tuple[Output, list[int]]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    out = Output(read_end, str(tmp_path / "x.log"), cap)
    sizes = []
    for chunk in chunks:
        os.write(write_end, chunk)
        out.pump()
        sizes.append(out.size)
        assert os.path.getsize(out.path) == out.size
    os.close(write_end)
    assert out.pump()
    out.close()
    return out, sizes


@pytest.mark.parametrize("cap", [MIN_CAP, 10_000, 65_536, 300_000])
def test_the_file_holds_the_cap_after_every_chunk_and_keeps_both_ends(tmp_path: Path, cap: int) -> None:
    rng = random.Random(cap)
    stream = bytes(rng.randrange(256) for _ in range(cap * 5))
    chunks, at = [], 0
    while at < len(stream):
        n = rng.choice([1, 7, 100, 4096, 30_000, 65_536])
        chunks.append(stream[at : at + n])
        at += n
    out, sizes = _feed(tmp_path, cap, chunks)
    assert max(sizes) <= cap
    data = (tmp_path / "x.log").read_bytes()
    head = cap // 2
    assert data[:head] == stream[:head]
    assert data[head : head + MARK_WIDTH] == marker(out.cut)
    tail = data[head + MARK_WIDTH :]
    assert stream.endswith(tail) and len(tail) >= (cap - head - MARK_WIDTH) // 2 - 65_536
    assert out.cut == len(stream) - head - len(tail)


def test_output_under_the_cap_is_kept_whole_and_nothing_printed_makes_no_file(tmp_path: Path) -> None:
    out, _ = _feed(tmp_path, 10_000, [b"hello\n", b"world\n"])
    assert (tmp_path / "x.log").read_bytes() == b"hello\nworld\n" and out.cut == 0
    (tmp_path / "x.log").unlink()
    out, _ = _feed(tmp_path, 10_000, [])
    assert not out.wrote and not (tmp_path / "x.log").exists()


def test_a_cap_of_zero_keeps_everything(tmp_path: Path) -> None:
    out, _ = _feed(tmp_path, 0, [b"x" * 60_000] * 5)
    assert out.size == 300_000 and out.cut == 0
