"""Check a normalized Databento MBO stream: an uncrossed book in trading, every trade once.

The stream goes through featureplane's `LOBEngine` (the book the features read). After every
message, i.e. at every F_LAST boundary, the book must not be crossed or locked once the regular
session trades; before that (the pre-open, where orders rest on both sides of the coming
opening price until the auction uncrosses them) a locked or crossed book is legitimate and is
only measured. Independently of the source, the file is decoded again and its T and F records
counted, so the TRADE rows can be reconciled with the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from databento_dbn import F_LAST, MBOMsg

from featureplane.book.lob import LOBEngine
from featureplane.events import TRADE, iter_messages
from featureplane.sources._common import Instruments, PathArg
from featureplane.sources.databento.dbn import DbnRecords
from featureplane.sources.databento.reader import (
    DatabentoReader,
    DatabentoStats,
    venue_sequence,
)


@dataclass(frozen=True)
class CrossedBook:
    """A message after which the book was crossed (bid > ask) or locked (bid == ask)."""

    source_ts_ns: int
    sequence: int
    """The venue sequence of the message's last record."""
    bid_px: int
    ask_px: int
    """Best prices in ticks."""


@dataclass(frozen=True)
class FileTrades:
    """T and F records of one instrument, counted straight from the decoder.

    F records are split three ways, by the event (F_LAST group) they are in: `passive` fills of
    resting orders, `aggressor` fills (the F's order id is the aggressor's, the id on the
    event's T: an aggressor that was itself resting, e.g. a stop or a modified order), and
    `no_side` fills (side N: both sides of an auction print).
    """

    t_records: int = 0
    t_size: int = 0
    first_t_ts_ns: int | None = None
    f_passive: int = 0
    f_passive_size: int = 0
    f_aggressor: int = 0
    f_aggressor_size: int = 0
    f_no_side: int = 0
    f_no_side_size: int = 0

    @property
    def f_records(self) -> int:
        """Every F (fill) record: passive, aggressor and side-less."""
        return self.f_passive + self.f_aggressor + self.f_no_side

    @property
    def reconciled(self) -> bool:
        """Traded size = passive fills + half the side-less fills (each counts both sides)."""
        return self.t_size * 2 == 2 * self.f_passive_size + self.f_no_side_size


@dataclass
class DatabentoValidation:
    """The outcome of `validate_databento` for one symbol."""

    path: str
    symbol: str
    trading_start_ns: int | None
    """Start of the checked window (ns): the caller's, or the first T record's ts_event."""
    messages: int = 0
    """Messages applied (the snapshot included)."""
    book_messages: int = 0
    """Messages after which the book was checked (every message with a book row)."""
    pre_open_messages: int = 0
    pre_open_locked: int = 0
    pre_open_crossed: int = 0
    window_messages: int = 0
    window_locked: int = 0
    window_crossed: int = 0
    examples: list[CrossedBook] = field(default_factory=list)
    """The first crossed or locked books inside the window."""
    trade_rows: int = 0
    file: FileTrades = field(default_factory=FileTrades)
    engine_counters: dict[str, int] = field(default_factory=dict)
    stats: DatabentoStats | None = None

    @property
    def ok(self) -> bool:
        """Never locked or crossed in the window, every T a TRADE row, nothing dropped."""
        return (
            self.window_messages > 0
            and self.window_locked == self.window_crossed == 0
            and self.trade_rows == self.file.t_records
            and self.engine_counters.get("applied") == self.messages
        )

    def summary(self) -> str:
        """One human-readable line (for logs and the CLI)."""
        f = self.file
        pre = self.pre_open_messages or 1
        return (
            f"{self.path} {self.symbol}: {self.messages} messages; pre-open "
            f"{self.pre_open_messages} book messages, {self.pre_open_locked} locked "
            f"({self.pre_open_locked / pre:.1%}), {self.pre_open_crossed} crossed "
            f"({self.pre_open_crossed / pre:.1%}); from the open {self.window_messages} book "
            f"messages, {self.window_locked} locked, {self.window_crossed} crossed; "
            f"{self.trade_rows} TRADE rows for {f.t_records} T records (size {f.t_size}); "
            f"F records {f.f_records}: {f.f_passive} passive (size {f.f_passive_size}), "
            f"{f.f_aggressor} aggressor (size {f.f_aggressor_size}), {f.f_no_side} side N "
            f"(size {f.f_no_side_size}); reconciled {f.reconciled}"
        )


def validate_databento(
    path: PathArg,
    symbol: str | None = None,
    *,
    instruments: Instruments | None = None,
    trading_start_ns: int | None = None,
    max_examples: int = 10,
) -> DatabentoValidation:
    """Replay one symbol of a Databento MBO file through `LOBEngine` and check it.

    Parameters
    ----------
    symbol
        The symbol to check; default the file's only symbol.
    trading_start_ns
        Start of the regular-trading window (ts_event, ns). Default: the ts_event of the
        symbol's first T record, the opening print that ends the pre-open auction (23:00 UTC,
        the 17:00 CT reopen, on the ESH4 file).
    max_examples
        Crossed or locked books in the window kept as examples.

    Raises
    ------
    SourceFormatError
        From the reader (always `errors="raise"` here): a record that breaks the book.
    """
    probe = DatabentoReader(
        path, instruments=instruments, symbols=None if symbol is None else [symbol]
    )
    if symbol is None:
        names = list(probe.stats.instruments)
        if len(names) != 1:
            raise ValueError(f"{probe.path} maps {len(names)} symbols {names}: pass symbol=")
        symbol = names[0]
    instrument_id = probe.stats.instruments[symbol]
    file = _count_trades(probe.path, instrument_id)
    start = file.first_t_ts_ns if trading_start_ns is None else trading_start_ns
    report = DatabentoValidation(probe.path, symbol, start, file=file)

    lob = LOBEngine(probe.symbols)
    sid = probe.symbols.id_of(symbol)
    for chunk in probe:
        report.trade_rows += int(((chunk["kind"] == TRADE) & (chunk["symbol_id"] == sid)).sum())
        for message in iter_messages(chunk):
            lob.apply(message)
            report.messages += 1
            last = message[-1]
            if int(last["symbol_id"]) != sid or bool((message["kind"] == TRADE).all()):
                continue
            report.book_messages += 1
            ts = int(last["source_ts_ns"])
            l1 = lob.get_l1_scaled(sid)
            in_window = start is not None and ts >= start
            locked = crossed = False
            if l1.bid_px is not None and l1.ask_px is not None:
                locked = l1.bid_px == l1.ask_px
                crossed = l1.bid_px > l1.ask_px
            if in_window:
                report.window_messages += 1
                report.window_locked += locked
                report.window_crossed += crossed
                if (locked or crossed) and len(report.examples) < max_examples:
                    assert l1.bid_px is not None and l1.ask_px is not None
                    report.examples.append(
                        CrossedBook(ts, venue_sequence(int(last["seq"])), l1.bid_px, l1.ask_px)
                    )
            else:
                report.pre_open_messages += 1
                report.pre_open_locked += locked
                report.pre_open_crossed += crossed
    report.engine_counters = dict(lob.counters)
    report.stats = probe.stats
    return report


def _count_trades(path: str, instrument_id: int) -> FileTrades:
    """T and F records of one instrument, straight from the decoder (not via the source)."""
    counts: Counter[str] = Counter()
    first_t: int | None = None
    event: list[MBOMsg] = []
    for records in DbnRecords(path):
        for rec in records:
            if type(rec) is not MBOMsg or rec.instrument_id != instrument_id:
                continue
            event.append(rec)
            if rec.flags & F_LAST:
                first_t = _count_event(event, counts, first_t)
                event = []
    first_t = _count_event(event, counts, first_t)
    return FileTrades(
        t_records=counts["t"],
        t_size=counts["t_size"],
        first_t_ts_ns=first_t,
        f_passive=counts["passive"],
        f_passive_size=counts["passive_size"],
        f_aggressor=counts["aggressor"],
        f_aggressor_size=counts["aggressor_size"],
        f_no_side=counts["no_side"],
        f_no_side_size=counts["no_side_size"],
    )


def _count_event(event: list[MBOMsg], counts: Counter[str], first_t: int | None) -> int | None:
    aggressors = set()
    for rec in event:
        if str(rec.action) == "T":
            counts["t"] += 1
            counts["t_size"] += rec.size
            aggressors.add(rec.order_id)
            if first_t is None:
                first_t = rec.ts_event
    for rec in event:
        if str(rec.action) == "F":
            kind = (
                "no_side"
                if str(rec.side) == "N"
                else "aggressor"
                if rec.order_id in aggressors
                else "passive"
            )
            counts[kind] += 1
            counts[f"{kind}_size"] += rec.size
    return first_t


__all__ = ["CrossedBook", "DatabentoValidation", "FileTrades", "validate_databento"]
