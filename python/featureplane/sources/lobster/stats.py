"""What a LOBSTER read found: counts per message type, halts, the depth reconciliation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from featureplane.instruments import InstrumentSpec
from featureplane.sources.lobster.book import DepthCounts

HALT_STATES = {-1: "halt", 0: "quote", 1: "resume"}
"""A type-7 row's price column: trading halted, quoting resumed, trading resumed."""


@dataclass(frozen=True)
class Halt:
    """A LOBSTER trading-halt row (type 7): recorded, never emitted to the book."""

    line: int
    ts_ns: int
    state: str
    """"halt", "quote" (quoting resumes) or "resume" (trading resumes)."""


@dataclass
class LobsterStats:
    """Counts and choices of one LOBSTER read (filled as the stream is consumed)."""

    message_path: str
    orderbook_path: str | None
    instrument: InstrumentSpec
    trading_date: dt.date
    tz: str | None
    depth_refill: bool
    levels: int | None = None
    """N, the orderbook file's levels per side (None without an orderbook file)."""
    message_columns: int = 6
    """Columns of the message file: 6, or 7 in newer exports (the 7th is not read)."""
    rows: int = 0
    """Message rows read."""
    by_type: dict[int, int] = field(default_factory=dict)
    messages: int = 0
    """Normalized messages emitted, the start snapshot included."""
    book_messages: int = 0
    trade_only_messages: int = 0
    trades: int = 0
    snapshot_levels: tuple[int, int] = (0, 0)
    """(bid, ask) levels of the start snapshot."""
    halts: list[Halt] = field(default_factory=list)
    ts_backwards: int = 0
    """Rows whose time is earlier than the row before (applied in file order)."""
    depth: DepthCounts = field(default_factory=DepthCounts)
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None

    def summary(self) -> str:
        """One human-readable line (for logs and the CLI)."""
        d = self.depth
        types = ", ".join(f"{t}: {n}" for t, n in sorted(self.by_type.items()))
        return (
            f"{self.message_path}: {self.rows} rows ({types}); {self.messages} messages "
            f"({self.book_messages} book, {self.trade_only_messages} trade-only), "
            f"{self.trades} trades, {len(self.halts)} halt rows; source depth "
            f"{self.instrument.depth} level(s); snapshot "
            f"{self.snapshot_levels[0]}x{self.snapshot_levels[1]} levels; depth refill "
            f"{d.refill_unseen} unseen + {d.refill_changed} changed levels in "
            f"{d.refill_messages} messages, {d.stale_removed} stale removed, "
            f"{d.revealed_unchanged} revealed unchanged; {d.out_of_window} out-of-window, "
            f"{d.clamped} clamped, {self.ts_backwards} times backwards"
        )


__all__ = ["HALT_STATES", "Halt", "LobsterStats"]
