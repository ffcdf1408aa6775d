"""Properties over generated valid streams: book invariants, determinism, split at a reset."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featureplane import InstrumentSpec
from featureplane.book import LOBEngine
from featureplane.engine.facade import FeatureEngine
from featureplane.events import BID, CLEAR, LEVEL, SNAPSHOT, make_message
from featureplane.instruments import SymbolTable
from tests.support.strategies import as_events, message_streams

SPECS = [InstrumentSpec("A", "0.01", "0.001"), InstrumentSpec("B", "0.5", "1")]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def naive_apply(model: dict[int, dict[int, int]], message: np.ndarray) -> None:
    """An independent book model: one dict per side, absolute sizes, zero deletes."""
    for row in message:
        kind = int(row["kind"])
        if kind == CLEAR:
            model[1].clear()
            model[-1].clear()
        elif kind in (LEVEL, SNAPSHOT):
            side, px, qty = int(row["side"]), int(row["px"]), int(row["qty"])
            if qty == 0:
                model[side].pop(px, None)
            else:
                model[side][px] = qty


@SETTINGS
@given(message_streams())
def test_book_invariants_hold(messages: list[np.ndarray]) -> None:
    lob = LOBEngine(SymbolTable(SPECS))
    models = [{1: {}, -1: {}} for _ in SPECS]  # type: ignore[var-annotated]
    for message in messages:
        sid = int(message[-1]["symbol_id"])
        result = lob.apply(message)
        if result.applied:
            naive_apply(models[sid], message)
        bids, asks = lob.snapshot(sid)
        # sorted best first, strictly; sizes positive; equal to the naive model
        assert [p for p, _ in bids] == sorted({p for p, _ in bids}, reverse=True)
        assert [p for p, _ in asks] == sorted({p for p, _ in asks})
        assert all(q > 0 for _, q in bids + asks)
        assert dict(bids) == models[sid][BID] and dict(asks) == models[sid][-1]
        l1 = lob.get_l1_scaled(sid)
        assert l1.bid_px == (bids[0][0] if bids else None)
        assert l1.ask_qty == (asks[0][1] if asks else None)
        top_bids, top_asks = lob.top_n(sid, 3)
        assert top_bids == bids[:3] and top_asks == asks[:3]
        stats = lob.book_stats(sid)
        assert stats.crossed == bool(bids and asks and bids[0][0] >= asks[0][0])


@SETTINGS
@given(message_streams())
def test_replay_is_deterministic(messages: list[np.ndarray]) -> None:
    events = as_events(messages)
    first = FeatureEngine(SPECS, backend="python").process_batch(events)
    second = FeatureEngine(SPECS, backend="python").process_batch(events)
    assert first.equals(second)


@SETTINGS
@given(message_streams(n_symbols=1), message_streams(n_symbols=1), st.integers(0, 50))
def test_split_at_reset_equals_one_engine(
    before: list[np.ndarray], after: list[np.ndarray], snap_seq: int
) -> None:
    """Frames after a snapshot do not depend on anything before it."""
    snapshot = make_message(
        0, source_ts_ns=10**12, seq=snap_seq, snapshot=[(1, 990, 3), (-1, 1010, 4)]
    )
    tail = [snapshot, *after]
    one = FeatureEngine(SPECS[:1], backend="python").process_batch(as_events(before + tail))
    fresh = FeatureEngine(SPECS[:1], backend="python").process_batch(as_events(tail))
    n = len(fresh)
    assert n >= 1
    tail_of_one = one.truncate(len(one)).for_symbol("A")
    start = len(tail_of_one) - n
    for name, col in fresh.columns.items():
        if name == "input_index":  # row positions differ by the prefix length
            continue
        assert np.array_equal(tail_of_one.columns[name][start:], col), name
    for name, col in fresh.values.items():
        assert np.array_equal(
            tail_of_one.values[name][start:], col, equal_nan=col.dtype.kind == "f"
        )
