"""LOBEngine: per-symbol L2 books with the ordering, gap and reset rules of lob_shared_v1."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from featureplane.book.l2 import L1, L2Book
from featureplane.book.sequencing import SequenceState, Verdict, check_book, check_trade
from featureplane.events import CLEAR, EVENT_DTYPE, LEVEL, SNAPSHOT, TRADE, validate
from featureplane.instruments import SymbolTable


@dataclass(frozen=True)
class Trade:
    side: int
    px: int
    qty: int
    source_ts_ns: int


@dataclass(frozen=True)
class ApplyResult:
    """What applying one message did.

    `reset` is true for the first applied message after a reset (session start, snapshot,
    `reset_symbol`); `out_of_order` is true when an out-of-order message was dropped since the
    previous applied message, or this message's timestamp went backwards without a sequence.
    """

    verdict: Verdict
    symbol_id: int
    reset: bool = False
    gap: bool = False
    untrusted: bool = False
    out_of_order: bool = False
    book_changed: bool = False
    trades: tuple[Trade, ...] = ()

    @property
    def applied(self) -> bool:
        """The message changed the state (its verdict is APPLY); dropped ones did not."""
        return self.verdict is Verdict.APPLY

    @property
    def status(self) -> str:
        """The verdict as a counter name: "applied", "duplicate", "out_of_order" or "stale"."""
        return self.verdict.value


@dataclass
class SymbolBook:
    """A symbol's book and its ordering state; `reset()` returns it to session start."""

    book: L2Book = field(default_factory=L2Book)
    seq: SequenceState = field(default_factory=SequenceState)
    untrusted: bool = False
    """A gap was seen: the book is wrong until a snapshot resyncs it."""
    reset_pending: bool = True
    out_of_order_pending: bool = False
    messages_applied: int = 0

    def reset(self) -> None:
        self.book.clear()
        self.seq = SequenceState()
        self.untrusted = False
        self.reset_pending = True
        self.out_of_order_pending = False


@dataclass(frozen=True)
class BookStats:
    bid_levels: int
    ask_levels: int
    bid_depth_qty: int
    ask_depth_qty: int
    crossed: bool
    untrusted: bool
    last_book_seq: int
    messages_applied: int


COUNTER_NAMES = (
    "messages",
    "applied",
    "duplicates",
    "out_of_order",
    "stale",
    "gaps",
    "resets",
    "ts_backwards",
)


class LOBEngine:
    """Books of every symbol in a `SymbolTable`; applies normalized messages."""

    def __init__(self, symbols: SymbolTable) -> None:
        self.symbols = symbols
        self._books = [SymbolBook() for _ in range(len(symbols))]
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)

    def _ensure_symbols(self) -> None:
        # The table may grow after the engine was built (a live feed adding an instrument).
        while len(self._books) < len(self.symbols):
            self._books.append(SymbolBook())

    def apply(self, message: np.ndarray) -> ApplyResult:
        """Apply the rows of one message. The caller validates (see `events.validate`)."""
        self._ensure_symbols()
        last = message[-1]
        sid = int(last["symbol_id"])
        state = self._books[sid]
        kinds = message["kind"]
        is_snapshot = bool((kinds == CLEAR).any())
        has_book = is_snapshot or bool(((kinds == LEVEL) | (kinds == SNAPSHOT)).any())
        seq = int(last["seq"])
        source_ts = int(last["source_ts_ns"])
        self.counters["messages"] += 1

        gap = False
        if is_snapshot:
            state.reset()
            self.counters["resets"] += 1
        elif has_book:
            verdict, gap = check_book(state.seq, seq, int(last["first_seq"]), int(last["prev_seq"]))
            if verdict is not Verdict.APPLY:
                return self._drop(state, sid, verdict)
        else:
            verdict = check_trade(state.seq, seq)
            if verdict is not Verdict.APPLY:
                return self._drop(state, sid, verdict)

        ts_backwards = (
            seq < 0
            and state.seq.last_source_ts_ns is not None
            and source_ts < state.seq.last_source_ts_ns
        )
        if gap:
            state.untrusted = True
            self.counters["gaps"] += 1
        if ts_backwards:
            self.counters["ts_backwards"] += 1

        trades: list[Trade] = []
        book = state.book
        # Columns as Python lists: one conversion per message instead of one per field.
        rows = zip(
            kinds.tolist(),
            message["side"].tolist(),
            message["px"].tolist(),
            message["qty"].tolist(),
            message["source_ts_ns"].tolist(),
            strict=True,
        )
        for kind, side, px, qty, ts in rows:
            if kind in (LEVEL, SNAPSHOT):
                book.set_level(side, px, qty)
            elif kind == CLEAR:
                book.clear()
            elif kind == TRADE:
                trades.append(Trade(side, px, qty, ts))

        if seq >= 0:
            if has_book:
                state.seq.book_seq = seq
            else:
                state.seq.trade_seq = seq
        if has_book:
            state.seq.after_snapshot = is_snapshot
        state.seq.last_source_ts_ns = source_ts
        state.messages_applied += 1
        self.counters["applied"] += 1

        result = ApplyResult(
            Verdict.APPLY,
            sid,
            reset=state.reset_pending,
            gap=gap,
            untrusted=state.untrusted,
            out_of_order=state.out_of_order_pending or ts_backwards,
            book_changed=has_book,
            trades=tuple(trades),
        )
        state.reset_pending = False
        state.out_of_order_pending = False
        return result

    def _drop(self, state: SymbolBook, sid: int, verdict: Verdict) -> ApplyResult:
        self.counters[verdict.value if verdict is not Verdict.DUPLICATE else "duplicates"] += 1
        if verdict is Verdict.OUT_OF_ORDER:
            state.out_of_order_pending = True
        return ApplyResult(verdict, sid, untrusted=state.untrusted)

    def apply_batch(self, events: np.ndarray) -> list[ApplyResult]:
        """Validate then apply every message of an event array."""
        from featureplane.events import iter_messages

        validate(events, len(self.symbols))
        return [self.apply(message) for message in iter_messages(events)]

    # ----- access -------------------------------------------------------------------------

    def _book_of(self, symbol: str | int) -> SymbolBook:
        self._ensure_symbols()
        sid = symbol if isinstance(symbol, int) else self.symbols.id_of(symbol)
        self.symbols.spec_of(sid)  # raises UnknownSymbolError for a bad id
        return self._books[sid]

    def book(self, symbol: str | int) -> L2Book:
        """A copy of the symbol's book (later messages do not change it), as the Rust
        backend's `RustLob.book` gives."""
        return self._book_of(symbol).book.copy()

    def get_l1_scaled(self, symbol: str | int) -> L1:
        """Best bid/ask of a symbol in ticks and lots (None for an empty side)."""
        return self._book_of(symbol).book.l1()

    def top_n(
        self, symbol: str | int, n: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best `n` levels of each side, best first, as (px ticks, qty lots)."""
        book = self._book_of(symbol).book
        return book.bids.levels(n), book.asks.levels(n)

    def snapshot(self, symbol: str | int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Every level of each side, best first."""
        book = self._book_of(symbol).book
        return book.bids.levels(), book.asks.levels()

    def book_stats(self, symbol: str | int) -> BookStats:
        """Level counts, depth (lots), crossed and untrusted state of a symbol's book.

        Raises
        ------
        UnknownSymbolError
            `symbol` (a name or an id) is not in the symbol table.
        """
        state = self._book_of(symbol)
        book = state.book
        return BookStats(
            bid_levels=len(book.bids),
            ask_levels=len(book.asks),
            bid_depth_qty=book.bids.total_qty(),
            ask_depth_qty=book.asks.total_qty(),
            crossed=book.is_crossed(),
            untrusted=state.untrusted,
            last_book_seq=state.seq.book_seq,
            messages_applied=state.messages_applied,
        )

    def is_untrusted(self, symbol: str | int) -> bool:
        """A gap was seen on the symbol's book and no snapshot has resynced it yet."""
        return self._book_of(symbol).untrusted

    def reset_symbol(self, symbol: str | int) -> None:
        """Return a symbol to session start: empty trusted book, no sequence, reset pending."""
        self._book_of(symbol).reset()
        self.counters["resets"] += 1


__all__ = ["EVENT_DTYPE", "ApplyResult", "BookStats", "LOBEngine", "Trade"]
