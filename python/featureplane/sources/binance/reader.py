"""Binance recorder captures (USD-M futures and spot) -> normalized messages.

The recorder format (hftbacktest's collector and others) is one event per line,
`<local_ts_ns> <json>`, gzip-compressed, one symbol per file; the JSON is a combined-stream
payload `{"stream": "btcusdt@depth@0ms", "data": {...}}` or, for the REST depth snapshot, the
bare response `{"lastUpdateId": ..., "bids": [...], "asks": [...]}`.

`read_binance` returns every event at once; `iter_binance` streams bounded chunks. Both group
files by symbol, chain the files of a symbol by their first local timestamp (the book carries
across file boundaries), apply Binance's snapshot sync rule per symbol (see
`featureplane.sources.binance.sync`) and merge the symbols into one stream in local-time order.
See docs/sources/binance.md for the rules, every skip reason and the timestamp choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from featureplane.errors import UnknownSymbolError
from featureplane.events import empty
from featureplane.instruments import SymbolTable
from featureplane.sources._chunks import BOOK_TICKER_DTYPE, merge_chunks
from featureplane.sources._common import Instruments, PathArg, ReadOnce, Reporter
from featureplane.sources.binance.probe import (
    BUILTIN_INSTRUMENTS,
    FUTURES,
    MARKETS,
    Market,
    Probe,
    expand_paths,
    market_of,
    probe_file,
    resolve_instruments,
)
from featureplane.sources.binance.rust import PARSERS, Parser, RustSymbolChain, use_rust
from featureplane.sources.binance.stats import BinanceStats, FileInfo, SymbolSync
from featureplane.sources.binance.sync import SymbolChain

DEFAULT_CHUNK_ROWS = 1 << 16
"""Event rows per chunk of `iter_binance` (a chunk ends on a message boundary)."""


@dataclass(frozen=True)
class BinanceChunk:
    """One chunk of `BinanceReader.chunks()`: whole messages and the book tickers beside them."""

    events: NDArray[Any]
    book_tickers: NDArray[Any]


@dataclass(frozen=True)
class BinanceReplay:
    """Everything read from a set of captures.

    Attributes
    ----------
    events
        `EVENT_DTYPE` rows of every emitted message, in output order.
    book_tickers
        `BOOK_TICKER_DTYPE` rows, in the same merged local-time order.
    symbols
        The symbol table the `symbol_id` fields refer to.
    stats
        Counts, skips with examples, per-symbol sync facts, instrument choices.
    """

    events: NDArray[Any]
    book_tickers: NDArray[Any]
    symbols: SymbolTable
    stats: BinanceStats


class BinanceReader(ReadOnce):
    """A set of Binance recorder files, probed and ready to be read once.

    Construction reads the start of every file (symbol, market, first local timestamp) and
    builds `symbols`; iterating yields event chunks; `stats` fills up as the read goes.

    Parameters
    ----------
    paths
        A file, a directory (its `*.gz` files) or several of either. Files are gzip or plain text.
    symbols
        Read only these symbols (case-insensitive); default every symbol found.
    market
        `"usdm"`, `"coinm"` or `"spot"` for every file; default: detected per file from its
        streams.
    instruments
        Tick and lot per symbol: a `SymbolTable` (its ids are kept), a mapping symbol -> spec or
        specs. Default: the built-in table, else the precision of the first price/size strings.
    errors
        `"skip"`: skip and count a bad line, message or file and go on; `"raise"`: raise
        `SourceFormatError` at the first one.
    on_missing_snapshot
        A symbol with depth diffs and no REST snapshot: `"raise"` `SyncError`, or `"skip"` (its
        diffs are dropped and counted as `no_snapshot_diffs`; trades are kept).
    chunk_rows
        Target event rows per chunk (chunks end on message boundaries).
    parser
        `"rust"` (the compiled parser), `"python"` (the reference `SymbolChain`), or `"auto"`:
        Rust where the extension is built. Both give the same events, book tickers and stats
        (see docs/sources/binance.md); `parsers` records the choice per symbol.
    """

    def __init__(
        self,
        paths: PathArg | Iterable[PathArg],
        *,
        symbols: Iterable[str] | None = None,
        market: Market | None = None,
        instruments: Instruments | None = None,
        errors: Literal["skip", "raise"] = "skip",
        on_missing_snapshot: Literal["raise", "skip"] = "raise",
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        parser: Parser = "auto",
    ) -> None:
        if parser not in PARSERS:
            raise ValueError(f"parser must be 'auto', 'rust' or 'python', got {parser!r}")
        if errors not in ("skip", "raise"):
            raise ValueError(f"errors must be 'skip' or 'raise', got {errors!r}")
        if on_missing_snapshot not in ("skip", "raise"):
            raise ValueError(
                f"on_missing_snapshot must be 'skip' or 'raise', got {on_missing_snapshot!r}"
            )
        if market is not None and market not in MARKETS:
            raise ValueError(f"market must be 'usdm', 'coinm', 'spot' or None, got {market!r}")
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be positive")
        self.stats = BinanceStats()
        self._reporter = Reporter(self.stats, errors)
        wanted = None if symbols is None else {s.upper() for s in symbols}
        groups = self._group(expand_paths(paths), wanted)
        if wanted is not None and (missing := wanted - groups.keys()):
            raise UnknownSymbolError(f"symbol(s) {sorted(missing)} not found in the files")
        self.symbols, specs, given = resolve_instruments(groups, market, instruments, self.stats)
        self._chains: list[SymbolChain | RustSymbolChain] = []
        self._ranks: list[int] = []
        self.parsers: dict[str, str] = {}
        """The parser that reads each symbol: "rust" or "python"."""
        for symbol, probes in groups.items():
            chain = sorted(probes, key=lambda p: (p.first_local_ts, p.index))
            sym_market = market_of(symbol, chain, market)
            infos = [self.stats.files[p.index] for p in chain]
            for info in infos:
                info.market = sym_market
            self.stats.sync[symbol] = SymbolSync(symbol, sym_market, [i.path for i in infos])
            self.stats.sync[symbol].grid_given = symbol in given
            rust = use_rust(parser, specs[symbol], infos[0].path)
            self.parsers[symbol] = "rust" if rust else "python"
            chain_cls = RustSymbolChain if rust else SymbolChain
            self._chains.append(
                chain_cls(
                    symbol=symbol,
                    symbol_id=self.symbols.id_of(symbol),
                    spec=specs[symbol],
                    usdm=sym_market in FUTURES,
                    files=infos,
                    stats=self.stats,
                    reporter=self._reporter,
                    on_missing_snapshot=on_missing_snapshot,
                    chunk_rows=chunk_rows,
                )
            )
            self._ranks.append(min(p.index for p in probes))

    def _group(self, paths: list[str], wanted: set[str] | None) -> dict[str, list[Probe]]:
        """Probe every file; group the readable ones by symbol, in order of first appearance."""
        groups: dict[str, list[Probe]] = {}
        for index, path in enumerate(paths):
            probe = probe_file(path, index)
            info = FileInfo(path, probe.symbol, probe.market, probe.first_local_ts)
            info.local_ts_unit, info.local_ts_scale = probe.local_ts_unit, probe.local_ts_scale
            self.stats.files.append(info)
            if probe.local_ts_scale != 1:
                self._reporter.warn(
                    "local_ts_unit",
                    path,
                    1,
                    f"local timestamps in {probe.local_ts_unit} (the first is "
                    f"{probe.raw_first_local_ts}): converted to ns (x {probe.local_ts_scale})",
                )
            if probe.lines == 0:
                if probe.damage is not None:
                    self._reporter.skip(probe.damage.reason, path, 1, probe.damage.detail)
                else:
                    self._reporter.warn("empty_file", path, None, "no lines")
                continue
            if probe.symbol is None:
                self._reporter.skip(
                    "no_symbol", path, None, f"no Binance stream in the first {probe.lines} lines"
                )
                continue
            if wanted is None or probe.symbol in wanted:
                groups.setdefault(probe.symbol, []).append(probe)
        return groups

    def chunks(self) -> Iterator[BinanceChunk]:
        """Yield the merged stream as chunks of whole messages plus their book tickers."""
        self._start_read()
        streams = [chain.chunks() for chain in self._chains]
        for events, book_tickers in merge_chunks(streams, self._ranks):
            yield BinanceChunk(events, book_tickers)

    def __iter__(self) -> Iterator[NDArray[Any]]:
        """Yield event chunks (`EVENT_DTYPE`); book tickers are dropped (see `chunks`)."""
        for chunk in self.chunks():
            if len(chunk.events):
                yield chunk.events

    def read(self) -> BinanceReplay:
        """Read everything into one `BinanceReplay`."""
        events: list[NDArray[Any]] = []
        book_tickers: list[NDArray[Any]] = []
        for chunk in self.chunks():
            events.append(chunk.events)
            book_tickers.append(chunk.book_tickers)
        return BinanceReplay(
            np.concatenate(events) if events else empty(0),
            np.concatenate(book_tickers) if book_tickers else np.empty(0, BOOK_TICKER_DTYPE),
            self.symbols,
            self.stats,
        )


def read_binance(
    paths: PathArg | Iterable[PathArg],
    *,
    symbols: Iterable[str] | None = None,
    market: Market | None = None,
    instruments: Instruments | None = None,
    errors: Literal["skip", "raise"] = "skip",
    on_missing_snapshot: Literal["raise", "skip"] = "raise",
    parser: Parser = "auto",
) -> BinanceReplay:
    """Read Binance recorder files into one event array; see `BinanceReader` for parameters.

    Raises
    ------
    SourceFormatError
        Bad input with `errors="raise"`, or a market or precision that cannot be told.
    SyncError
        A symbol with depth diffs and no snapshot, with `on_missing_snapshot="raise"`.
    """
    reader = BinanceReader(
        paths,
        symbols=symbols,
        market=market,
        instruments=instruments,
        errors=errors,
        on_missing_snapshot=on_missing_snapshot,
        parser=parser,
    )
    return reader.read()


def iter_binance(
    paths: PathArg | Iterable[PathArg],
    *,
    symbols: Iterable[str] | None = None,
    market: Market | None = None,
    instruments: Instruments | None = None,
    errors: Literal["skip", "raise"] = "skip",
    on_missing_snapshot: Literal["raise", "skip"] = "raise",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    parser: Parser = "auto",
) -> BinanceReader:
    """A reader to iterate for event chunks of about `chunk_rows` rows.

    Its `symbols` is ready at once; `stats` is final once the iteration ends. Use
    `.chunks()` instead of iterating to get the book tickers alongside.
    """
    return BinanceReader(
        paths,
        symbols=symbols,
        market=market,
        instruments=instruments,
        errors=errors,
        on_missing_snapshot=on_missing_snapshot,
        chunk_rows=chunk_rows,
        parser=parser,
    )


__all__ = [
    "BOOK_TICKER_DTYPE",
    "BUILTIN_INSTRUMENTS",
    "DEFAULT_CHUNK_ROWS",
    "MARKETS",
    "PARSERS",
    "BinanceChunk",
    "BinanceReader",
    "BinanceReplay",
    "Market",
    "Parser",
    "iter_binance",
    "read_binance",
]
