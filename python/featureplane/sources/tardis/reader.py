"""tardis.dev CSV datasets -> normalized messages.

Reads `incremental_book_L2` (absolute level amounts, snapshot runs flagged `is_snapshot`) and
`trades` files, gzip or plain, several symbols per file, and merges any number of them into one
stream by local timestamp (stable: ties keep the caller's file order, then file order).
docs/sources/tardis.md has the rules.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from os import PathLike, fspath
from pathlib import Path
from typing import Literal

import numpy as np

from featureplane.errors import SourceFormatError
from featureplane.events import END_OF_MESSAGE, EVENT_DTYPE, NO_SEQ, concat
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources._common import (
    EventArray,
    Instruments,
    PathArg,
    ReadOnce,
    Reporter,
    SourceData,
)
from featureplane.sources.tardis.parse import (
    FileParser,
    Message,
    SymbolProbe,
    grid_step,
    probe,
)
from featureplane.sources.tardis.stats import TardisFile, TardisStats

DEFAULT_CHUNK_MESSAGES = 1 << 16
"""Messages per chunk yielded by `TardisReader`."""
DEFAULT_PROBE_ROWS = 100_000
"""Rows read from the start of each file to find its symbols and their price/amount precision."""


class TardisReplay(SourceData[TardisStats]):
    """Everything read from a set of tardis files."""


class TardisReader(ReadOnce):
    """A set of tardis.dev CSV files, probed and ready to be read once.

    Construction reads each file's header and first rows (kind, symbols, precision) and builds
    `symbols`; iterating yields event chunks of whole messages; `stats` fills up as it goes.

    Parameters
    ----------
    paths
        Files (`.csv` or `.csv.gz`), or directories (their `*.csv` and `*.csv.gz`, sorted), of
        `incremental_book_L2` and/or `trades` data, in any mix.
    instruments
        Tick and lot per symbol: a `SymbolTable` (its ids are kept), a mapping symbol -> spec, or
        specs. A symbol not given gets tick and lot from the finest price and amount strings of
        the probed rows (recorded in `stats.instruments`).
    symbols
        Read only these symbols; default every symbol found.
    errors
        `"raise"`: a bad row or file raises `SourceFormatError` naming file and line;
        `"skip"`: it is counted by reason (`stats.skipped`, with examples) and the read goes on.
    probe_rows
        Rows probed per file for symbols and precision; None reads whole files (exact, slower).
    skip_before_snapshot
        Drop a symbol's book rows that come before the file's first snapshot of it (tardis:
        updates buffered before a reconnect snapshot). False applies them to an empty book.
    chunk_messages
        Messages per yielded chunk.
    """

    def __init__(
        self,
        paths: PathArg | Iterable[PathArg],
        *,
        instruments: Instruments | None = None,
        symbols: Iterable[str] | None = None,
        errors: Literal["raise", "skip"] = "raise",
        probe_rows: int | None = DEFAULT_PROBE_ROWS,
        skip_before_snapshot: bool = True,
        chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
    ) -> None:
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if chunk_messages < 1:
            raise ValueError("chunk_messages must be positive")
        if probe_rows is not None and probe_rows < 1:
            raise ValueError("probe_rows must be positive or None")
        self.stats = TardisStats()
        self._reporter = Reporter(self.stats, errors)
        self.chunk_messages = chunk_messages
        self.skip_before_snapshot = skip_before_snapshot
        self._wanted = None if symbols is None else set(symbols)

        found: dict[str, SymbolProbe] = {}
        for rank, path in enumerate(_expand(paths)):
            info = TardisFile(path, rank)
            self.stats.files.append(info)
            try:
                info.kind = probe(path, probe_rows, found)
            except SourceFormatError as exc:
                self._reporter.skip("bad_header", path, exc.line, exc.reason)
        self.symbols, self._specs = self._resolve(instruments, found)

    def _resolve(
        self, instruments: Instruments | None, found: dict[str, SymbolProbe]
    ) -> tuple[SymbolTable, dict[str, tuple[int, InstrumentSpec]]]:
        """The symbol table: the caller's instruments first, then inferred ones by first sight."""
        if isinstance(instruments, SymbolTable):
            table = instruments
        elif isinstance(instruments, Mapping):
            table = SymbolTable(list(instruments.values()))
        else:
            table = SymbolTable(list(instruments or ()))
        for spec in table:
            self.stats.instruments[spec.symbol] = (
                f"caller: tick {spec.tick_size}, lot {spec.lot_size}"
            )
        for symbol, p in found.items():
            if symbol in table or (self._wanted is not None and symbol not in self._wanted):
                continue
            spec = InstrumentSpec(
                symbol, grid_step(p.px_decimals), grid_step(p.qty_decimals), p.exchange
            )
            table.add(spec)
            self.stats.instruments[symbol] = (
                f"inferred from {p.rows} probed rows: tick {spec.tick_size} "
                f"({p.px_decimals} price decimals), lot {spec.lot_size} "
                f"({p.qty_decimals} amount decimals)"
            )
        specs = {spec.symbol: (table.id_of(spec.symbol), spec) for spec in table}
        return table, specs

    def __iter__(self) -> Iterator[EventArray]:
        return self.chunks()

    def read(self) -> TardisReplay:
        """Every message at once."""
        return TardisReplay(concat(list(self.chunks())), self.symbols, self.stats)

    def chunks(self) -> Iterator[EventArray]:
        """Yield event chunks of at most `chunk_messages` whole messages, merged across files."""
        self._start_read()
        exchanges: dict[str, str] = {}
        streams = [
            FileParser(
                info,
                self._specs,
                self._wanted,
                exchanges,
                self.stats,
                self._reporter,
                self.skip_before_snapshot,
            ).messages()
            for info in self.stats.files
            if info.kind is not None
        ]
        # Keys are (running max local ts, file rank, ordinal): unique, so the merge is stable.
        merged = heapq.merge(*streams) if len(streams) > 1 else iter(streams[0] if streams else ())
        batch: list[Message] = []
        for message in merged:
            batch.append(message)
            if len(batch) >= self.chunk_messages:
                yield self._events(batch)
                batch = []
        if batch:
            yield self._events(batch)

    def _events(self, batch: list[Message]) -> EventArray:
        lens = np.array([len(m[6]) for m in batch], dtype=np.int64)
        rows = np.array([r for m in batch for r in m[6]], dtype=np.int64).reshape(-1, 4)
        events = np.zeros(len(rows), dtype=EVENT_DTYPE)
        events["kind"] = rows[:, 0]
        events["side"] = rows[:, 1]
        events["px"] = rows[:, 2]
        events["qty"] = rows[:, 3]
        events["flags"][np.cumsum(lens) - 1] = END_OF_MESSAGE
        # tardis has no sequence numbers: the engine orders by timestamps (docs/features).
        for name in ("seq", "first_seq", "prev_seq"):
            events[name] = NO_SEQ
        for name, col in (("symbol_id", 3), ("source_ts_ns", 4), ("local_ts_ns", 5)):
            events[name] = np.repeat(np.array([m[col] for m in batch], dtype=np.int64), lens)
        self.stats.events += len(events)
        return events


def read_tardis(
    paths: PathArg | Iterable[PathArg],
    *,
    instruments: Instruments | None = None,
    symbols: Iterable[str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
    probe_rows: int | None = DEFAULT_PROBE_ROWS,
    skip_before_snapshot: bool = True,
) -> TardisReplay:
    """Read tardis files into one event array; see `TardisReader` for the parameters.

    Raises
    ------
    SourceFormatError
        A bad row or file with `errors="raise"`, naming the file and line.
    """
    return TardisReader(
        paths,
        instruments=instruments,
        symbols=symbols,
        errors=errors,
        probe_rows=probe_rows,
        skip_before_snapshot=skip_before_snapshot,
    ).read()


def iter_tardis(
    paths: PathArg | Iterable[PathArg],
    *,
    instruments: Instruments | None = None,
    symbols: Iterable[str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
    probe_rows: int | None = DEFAULT_PROBE_ROWS,
    skip_before_snapshot: bool = True,
    chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
) -> TardisReader:
    """A reader to iterate for event chunks; `symbols` is ready at once, `stats` at the end."""
    return TardisReader(
        paths,
        instruments=instruments,
        symbols=symbols,
        errors=errors,
        probe_rows=probe_rows,
        skip_before_snapshot=skip_before_snapshot,
        chunk_messages=chunk_messages,
    )


def _expand(paths: PathArg | Iterable[PathArg]) -> list[str]:
    items = [paths] if isinstance(paths, str | PathLike) else list(paths)
    out: list[str] = []
    for item in items:
        path = Path(fspath(item))
        if path.is_dir():
            out.extend(
                str(p) for p in sorted(path.iterdir()) if p.name.endswith((".csv", ".csv.gz"))
            )
        else:
            out.append(str(path))
    return out


__all__ = [
    "DEFAULT_CHUNK_MESSAGES",
    "DEFAULT_PROBE_ROWS",
    "TardisFile",
    "TardisReader",
    "TardisReplay",
    "TardisStats",
    "iter_tardis",
    "read_tardis",
]
