"""Line blocks of plain and gzip files: every line once, in order, whatever the block size."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from featureplane.sources._lines import iter_line_blocks, iter_text_blocks

LINES = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=12)


def _write(tmp: Path, body: bytes, zipped: bool) -> Path:
    path = tmp / ("f.gz" if zipped else "f.txt")
    path.write_bytes(gzip.compress(body) if zipped else body)
    return path


@settings(max_examples=150, deadline=None)
@given(lines=LINES, last_newline=st.booleans(), block=st.integers(1, 64), zipped=st.booleans())
def test_blocks_hold_every_line(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    last_newline: bool,
    block: int,
    zipped: bool,
) -> None:
    body = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    assume(zipped or not body.startswith(b"\x1f\x8b"))  # plain text read as gzip by its magic
    tmp = tmp_path_factory.mktemp("lines")
    path = _write(tmp, body, zipped)
    expected = body.split(b"\n")
    if expected[-1] == b"":  # a final newline ends the last line; it starts no new one
        expected.pop()
    got = [line for lines_ in iter_line_blocks(path, block) for line in lines_]
    assert got == expected
    texts = list(iter_text_blocks(path, block))
    assert b"".join(texts) == body
    assert all(t.endswith(b"\n") for t in texts[:-1])  # blocks of whole lines


def test_a_line_longer_than_many_blocks(tmp_path: Path) -> None:
    long = b"x" * 100_000
    path = _write(tmp_path, b"a\n" + long + b"\nb", zipped=True)
    assert [line for b in iter_line_blocks(path, 1_000) for line in b] == [b"a", long, b"b"]
    assert b"".join(iter_text_blocks(path, 1_000)) == b"a\n" + long + b"\nb"
