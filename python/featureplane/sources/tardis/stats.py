"""What a tardis.dev read did: files, counts, skip reasons with examples, instrument choices."""

from __future__ import annotations

from dataclasses import dataclass, field

from featureplane.sources._common import MAX_EXAMPLES, SkipStats

SKIP_REASONS = (
    "bad_header",
    "columns",
    "undecodable",
    "non_numeric",
    "bad_flag",
    "unknown_side",
    "negative_amount",
    "bad_amount",
    "off_grid",
    "out_of_range",
    "unknown_symbol",
    "exchange_mismatch",
    "damaged",
)
"""Every reason a row or file is skipped with `errors="skip"` (see docs/sources/tardis.md)."""


@dataclass
class TardisFile:
    """One input file and what was read from it."""

    path: str
    rank: int
    """Position in the caller's list: breaks ties between files at the same local time."""
    kind: str | None = None
    """"incremental_book_L2" or "trades"; None for a file skipped for its header."""
    rows: int = 0
    messages: int = 0
    symbols: list[str] = field(default_factory=list)


@dataclass
class TardisStats(SkipStats):
    """Counters of one read. Filled as the read goes; final once the last chunk is out."""

    files: list[TardisFile] = field(default_factory=list)
    rows: int = 0
    """Data rows read (headers excluded)."""
    messages: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("book", "snapshot", "trade"), 0)
    )
    """Messages emitted, by kind."""
    level_rows: int = 0
    """LEVEL and SNAPSHOT rows emitted."""
    trades: int = 0
    snapshot_continuations: int = 0
    """Snapshot rows of a symbol resumed after another symbol's rows: emitted as LEVEL rows."""
    rows_before_snapshot: int = 0
    """Book rows of a symbol before the file's first snapshot of it, dropped (see the docs)."""
    filtered_rows: int = 0
    """Rows of symbols left out by the `symbols` argument."""
    local_ts_backwards: int = 0
    """Messages whose local timestamp is earlier than the one before in the same file."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Rows or files not read, by reason (SKIP_REASONS), with `errors="skip"`."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """The first `MAX_EXAMPLES` occurrences of each skip reason, `file:line: detail`."""
    instruments: dict[str, str] = field(default_factory=dict)
    """How each symbol's tick and lot were chosen (from the caller, or inferred)."""
    events: int = 0
    """Event rows emitted."""

    def summary(self) -> str:
        """A few human-readable lines (for logs and the CLI)."""
        out = [
            f"{len(self.files)} file(s), {self.rows} rows, {self.events} event rows",
            "emitted: " + ", ".join(f"{k} {v}" for k, v in self.messages.items()),
            f"trades {self.trades}, level rows {self.level_rows}, rows before a snapshot "
            f"{self.rows_before_snapshot}, snapshot continuations {self.snapshot_continuations}",
        ]
        for reason, n in sorted(self.skipped.items()):
            out.append(f"skipped {reason}: {n} (first: {self.examples[reason][0]})")
        out.extend(f"{sym}: {how}" for sym, how in self.instruments.items())
        return "\n".join(out)


__all__ = ["MAX_EXAMPLES", "SKIP_REASONS", "TardisFile", "TardisStats"]
