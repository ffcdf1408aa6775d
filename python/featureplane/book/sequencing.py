"""Sequence rules of lob_shared_v1: duplicates, out-of-order messages, gaps and resyncs.

A symbol has two sequence channels, because venues number them independently (Binance depth
update ids and trade ids): the book channel (messages that carry any book row) and the trade
channel (trade-only messages). A message with `seq < 0` has no sequence; its timestamp is checked
instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from featureplane.events import NO_SEQ


class Verdict(Enum):
    """What the ordering rules decide for a message; the value is its counter name."""

    APPLY = "applied"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    STALE = "stale"


@dataclass
class SequenceState:
    """Per-symbol sequence state; a reset returns it to the initial values."""

    book_seq: int = NO_SEQ
    trade_seq: int = NO_SEQ
    after_snapshot: bool = False
    """The last book message was a snapshot: the next diff must straddle its sequence."""
    last_source_ts_ns: int | None = None


def check_book(
    state: SequenceState, seq: int, first_seq: int, prev_seq: int
) -> tuple[Verdict, bool]:
    """Verdict for a non-snapshot book message, and whether it opens a gap.

    Rules (checked in this order):

    1. No sequence (`seq < 0`), or no sequence seen yet since the last reset: apply, no gap.
    2. Right after a snapshot at sequence L: a message with `seq < L` is stale (dropped); else it
       must straddle, `first_seq <= L + 1` where `first_seq` is known, or it opens a gap.
    3. `seq == last`: duplicate (dropped). `seq < last`: out of order (dropped).
    4. Continuity: `prev_seq == last` where the source gives `prev_seq`; else
       `first_seq == last + 1` where it gives `first_seq`; else sequences may be sparse and any
       larger `seq` continues the stream.
    """
    last = state.book_seq
    if seq < 0 or last < 0:
        return Verdict.APPLY, False
    if state.after_snapshot:
        if seq < last:
            return Verdict.STALE, False
        return Verdict.APPLY, first_seq >= 0 and first_seq > last + 1
    if seq == last:
        return Verdict.DUPLICATE, False
    if seq < last:
        return Verdict.OUT_OF_ORDER, False
    if prev_seq >= 0:
        return Verdict.APPLY, prev_seq != last
    if first_seq >= 0:
        return Verdict.APPLY, first_seq != last + 1
    return Verdict.APPLY, False


def check_trade(state: SequenceState, seq: int) -> Verdict:
    """Verdict for a trade-only message: duplicates and older trades are dropped.

    Trade ids are not used to detect gaps: a missed trade does not make the book untrusted.
    """
    last = state.trade_seq
    if seq < 0 or last < 0 or seq > last:
        return Verdict.APPLY
    return Verdict.DUPLICATE if seq == last else Verdict.OUT_OF_ORDER
