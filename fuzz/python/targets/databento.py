"""Databento DBN (MBO) files, plain `.dbn` or zstd `.dbn.zst` (maybe cut short).

Input: a flags byte, then the DBN bytes (metadata and records, uncompressed). Flags: bit 0
zstd, bit 1 `errors="raise"` (else skip), bit 2 small chunks (3 messages), bits 3-7 where the
zstd stream is cut (0: whole; k: its first k/32 of the bytes).

In skip mode, no record vanishes without a reason: every record decoded is another record type,
an instrument left out, a record skipped under `unknown_instrument` or `bad_timestamp`, or
counted under its action.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from featureplane.errors import FeatureplaneError
from featureplane.sources.databento.reader import DatabentoReader

from . import common

SOURCE = "databento"
MODULES = ("featureplane.sources.databento",)
RECORD_REASONS = ("unknown_instrument", "bad_timestamp")
"""Skip reasons of records dropped before their action is counted."""
_dir = Path(".")


def setup(workdir: Path) -> None:
    global _dir
    _dir = workdir


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


def one_input(data: bytes) -> None:
    opts, blob = common.flags(data)
    if opts & 1:
        blob = zstd(blob)
        if cut := opts >> 3:
            blob = blob[: len(blob) * cut // 32]
    path = _dir / ("f.dbn.zst" if opts & 1 else "f.dbn")
    path.write_bytes(blob)
    try:
        reader = DatabentoReader(
            path,
            errors="raise" if opts & 2 else "skip",
            chunk_messages=3 if opts & 4 else 10_000,
        )
        events = common.concat(list(reader.chunks()))
    except FeatureplaneError:
        return
    stats = reader.stats
    common.check_events(events, len(reader.symbols), stats.events)
    dropped = sum(stats.skipped.get(r, 0) for r in RECORD_REASONS)
    accounted = stats.other_records + stats.filtered_records + sum(stats.actions.values())
    common.check(
        stats.records == accounted + dropped,
        f"{stats.records} records, {accounted} counted, {dropped} skipped",
    )
    common.check_engine(reader.symbols, events)
