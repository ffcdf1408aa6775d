"""Check a normalized LOBSTER stream against LOBSTER's own orderbook file.

The stream goes through featureplane's `LOBEngine` (the book the features read); after every
message row the engine's top N levels are compared with that row of the orderbook file, read
again independently of the normalizer. It checks the whole chain: the normalizer's aggregate,
its scaling, the event encoding and the engine's level book.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from featureplane.book.lob import LOBEngine
from featureplane.events import TRADE, message_bounds
from featureplane.instruments import InstrumentSpec
from featureplane.sources.lobster.files import (
    DEFAULT_TZ,
    DUMMY_ASK_PX,
    DUMMY_BID_PX,
    LobsterPath,
    iter_lines,
    source_name,
)
from featureplane.sources.lobster.reader import LobsterReader
from featureplane.sources.lobster.stats import LobsterStats

EventArray = npt.NDArray[np.void]
"""An `EVENT_DTYPE` array."""

Levels = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class LevelMismatch:
    """One side of one row where the engine's book and the orderbook file differ.

    Levels are (price, shares) in LOBSTER units (dollars x 10000), best first.
    """

    row: int
    side: str
    orderbook: Levels
    engine: Levels


@dataclass
class ValidationReport:
    """The outcome of `validate_lobster`."""

    message_path: str
    orderbook_path: str
    levels: int
    rows: int = 0
    """Orderbook rows read (one per message row)."""
    rows_compared: int = 0
    mismatched_rows: int = 0
    bid_mismatch_rows: int = 0
    ask_mismatch_rows: int = 0
    examples: list[LevelMismatch] = field(default_factory=list)
    messages: int = 0
    """Normalized messages applied (the start snapshot included)."""
    trades: int = 0
    """TRADE rows in the stream."""
    engine_counters: dict[str, int] = field(default_factory=dict)
    stats: LobsterStats | None = None

    @property
    def ok(self) -> bool:
        """Every row compared and none differs."""
        return self.mismatched_rows == 0 and self.rows_compared == self.rows > 0

    def summary(self) -> str:
        """One human-readable line (for logs and the CLI)."""
        return (
            f"{self.orderbook_path}: {self.rows_compared}/{self.rows} rows compared on "
            f"{self.levels} levels, {self.mismatched_rows} mismatched "
            f"({self.bid_mismatch_rows} bid, {self.ask_mismatch_rows} ask); "
            f"{self.messages} messages, {self.trades} trades"
        )


def validate_lobster(
    message_path: LobsterPath,
    orderbook_path: LobsterPath | None = None,
    *,
    levels: int | None = None,
    instrument: InstrumentSpec | None = None,
    trading_date: dt.date | None = None,
    tz: str | None = DEFAULT_TZ,
    depth_refill: bool = True,
    max_examples: int = 10,
) -> ValidationReport:
    """Replay a LOBSTER file pair through `LOBEngine`; compare the book after every row.

    Parameters
    ----------
    message_path, orderbook_path
        The two CSVs (paths or `ZipMember`s), or a LOBSTER zip archive and None.
    levels
        Levels per side to compare (default: all the orderbook file has).
    depth_refill
        Passed to `LobsterReader`: False shows what the messages alone rebuild.
    max_examples
        Mismatching sides kept as examples (the first ones).

    Raises
    ------
    SourceFormatError
        From the normalizer: a malformed row, or (with depth refill) a level inside the known
        region where the two files disagree. Such a stream is not compared at all.
    """
    reader = LobsterReader(
        message_path,
        orderbook_path,
        instrument=instrument,
        trading_date=trading_date,
        tz=tz,
        depth_refill=depth_refill,
    )
    if reader.orderbook is None:
        raise ValueError("validate_lobster needs the orderbook file")
    scale = reader.scale
    sid = reader.symbol_id
    lob = LOBEngine(reader.symbols)
    report = ValidationReport(source_name(reader.messages), source_name(reader.orderbook), 0)
    messages = _messages(reader, report)
    pending = next(messages, None)
    for row, raw in enumerate(iter_lines(reader.orderbook), 1):
        # Apply the messages up to this row (the snapshot is seq 0; halt rows emit none).
        while pending is not None and pending[0] <= row:
            lob.apply(pending[1])
            pending = next(messages, None)
        vals = list(map(int, raw.split(b",")))
        n = levels or len(vals) // 4
        report.levels = n
        want_bids = tuple(
            (p, q) for p, q in zip(vals[2::4], vals[3::4], strict=True) if p != DUMMY_BID_PX
        )
        want_asks = tuple(
            (p, q) for p, q in zip(vals[0::4], vals[1::4], strict=True) if p != DUMMY_ASK_PX
        )
        bids, asks = lob.top_n(sid, n)
        got_bids = tuple((scale.to_lobster_px(p), scale.to_shares(q)) for p, q in bids)
        got_asks = tuple((scale.to_lobster_px(p), scale.to_shares(q)) for p, q in asks)
        report.rows = row
        report.rows_compared += 1
        bad_bid = got_bids != want_bids[:n]
        bad_ask = got_asks != want_asks[:n]
        if bad_bid or bad_ask:
            report.mismatched_rows += 1
            report.bid_mismatch_rows += bad_bid
            report.ask_mismatch_rows += bad_ask
            for bad, side, want, got in (
                (bad_bid, "bid", want_bids[:n], got_bids),
                (bad_ask, "ask", want_asks[:n], got_asks),
            ):
                if bad and len(report.examples) < max_examples:
                    report.examples.append(LevelMismatch(row, side, want, got))
    # Drain: the reader checks that both files have the same number of rows at the end.
    for _ in messages:
        pass
    report.engine_counters = dict(lob.counters)
    report.stats = reader.stats
    return report


def _messages(reader: LobsterReader, report: ValidationReport) -> Iterator[tuple[int, EventArray]]:
    """(seq, rows) of every message of the stream."""
    for chunk in reader:
        ends = message_bounds(chunk)
        seqs = chunk["seq"][ends - 1].tolist()
        report.trades += int(np.count_nonzero(chunk["kind"] == TRADE))
        start = 0
        for seq, end in zip(seqs, ends.tolist(), strict=True):
            report.messages += 1
            yield seq, chunk[start:end]
            start = end


__all__ = ["LevelMismatch", "ValidationReport", "validate_lobster"]
