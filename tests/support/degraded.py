"""Degraded inputs made from the real captures: the faults real data has, at known places.

Everything here is cut out of or derived from `../shared/data` and written to a test's temporary
folder; nothing is copied into the repository.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson

from featureplane.engine.facade import FeatureEngine
from featureplane.events import LEVEL, message_bounds
from featureplane.sources import read_binance
from tests.support.datapaths import shared_data

SPOT = "binance-spot-btcusdt-20240808-09"
REST_DEPTH = 1000
"""Levels per side of Binance's REST depth snapshot (`limit=1000`), as the capture's own."""


@dataclass(frozen=True)
class MissingDay:
    """A spot chain whose second file starts past a hole and carries its own REST snapshot."""

    first: Path
    second: Path
    last_update_id: int
    """`lastUpdateId` of the second file's snapshot."""
    snapshot_line: int
    """Line (1-based) of that snapshot in the second file."""
    cut_lines: int
    """Lines of the real second day left out before the second file starts."""


def spot_lines(name: str) -> list[bytes]:
    """The lines of one file of the real spot chain."""
    raw = (shared_data(SPOT) / name).read_bytes()
    return gzip.decompress(raw).rstrip(b"\n").split(b"\n")


def _diffs(lines: list[bytes]) -> list[tuple[int, int, int]]:
    """(line index, U, u) of every depth diff."""
    out = []
    for i, raw in enumerate(lines):
        if b"@depth" in raw[:80]:
            data = orjson.loads(raw.split(b" ", 1)[1])["data"]
            out.append((i, data["U"], data["u"]))
    return out


def missing_day(dest: Path, skip_diffs: int = 1000) -> MissingDay:
    """Write the spot chain with a span missing between its files into `dest`.

    The first file is the real 2024-08-08 file. The second is the real 2024-08-09 file from its
    `skip_diffs`-th diff on (as a recorder restarted after an outage writes it: diffs from the
    subscription on), with the REST snapshot that recorder would have fetched: the book at the
    update id of the 5th diff of the file, 1000 levels a side, written after the 11th diff's
    line (the REST answer arrives after the stream has started). The book comes from replaying
    the real chain, which has no gap.
    """
    dest.mkdir(parents=True, exist_ok=True)
    lines = spot_lines("btcusdt_20240809.gz")
    diffs = _diffs(lines)
    start = diffs[skip_diffs][0]
    lid = diffs[skip_diffs + 4][2]
    after = diffs[skip_diffs + 10][0]

    real = read_binance(sorted(shared_data(SPOT).glob("*.gz")))
    ends = message_bounds(real.events)
    last = real.events[ends - 1]
    book_msg = np.flatnonzero((last["kind"] == LEVEL) & (last["seq"] == lid))[0]
    engine = FeatureEngine(real.symbols)
    engine.process_batch(real.events[: ends[book_msg]])
    bids, asks = engine.lob.snapshot(0)
    spec = real.symbols.spec_of(0)

    def text(steps: int, step: Decimal) -> str:
        return f"{Decimal(steps) * step:.8f}"  # Binance's spot strings: 8 decimals

    def levels(side: list[tuple[int, int]]) -> list[list[str]]:
        return [[text(p, spec.tick_size), text(q, spec.lot_size)] for p, q in side[:REST_DEPTH]]

    snapshot = {"lastUpdateId": int(lid), "bids": levels(bids), "asks": levels(asks)}
    local = int(lines[after].split(b" ", 1)[0]) + 1
    body = [*lines[start : after + 1], b"%d " % local + orjson.dumps(snapshot), *lines[after + 1 :]]
    first = dest / "btcusdt_20240808.gz"
    first.write_bytes((shared_data(SPOT) / first.name).read_bytes())
    second = dest / "btcusdt_20240810.gz"  # the day after a missing one
    second.write_bytes(gzip.compress(b"\n".join(body) + b"\n", compresslevel=1))
    return MissingDay(first, second, int(lid), after - start + 2, start)
