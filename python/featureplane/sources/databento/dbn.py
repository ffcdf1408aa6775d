"""DBN files as Databento's decoder reads them: records, metadata, symbology, built-in specs.

Everything here goes through `databento_dbn` (`DBNDecoder`, `Metadata`); nothing parses DBN
by hand. `featureplane.sources.databento.reader` builds messages on top.
"""

from __future__ import annotations

import os
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
    """Decoded records of a DBN file, list by list, after the metadata; then `damage`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.leftover = 0
        self.damage: str | None = None
        """Why the file ends early (a zstd frame cut short, bytes of an unfinished record), or
        None: set once the records are read."""
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
                except RuntimeError as exc:
                    # The zstd layer's own errors ("Data corruption detected", "Unsupported
                    # frame parameter"): the stream is damaged, not merely cut short.
                    what = "a damaged zstd stream" if compression == _ZSTD else "not a DBN file"
                    raise SourceFormatError(self.path, None, f"{what}: {exc}") from None
                except BaseException as exc:
                    # The decoder panics on some malformed headers; pyo3 raises that as a
                    # PanicException (a BaseException): still a file that is not DBN.
                    if type(exc).__name__ != "PanicException":
                        raise
                    reason = f"not a DBN file: the decoder failed ({exc})"
                    raise SourceFormatError(self.path, None, reason) from None
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
        # A zstd stream cut at a block boundary decodes to whole records: only its frames tell
        # that it ends early.
        cut = zstd_damage(self.path) if compression == _ZSTD else None
        if self.leftover:
            tail = f"{self.leftover} bytes after the last whole record"
            cut = f"{cut}; {tail}" if cut else tail
        self.damage = cut


ZSTD_FRAME_MAGIC = 0xFD2FB528
_SKIPPABLE = range(0x184D2A50, 0x184D2A60)


def zstd_damage(path: str) -> str | None:
    """Why the zstd frames of `path` do not end where the file does, or None when every frame
    is complete.

    Only the frame and block headers are read (RFC 8878, sections 3.1.1 and 3.1.2), not the
    data: a stream cut at a block boundary decompresses without an error, and its last frame
    then lacks its last block (or its checksum).
    """
    size = os.path.getsize(path)
    pos = 0
    with open(path, "rb") as f:

        def read(at: int, n: int) -> bytes:
            f.seek(at)
            return f.read(n)

        while pos < size:
            head = read(pos, 6)
            if len(head) < 4:
                return f"the zstd stream ends inside a frame header at byte {pos}"
            magic = int.from_bytes(head[:4], "little")
            if magic in _SKIPPABLE:
                if len(head) < 8 and len(read(pos, 8)) < 8:
                    return f"the zstd stream ends inside a skippable frame at byte {pos}"
                pos += 8 + int.from_bytes(read(pos + 4, 4), "little")
                if pos > size:
                    return "the zstd stream ends inside a skippable frame"
                continue
            if magic != ZSTD_FRAME_MAGIC:
                return f"no zstd frame at byte {pos}"
            if len(head) < 5:
                return f"the zstd stream ends inside a frame header at byte {pos}"
            fhd = head[4]
            single = (fhd >> 5) & 1
            checksum = (fhd >> 2) & 1
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            last = 0
            while not last:
                block = read(pos, 3)
                if len(block) < 3:
                    return "the zstd stream ends before its frame's last block"
                value = int.from_bytes(block, "little")
                last, kind, n = value & 1, (value >> 1) & 3, value >> 3
                if kind == 3:
                    return f"a reserved zstd block type at byte {pos}"
                pos += 3 + (1 if kind == 1 else n)
                if pos > size:
                    return "the zstd stream ends inside a block"
            pos += 4 * checksum
            if pos > size:
                return "the zstd stream ends inside its frame checksum"
    return None


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
    try:
        # The symbology's dates become `datetime.date`s when it is first read: a date that
        # does not exist (year 0) is a ValueError there.
        records.metadata.mappings  # noqa: B018
    except ValueError as exc:
        raise SourceFormatError(path, None, f"a symbology that does not read: {exc}") from None
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
