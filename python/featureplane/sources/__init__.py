"""Readers that turn recorded venue data into normalized messages (`featureplane.events`).

- `binance`: Binance USD-M futures and spot recorder captures (`<local_ts_ns> <json>` lines),
  with the REST-snapshot sync rule applied per symbol and symbols merged in local-time order.
- `lobster`: LOBSTER message + orderbook files (order-level messages aggregated to L2).
- `tardis`: tardis.dev `incremental_book_L2` and `trades` CSV files.
- `databento`: Databento MBO (DBN) files, market-by-order aggregated to L2.
- `hftbacktest_events`: hftbacktest event arrays, read and exported.

The names below are the Binance reader's; import the others from their modules.
"""

from featureplane.sources.binance import (
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
from featureplane.sources.binance_stats import BinanceStats, FileInfo, SymbolSync

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
    "SymbolSync",
    "iter_binance",
    "read_binance",
]
