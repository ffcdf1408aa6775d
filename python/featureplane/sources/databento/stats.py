"""What a Databento read did: file metadata, record counts, skip reasons with examples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from featureplane.sources._common import MAX_EXAMPLES, SkipStats
from featureplane.sources.databento.book import BOOK_REASONS

SKIP_REASONS = (
    *BOOK_REASONS,
    "off_grid",
    "undefined_price",
    "bad_side",
    "unknown_action",
    "unknown_instrument",
    "bad_timestamp",
    "truncated",
)
"""Every reason a record is skipped (with `errors="raise"`: refused); see the docs."""

WARNING_REASONS = (
    "unterminated_message",
    "cancel_price_mismatch",
    "sequence_backwards",
)
"""Reasons counted where nothing is dropped but something deserves a look."""


@dataclass
class DatabentoStats(SkipStats):
    """Counters of one read. Filled as the read goes; final once the last chunk is out."""

    path: str
    dbn_version: int = 0
    """The file's DBN version (read as is, not upgraded)."""
    dataset: str = ""
    schema: str | None = None
    start_ns: int = 0
    end_ns: int | None = None
    stype_in: str | None = None
    stype_out: str = ""
    instruments: dict[str, int] = field(default_factory=dict)
    """Symbol -> instrument_id, from the metadata's symbology (the symbols read)."""
    specs: dict[str, str] = field(default_factory=dict)
    """How each symbol's tick and lot were chosen (from the caller, or built in)."""
    records: int = 0
    """Records decoded after the metadata, of every type."""
    other_records: int = 0
    """Records that are not MBO (system, symbol-mapping, error messages): not read."""
    filtered_records: int = 0
    """MBO records of instruments left out by the `symbols` argument."""
    actions: Counter[str] = field(default_factory=Counter)
    """MBO records read, by action character."""
    flags: Counter[int] = field(default_factory=Counter)
    """MBO records read, by flags byte."""
    snapshot_records: int = 0
    """Records with F_SNAPSHOT."""
    bad_ts_recv_records: int = 0
    """Records with F_BAD_TS_RECV."""
    maybe_bad_book_records: int = 0
    """Records with F_MAYBE_BAD_BOOK (Databento saw an unrecoverable gap on the channel)."""
    fills: Counter[str] = field(default_factory=Counter)
    """F records by side character (they do not change the book; see the docs)."""
    messages: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("book", "snapshot", "trade"), 0)
    )
    """Messages emitted, by kind: `book` (levels, maybe trades), `snapshot`, `trade` (only)."""
    empty_messages: int = 0
    """Events (F_LAST groups) that changed no level and carried no trade: nothing emitted."""
    level_rows: int = 0
    """LEVEL and SNAPSHOT rows emitted."""
    trades: int = 0
    """TRADE rows emitted (one per T record)."""
    events: int = 0
    """Event rows emitted."""
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    """ts_event of the first and last live (non-snapshot) record read."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Records skipped, by reason (SKIP_REASONS), with `errors="skip"`."""
    warnings: dict[str, int] = field(default_factory=dict)
    """Counted oddities that drop nothing (WARNING_REASONS)."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """The first `MAX_EXAMPLES` of each skip or warning reason, `file:record: detail`."""

    def summary(self) -> str:
        """A few human-readable lines (for logs and the CLI)."""
        acts = ", ".join(f"{a} {n}" for a, n in sorted(self.actions.items()))
        out = [
            f"{self.path}: DBN v{self.dbn_version} {self.dataset} {self.schema}, "
            f"{self.records} records ({acts}; {self.other_records} other, "
            f"{self.filtered_records} filtered)",
            f"snapshot records {self.snapshot_records}, bad ts_recv {self.bad_ts_recv_records}, "
            f"maybe-bad-book {self.maybe_bad_book_records}",
            "emitted: "
            + ", ".join(f"{k} {v}" for k, v in self.messages.items())
            + f"; {self.empty_messages} empty events, {self.trades} trades, "
            f"{self.level_rows} level rows",
        ]
        for kind, counts in (("skipped", self.skipped), ("warning", self.warnings)):
            for reason, n in sorted(counts.items()):
                out.append(f"{kind} {reason}: {n} (first: {self.examples[reason][0]})")
        out.extend(f"{sym}: {how}" for sym, how in self.specs.items())
        return "\n".join(out)


__all__ = ["MAX_EXAMPLES", "SKIP_REASONS", "WARNING_REASONS", "DatabentoStats"]
