"""DBN files as Databento's decoder reads them: records, metadata, symbology, built-in specs.

Everything here goes through `databento_dbn` (`DBNDecoder`, `Metadata`); nothing parses DBN
by hand. `featureplane.sources.databento.reader` builds messages on top.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

from databento_dbn import (
    Compression,
    DBNDecoder,
    DBNError,
    Metadata,
    VersionUpgradePolicy,
)

from featureplane.errors import SourceFormatError
from featureplane.instruments import InstrumentSpec
from featureplane.sources.databento.stats import DatabentoStats

READ_BYTES = 1 << 20
"""Bytes fed to the decoder at a time."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# databento-dbn's stub types enum members by their values (str, int): cast them back.
_ZSTD = cast(Compression, Compression.ZSTD)
_PLAIN = cast(Compression, Compression.NONE)
_AS_IS = cast(VersionUpgradePolicy, VersionUpgradePolicy.AS_IS)

BUILTIN_TICKS = {
    "ES": "0.25",
    "MES": "0.25",
    "NQ": "0.25",
    "MNQ": "0.25",
    "RTY": "0.1",
    "M2K": "0.1",
    "YM": "1",
    "MYM": "1",
}
"""Tick size of CME equity-index futures by product root (lot: 1 contract)."""
_FUTURE = re.compile(r"^([A-Z0-9]+)[FGHJKMNQUVXZ]\d{1,2}$")
"""An outright future's raw symbol: root, month code, one- or two-digit year (ESH4, NQZ24)."""


def builtin_spec(symbol: str) -> InstrumentSpec | None:
    """The spec of a CME equity-index future by its raw symbol (ESH4 -> tick 0.25), or None."""
    match = _FUTURE.match(symbol)
    tick = BUILTIN_TICKS.get(match.group(1)) if match else None
    return None if tick is None else InstrumentSpec(symbol, tick, "1", "GLBX")


class DbnRecords:
    """Decoded records of a DBN file, list by list, after the metadata; then `leftover`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.leftover = 0
        self.metadata: Metadata | None = None

    def __iter__(self) -> Iterator[list[Any]]:
        with open(self.path, "rb") as f:
            head = f.read(len(ZSTD_MAGIC))
            compression = _ZSTD if head == ZSTD_MAGIC else _PLAIN
            # AS_IS: MBO records are the same in every DBN version, and the metadata then
            # reports the file's own version.
            decoder = DBNDecoder(compression=compression, upgrade_policy=_AS_IS)
            data = head
            while data:
                try:
                    records = decoder.write_and_decode(data)
                except DBNError as exc:
                    raise SourceFormatError(self.path, None, f"not a DBN file: {exc}") from None
                if records and self.metadata is None:
                    first = records[0]
                    if not isinstance(first, Metadata):
                        raise SourceFormatError(self.path, None, "no DBN metadata")
                    self.metadata = first
                    records = records[1:]
                if records:
                    yield records
                data = f.read(READ_BYTES)
        if self.metadata is None:
            raise SourceFormatError(self.path, None, "no DBN metadata (empty or not DBN)")
        self.leftover = len(decoder.buffer())


def decimal_px(price: int) -> str:
    """A DBN price (1e-9 units) as a plain decimal string: 4800100000000 -> 4800.1."""
    return f"{Decimal(price).scaleb(-9).normalize():f}"


def read_metadata(path: str) -> Metadata:
    """The file's metadata, from its first chunk."""
    records = DbnRecords(path)
    chunks = iter(records)
    next(chunks, None)
    chunks.close()  # type: ignore[attr-defined]
    if records.metadata is None:
        raise SourceFormatError(path, None, "no DBN metadata (empty or not DBN)")
    if records.metadata.schema is None or str(records.metadata.schema) != "mbo":
        raise SourceFormatError(
            path, None, f"schema {records.metadata.schema}: only MBO files are read"
        )
    return records.metadata


def describe(stats: DatabentoStats, md: Metadata) -> None:
    stats.dbn_version = md.version
    stats.dataset = md.dataset
    stats.schema = None if md.schema is None else str(md.schema)
    stats.start_ns = md.start
    stats.end_ns = md.end
    stats.stype_in = None if md.stype_in is None else str(md.stype_in)
    stats.stype_out = str(md.stype_out)


def symbology(md: Metadata) -> dict[str, int]:
    """Symbol -> instrument_id from the metadata's mappings.

    Symbols come in the order of the request (`md.symbols`), then any other mapped symbol by
    name: the mappings are a hash map, and symbol ids must not depend on its order. A symbol
    mapped to several ids over the file's dates (a roll of a continuous symbol) keeps its
    first; an id reached from two symbols keeps the first symbol.
    """
    mappings = md.mappings
    names = [s for s in md.symbols if s in mappings]
    names += sorted(set(mappings) - set(names))
    out: dict[str, int] = {}
    seen: set[int] = set()
    for symbol in names:
        for interval in mappings[symbol]:
            try:
                instrument_id = int(interval["symbol"])
            except ValueError:
                continue
            if instrument_id not in seen and symbol not in out:
                out[symbol] = instrument_id
                seen.add(instrument_id)
    return out


__all__ = [
    "BUILTIN_TICKS",
    "READ_BYTES",
    "ZSTD_MAGIC",
    "DbnRecords",
    "builtin_spec",
    "decimal_px",
    "describe",
    "read_metadata",
    "symbology",
]
