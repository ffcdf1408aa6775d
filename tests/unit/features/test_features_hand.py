"""Every lob_shared_v1 feature pinned on small hand-built streams with hand-computed values.

Instrument: tick 0.5, lot 0.01, so real-unit scaling is visible in every f64 feature.
"""

from __future__ import annotations

import math

import pytest

from featureplane import InstrumentSpec
from featureplane.engine.facade import FeatureEngine
from featureplane.events import ASK, BID, BUY, SELL, make_message
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FeatureUpdateFrameV1, QualityFlag

SPEC = InstrumentSpec("TEST", "0.5", "0.01")
S = 1_000_000_000  # one second in ns


def engine(backend: str) -> FeatureEngine:
    return FeatureEngine([SPEC], backend=backend)


def val(frame: FeatureUpdateFrameV1, name: str) -> int | float:
    return frame.values[FS.index(name)]


def ready(frame: FeatureUpdateFrameV1, name: str) -> bool:
    return frame.is_ready(FS.index(name))


def run(eng: FeatureEngine, *messages: object) -> list[FeatureUpdateFrameV1]:
    frames = []
    for m in messages:
        f = eng.process(m)  # type: ignore[arg-type]
        assert f is not None
        frames.append(f)
    return frames


def four_frames(backend: str) -> list[FeatureUpdateFrameV1]:
    """Snapshot, then: bid size up, a better bid arrives, the best ask is removed."""
    eng = engine(backend)
    return run(
        eng,
        make_message(
            0,
            source_ts_ns=0,
            seq=10,
            snapshot=[(BID, 100, 4), (BID, 99, 6), (ASK, 102, 2), (ASK, 103, 5)],
        ),
        make_message(0, source_ts_ns=S // 2, seq=11, prev_seq=10, levels=[(BID, 100, 7)]),
        make_message(0, source_ts_ns=3 * S // 2, seq=12, prev_seq=11, levels=[(BID, 101, 1)]),
        make_message(0, source_ts_ns=3 * S // 2, seq=13, prev_seq=12, levels=[(ASK, 102, 0)]),
    )


def test_l1_prices_sizes_spread_mid(backend: str) -> None:
    f0 = four_frames(backend)[0]
    assert (val(f0, "bid_px"), val(f0, "ask_px")) == (100, 102)
    assert (val(f0, "bid_qty"), val(f0, "ask_qty")) == (4, 2)
    assert val(f0, "spread") == 2
    # mid is exact in half ticks: (100 + 102) / 2 ticks = 202 half ticks = 50.5 in price
    assert val(f0, "mid") == 202
    assert FS.features[FS.index("mid")].scale == 2


def test_microprice_and_imbalances(backend: str) -> None:
    f0 = four_frames(backend)[0]
    # (B*QA + A*QB) / (QB + QA) = (100*2 + 102*4) / 6 ticks = 101.333... ticks; x 0.5 price
    assert val(f0, "microprice") == pytest.approx(608 / 6 * 0.5, rel=1e-15)
    assert val(f0, "imbalance_l1") == pytest.approx(2 / 6, rel=1e-15)
    # best 5 levels: bids 4 + 6, asks 2 + 5
    assert val(f0, "imbalance_l5") == pytest.approx((10 - 7) / 17, rel=1e-15)


def test_ofi_level_1_and_5(backend: str) -> None:
    frames = four_frames(backend)
    # e_n: frame 1: 7 - 4 - 2 + 2 = 3; frame 2: 1 (better bid); frame 3: +2 (best ask left)
    assert [val(f, "ofi_l1") for f in frames] == [0, 3, 1, 2]
    assert [val(f, "ofi_l1_cum") for f in frames] == [0, 3, 4, 6]
    # frame 2, level 2: bid 99x6 -> 100x7 gives +7; level 3: a new 99x6 bid vs none gives +6
    # frame 3, level 2: ask 103x5 -> none (+inf, 0) gives +5
    assert [val(f, "ofi_l5") for f in frames] == [0, 3, 14, 7]


def test_ofi_ema_and_decay(backend: str) -> None:
    frames = four_frames(backend)
    a = 2 / 9
    x = [0.0, 0.03, 0.01, 0.02]  # ofi_l1 in real size units (lot 0.01)
    ema = [x[0]]
    for xi in x[1:]:
        ema.append(ema[-1] + a * (xi - ema[-1]))
    assert [val(f, "ofi_l1_ema8") for f in frames] == pytest.approx(ema, rel=1e-12)
    # half-life 1 s: t = 0, 0.5 s, 1.5 s, 1.5 s
    s1 = 0.0 * 2**-0.5 + 0.03
    s2 = s1 * 2**-1.0 + 0.01
    s3 = s2 * 1.0 + 0.02
    assert [val(f, "ofi_l1_decay_1s") for f in frames] == pytest.approx(
        [0.0, s1, s2, s3], rel=1e-12
    )
    assert s3 == pytest.approx(0.045)


def test_spread_and_imbalance_ema(backend: str) -> None:
    frames = four_frames(backend)
    spreads = [1.0, 1.0, 0.5, 1.0]  # 2, 2, 1, 2 ticks of 0.5
    ema = [spreads[0]]
    for s in spreads[1:]:
        ema.append(ema[-1] + 2 / 9 * (s - ema[-1]))
    assert [val(f, "spread_ema8") for f in frames] == pytest.approx(ema, rel=1e-12)
    assert ema[2] == pytest.approx(1 - 1 / 9)
    imb = [2 / 6, 5 / 9, -1 / 3, -4 / 6]  # (QB-QA)/(QB+QA) per frame
    iema = [imb[0]]
    for i in imb[1:]:
        iema.append(iema[-1] + 2 / 9 * (i - iema[-1]))
    assert [val(f, "imbalance_l1") for f in frames] == pytest.approx(imb, rel=1e-12)
    assert [val(f, "imbalance_l1_ema8") for f in frames] == pytest.approx(iema, rel=1e-12)


def test_mid_std_and_zscore(backend: str) -> None:
    frames = four_frames(backend)
    # mids in half ticks: 202, 202, 203, 204 -> changes 0, 1, 1
    assert [val(f, "mid") for f in frames] == [202, 202, 203, 204]
    assert math.isnan(val(frames[0], "mid_ret_std_32"))  # no change yet
    # population std of [0, 1, 1] half ticks = sqrt(2/9); a half tick is 0.25 in price
    assert val(frames[3], "mid_ret_std_32") == pytest.approx(math.sqrt(2 / 9) * 0.25, rel=1e-12)
    # z of 204 among [202, 202, 203, 204]: mean 202.75, population std sqrt(0.6875)
    assert val(frames[3], "mid_zscore_64") == pytest.approx(1.25 / math.sqrt(0.6875), rel=1e-12)
    assert val(frames[0], "mid_zscore_64") == 0.0  # one mid: std 0 -> 0.0


def test_trade_features(backend: str) -> None:
    eng = engine(backend)
    snap = make_message(0, source_ts_ns=0, seq=1, snapshot=[(BID, 100, 4), (ASK, 102, 2)])
    t1 = make_message(0, source_ts_ns=S // 4, seq=501, trades=[(BUY, 102, 2)])
    t2 = make_message(0, source_ts_ns=5 * S // 4, seq=502, trades=[(SELL, 101, 5)])
    f0, f1, f2 = run(eng, snap, t1, t2)
    assert not ready(f0, "last_trade_px") and val(f0, "last_trade_px") == 0
    assert math.isnan(val(f0, "tfi_decay_1s"))
    assert (val(f1, "last_trade_px"), val(f1, "trade_signed_qty_cum")) == (102, 2)
    assert val(f1, "tfi_decay_1s") == pytest.approx(0.02, rel=1e-15)
    assert (val(f2, "last_trade_px"), val(f2, "trade_signed_qty_cum")) == (101, -3)
    assert val(f2, "tfi_decay_1s") == pytest.approx(0.02 * 0.5 - 0.05, rel=1e-12)
    assert ready(f2, "tfi_decay_1s")
    # A trade-only frame carries the book features forward unchanged.
    assert f2.values[: FS.index("last_trade_px")] == f1.values[: FS.index("last_trade_px")]
    assert f2.changed_mask == (1 << FS.index("last_trade_px")) | (
        1 << FS.index("trade_signed_qty_cum")
    ) | (1 << FS.index("tfi_decay_1s"))


def test_several_trades_in_one_message_decay_per_trade(backend: str) -> None:
    eng = engine(backend)
    rows = make_message(0, source_ts_ns=S, trades=[(BUY, 10, 1), (BUY, 11, 3), (SELL, 9, 2)])
    rows["source_ts_ns"][:2] = 0  # the first two trades a second before the last
    frame = eng.process(rows)
    assert frame is not None
    assert val(frame, "last_trade_px") == 9
    assert val(frame, "trade_signed_qty_cum") == 1 + 3 - 2
    assert val(frame, "tfi_decay_1s") == pytest.approx((0.01 + 0.03) * 0.5 - 0.02, rel=1e-12)


def test_unknown_aggressor_counts_as_trade_without_sign(backend: str) -> None:
    eng = engine(backend)
    frame = eng.process(make_message(0, source_ts_ns=0, trades=[(0, 50, 7)]))
    assert frame is not None
    assert val(frame, "last_trade_px") == 50
    assert val(frame, "trade_signed_qty_cum") == 0
    assert val(frame, "tfi_decay_1s") == 0.0


def test_book_regime_crossed_locked_one_sided(backend: str) -> None:
    eng = engine(backend)
    crossed = make_message(0, source_ts_ns=0, snapshot=[(BID, 105, 1), (ASK, 104, 1)])
    locked = make_message(0, source_ts_ns=1, levels=[(BID, 105, 0), (BID, 104, 3)])
    one_sided = make_message(0, source_ts_ns=2, levels=[(ASK, 104, 0)])
    f0, f1, f2 = run(eng, crossed, locked, one_sided)
    assert val(f0, "book_regime") == 1 and val(f0, "spread") == -1
    assert val(f1, "book_regime") == 1 and val(f1, "spread") == 0
    assert val(f2, "book_regime") == 2
    assert not f0.has_flag(QualityFlag.PARTIAL_FEATURES)
    assert f2.has_flag(QualityFlag.PARTIAL_FEATURES)


def test_book_regime_wide_spread_needs_ready_ema(backend: str) -> None:
    eng = engine(backend)
    msgs = [make_message(0, source_ts_ns=0, snapshot=[(BID, 100, 1), (ASK, 101, 1)])]
    msgs += [make_message(0, source_ts_ns=i, levels=[(BID, 100, 1 + i)]) for i in range(1, 7)]
    frames = run(eng, *msgs)  # 7 two-sided frames of spread 1: the EMA is not ready yet
    early = eng.process(make_message(0, source_ts_ns=7, levels=[(ASK, 101, 0), (ASK, 127, 1)]))
    assert early is not None
    # 8th update: the EMA is ready now. Spread 27 ticks = 13.5; EMA 0.5 + 2/9 x 13 = 3.39;
    # 13.5 <= 4 x 3.39, so not wide yet.
    assert val(early, "book_regime") == 0
    assert not ready(frames[-1], "spread_ema8") and ready(early, "spread_ema8")
    wide = eng.process(make_message(0, source_ts_ns=8, levels=[(ASK, 127, 0), (ASK, 500, 1)]))
    assert wide is not None
    # spread 400 ticks = 200; EMA = e + 2/9 (200 - e) = 46.9 with e = 3.39; 200 > 4 x 46.9
    e = val(early, "spread_ema8")
    assert e == pytest.approx(0.5 + 2 / 9 * 13.0, rel=1e-12)
    assert val(wide, "spread_ema8") == pytest.approx(e + 2 / 9 * (200.0 - e), rel=1e-12)
    assert val(wide, "book_regime") == 4


def test_one_sided_book_keeps_last_values_and_is_not_ready(backend: str) -> None:
    eng = engine(backend)
    f0, f1, f2 = run(
        eng,
        make_message(0, source_ts_ns=0, snapshot=[(BID, 100, 4), (ASK, 102, 2)]),
        make_message(0, source_ts_ns=1, levels=[(ASK, 102, 0)]),
        make_message(0, source_ts_ns=2, levels=[(BID, 99, 8)]),
    )
    for f in (f1, f2):
        assert f.has_flag(QualityFlag.PARTIAL_FEATURES)
        for name in ("ask_px", "ask_qty", "spread", "mid", "microprice", "imbalance_l1"):
            assert val(f, name) == val(f0, name)
            assert not ready(f, name)
        assert ready(f, "bid_px") and ready(f, "book_regime")
    assert (val(f2, "bid_px"), val(f2, "bid_qty")) == (100, 4)
    # OFI stays defined on a one-sided book (a missing level is size 0 at +inf).
    assert val(f1, "ofi_l1") == 2 and ready(f1, "ofi_l1")


def test_f64_features_are_nan_until_first_value(backend: str) -> None:
    eng = engine(backend)
    frame = eng.process(make_message(0, source_ts_ns=0, snapshot=[(BID, 100, 4)]))
    assert frame is not None
    for name in ("microprice", "imbalance_l1", "spread_ema8", "mid_ret_std_32", "tfi_decay_1s"):
        assert math.isnan(val(frame, name))
    assert val(frame, "ofi_l1_ema8") == 0.0  # OFI is defined on a one-sided book


def test_warmup_counts(backend: str) -> None:
    eng = engine(backend)
    msgs = [make_message(0, source_ts_ns=0, seq=0, snapshot=[(BID, 100, 5), (ASK, 102, 5)])]
    for i in range(1, 70):
        # alternate the mid so that the windows see movement
        px = 100 + (i % 2)
        msgs.append(
            make_message(
                0,
                source_ts_ns=i,
                seq=i,
                prev_seq=i - 1,
                levels=[(BID, px, 5), (BID, 101 - (i % 2), 0)],
            )
        )
    frames = run(eng, *msgs)

    def first_ready(name: str) -> int:
        return next(i for i, f in enumerate(frames) if ready(f, name)) + 1

    expected = {f.name: f.warmup_min_events for f in FS.features if f.source_kind == "book"}
    for name, warmup in expected.items():
        assert first_ready(name) == warmup, name
