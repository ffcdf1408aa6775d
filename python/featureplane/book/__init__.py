"""The L2 book reference: books, sequencing rules, the multi-symbol LOBEngine."""

from featureplane.book.l2 import L1, BookSide, L2Book
from featureplane.book.lob import ApplyResult, BookStats, LOBEngine, Trade
from featureplane.book.sequencing import SequenceState, Verdict

__all__ = [
    "L1",
    "ApplyResult",
    "BookSide",
    "BookStats",
    "L2Book",
    "LOBEngine",
    "SequenceState",
    "Trade",
    "Verdict",
]
