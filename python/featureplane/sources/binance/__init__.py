"""Binance USD-M futures and spot recorder captures (`<local_ts_ns> <json>` lines).

The REST-snapshot sync rule is applied per symbol and symbols are merged in local-time order.
Two parsers give the same events: the Python reference (`parse`, `sync`) and the Rust one in
`featureplane._core` (`rust`), held equal by a parity suite; docs/sources/binance.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.sources.binance.format import FORMAT

if TYPE_CHECKING:
    from featureplane.sources.binance.reader import (
        BOOK_TICKER_DTYPE,
        BUILTIN_INSTRUMENTS,
        DEFAULT_CHUNK_ROWS,
        MARKETS,
        PARSERS,
        BinanceChunk,
        BinanceReader,
        BinanceReplay,
        Market,
        Parser,
        iter_binance,
        read_binance,
    )
    from featureplane.sources.binance.stats import (
        BinanceStats,
        FileInfo,
        SymbolSync,
    )

_EXPORTS = {
    "BOOK_TICKER_DTYPE": ".reader",
    "BUILTIN_INSTRUMENTS": ".reader",
    "BinanceChunk": ".reader",
    "BinanceReader": ".reader",
    "BinanceReplay": ".reader",
    "BinanceStats": ".stats",
    "DEFAULT_CHUNK_ROWS": ".reader",
    "FileInfo": ".stats",
    "MARKETS": ".reader",
    "Market": ".reader",
    "PARSERS": ".reader",
    "Parser": ".reader",
    "SymbolSync": ".stats",
    "iter_binance": ".reader",
    "read_binance": ".reader",
}

__all__ = [
    "BOOK_TICKER_DTYPE",
    "BUILTIN_INSTRUMENTS",
    "DEFAULT_CHUNK_ROWS",
    "FORMAT",
    "MARKETS",
    "PARSERS",
    "BinanceChunk",
    "BinanceReader",
    "BinanceReplay",
    "BinanceStats",
    "FileInfo",
    "Market",
    "Parser",
    "SymbolSync",
    "iter_binance",
    "read_binance",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
