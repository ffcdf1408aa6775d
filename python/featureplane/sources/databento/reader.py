"""Databento market-by-order (MBO) DBN files -> normalized L2 messages.

The file is decoded by Databento's own decoder (`databento_dbn.DBNDecoder`, zstd or plain DBN,
any DBN version, read as is). Each instrument's orders are aggregated into price levels by
`MboBook`; every Databento event (the records up to one with F_LAST) becomes one message of
LEVEL rows (the absolute size of every level it touched) and TRADE rows (one per T record). The
start-of-day snapshot (F_SNAPSHOT records) and any R (clear) record become a snapshot message.
docs/sources/databento.md has the rules, the timestamp and sequence choices, and the findings
on the ESH4 file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from os import fspath
from typing import Any, Literal

import numpy as np
from databento_dbn import (
    F_BAD_TS_RECV,
    F_LAST,
    F_MAYBE_BAD_BOOK,
    F_SNAPSHOT,
    FIXED_PRICE_SCALE,
    UNDEF_PRICE,
    MBOMsg,
)

from featureplane.errors import UnknownSymbolError
from featureplane.events import (
    ASK,
    BID,
    BUY,
    CLEAR,
    END_OF_MESSAGE,
    EVENT_DTYPE,
    LEVEL,
    MAX_ABS_UNITS,
    NO_SEQ,
    SELL,
    SNAPSHOT,
    TRADE,
    UNKNOWN_SIDE,
    concat,
)
from featureplane.instruments import SymbolTable
from featureplane.sources._common import (
    EventArray,
    Instruments,
    PathArg,
    ReadOnce,
    Reporter,
    SourceData,
)
from featureplane.sources.databento.book import MboBook
from featureplane.sources.databento.dbn import (
    BUILTIN_TICKS,
    DbnRecords,
    builtin_spec,
    decimal_px,
    describe,
    read_metadata,
    symbology,
)
from featureplane.sources.databento.stats import DatabentoStats

DEFAULT_CHUNK_MESSAGES = 1 << 16
"""Messages per chunk yielded by `DatabentoReader`."""
SEQ_SHIFT = 16
"""`seq = sequence << SEQ_SHIFT | ordinal`: see `venue_sequence` and the docs."""
_MAX_ORDINAL = (1 << SEQ_SHIFT) - 1
_I64_MAX = (1 << 63) - 1  # DBN times are u64 ns; the event model's are int64

_BOOK_SIDES = {"B": BID, "A": ASK}
# On a T record `side` is the aggressor's side (Databento: "Bid for a buy order (or buy
# aggressor in a trade)"); N is a trade without one (the opening auction print).
_AGGRESSOR = {"B": BUY, "A": SELL, "N": UNKNOWN_SIDE}


def venue_sequence(seq: int) -> int:
    """The venue `sequence` a Databento message's `seq` was made from."""
    return seq >> SEQ_SHIFT


class DatabentoReplay(SourceData[DatabentoStats]):
    """Everything read from one DBN file."""


@dataclass
class _Instrument:
    """One instrument's book and the message being assembled for it."""

    symbol_id: int
    tick_nanos: int
    """Price units (1e-9) per tick."""
    size_mul: int
    size_div: int
    """lots = size * size_mul / size_div, exactly (lot = size_div / size_mul)."""
    book: MboBook = field(default_factory=MboBook)
    records: int = 0
    """Records in the pending message."""
    in_snapshot: bool = False
    clear: bool = False
    """The pending message holds an R or is a snapshot: emitted as CLEAR + the whole book."""
    trades: list[tuple[int, int, int]] = field(default_factory=list)
    ts_event: int = 0
    ts_recv: int = 0
    sequence: int = 0
    last_sequence: int = -1
    ordinal: int = 0


class _Columns:
    """Rows and message fields of the messages closed since the last flush."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int, int]] = []
        self.lens: list[int] = []
        self.msg: list[tuple[int, int, int, int]] = []
        """(symbol_id, seq, source_ts_ns, local_ts_ns) per message."""

    def flush(self) -> EventArray:
        lens = np.array(self.lens, dtype=np.int64)
        rows = np.array(self.rows, dtype=np.int64).reshape(-1, 4)
        msg = np.array(self.msg, dtype=np.int64).reshape(-1, 4)
        events = np.zeros(len(rows), dtype=EVENT_DTYPE)
        for i, name in enumerate(("kind", "side", "px", "qty")):
            events[name] = rows[:, i]
        events["flags"][np.cumsum(lens) - 1] = END_OF_MESSAGE
        for i, name in enumerate(("symbol_id", "seq", "source_ts_ns", "local_ts_ns")):
            events[name] = np.repeat(msg[:, i], lens)
        events["first_seq"] = NO_SEQ
        events["prev_seq"] = NO_SEQ
        self.rows, self.lens, self.msg = [], [], []
        return events


class DatabentoReader(ReadOnce):
    """A Databento MBO file, its metadata read and ready to be read once.

    Construction decodes the metadata (dataset, schema, symbology) and builds `symbols`;
    iterating yields event chunks of whole messages; `stats` fills up as it goes.

    Parameters
    ----------
    path
        A DBN file, zstd-compressed (`.dbn.zst`, told by its magic bytes) or plain.
    instruments
        Tick and lot per symbol: a `SymbolTable` (its ids are kept), a mapping symbol -> spec,
        or specs. Symbols not given use `builtin_spec` (CME equity-index futures).
    symbols
        Read only these symbols of the file's symbology; default every symbol it maps.
    errors
        `"raise"` (default): a record that breaks the book or the grid raises
        `SourceFormatError` naming the file and the record index (0 = the first record after
        the metadata). `"skip"`: it is counted by reason in `stats.skipped`, repaired or
        dropped as the docs say, and the read goes on. Raise is the default because one lost
        MBO record leaves a wrong level in the book for the rest of the session.
    chunk_messages
        Messages per yielded chunk.
    """

    def __init__(
        self,
        path: PathArg,
        *,
        instruments: Instruments | None = None,
        symbols: Iterable[str] | None = None,
        errors: Literal["raise", "skip"] = "raise",
        chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
    ) -> None:
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        if chunk_messages < 1:
            raise ValueError("chunk_messages must be positive")
        self.path = fspath(path)
        self.chunk_messages = chunk_messages
        self.stats = DatabentoStats(self.path)
        self._reporter = Reporter(self.stats, errors)
        self._counts: Counter[tuple[int, str]] = Counter()
        metadata = read_metadata(self.path)
        describe(self.stats, metadata)
        mapped = symbology(metadata)
        if symbols is not None:
            wanted = list(dict.fromkeys(symbols))
            if missing := [s for s in wanted if s not in mapped]:
                raise UnknownSymbolError(
                    f"symbol(s) {missing} not in the symbology of {self.path}: {sorted(mapped)}"
                )
            mapped = {s: mapped[s] for s in wanted}
        self.symbols, self._by_id = self._resolve(instruments, mapped)
        self._filtered_ids = set(symbology(metadata).values()) - set(self._by_id)

    def _resolve(
        self, instruments: Instruments | None, mapped: dict[str, int]
    ) -> tuple[SymbolTable, dict[int, _Instrument]]:
        if isinstance(instruments, SymbolTable):
            table = instruments
        elif isinstance(instruments, Mapping):
            table = SymbolTable(list(instruments.values()))
        else:
            table = SymbolTable(list(instruments or ()))
        by_id: dict[int, _Instrument] = {}
        for symbol, instrument_id in mapped.items():
            if symbol in table:
                spec = table.spec(symbol)
                self.stats.specs[symbol] = f"caller: tick {spec.tick_size}, lot {spec.lot_size}"
            else:
                builtin = builtin_spec(symbol)
                if builtin is None:
                    raise UnknownSymbolError(
                        f"no tick size for {symbol!r} in {self.path}: pass instruments= "
                        "(or symbols= to read only some of the file's symbols)"
                    )
                spec = builtin
                table.add(spec)
                self.stats.specs[symbol] = f"built in: tick {spec.tick_size}, lot 1"
            tick_nanos = spec.tick_size * FIXED_PRICE_SCALE
            if tick_nanos != tick_nanos.to_integral_value():
                raise ValueError(f"{symbol}: tick {spec.tick_size} is finer than DBN's 1e-9")
            lot_num, lot_den = spec.lot_size.as_integer_ratio()
            by_id[instrument_id] = _Instrument(
                table.id_of(symbol), int(tick_nanos), size_mul=lot_den, size_div=lot_num
            )
            self.stats.instruments[symbol] = instrument_id
        return table, by_id

    # ----- reading ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[EventArray]:
        return self.chunks()

    def read(self) -> DatabentoReplay:
        """Every message at once."""
        return DatabentoReplay(concat(list(self.chunks())), self.symbols, self.stats)

    def chunks(self) -> Iterator[EventArray]:
        """Yield event chunks of at most `chunk_messages` whole messages, in file order."""
        self._start_read()
        out = _Columns()
        index = 0
        decoder = DbnRecords(self.path)
        for records in decoder:
            for record in records:
                self._record(record, index, out)
                index += 1
                if len(out.lens) >= self.chunk_messages:
                    yield self._flush(out)
        self.stats.records = index
        if decoder.damage is not None:
            self._reporter.skip("truncated", self.stats.path, index, decoder.damage)
        for inst in self._by_id.values():
            if inst.records:
                if not inst.in_snapshot:
                    self._reporter.warn(
                        "unterminated_message",
                        self.stats.path,
                        index,
                        f"the file ends inside an event ({inst.records} records, no F_LAST)",
                    )
                self._close(inst, out)
        if out.lens:
            yield self._flush(out)
        self._tally()

    def _flush(self, out: _Columns) -> EventArray:
        events = out.flush()
        self.stats.events += len(events)
        self._tally()
        return events

    def _tally(self) -> None:
        """Fold the (flags, action) counts into the stats."""
        stats = self.stats
        for (flags, action), n in self._counts.items():
            stats.actions[action] += n
            stats.flags[flags] += n
            stats.snapshot_records += n * bool(flags & F_SNAPSHOT)
            stats.bad_ts_recv_records += n * bool(flags & F_BAD_TS_RECV)
            stats.maybe_bad_book_records += n * bool(flags & F_MAYBE_BAD_BOOK)
        self._counts.clear()

    def _record(self, rec: Any, index: int, out: _Columns) -> None:
        """Apply one decoded record; close its instrument's message on F_LAST."""
        stats = self.stats
        if type(rec) is not MBOMsg:
            stats.other_records += 1
            return
        inst = self._by_id.get(rec.instrument_id)
        if inst is None:
            if rec.instrument_id in self._filtered_ids:
                stats.filtered_records += 1
            else:
                self._reporter.skip(
                    "unknown_instrument",
                    self.stats.path,
                    index,
                    f"record {index}: instrument_id {rec.instrument_id} is not in the symbology",
                )
            return
        if rec.ts_event > _I64_MAX or rec.ts_recv > _I64_MAX:
            # Past 2262 (or DBN's undefined time, 2^64 - 1): not a time the events can carry.
            self._reporter.skip(
                "bad_timestamp",
                self.stats.path,
                index,
                f"record {index}: ts_event {rec.ts_event}, ts_recv {rec.ts_recv}: past int64 ns",
            )
            return
        flags = rec.flags
        action = str(rec.action)
        # One count per record; the per-flag and per-action totals are derived per chunk.
        self._counts[flags, action] += 1
        if flags & F_SNAPSHOT:
            if not inst.in_snapshot:
                # A snapshot is the whole book: it replaces what the instrument had.
                if inst.records:
                    self._reporter.warn(
                        "unterminated_message",
                        self.stats.path,
                        index,
                        "a snapshot starts inside an event",
                    )
                    self._close(inst, out)
                inst.book.clear()
                inst.in_snapshot = inst.clear = True
                inst.ts_event = inst.sequence = 0
            # The message takes the latest exchange time and sequence of its records.
            inst.ts_event = max(inst.ts_event, rec.ts_event)
            inst.sequence = max(inst.sequence, rec.sequence)
        else:
            if inst.in_snapshot:
                # Before 2024-02-10 Databento ended the start-of-day snapshot without F_LAST:
                # the first live record closes it.
                self._close(inst, out)
            inst.ts_event = rec.ts_event
            inst.sequence = rec.sequence
            if stats.first_ts_ns is None:
                stats.first_ts_ns = rec.ts_event
            stats.last_ts_ns = rec.ts_event
        inst.ts_recv = rec.ts_recv
        inst.records += 1
        self._apply(inst, rec, action, index)
        if flags & F_LAST:
            self._close(inst, out)

    def _apply(self, inst: _Instrument, rec: Any, action: str, index: int) -> None:
        book = inst.book
        reason: str | None
        if action == "A" or action == "M":
            side = _BOOK_SIDES.get(str(rec.side))
            if side is None:
                self._reporter.skip(
                    "bad_side", self.stats.path, index, f"record {index}: {action} with side N"
                )
                return
            px = self._ticks(inst, rec.price, index)
            size = self._lots(inst, rec.size, index)
            if px is None or size is None:
                return
            if action == "A":
                reason = book.add(rec.order_id, side, px, size)
            else:
                reason = book.modify(rec.order_id, side, px, size)
        elif action == "C":
            size = self._lots(inst, rec.size, index)
            if size is None:
                return
            order = book.orders.get(rec.order_id)
            if order is not None and order[1] * inst.tick_nanos != rec.price:
                self._reporter.warn(
                    "cancel_price_mismatch",
                    self.stats.path,
                    index,
                    f"record {index}: cancel at {rec.price}e-9, order {rec.order_id} rests at "
                    f"{order[1] * inst.tick_nanos}e-9",
                )
            reason = book.cancel(rec.order_id, size)
        elif action == "T":
            px = self._ticks(inst, rec.price, index)
            size = self._lots(inst, rec.size, index)
            if px is not None and size is not None:
                inst.trades.append((_AGGRESSOR.get(str(rec.side), UNKNOWN_SIDE), px, size))
            return
        elif action == "F":
            self.stats.fills[str(rec.side)] += 1
            return
        elif action == "R":
            book.clear()
            inst.clear = True
            return
        elif action == "N":
            return
        else:
            self._reporter.skip(
                "unknown_action", self.stats.path, index, f"record {index}: action {action!r}"
            )
            return
        if reason is not None:
            # Repaired in skip mode only: in raise mode the read stops here.
            repaired = (
                "" if self._reporter.raise_errors else " (repaired; see docs/sources/databento.md)"
            )
            self._reporter.skip(
                reason,
                self.stats.path,
                index,
                f"record {index}: {action} order {rec.order_id} size {rec.size} "
                f"at {rec.price}e-9{repaired}",
            )

    def _ticks(self, inst: _Instrument, price: int, index: int) -> int | None:
        if price == UNDEF_PRICE:
            self._reporter.skip(
                "undefined_price", self.stats.path, index, f"record {index}: price is undefined"
            )
            return None
        ticks, rem = divmod(price, inst.tick_nanos)
        if rem or not -MAX_ABS_UNITS <= ticks <= MAX_ABS_UNITS:
            spec = self.symbols.spec_of(inst.symbol_id)
            self._reporter.skip(
                "off_grid",
                self.stats.path,
                index,
                f"record {index}: price {decimal_px(price)} ({price}e-9) is not a "
                f"multiple of the tick {spec.tick_size} of {spec.symbol} (or out of range)",
            )
            return None
        return ticks

    def _lots(self, inst: _Instrument, size: int, index: int) -> int | None:
        lots, rem = divmod(size * inst.size_mul, inst.size_div)
        if rem or lots > MAX_ABS_UNITS:
            spec = self.symbols.spec_of(inst.symbol_id)
            self._reporter.skip(
                "off_grid",
                self.stats.path,
                index,
                f"record {index}: size {size} is not a multiple of the lot {spec.lot_size} "
                f"of {spec.symbol} (or out of range)",
            )
            return None
        return lots

    def _close(self, inst: _Instrument, out: _Columns) -> None:
        """Emit the pending message of `inst` (nothing for an event that changed nothing)."""
        stats = self.stats
        trades = inst.trades
        if inst.clear:
            rows = [(CLEAR, 0, 0, 0)] + [(SNAPSHOT, s, p, q) for s, p, q in inst.book.levels()]
            inst.book.touched.clear()
            kind = "snapshot"
            # A clear restarts the venue's numbering as far as the engine is concerned.
            inst.last_sequence, inst.ordinal = inst.sequence, 0
        else:
            rows = [(LEVEL, *level) for level in inst.book.take_touched()]
            kind = "book" if rows else "trade"
            if inst.sequence > inst.last_sequence:
                inst.last_sequence, inst.ordinal = inst.sequence, 0
            elif inst.sequence == inst.last_sequence and inst.ordinal < _MAX_ORDINAL:
                inst.ordinal += 1
            else:
                self._reporter.warn(
                    "sequence_backwards",
                    self.stats.path,
                    None,
                    f"sequence {inst.sequence} after {inst.last_sequence} (message kept; the "
                    "engine drops it as out of order)",
                )
        n_levels = len(rows)
        rows.extend((TRADE, side, px, qty) for side, px, qty in trades)
        if rows:
            out.rows.extend(rows)
            out.lens.append(len(rows))
            seq = inst.sequence << SEQ_SHIFT | inst.ordinal
            out.msg.append((inst.symbol_id, seq, inst.ts_event, inst.ts_recv))
            stats.messages[kind] += 1
            stats.level_rows += n_levels - (kind == "snapshot")
            stats.trades += len(trades)
        else:
            stats.empty_messages += 1
        inst.records = 0
        inst.in_snapshot = inst.clear = False
        inst.trades = []


def read_databento(
    path: PathArg,
    *,
    instruments: Instruments | None = None,
    symbols: Iterable[str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
) -> DatabentoReplay:
    """Read a Databento MBO file into one event array; see `DatabentoReader` for parameters.

    Raises
    ------
    SourceFormatError
        Not a DBN MBO file, or (with `errors="raise"`) a record off the grid or breaking the
        book, naming the file and the record index.
    """
    return DatabentoReader(path, instruments=instruments, symbols=symbols, errors=errors).read()


def iter_databento(
    path: PathArg,
    *,
    instruments: Instruments | None = None,
    symbols: Iterable[str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
    chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
) -> DatabentoReader:
    """A reader to iterate for event chunks; `symbols` is ready at once, `stats` at the end."""
    return DatabentoReader(
        path,
        instruments=instruments,
        symbols=symbols,
        errors=errors,
        chunk_messages=chunk_messages,
    )


__all__ = [
    "BUILTIN_TICKS",
    "DEFAULT_CHUNK_MESSAGES",
    "SEQ_SHIFT",
    "DatabentoReader",
    "DatabentoReplay",
    "DatabentoStats",
    "builtin_spec",
    "iter_databento",
    "read_databento",
    "venue_sequence",
]
