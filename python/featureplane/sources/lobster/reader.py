"""Streaming LOBSTER normalizer: message file (+ orderbook file) -> `EVENT_DTYPE` chunks.

See `featureplane.sources.lobster` for the public API and docs/sources/lobster.md for the rules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from os import PathLike, fspath
from pathlib import Path

import numpy as np

from featureplane.errors import SourceFormatError
from featureplane.events import (
    ASK,
    BID,
    CLEAR,
    END_OF_MESSAGE,
    EVENT_DTYPE,
    LEVEL,
    MAX_ABS_UNITS,
    NO_SEQ,
    SNAPSHOT,
    TRADE,
    UNKNOWN_SIDE,
    concat,
)
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources._common import EventArray, ReadOnce, SourceData
from featureplane.sources.format import ErrorMode
from featureplane.sources.lobster.book import DepthBook, Fail, PlainBook, Row
from featureplane.sources.lobster.files import (
    CROSS_TRADE,
    DEFAULT_TICK,
    DEFAULT_TZ,
    EXECUTE_HIDDEN,
    EXECUTE_VISIBLE,
    HALT,
    LobsterPath,
    Scale,
    base_name,
    iter_lines,
    lobster_zip_members,
    parse_lobster_name,
    parse_seconds_ns,
    session_epoch_ns,
    source_name,
)
from featureplane.sources.lobster.stats import HALT_STATES, Halt, LobsterStats

DEFAULT_CHUNK_MESSAGES = 1 << 16
"""Messages per chunk yielded by `LobsterReader` (memory stays bounded by this)."""

_BEYOND = f"beyond {MAX_ABS_UNITS} (2^48)"
_I64_MAX = (1 << 63) - 1
"""The event model's bound on |px| ticks and qty lots (`events.MAX_ABS_UNITS`)."""


class LobsterReplay(SourceData[LobsterStats]):
    """Everything read from one LOBSTER file pair."""


class _Columns:
    """Rows and message fields as Python lists, turned into one event array per chunk."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.kind: list[int] = []
        self.side: list[int] = []
        self.px: list[int] = []
        self.qty: list[int] = []
        self.n: list[int] = []
        self.seq: list[int] = []
        self.first: list[int] = []
        self.prev: list[int] = []
        self.ts: list[int] = []

    def close(self, n: int, seq: int, first: int, prev: int, ts: int) -> None:
        self.n.append(n)
        self.seq.append(seq)
        self.first.append(first)
        self.prev.append(prev)
        self.ts.append(ts)

    def flush(self, symbol_id: int) -> EventArray:
        lens = np.array(self.n, dtype=np.int64)
        ends = np.cumsum(lens)
        events = np.zeros(len(self.kind), dtype=EVENT_DTYPE)
        events["kind"] = self.kind
        events["side"] = self.side
        events["px"] = self.px
        events["qty"] = self.qty
        events["symbol_id"] = symbol_id
        events["flags"][ends - 1] = END_OF_MESSAGE
        for name, col in (("seq", self.seq), ("first_seq", self.first), ("prev_seq", self.prev)):
            events[name] = np.repeat(np.array(col, dtype=np.int64), lens)
        ts = np.repeat(np.array(self.ts, dtype=np.int64), lens)
        events["source_ts_ns"] = ts
        events["local_ts_ns"] = ts  # LOBSTER has one clock
        self._reset()
        return events


class LobsterReader(ReadOnce):
    """One LOBSTER message file (and its orderbook file), ready to be read once.

    Iterating yields `EVENT_DTYPE` chunks of whole messages; `stats` fills up as the read goes.

    Parameters
    ----------
    messages
        The message CSV (a path or a `ZipMember`), or a LOBSTER zip archive: then its message
        file, and its orderbook file unless `orderbook` is given.
    orderbook
        The orderbook CSV. With it the stream starts with a snapshot and is reconciled with
        the file after every message (see `depth_refill`). Without it the book cannot be
        rebuilt (LOBSTER files start mid-session): refused unless `messages_only`.
    messages_only
        Read a message file without its orderbook file: the book starts empty and only the
        messages build it, an approximation that is crossed most of the time. The instrument's
        `depth` is then 0, so no book feature is ever ready (the trade features are).
    instrument
        Tick and lot; default tick 0.005 (`DEFAULT_TICK`), lot 1 share, named after the ticker.
    symbols
        A table to register the instrument in (its id is used); default a new table.
    trading_date
        Default: the date in the file name (`TICKER_YYYY-MM-DD_..._message_N.csv`).
    tz
        The zone of LOBSTER's "seconds after midnight" (NASDAQ: America/New_York); None: UTC.
    depth_refill
        Take levels that come into view from beyond the file's N levels from the orderbook
        file, and check every other level against it (default). False replays the messages
        alone from the start snapshot: the depth LOBSTER does not describe goes missing.
    chunk_messages
        Messages per yielded chunk.
    errors
        "raise" only: the option every venue takes, with the order-level venues' default. A
        LOBSTER stream has no skip mode, because a message left out corrupts every later level
        of the book; "skip" is refused rather than silently ignored.

    The instrument's `depth` (`InstrumentSpec.depth`) is the N levels the orderbook file shows
    when the stream is reconciled with it, else 0: features reading more levels than that are
    never ready.
    """

    def __init__(
        self,
        messages: LobsterPath,
        orderbook: LobsterPath | None = None,
        *,
        instrument: InstrumentSpec | None = None,
        symbols: SymbolTable | None = None,
        trading_date: dt.date | None = None,
        tz: str | None = DEFAULT_TZ,
        depth_refill: bool = True,
        chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
        errors: ErrorMode = "raise",
        messages_only: bool = False,
    ) -> None:
        if errors != "raise":
            raise ValueError(
                f"LOBSTER has no skip mode (errors={errors!r}): a lost message corrupts the book "
                "for good; use errors='raise'"
            )
        if chunk_messages < 1:
            raise ValueError("chunk_messages must be positive")
        if not isinstance(messages, str | PathLike) or not fspath(messages).endswith(".zip"):
            msg_src: LobsterPath = messages
        else:
            msg_src, in_zip = lobster_zip_members(messages)
            orderbook = orderbook if orderbook is not None else in_zip
        self.messages = msg_src
        self.orderbook = orderbook
        if orderbook is None and not messages_only:
            raise SourceFormatError(
                source_name(msg_src),
                None,
                "no orderbook file: a LOBSTER message file alone cannot rebuild the book (the "
                "file starts mid-session and shows only changes to its visible levels; read so, "
                "95% of the GOOG sample's frames are crossed); give the orderbook file, or pass "
                "messages_only=True to read it with an untrusted book (no book feature ready)",
            )
        name = parse_lobster_name(base_name(msg_src))
        date = trading_date if trading_date is not None else (name.date if name else None)
        if date is None:
            raise SourceFormatError(
                source_name(msg_src), None, "no trading date in the file name; pass trading_date"
            )
        ticker = name.ticker if name else Path(base_name(msg_src)).stem
        reconciled = orderbook is not None and depth_refill
        depth = _orderbook_levels(orderbook) if reconciled and orderbook is not None else 0
        spec = instrument or InstrumentSpec(ticker, DEFAULT_TICK, "1", "NASDAQ")
        if spec.depth is None or spec.depth > depth:
            spec = replace(spec, depth=depth)
        self.instrument = spec
        self.symbols = symbols if symbols is not None else SymbolTable()
        self.symbol_id = self.symbols.add(self.instrument)
        self.scale = Scale.of(self.instrument)
        self.chunk_messages = chunk_messages
        self._epoch_ns = session_epoch_ns(date, tz)
        self.stats = LobsterStats(
            source_name(msg_src),
            None if orderbook is None else source_name(orderbook),
            self.instrument,
            date,
            tz,
            depth_refill and orderbook is not None,
        )

    def __iter__(self) -> Iterator[EventArray]:
        return self.chunks()

    def read(self) -> LobsterReplay:
        """Every message at once (a LOBSTER day is small: 148k messages, 10 MB of events)."""
        return LobsterReplay(concat(list(self.chunks())), self.symbols, self.stats)

    def chunks(self) -> Iterator[EventArray]:
        """Yield event chunks of at most `chunk_messages` whole messages."""
        self._start_read()
        stats = self.stats
        msg_name = stats.message_path
        ob_name = stats.orderbook_path or ""
        # Levels without an orderbook file come from the messages alone (a size beyond the
        # bound can add up there).
        level_name = ob_name or msg_name
        by_type = stats.by_type

        def msg_fail(line: int, reason: str) -> SourceFormatError:
            return SourceFormatError(msg_name, line, reason)

        def ob_fail(line: int, reason: str) -> SourceFormatError:
            return SourceFormatError(ob_name, line, reason)

        ob_lines = None if self.orderbook is None else iter_lines(self.orderbook)
        cols = _Columns()
        kinds, sides, pxs, qtys = cols.kind, cols.side, cols.px, cols.qty
        ticks_of, lots_of = self._ticks, self._lots
        sid = self.symbol_id
        epoch = self._epoch_ns
        depth: DepthBook | None = None
        plain = PlainBook()
        stats.depth = plain.counts
        book_seq = NO_SEQ
        last_ts = -1
        width = 0
        line = 0
        columns = 0
        for raw in iter_lines(self.messages):
            line += 1
            if not columns:  # 6, or 7 in newer exports: every row as many as the first
                columns = stats.message_columns = raw.count(b",") + 1
            typ, sign, px, size, ts = _parse_message(raw, line, epoch, msg_fail, columns)
            by_type[typ] = by_type.get(typ, 0) + 1
            if ts < last_ts:
                stats.ts_backwards += 1
            last_ts = ts
            tokens: list[bytes] = []
            if ob_lines is not None:
                tokens, width = _next_book_row(ob_lines, line, width, ob_fail)
            if line == 1:
                stats.first_ts_ns = ts
                if ob_lines is not None:
                    depth = self._start(cols, typ, sign, px, size, tokens, ts, msg_fail, ob_fail)
                    book_seq = 0
                    if not stats.depth_refill:
                        plain.load(*depth.start_levels)
                        depth = None
            if typ == HALT:
                stats.halts.append(Halt(line, ts, HALT_STATES.get(px, str(px))))
                msg_px = msg_qty = 0
            else:
                # Every message price and size is on the grid, so an off-grid level below came
                # from the orderbook file.
                msg_px = ticks_of(px, line, msg_name)
                msg_qty = lots_of(size, line, msg_name)
            if depth is not None:
                rows = depth.step(line, typ, sign, px, size, tokens)
            else:
                rows = plain.step(typ, sign, px, size)
            for side, p, q in rows:
                kinds.append(LEVEL)
                sides.append(side)
                pxs.append(ticks_of(p, line, level_name))
                qtys.append(lots_of(q, line, level_name))
            n = len(rows)
            if EXECUTE_VISIBLE <= typ <= CROSS_TRADE:
                # The direction is the resting order's: the execution of a sell order is a buy.
                kinds.append(TRADE)
                sides.append(-sign if typ != CROSS_TRADE else UNKNOWN_SIDE)
                pxs.append(msg_px)
                qtys.append(msg_qty)
                stats.trades += 1
                n += 1
            if n == 0:
                continue
            if rows:
                # A book message covers the rows since the previous book message (trade-only
                # and halt rows in between leave the book alone), like Binance's U..u.
                cols.close(n, line, book_seq + 1 if book_seq >= 0 else line, book_seq, ts)
                book_seq = line
                stats.book_messages += 1
            else:
                cols.close(n, line, line, NO_SEQ, ts)
                stats.trade_only_messages += 1
            stats.messages += 1
            if len(cols.n) >= self.chunk_messages:
                stats.rows = line
                yield cols.flush(sid)
                kinds, sides, pxs, qtys = cols.kind, cols.side, cols.px, cols.qty
        stats.rows = line
        stats.last_ts_ns = last_ts if line else None
        if ob_lines is not None and next(ob_lines, None) is not None:
            raise ob_fail(
                line + 1, f"the orderbook file has more rows than the message file ({line})"
            )
        if cols.n:
            yield cols.flush(sid)

    def _start(
        self,
        cols: _Columns,
        typ: int,
        sign: int,
        px: int,
        size: int,
        tokens: list[bytes],
        ts: int,
        msg_fail: Fail,
        ob_fail: Fail,
    ) -> DepthBook:
        """Build the start snapshot from orderbook row 1 and emit it: seq 0, at message 1's
        time (the book just before it)."""
        stats = self.stats
        levels = len(tokens) // 4
        ob_name = parse_lobster_name(base_name(self.orderbook)) if self.orderbook else None
        if ob_name is not None and ob_name.levels != levels:
            raise ob_fail(1, f"{levels} levels per row, the file name says {ob_name.levels}")
        stats.levels = levels
        depth = DepthBook(levels, msg_fail, ob_fail)
        bids, asks = depth.start(typ, sign, px, size, tokens)
        if stats.depth_refill:
            stats.depth = depth.counts
        cols.kind.append(CLEAR)
        cols.side.append(0)
        cols.px.append(0)
        cols.qty.append(0)
        rows: list[Row] = [(BID, p, q) for p, q in bids] + [(ASK, p, q) for p, q in asks]
        path = stats.orderbook_path or ""
        for side, p, q in rows:
            cols.kind.append(SNAPSHOT)
            cols.side.append(side)
            cols.px.append(self._ticks(p, 1, path))
            cols.qty.append(self._lots(q, 1, path))
        cols.close(len(rows) + 1, 0, 0, NO_SEQ, ts)
        stats.messages += 1
        stats.snapshot_levels = (len(bids), len(asks))
        return depth

    def _ticks(self, px: int, line: int, path: str) -> int:
        steps, rem = divmod(px * self.scale.px_num, self.scale.px_den)
        if rem:
            raise SourceFormatError(
                path, line, f"price {px} is not on the {self.instrument.tick_size} tick grid"
            )
        if not -MAX_ABS_UNITS <= steps <= MAX_ABS_UNITS:
            raise SourceFormatError(path, line, f"price {px} is {_BEYOND} ticks")
        return steps

    def _lots(self, shares: int, line: int, path: str) -> int:
        steps, rem = divmod(shares * self.scale.qty_num, self.scale.qty_den)
        if rem:
            raise SourceFormatError(
                path,
                line,
                f"size {shares} is not a whole number of {self.instrument.lot_size} lots",
            )
        if steps > MAX_ABS_UNITS:  # never below zero: sizes are checked where they are read
            raise SourceFormatError(path, line, f"size {shares} is {_BEYOND} lots")
        return steps


def read_lobster(
    messages: LobsterPath,
    orderbook: LobsterPath | None = None,
    *,
    instrument: InstrumentSpec | None = None,
    trading_date: dt.date | None = None,
    tz: str | None = DEFAULT_TZ,
    depth_refill: bool = True,
    errors: ErrorMode = "raise",
    messages_only: bool = False,
) -> LobsterReplay:
    """Read a LOBSTER file pair into one event array; see `LobsterReader` for parameters.

    Raises
    ------
    SourceFormatError
        A malformed row, a price off the tick grid, or the two files disagreeing (naming the
        file and line).
    """
    reader = LobsterReader(
        messages,
        orderbook,
        instrument=instrument,
        trading_date=trading_date,
        tz=tz,
        depth_refill=depth_refill,
        errors=errors,
        messages_only=messages_only,
    )
    return reader.read()


def iter_lobster(
    messages: LobsterPath,
    orderbook: LobsterPath | None = None,
    *,
    instrument: InstrumentSpec | None = None,
    trading_date: dt.date | None = None,
    tz: str | None = DEFAULT_TZ,
    depth_refill: bool = True,
    chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
    errors: ErrorMode = "raise",
    messages_only: bool = False,
) -> LobsterReader:
    """A reader to iterate for event chunks; its `symbols` is ready at once, `stats` at the end."""
    return LobsterReader(
        messages,
        orderbook,
        instrument=instrument,
        trading_date=trading_date,
        tz=tz,
        depth_refill=depth_refill,
        chunk_messages=chunk_messages,
        errors=errors,
        messages_only=messages_only,
    )


def _orderbook_levels(orderbook: LobsterPath) -> int:
    """N, the levels per side of an orderbook file: from its name, else its first row."""
    name = parse_lobster_name(base_name(orderbook))
    if name is not None:
        return name.levels
    first = next(iter_lines(orderbook), b"")
    return (first.count(b",") + 1) // 4 if first else 0


def _parse_message(
    raw: bytes, line: int, epoch: int, fail: Fail, columns: int = 6
) -> tuple[int, int, int, int, int]:
    """(type, direction, price, size, ts_ns) of a message row, checked.

    Newer LOBSTER exports write a 7th column (the order's attribution, the market participant
    id NASDAQ publishes for some orders): it does not change the book and is not read.
    """
    parts = raw.split(b",")
    if len(parts) != columns or columns not in (6, 7):
        want = columns if columns in (6, 7) else "6 (or 7)"
        raise fail(line, f"expected {want} comma-separated fields, got {len(parts)}")
    try:
        ts = epoch + parse_seconds_ns(parts[0])
        typ, _order_id, size, px, sign = (int(p) for p in parts[1:6])
        if ts > _I64_MAX:  # the event model's times are int64 ns (until 2262)
            raise ValueError(f"time {parts[0].decode(errors='replace')!r} is past int64 ns")
    except ValueError as exc:
        raise fail(line, f"not a LOBSTER message row ({exc})") from None
    if not 1 <= typ <= HALT:
        raise fail(line, f"unknown message type {typ}")
    if typ != HALT:
        if size <= 0:
            raise fail(line, f"size {size} is not positive")
        if px <= 0:
            raise fail(line, f"price {px} is not positive")
        if typ <= EXECUTE_HIDDEN and sign not in (1, -1):
            raise fail(line, f"direction {sign} is neither 1 (buy) nor -1 (sell)")
    return typ, sign, px, size, ts


def _next_book_row(
    lines: Iterator[bytes], line: int, width: int, fail: Fail
) -> tuple[list[bytes], int]:
    """The orderbook row of message `line` as its fields (bytes); checks the field count.

    The fields are converted where they are read (`DepthBook`): most rows are settled by
    comparing them with the row before.
    """
    raw = next(lines, None)
    if raw is None:
        raise fail(line, f"the orderbook file ends after {line - 1} rows; the message file goes on")
    tokens = raw.split(b",")
    if width == 0:
        width = len(tokens)
        if width % 4 or not raw:
            raise fail(line, f"{width} fields: an orderbook row has 4 per level")
    elif len(tokens) != width:
        raise fail(line, f"{len(tokens)} fields, the rows before have {width}")
    return tokens, width


__all__ = [
    "DEFAULT_CHUNK_MESSAGES",
    "Halt",
    "LobsterReader",
    "LobsterReplay",
    "LobsterStats",
    "iter_lobster",
    "read_lobster",
]
