"""Ordering, gap and reset rules of lob_shared_v1, each on a small hand-built stream."""

from __future__ import annotations

from featureplane import InstrumentSpec
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.events import ASK, BID, BUY, make_message
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import QualityFlag as Q

SPEC = InstrumentSpec("TEST", "1", "1")
SNAP = [(BID, 100, 5), (ASK, 101, 5)]


def engine(backend: str, **config: int) -> FeatureEngine:
    return FeatureEngine([SPEC], backend=backend, config=EngineConfig(**config))


def diff(seq: int, prev: int, qty: int = 6, ts: int = 0) -> object:
    return make_message(0, source_ts_ns=ts, seq=seq, prev_seq=prev, levels=[(BID, 100, qty)])


def test_first_frame_and_snapshot_carry_state_reset(backend: str) -> None:
    eng = engine(backend)
    f0 = eng.process(make_message(0, source_ts_ns=0, seq=1, snapshot=SNAP))
    f1 = eng.process(diff(2, 1))  # type: ignore[arg-type]
    assert f0 is not None and f1 is not None
    assert f0.has_flag(Q.STATE_RESET) and not f1.has_flag(Q.STATE_RESET)
    assert f0.quality_flags == Q.STATE_RESET


def test_duplicate_is_dropped_and_counted(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=1, snapshot=SNAP))
    assert eng.process(diff(2, 1, qty=7)) is not None  # type: ignore[arg-type]
    assert eng.process(diff(2, 1, qty=9)) is None  # type: ignore[arg-type]
    assert eng.counters["duplicates"] == 1
    assert eng.get_feature("TEST", "bid_qty") == 7  # the duplicate did not touch the book
    f = eng.process(diff(3, 2))  # type: ignore[arg-type]
    assert f is not None and f.quality_flags == 0


def test_out_of_order_is_dropped_and_flags_next_frame(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=10, snapshot=SNAP))
    eng.process(diff(11, 10))  # type: ignore[arg-type]
    eng.process(diff(12, 11))  # type: ignore[arg-type]
    assert eng.process(diff(9, 8, qty=99)) is None  # type: ignore[arg-type]
    assert eng.counters["out_of_order"] == 1
    assert eng.get_feature("TEST", "bid_qty") == 6
    f = eng.process(diff(13, 12))  # type: ignore[arg-type]
    assert f is not None and f.has_flag(Q.OUT_OF_ORDER_INPUT)
    f = eng.process(diff(14, 13))  # type: ignore[arg-type]
    assert f is not None and not f.has_flag(Q.OUT_OF_ORDER_INPUT)


def test_gap_makes_book_untrusted_until_snapshot(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=10, snapshot=SNAP))
    ok = eng.process(diff(11, 10))  # type: ignore[arg-type]
    gap = eng.process(diff(15, 14, qty=8))  # type: ignore[arg-type]  # 12..14 missing
    after = eng.process(diff(16, 15, qty=9))  # type: ignore[arg-type]
    assert ok is not None and gap is not None and after is not None
    assert ok.warmup_ready_mask != 0
    for f in (gap, after):
        assert f.has_flag(Q.GAP_DETECTED)
        assert f.warmup_ready_mask == 0
    assert after.values[FS.index("bid_qty")] == 9  # values are still written
    assert eng.counters["gaps"] == 1
    resync = eng.process(make_message(0, source_ts_ns=5, seq=30, snapshot=SNAP))
    assert resync is not None
    assert resync.quality_flags == Q.STATE_RESET
    assert resync.values[FS.index("ofi_l1")] == 0
    assert resync.values[FS.index("ofi_l1_cum")] == 0


def test_gap_by_first_seq_without_prev_seq(backend: str) -> None:
    # Spot-style continuity: first_seq must be the previous seq + 1.
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=10, snapshot=SNAP))
    ok = eng.process(make_message(0, source_ts_ns=1, seq=13, first_seq=11, levels=[(BID, 100, 1)]))
    gap = eng.process(make_message(0, source_ts_ns=2, seq=20, first_seq=15, levels=[(BID, 100, 2)]))
    assert ok is not None and not ok.has_flag(Q.GAP_DETECTED)
    assert gap is not None and gap.has_flag(Q.GAP_DETECTED)


def test_after_snapshot_stale_dropped_and_straddle_required(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=100, snapshot=SNAP))
    stale = make_message(0, source_ts_ns=1, seq=99, first_seq=90, prev_seq=89, levels=[(BID, 1, 1)])
    assert eng.process(stale) is None
    assert eng.counters["stale"] == 1
    # straddles: first_seq <= 101 <= seq; its prev_seq is unrelated to the snapshot id
    f = eng.process(
        make_message(0, source_ts_ns=2, seq=105, first_seq=98, prev_seq=97, levels=[(BID, 100, 3)])
    )
    assert f is not None and not f.has_flag(Q.GAP_DETECTED)
    eng.process(make_message(0, source_ts_ns=3, seq=200, snapshot=SNAP))
    f = eng.process(
        make_message(0, source_ts_ns=4, seq=210, first_seq=205, prev_seq=204, levels=[(BID, 1, 1)])
    )
    assert f is not None and f.has_flag(Q.GAP_DETECTED)


def test_no_sequence_backwards_timestamp_is_applied_and_flagged(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=100, snapshot=SNAP))
    f = eng.process(make_message(0, source_ts_ns=50, levels=[(BID, 100, 9)]))
    assert f is not None and f.has_flag(Q.OUT_OF_ORDER_INPUT)
    assert f.values[FS.index("bid_qty")] == 9
    f = eng.process(make_message(0, source_ts_ns=60, levels=[(BID, 100, 8)]))
    assert f is not None and not f.has_flag(Q.OUT_OF_ORDER_INPUT)
    assert eng.counters["ts_backwards"] == 1


def test_trade_channel_is_sequenced_apart_from_book(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=5_000, snapshot=SNAP))
    # trade ids live in their own space: a trade id below the book's sequence is fine
    assert eng.process(make_message(0, source_ts_ns=1, seq=7, trades=[(BUY, 101, 1)])) is not None
    assert eng.process(make_message(0, source_ts_ns=2, seq=7, trades=[(BUY, 101, 1)])) is None
    assert eng.process(make_message(0, source_ts_ns=3, seq=6, trades=[(BUY, 101, 1)])) is None
    assert eng.get_feature("TEST", "trade_signed_qty_cum") == 1
    f = eng.process(make_message(0, source_ts_ns=4, seq=8, trades=[(BUY, 101, 1)]))
    assert f is not None and f.has_flag(Q.OUT_OF_ORDER_INPUT)


def test_trade_before_snapshot_is_processed_then_cleared(backend: str) -> None:
    eng = engine(backend)
    t = eng.process(make_message(0, source_ts_ns=0, seq=1, trades=[(BUY, 101, 3)]))
    assert t is not None and t.values[FS.index("last_trade_px")] == 101
    assert t.has_flag(Q.PARTIAL_FEATURES)  # no book yet
    s = eng.process(make_message(0, source_ts_ns=1, seq=50, snapshot=SNAP))
    assert s is not None and s.has_flag(Q.STATE_RESET)
    assert s.values[FS.index("last_trade_px")] == 0
    assert not s.is_ready(FS.index("last_trade_px"))


def test_reset_symbol(backend: str) -> None:
    eng = engine(backend)
    eng.process(make_message(0, source_ts_ns=0, seq=1, snapshot=SNAP))
    eng.process(diff(2, 1))  # type: ignore[arg-type]
    eng.reset_symbol("TEST")
    assert eng.get_feature("TEST", "ofi_l1_cum") == 0
    assert eng.get_feature_view("TEST").warmup_ready_mask == 0
    f = eng.process(make_message(0, source_ts_ns=1, seq=3, levels=[(BID, 100, 1)]))
    assert f is not None and f.has_flag(Q.STATE_RESET) and f.has_flag(Q.PARTIAL_FEATURES)
    assert eng.lob.get_l1_scaled("TEST").ask_px is None  # type: ignore[attr-defined]


def test_stale_input_rule(backend: str) -> None:
    eng = engine(backend, stale_after_ns=1_000)
    f = eng.process(make_message(0, source_ts_ns=0, local_ts_ns=5_000, seq=1, snapshot=SNAP))
    assert f is not None and f.has_flag(Q.STALE_INPUT)
    f = eng.process(make_message(0, source_ts_ns=10_000, local_ts_ns=10_500, seq=2, prev_seq=1,
                                 levels=[(BID, 100, 1)]))  # fmt: skip
    assert f is not None and not f.has_flag(Q.STALE_INPUT)
    off = engine(backend)  # off by default
    f = off.process(make_message(0, source_ts_ns=0, local_ts_ns=5_000, seq=1, snapshot=SNAP))
    assert f is not None and not f.has_flag(Q.STALE_INPUT)


def test_crossed_book_is_kept_as_sent(backend: str) -> None:
    eng = engine(backend)
    f = eng.process(make_message(0, source_ts_ns=0, snapshot=[(BID, 102, 1), (ASK, 101, 2)]))
    assert f is not None
    stats = eng.lob.book_stats("TEST")  # type: ignore[attr-defined]
    assert stats.crossed and stats.bid_levels == 1 and stats.ask_levels == 1
    assert f.values[FS.index("book_regime")] & 1


def test_symbols_are_independent(backend: str) -> None:
    eng = FeatureEngine(
        [InstrumentSpec("A", "1", "1"), InstrumentSpec("B", "0.5", "0.1")], backend=backend
    )
    eng.process(make_message(0, source_ts_ns=0, seq=1, snapshot=SNAP))
    eng.process(make_message(1, source_ts_ns=0, seq=1, snapshot=[(BID, 10, 1), (ASK, 12, 1)]))
    # Right after a snapshot only first_seq can show a gap (prev_seq need not match its id).
    gap = eng.process(make_message(0, source_ts_ns=1, seq=5, first_seq=5, levels=[(BID, 100, 1)]))
    b = eng.process(make_message(1, source_ts_ns=1, seq=2, prev_seq=1, levels=[(BID, 10, 2)]))
    assert gap is not None and gap.has_flag(Q.GAP_DETECTED)
    assert b is not None and not b.has_flag(Q.GAP_DETECTED) and b.symbol == "B"
    assert eng.get_feature("B", "spread") == 2 and eng.get_feature("A", "spread") == 1
