"""Every producer of normalized messages (`featureplane.events`): one folder per venue.

- `binance`: Binance USD-M futures and spot recorder captures, the REST-snapshot sync rule
  applied per symbol, symbols merged in local-time order;
- `lobster`: LOBSTER message + orderbook files (order-level messages aggregated to L2);
- `tardis`: tardis.dev `incremental_book_L2` and `trades` CSV files;
- `databento`: Databento MBO (DBN) files, market by order aggregated to L2;
- `hftbacktest`: hftbacktest event arrays, read and exported;
- `sim`: the built-in order-flow simulator.

Every venue implements one reader contract (`format.SourceFormat`: sniff, plan, open) and is
listed in `registry.VENUES`; `detect_format(path)` names a file's venue from its content.
The readers of every venue are here by name, imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy

if TYPE_CHECKING:
    from featureplane.sources.binance.reader import (
        BOOK_TICKER_DTYPE,
        BUILTIN_INSTRUMENTS,
        DEFAULT_CHUNK_ROWS,
        BinanceChunk,
        BinanceReader,
        BinanceReplay,
        Market,
        iter_binance,
        read_binance,
    )
    from featureplane.sources.binance.stats import BinanceStats, FileInfo, SymbolSync
    from featureplane.sources.databento.reader import iter_databento, read_databento
    from featureplane.sources.format import SourceOptions
    from featureplane.sources.hftbacktest.reader import (
        read_hftbacktest_events,
        to_hftbacktest_events,
    )
    from featureplane.sources.lobster.reader import iter_lobster, read_lobster
    from featureplane.sources.registry import detect_format, open_source
    from featureplane.sources.tardis.reader import iter_tardis, read_tardis

_EXPORTS = {
    "BOOK_TICKER_DTYPE": ".binance.reader",
    "BUILTIN_INSTRUMENTS": ".binance.reader",
    "DEFAULT_CHUNK_ROWS": ".binance.reader",
    "BinanceChunk": ".binance.reader",
    "BinanceReader": ".binance.reader",
    "BinanceReplay": ".binance.reader",
    "BinanceStats": ".binance.stats",
    "FileInfo": ".binance.stats",
    "Market": ".binance.reader",
    "SourceOptions": ".format",
    "SymbolSync": ".binance.stats",
    "detect_format": ".registry",
    "iter_binance": ".binance.reader",
    "iter_databento": ".databento.reader",
    "iter_lobster": ".lobster.reader",
    "iter_tardis": ".tardis.reader",
    "open_source": ".registry",
    "read_binance": ".binance.reader",
    "read_databento": ".databento.reader",
    "read_hftbacktest_events": ".hftbacktest.reader",
    "read_lobster": ".lobster.reader",
    "read_tardis": ".tardis.reader",
    "to_hftbacktest_events": ".hftbacktest.reader",
}

__all__ = [
    "BOOK_TICKER_DTYPE",
    "BUILTIN_INSTRUMENTS",
    "DEFAULT_CHUNK_ROWS",
    "BinanceChunk",
    "BinanceReader",
    "BinanceReplay",
    "BinanceStats",
    "FileInfo",
    "Market",
    "SourceOptions",
    "SymbolSync",
    "detect_format",
    "iter_binance",
    "iter_databento",
    "iter_lobster",
    "iter_tardis",
    "open_source",
    "read_binance",
    "read_databento",
    "read_hftbacktest_events",
    "read_lobster",
    "read_tardis",
    "to_hftbacktest_events",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
