"""A small hand-written feed for the backtest tests: snapshot, level changes, trades, with
local times that repeat (two messages at one local time) and gaps between wake-ups."""

from __future__ import annotations

import numpy as np

from featureplane.events import BID, BUY, SELL, concat, make_message
from featureplane.instruments import InstrumentSpec, SymbolTable

ASK = -1
MS = 1_000_000
T0 = 1_700_000_000_000_000_000
SYMBOL = "TESTUSDT"


def symbols() -> SymbolTable:
    return SymbolTable([InstrumentSpec(SYMBOL, "0.1", "0.001")])


def _msg(local_ms: float, **kw: object) -> np.ndarray:
    local = T0 + int(local_ms * MS)
    return make_message(0, source_ts_ns=local - MS // 2, local_ts_ns=local, **kw)  # type: ignore[arg-type]


def feed() -> np.ndarray:
    """Messages in local-time order. Best bid 1000 / ask 1001 ticks after the snapshot."""
    snapshot = [
        (BID, 1000, 5),
        (BID, 999, 3),
        (BID, 998, 2),
        (BID, 990, 7),
        (ASK, 1001, 4),
        (ASK, 1002, 6),
        (ASK, 1003, 1),
        (ASK, 1010, 9),
    ]
    return concat(
        [
            _msg(1, snapshot=snapshot),
            _msg(2, levels=[(BID, 1000, 7)]),
            _msg(2, trades=[(BUY, 1001, 2), (BUY, 1001, 1)]),  # same local time, another message
            _msg(3.5, levels=[(ASK, 1001, 0), (ASK, 1002, 5)]),
            _msg(5, levels=[(BID, 1001, 1)]),
            _msg(6, trades=[(SELL, 1001, 1)]),
            _msg(8, levels=[(BID, 1001, 0), (ASK, 1002, 8), (BID, 997, 4)]),
            _msg(9, trades=[(SELL, 1000, 3)]),
            _msg(12, levels=[(ASK, 1002, 2), (BID, 1000, 9)]),
            _msg(20, levels=[(BID, 999, 0), (ASK, 1004, 3)]),
            _msg(21, trades=[(BUY, 1002, 2)]),
            _msg(30, levels=[(ASK, 1002, 0), (ASK, 1003, 4), (BID, 1002, 1)]),
        ]
    )


THIN_SNAPSHOT = [
    (BID, 150_000, 5),
    (BID, 149_600, 2),
    (BID, 140_500, 7),
    (BID, 30_000, 9),  # 120,000 ticks below the best bid
    (ASK, 150_001, 4),
    (ASK, 150_900, 6),
    (ASK, 165_000, 1),
    (ASK, 240_000, 8),
]
THIN_UPDATES = [(BID, 149_600, 0), (BID, 145_000, 3), (ASK, 150_900, 2), (ASK, 150_001, 0)]


def thin_feed() -> np.ndarray:
    """A thin book with levels hundreds to thousands of ticks apart: a snapshot, then one
    message of level changes (the best ask is deleted)."""
    return concat([_msg(1, snapshot=THIN_SNAPSHOT), _msg(2, levels=THIN_UPDATES)])


LEAD = "LEADUSDT"
SHIFT_NS = 250_000
"""The lead's messages come a quarter millisecond after the traded symbol's."""


def two_symbols() -> tuple[np.ndarray, SymbolTable]:
    """The synthetic feed for `SYMBOL`, and the same messages shifted for `LEAD` (id 1,
    a finer tick: the same ticks are other prices)."""
    first = feed()
    lead = first.copy()
    lead["symbol_id"] = 1
    lead["local_ts_ns"] += SHIFT_NS
    lead["source_ts_ns"] += SHIFT_NS
    table = SymbolTable(
        [InstrumentSpec(SYMBOL, "0.1", "0.001"), InstrumentSpec(LEAD, "0.01", "0.001")]
    )
    return concat([first, lead]), table
