"""Hypothesis strategies: valid normalized message streams with every ordering hazard.

A stream is built from drawn actions per symbol (snapshot, diff, trade, no-sequence diff) and
hazards (gap, duplicate, out-of-order). Prices move around a drifting centre so books get
one-sided, crossed and locked now and then.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from featureplane.events import ASK, BID, concat, make_message

ACTIONS = ("snapshot", "diff", "diff", "diff", "trade", "mixed", "gap", "dup", "ooo", "noseq")


@st.composite
def level_changes(draw: st.DrawFn, centre: int, max_n: int = 6) -> list[tuple[int, int, int]]:
    n = draw(st.integers(1, max_n))
    changes = []
    for _ in range(n):
        side = draw(st.sampled_from((BID, ASK)))
        offset = draw(st.integers(-3, 8))
        px = centre - offset if side == BID else centre + 1 + offset
        qty = draw(st.sampled_from((0, 0, 1, 2, 5, 13, 100)))
        changes.append((side, px, qty))
    return changes


@st.composite
def message_streams(
    draw: st.DrawFn, n_symbols: int = 2, max_messages: int = 60
) -> list[np.ndarray]:
    """A list of messages (each an EVENT_DTYPE array) for `n_symbols` symbols."""
    messages: list[np.ndarray] = []
    seq = [0] * n_symbols
    trade_id = [0] * n_symbols
    centre = [1000] * n_symbols
    ts = 0
    sent: list[list[np.ndarray]] = [[] for _ in range(n_symbols)]
    for _ in range(draw(st.integers(1, max_messages))):
        sid = draw(st.integers(0, n_symbols - 1))
        action = draw(st.sampled_from(ACTIONS))
        ts += draw(st.integers(-2, 400_000_000))  # may step back a little
        centre[sid] += draw(st.integers(-2, 2))
        c = centre[sid]
        if action == "snapshot":
            seq[sid] += draw(st.integers(1, 5))
            levels = [(s, p, q) for s, p, q in draw(level_changes(c, 10)) if q > 0]
            msg = make_message(sid, source_ts_ns=ts, seq=seq[sid], snapshot=levels)
        elif action in ("diff", "gap", "mixed"):
            first = seq[sid] + 1 + (draw(st.integers(1, 3)) if action == "gap" else 0)
            last = first + draw(st.integers(0, 3))
            trades = (
                [(draw(st.sampled_from((-1, 0, 1))), c, draw(st.integers(1, 9)))]
                if action == "mixed"
                else []
            )
            msg = make_message(
                sid,
                source_ts_ns=ts,
                local_ts_ns=ts + draw(st.integers(0, 5_000)),
                seq=last,
                first_seq=first,
                prev_seq=seq[sid],
                levels=draw(level_changes(c)),
                trades=trades,
            )
            seq[sid] = last
        elif action == "trade":
            trade_id[sid] += draw(st.integers(1, 2))
            side = draw(st.sampled_from((-1, 0, 1)))
            msg = make_message(
                sid,
                source_ts_ns=ts,
                seq=trade_id[sid],
                trades=[(side, c, draw(st.integers(1, 50)))],
            )
        elif action == "noseq":
            msg = make_message(sid, source_ts_ns=ts, levels=draw(level_changes(c)))
        elif sent[sid]:  # dup / ooo: resend an earlier message of this symbol
            pick = (
                len(sent[sid]) - 1 if action == "dup" else draw(st.integers(0, len(sent[sid]) - 1))
            )
            msg = sent[sid][pick].copy()
        else:
            continue
        sent[sid].append(msg)
        messages.append(msg)
    return messages


def as_events(messages: list[np.ndarray]) -> np.ndarray:
    return concat(messages)
