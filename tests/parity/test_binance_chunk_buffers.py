"""The Rust parser fills later chunks in the event buffers of chunks numpy has let go
(`recycled.rs`): buffers come back, and a chunk (or a view of it) still held is never written."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from featureplane.sources import BinanceReader
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust


@pytest.fixture(autouse=True)
def _rust_parser() -> None:
    require_rust("parser")


def _address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def test_buffers_come_back_and_held_chunks_stay_as_they_were() -> None:
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    reference = BinanceReader(capture, parser="python", chunk_rows=4096).read().events
    copies: list[np.ndarray] = []
    held: dict[int, np.ndarray] = {}
    addresses: list[int] = []
    for i, chunk in enumerate(BinanceReader(capture, parser="rust", chunk_rows=4096)):
        copies.append(chunk.copy())
        addresses.append(_address(chunk))
        if i % 3 == 0:
            held[i] = chunk[1:-1]  # a view keeps the buffer as much as the chunk does
        del chunk
        gc.collect()
    assert len(copies) > 60
    # Let go of, buffers are reused: far fewer distinct buffers than chunks.
    reused = len(addresses) - len(set(addresses))
    assert reused > len(copies) // 3, (reused, len(copies))
    # Held ones (to the end) were never handed out again, and still hold their rows.
    for i, view in held.items():
        assert _address(view) - view.itemsize not in addresses[i + 1 :]
        assert np.array_equal(view, copies[i][1:-1])
    # And every row is the reference parser's.
    assert np.array_equal(np.concatenate(copies), reference)


def test_a_buffer_outliving_its_reader_is_still_sound() -> None:
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    reader = iter(BinanceReader(capture, parser="rust", chunk_rows=4096))
    first = next(reader)
    want = first.copy()
    del reader  # the parser and its pool go; the chunk's buffer stays with the chunk
    gc.collect()
    assert np.array_equal(first, want)
    first["qty"] += 1  # still writable, as before
    assert np.array_equal(first["qty"], want["qty"] + 1)
