"""Binance recorder captures through both parsers (Rust and the Python reference).

Input: a flags byte, then capture text; a form feed (0x0c) starts the next file of the chain
(up to 3 files). Flags: bits 0-1 the market (0 detect, 1 usdm, 2 spot, 3 coinm), bit 2
`errors="raise"` (else skip), bit 3 `on_missing_snapshot="skip"` (else raise), bit 4 gzip,
bit 5 small chunks (7 rows), bit 6 a grid coarser than the data (BTCUSDT 0.1 / 0.01).

Both parsers must give the same chunks (events and book tickers), the same stats and the same
error (class, text, file and line); then the common checks (valid rows, engine parity). Where
`parser="rust"` refuses a symbol it does not take (a `SourceFormatError`), `parser="auto"`
(which reads it with the reference) is compared instead.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from featureplane.errors import FeatureplaneError, SourceFormatError
from featureplane.instruments import InstrumentSpec
from featureplane.sources.binance.reader import BinanceReader
from featureplane.sources.binance.stats import BinanceStats

from . import common

SOURCE = "binance"
MODULES = ("featureplane.sources.binance", "featureplane.sources._lines")
MARKETS = (None, "usdm", "spot", "coinm")
COARSE = InstrumentSpec("BTCUSDT", "0.1", "0.01")
NOT_TAKEN = "a non-ASCII symbol or a grid beyond the Rust parser's integers"
"""`parser="rust"` refusing a symbol (`sources.binance.rust.use_rust`)."""
_dir = Path(".")


@dataclass
class Outcome:
    chunks: list[tuple[common.Rows, common.Rows]]
    stats: BinanceStats | None
    error: FeatureplaneError | None
    symbols: Any = None


def setup(workdir: Path) -> None:
    global _dir
    _dir = workdir


def _read(
    paths: list[Path], parser: Literal["rust", "python", "auto"], kwargs: dict[str, Any]
) -> Outcome:
    chunks: list[tuple[common.Rows, common.Rows]] = []
    reader = None
    try:
        reader = BinanceReader(paths, parser=parser, **kwargs)
        chunks.extend((c.events.copy(), c.book_tickers.copy()) for c in reader.chunks())
    except FeatureplaneError as exc:  # anything else escapes: a finding
        return Outcome(chunks, None if reader is None else reader.stats, exc)
    return Outcome(chunks, reader.stats, None, reader.symbols)


def one_input(data: bytes) -> None:
    opts, text = common.flags(data)
    kwargs: dict[str, Any] = {
        "market": MARKETS[opts & 3],
        "errors": "raise" if opts & 4 else "skip",
        "on_missing_snapshot": "skip" if opts & 8 else "raise",
    }
    if opts & 32:
        kwargs["chunk_rows"] = 7
    if opts & 64:
        kwargs["instruments"] = [COARSE]
    paths = []
    for i, part in enumerate(common.split(text, b"\x0c", 3)):
        path = _dir / f"capture_{i}.gz"
        path.write_bytes(gzip.compress(part, compresslevel=1) if opts & 16 else part)
        paths.append(path)
    ref = _read(paths, "python", kwargs)
    rust = _read(paths, "rust", kwargs)
    if isinstance(rust.error, SourceFormatError) and NOT_TAKEN in rust.error.reason:
        # A symbol the Rust parser does not take (not ASCII, a grid beyond its integers):
        # refused by name; "auto" reads it with the reference, which must then agree.
        rust = _read(paths, "auto", kwargs)
    common.check(
        type(ref.error) is type(rust.error), f"parsers raise {ref.error!r} / {rust.error!r}"
    )
    if ref.error is not None:
        common.check(str(ref.error) == str(rust.error), f"{ref.error} / {rust.error}")
        for attr in ("path", "line", "reason"):
            common.check(
                getattr(ref.error, attr, None) == getattr(rust.error, attr, None),
                f"parsers' errors differ in {attr}",
            )
    common.same_arrays([c[0] for c in ref.chunks], [c[0] for c in rust.chunks], "events")
    common.same_arrays([c[1] for c in ref.chunks], [c[1] for c in rust.chunks], "book tickers")
    common.check(ref.stats == rust.stats, "parsers' stats differ")
    if rust.error is not None or rust.stats is None:
        return
    events = common.concat([c[0] for c in rust.chunks])
    common.check_events(events, len(rust.symbols), rust.stats.events)
    common.check_engine(rust.symbols, events)
