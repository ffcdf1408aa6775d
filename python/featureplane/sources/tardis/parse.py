"""tardis.dev CSV files: headers, the instrument probe, and one file's rows -> messages.

A file is read with the `csv` module, row by row, gzip or plain. Prices and amounts are parsed
exactly onto the symbol's grids; parsed strings are cached per symbol, because a book file
repeats the same few thousand price strings millions of times.
"""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from featureplane.errors import (
    InvalidMessageError,
    OffGridError,
    SourceFormatError,
    StreamDamageError,
)
from featureplane.events import (
    ASK,
    BID,
    BUY,
    CLEAR,
    LEVEL,
    MAX_ABS_UNITS,
    SELL,
    SNAPSHOT,
    TRADE,
    UNKNOWN_SIDE,
)
from featureplane.instruments import Grid, InstrumentSpec
from featureplane.sources._common import Reporter
from featureplane.sources._lines import iter_line_blocks
from featureplane.sources.tardis.stats import TardisFile, TardisStats

BOOK = "incremental_book_L2"
TRADES = "trades"
HEADERS = {
    BOOK: [
        "exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price",
        "amount",
    ],
    TRADES: ["exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"],
}  # fmt: skip
BOOK_SIDES = {"bid": BID, "ask": ASK}
TRADE_SIDES = {"buy": BUY, "sell": SELL, "unknown": UNKNOWN_SIDE}
FLAGS = {"true": True, "false": False}
CACHE_LIMIT = 1 << 20
"""Parsed price/amount strings kept per symbol before the cache starts over."""
US = 1000
"""tardis timestamps are microseconds since the epoch; events carry nanoseconds."""
MAX_TS_NS = (1 << 63) - 1
"""A timestamp in ns must fit the event model's int64."""

DAMAGE = (StreamDamageError, csv.Error, UnicodeDecodeError)
"""What reading a cut-short gzip, corrupt bytes or a broken CSV raises."""

Row = tuple[int, int, int, int]
"""(kind, side, px ticks, qty lots) of one event row."""
Message = tuple[int, int, int, int, int, int, list[Row]]
"""(merge key, file rank, ordinal, symbol id, source ts ns, local ts ns, rows)."""


def text_lines(path: str, undecodable: set[int] | None = None) -> Generator[str, None, None]:
    """The lines of a gzip or plain file as text, streamed.

    `iter_line_blocks` keeps every complete line before a cut-short or corrupt gzip stream and
    then raises `StreamDamage` (`gzip.open` would lose the lines in its buffer). A line that is
    not UTF-8 comes out empty, its number (1-based) added to `undecodable`: one bad byte costs
    its own line, never the block of lines decoded with it.
    """
    line = 0
    for block in iter_line_blocks(path):
        try:
            text = b"\n".join(block).decode("utf-8")
        except UnicodeDecodeError:
            text = "\n".join(_decoded(block, line, undecodable))
        line += len(block)
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        yield from text.split("\n")


def _decoded(block: list[bytes], line: int, undecodable: set[int] | None) -> Iterator[str]:
    """The lines of a block that failed to decode, one by one; an undecodable one as ""."""
    for i, raw in enumerate(block, start=line + 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            if undecodable is not None:
                undecodable.add(i)
            yield ""


def file_kind(path: str, header: list[str] | None) -> str:
    """The dataset of a header row; raises `SourceFormatError` for anything else."""
    for kind, names in HEADERS.items():
        if header == names:
            return kind
    shown = "no header (empty file)" if header is None else ",".join(header)[:200]
    raise SourceFormatError(path, 1, f"not a tardis incremental_book_L2 or trades header: {shown}")


def decimals(text: str) -> int:
    """Fraction digits of a decimal string (exponent forms included); 0 when not a number."""
    if "e" in text or "E" in text:
        try:
            exponent = Decimal(text).as_tuple().exponent
        except InvalidOperation:
            return 0
        return max(0, -exponent) if isinstance(exponent, int) else 0
    _, dot, frac = text.partition(".")
    return len(frac.strip()) if dot else 0


def grid_step(digits: int) -> str:
    return "1" if digits == 0 else f"0.{'0' * (digits - 1)}1"


@dataclass
class SymbolProbe:
    """What the first rows of the files say about one symbol."""

    exchange: str
    px_decimals: int = 0
    qty_decimals: int = 0
    rows: int = 0


def probe(path: str, limit: int | None, found: dict[str, SymbolProbe]) -> str:
    """Read the header and up to `limit` rows (all when None); note each symbol's precision.

    Returns the file's kind. Malformed rows are left for the main read to report.
    """
    lines = text_lines(path)
    reader = csv.reader(lines)
    try:
        header = next(reader, None)
    except DAMAGE as exc:
        raise SourceFormatError(path, 1, f"unreadable header: {exc}") from None
    kind = file_kind(path, header)
    try:
        for n, row in enumerate(reader):
            if limit is not None and n >= limit:
                break
            if len(row) != 8:
                continue
            p = found.get(row[1])
            if p is None:
                p = found[row[1]] = SymbolProbe(row[0])
            p.px_decimals = max(p.px_decimals, decimals(row[6]))
            p.qty_decimals = max(p.qty_decimals, decimals(row[7]))
            p.rows += 1
    except DAMAGE:
        pass  # the main read reports the damage, after the rows before it
    finally:
        lines.close()
    return kind


@dataclass
class SymbolState:
    """One symbol inside one file: its id, grids, parse caches and snapshot state."""

    sid: int
    exchange: str
    px_grid: Grid
    qty_grid: Grid
    px_cache: dict[str, int] = field(default_factory=dict)
    qty_cache: dict[str, int] = field(default_factory=dict)
    seen_snapshot: bool = False
    last_snapshot: bool = False
    """The symbol's previous row in this file was a snapshot row."""


class FileParser:
    """Turns the rows of one file into messages, in file order.

    Parameters
    ----------
    info
        The file (path, rank, kind) and its counters.
    specs
        The instrument of every symbol to read, by name, with its id.
    wanted
        Symbols to read; rows of others are counted as filtered. None: every symbol in `specs`.
    exchanges
        The exchange of each symbol, shared by the files of a read (first seen wins).
    """

    def __init__(
        self,
        info: TardisFile,
        specs: dict[str, tuple[int, InstrumentSpec]],
        wanted: set[str] | None,
        exchanges: dict[str, str],
        stats: TardisStats,
        reporter: Reporter,
        skip_before_snapshot: bool,
    ) -> None:
        self.info = info
        self.specs = specs
        self.wanted = wanted
        self.exchanges = exchanges
        self.stats = stats
        self.reporter = reporter
        self.skip_before_snapshot = skip_before_snapshot
        self.states: dict[str, SymbolState | None] = {}
        self.ordinal = 0
        self.key = -1  # running maximum of local_ts: keeps the merge key monotone per file
        self._undecodable: set[int] = set()

    def messages(self) -> Iterator[Message]:
        info = self.info
        book = info.kind == BOOK
        sides = BOOK_SIDES if book else TRADE_SIDES
        states = self.states
        group: tuple[object, ...] | None = None
        rows: list[Row] = []
        state: SymbolState | None = None
        src = local = 0
        snap = False
        read = 0  # rows read since the counters were last brought up to date
        reader = None
        undecodable: set[int] = set()
        lines = text_lines(info.path, undecodable)
        self._undecodable = undecodable
        try:
            reader = csv.reader(lines)
            next(reader, None)  # the header, checked by the probe
            for row in reader:
                read += 1
                # The common row: known symbol, cached price and amount strings. Anything
                # else goes through `_row`, which parses, checks and reports.
                st = None
                if len(row) == 8:
                    exchange, symbol, ts, local_ts, flag, side_text, px_text, qty_text = row
                    st = states.get(symbol)
                    r_snap = FLAGS.get(flag) if book else False
                    side = sides.get(side_text)
                    if st is not None:
                        px = st.px_cache.get(px_text)
                        qty = st.qty_cache.get(qty_text)
                        if (
                            exchange == st.exchange
                            and r_snap is not None
                            and side is not None
                            and px is not None
                            and qty is not None
                            and (qty > 0 or (book and qty == 0))
                            and ts.isdecimal()
                            and local_ts.isdecimal()
                        ):
                            kind = (SNAPSHOT if r_snap else LEVEL) if book else TRADE
                            out = (kind, side, px, qty)
                            r_src, r_local = int(ts) * US, int(local_ts) * US
                            if r_src > MAX_TS_NS or r_local > MAX_TS_NS:
                                st = None  # `_row` reports it
                        else:
                            st = None
                if st is None:
                    parsed = self._row(row, reader.line_num, book)
                    if parsed is None:
                        continue
                    st, r_snap, r_src, r_local, out = parsed
                # A message: consecutive rows of one symbol with one local timestamp; a
                # snapshot run of a symbol is one message whatever its timestamps.
                key = (st.sid, True) if r_snap else (st.sid, r_local, False)
                if key != group:
                    if rows and state is not None:
                        self._count(read - 1)
                        read = 1
                        yield from self._close(state, snap, src, local, rows, book)
                    group, state, snap, rows = key, st, bool(r_snap), []
                rows.append(out)
                src, local = r_src, r_local
        except DAMAGE as exc:
            # A damaged file: what was read before the damage stands (skip), or it fails.
            self._count(read)
            read = 0
            line = (reader.line_num if reader is not None else 0) + 1
            self.reporter.skip("damaged", info.path, line, f"the read stops: {exc}")
        finally:
            lines.close()
        self._count(read)
        if rows and state is not None:
            yield from self._close(state, snap, src, local, rows, book)

    def _count(self, rows: int) -> None:
        self.stats.rows += rows
        self.info.rows += rows

    def _row(
        self, row: list[str], line: int, book: bool
    ) -> tuple[SymbolState, bool, int, int, Row] | None:
        """One data row checked and scaled, or None when it is skipped."""
        path = self.info.path
        skip = self.reporter.skip
        if not row and line in self._undecodable:
            skip("undecodable", path, line, "the line is not UTF-8 text")
            return None
        if len(row) != 8:
            skip("columns", path, line, f"{len(row)} columns, expected 8")
            return None
        exchange, symbol, ts, local_ts, flag, side_text, px_text, qty_text = row
        states = self.states
        st = states[symbol] if symbol in states else self._state(symbol, exchange, line)
        if st is None:
            if symbol in self.states:
                self.stats.filtered_rows += 1
            return None
        if exchange != st.exchange:
            skip("exchange_mismatch", path, line, f"{symbol} on {exchange!r}, not {st.exchange!r}")
            return None
        if not (ts.isdecimal() and local_ts.isdecimal()):
            skip("non_numeric", path, line, f"timestamps {ts!r}, {local_ts!r}")
            return None
        src, local = int(ts) * US, int(local_ts) * US
        if src > MAX_TS_NS or local > MAX_TS_NS:
            what = f"timestamps {ts!r}, {local_ts!r}"
            skip("out_of_range", path, line, f"{what} are beyond int64 in ns")
            return None
        if book:
            snap = FLAGS.get(flag)
            if snap is None:
                skip("bad_flag", path, line, f"is_snapshot {flag!r}")
                return None
            side = BOOK_SIDES.get(side_text)
        else:
            snap = False
            side = TRADE_SIDES.get(side_text)
        if side is None:
            skip("unknown_side", path, line, f"side {side_text!r}")
            return None
        # A value beyond the event model's bound is reported, never cached: the fast path in
        # `messages` takes cached strings without a check.
        try:
            px = st.px_cache.get(px_text)
            if px is None:
                px = st.px_grid.parse(px_text, "price")
                if not -MAX_ABS_UNITS <= px <= MAX_ABS_UNITS:
                    skip("out_of_range", path, line, _beyond("price", px_text, "ticks"))
                    return None
                if len(st.px_cache) >= CACHE_LIMIT:
                    st.px_cache.clear()
                st.px_cache[px_text] = px
            qty = st.qty_cache.get(qty_text)
            if qty is None:
                qty = st.qty_grid.parse(qty_text, "amount")
                if qty > MAX_ABS_UNITS:  # below zero: `negative_amount` / `bad_amount`
                    skip("out_of_range", path, line, _beyond("amount", qty_text, "lots"))
                    return None
                if len(st.qty_cache) >= CACHE_LIMIT:
                    st.qty_cache.clear()
                st.qty_cache[qty_text] = qty
        except OffGridError as exc:
            skip("off_grid", path, line, str(exc))
            return None
        except InvalidMessageError as exc:
            skip("non_numeric", path, line, str(exc))
            return None
        if qty < 0 or (qty == 0 and not book):
            reason = "negative_amount" if book else "bad_amount"
            skip(reason, path, line, f"amount {qty_text!r}")
            return None
        kind = (SNAPSHOT if snap else LEVEL) if book else TRADE
        return st, snap, src, local, (kind, side, px, qty)

    def _state(self, symbol: str, exchange: str, line: int) -> SymbolState | None:
        if self.wanted is not None and symbol not in self.wanted:
            self.states[symbol] = None  # left out by the caller: counted, not reported
            return None
        known = self.specs.get(symbol)
        if known is None:
            self.reporter.skip(
                "unknown_symbol",
                self.info.path,
                line,
                f"{symbol!r} is not in the instruments and first appears after the probed rows",
            )
            return None
        sid, spec = known
        # One symbol name, one exchange, across every file of the read.
        st = SymbolState(
            sid, self.exchanges.setdefault(symbol, exchange), spec.price_grid, spec.size_grid
        )
        self.states[symbol] = st
        self.info.symbols.append(symbol)
        return st

    def _close(
        self, st: SymbolState, snap: bool, src: int, local: int, rows: list[Row], book: bool
    ) -> Iterator[Message]:
        """The message of a finished group (none for book rows before the first snapshot)."""
        stats = self.stats
        if book:
            if snap:
                if st.last_snapshot:
                    # The snapshot run resumes after another symbol's rows: more levels of it.
                    rows = [(LEVEL, side, px, qty) for _, side, px, qty in rows]
                    stats.snapshot_continuations += 1
                    stats.messages["book"] += 1
                else:
                    rows = [(CLEAR, 0, 0, 0), *rows]
                    st.seen_snapshot = True
                    stats.messages["snapshot"] += 1
                st.last_snapshot = True
            else:
                st.last_snapshot = False
                if not st.seen_snapshot and self.skip_before_snapshot:
                    stats.rows_before_snapshot += len(rows)
                    return
                stats.messages["book"] += 1
            stats.level_rows += len(rows) - (rows[0][0] == CLEAR)
        else:
            stats.messages["trade"] += 1
            stats.trades += len(rows)
        if local < self.key:
            stats.local_ts_backwards += 1
        else:
            self.key = local
        self.info.messages += 1
        self.ordinal += 1
        yield (self.key, self.info.rank, self.ordinal, st.sid, src, local, rows)


def _beyond(what: str, text: str, unit: str) -> str:
    return f"{what} {text!r} is beyond {MAX_ABS_UNITS} (2^48) {unit}"


__all__ = [
    "BOOK",
    "HEADERS",
    "TRADES",
    "FileParser",
    "Message",
    "SymbolProbe",
    "decimals",
    "file_kind",
    "grid_step",
    "probe",
    "text_lines",
]
