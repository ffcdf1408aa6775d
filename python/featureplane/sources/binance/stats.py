"""What a Binance read did: counts, skip reasons with examples, per-symbol sync facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from featureplane.sources._common import SkipStats

SKIP_REASONS = (
    "bad_line",
    "bad_json",
    "unknown_stream",
    "unknown_event",
    "symbol_mismatch",
    "bad_message",
    "bad_value",
    "off_grid",
    "truncated",
    "gzip_error",
    "no_symbol",
    "no_snapshot_diffs",
)
"""Every reason a line, message or file is skipped (see docs/sources/binance.md)."""

WARNING_REASONS = ("sync_not_straddled", "chain_gap", "empty_file", "local_ts_unit")
"""Reasons counted where nothing is dropped but something deserves a look."""


@dataclass
class FileInfo:
    """One input file: its symbol, market, where it sits in its chain, what was read."""

    path: str
    symbol: str | None
    market: str | None
    first_local_ts_ns: int | None
    chain_pos: int = -1
    """Position in its symbol's chain (0 = first); -1 when the file was not read."""
    local_ts_unit: str = "ns"
    """The unit of the file's local timestamps: "ns", or an older recorder's "us" or "ms",
    converted to ns as they are read (also in `warnings["local_ts_unit"]`)."""
    local_ts_scale: int = 1
    lines: int = 0
    truncated: bool = False


@dataclass
class SymbolSync:
    """How a symbol's book was synchronised to its REST snapshot(s)."""

    symbol: str
    market: str
    files: list[str] = field(default_factory=list)
    snapshots: int = 0
    last_update_id: int | None = None
    """`lastUpdateId` of the first snapshot."""
    first_U: int | None = None  # Binance's own field names
    first_u: int | None = None
    """`U` and `u` of the first diff applied after the first snapshot."""
    straddled: bool | None = None
    """Whether that diff straddles the snapshot (None: no diff followed it)."""
    diffs_read: int = 0
    """Valid diffs parsed, including the ones dropped as stale or for want of a snapshot."""
    buffered_diffs: int = 0
    """Diffs held back because they came before the first snapshot."""
    stale_dropped: int = 0
    diffs: int = 0
    """Diffs emitted."""
    trades: int = 0
    book_tickers: int = 0
    last_u: int | None = None
    chain_gaps: int = 0
    """Breaks of continuity at a file boundary of the chain (also in warnings['chain_gap'])."""
    chain_resets: int = 0
    """Resets emitted at chain gaps (a CLEAR without sequence: the book waits for a snapshot)."""
    seq_gaps: int = 0
    """Breaks of continuity inside a file; left for the engine to flag as gaps."""
    off_grid: int = 0
    """Lines skipped as `off_grid` (a grid too coarse for the data is refused: see the docs)."""
    off_grid_book: int = 0
    """Of them, diffs and snapshots (on a grid the caller gave, any is refused: see the docs)."""
    grid_given: bool = False
    """The tick and lot came from the caller (not the built-in table or the data's strings)."""
    empty_diffs_folded: int = 0
    """Diffs without levels, folded into the next diff of the symbol (see the docs)."""


@dataclass
class BinanceStats(SkipStats):
    """Counters of one read. Filled as the read goes; final once the last chunk is out."""

    files: list[FileInfo] = field(default_factory=list)
    lines_read: int = 0
    read: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("diff", "trade", "snapshot", "book_ticker"), 0)
    )
    """Valid messages parsed, by kind (including diffs later dropped as stale)."""
    messages: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("diff", "trade", "snapshot"), 0)
    )
    """Messages emitted into the event stream, by kind."""
    book_tickers: int = 0
    stale_diffs_dropped: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Lines, messages or files not read, by reason (SKIP_REASONS)."""
    warnings: dict[str, int] = field(default_factory=dict)
    """Emitted but noteworthy, by reason (WARNING_REASONS)."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """The first `MAX_EXAMPLES` occurrences of each skip or warning reason, `file:line: detail`."""
    sync: dict[str, SymbolSync] = field(default_factory=dict)
    instruments: dict[str, str] = field(default_factory=dict)
    """How each symbol's tick and lot were chosen (caller, built-in table, or inferred)."""
    truncated_files: list[str] = field(default_factory=list)
    events: int = 0
    """Event rows emitted."""

    def summary(self) -> str:
        """A few human-readable lines (for logs and the CLI)."""
        out = [
            f"{len(self.files)} file(s), {self.lines_read} lines, {self.events} event rows",
            "read: " + ", ".join(f"{k} {v}" for k, v in self.read.items()),
            "emitted: " + ", ".join(f"{k} {v}" for k, v in self.messages.items()),
            f"stale diffs dropped: {self.stale_diffs_dropped}",
        ]
        for title, table in (("skipped", self.skipped), ("warnings", self.warnings)):
            for reason, n in sorted(table.items()):
                first = self.examples.get(reason, [""])[0]
                out.append(f"{title} {reason}: {n} (first: {first})")
        out.extend(
            f"{sym.symbol} [{sym.market}]: lastUpdateId {sym.last_update_id}, first diff "
            f"U={sym.first_U} u={sym.first_u}, straddled {sym.straddled}, "
            f"stale {sym.stale_dropped}, chain gaps {sym.chain_gaps}"
            for sym in self.sync.values()
        )
        out.extend(f"{sym}: {how}" for sym, how in self.instruments.items())
        return "\n".join(out)
