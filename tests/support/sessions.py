"""A small random two-symbol session shared by tests of frame consumers (files, transport).

Snapshots, level changes (with deletes), trades, a one-sided book, a gap and its resync: every
quality flag but STALE_INPUT appears.
"""

from __future__ import annotations

import numpy as np

from featureplane import InstrumentSpec, SymbolTable
from featureplane.events import ASK, BID, BUY, NO_SEQ, SELL, concat, make_message

SYMBOLS = SymbolTable(
    [InstrumentSpec("BTCUSDT", "0.1", "0.001"), InstrumentSpec("ETHUSDT", "0.01", "0.0001")]
)


def session(n: int = 300, seed: int = 5) -> np.ndarray:
    """Two symbols: snapshots, level changes, trades, a one-sided book, a gap and its resync."""
    rng = np.random.default_rng(seed)
    bids = [600_000, 30_000]
    seqs = [100, 100]
    msgs = [
        make_message(
            sid,
            source_ts_ns=1_000,
            local_ts_ns=1_500,
            seq=100,
            snapshot=[(BID, b, 5), (BID, b - 1, 7), (ASK, b + 1, 4), (ASK, b + 2, 9)],
        )
        for sid, b in enumerate(bids)
    ]
    t = 1_000
    for i in range(n):
        sid = int(rng.integers(2))
        t += int(rng.integers(1, 40_000_000))
        b = bids[sid]
        if i == n // 2:
            msgs.append(
                make_message(
                    sid,
                    source_ts_ns=t,
                    seq=seqs[sid] + 9,
                    prev_seq=seqs[sid] + 5,
                    levels=[(BID, b, 3)],
                )
            )
            seqs[sid] += 20
            msgs.append(
                make_message(
                    sid, source_ts_ns=t + 1, seq=seqs[sid], snapshot=[(BID, b, 2), (ASK, b + 1, 2)]
                )
            )
        elif i == 10:  # a one-sided snapshot: PARTIAL_FEATURES until an ask comes back
            seqs[sid] += 1
            msgs.append(make_message(sid, source_ts_ns=t, seq=seqs[sid], snapshot=[(BID, b, 4)]))
        elif rng.random() < 0.3:
            side = BUY if rng.random() < 0.5 else SELL
            msgs.append(
                make_message(
                    sid,
                    source_ts_ns=t,
                    local_ts_ns=t + 7,
                    seq=NO_SEQ,
                    trades=[(side, b + (side == BUY), int(rng.integers(1, 5)))],
                )
            )
        else:
            seqs[sid] += 1
            levels = [
                (BID, b - int(rng.integers(0, 3)), int(rng.integers(0, 20))),
                (ASK, b + 1 + int(rng.integers(0, 3)), int(rng.integers(0, 20))),
            ]
            msgs.append(
                make_message(
                    sid,
                    source_ts_ns=t,
                    local_ts_ns=t + 7,
                    seq=seqs[sid],
                    prev_seq=seqs[sid] - 1,
                    levels=levels,
                )
            )
    return concat(msgs)
