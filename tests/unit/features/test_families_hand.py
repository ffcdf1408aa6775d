"""The new families pinned on small hand-built streams with hand-computed values.

Instrument: tick 0.5, lot 0.01 (real-unit scaling shows in every f64 value). Each test
declares a small set, runs the reference engine, and compares with arithmetic done by hand.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from featureplane import InstrumentSpec, _rust
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import BackendUnavailableError, RustBackendWarning
from featureplane.events import ASK, BID, BUY, SELL, make_message
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FeatureUpdateFrameV1, QualityFlag
from featureplane.schema import FeatureSet
from tests.support.rust import require_rust

SPEC = InstrumentSpec("TEST", "0.5", "0.01")
S = 1_000_000_000
TICK, LOT = 0.5, 0.01


def declared(*features: dict[str, Any]) -> FeatureSet:
    return resolve_feature_set(FeatureSetDecl.from_dict(
        {"feature_set": {"id": "hand_v1", "version": 1}, "features": list(features)}
    ))  # fmt: skip


def run(fs: FeatureSet, *messages: np.ndarray) -> tuple[FeatureEngine, list[FeatureUpdateFrameV1]]:
    eng = FeatureEngine([SPEC], fs, backend="python")
    frames = []
    for m in messages:
        f = eng.process(m)
        assert f is not None
        frames.append(f)
    return eng, frames


def v(fs: FeatureSet, frame: FeatureUpdateFrameV1, name: str) -> int | float:
    return frame.values[fs.index(name)]


def ready(fs: FeatureSet, frame: FeatureUpdateFrameV1, name: str) -> bool:
    return frame.is_ready(fs.index(name))


def book(ts: int, seq: int, *levels: tuple[int, int, int]) -> np.ndarray:
    return make_message(0, source_ts_ns=ts, seq=seq, prev_seq=seq - 1, levels=list(levels))


SNAP = make_message(
    0, source_ts_ns=0, seq=10, snapshot=[(BID, 100, 4), (BID, 99, 6), (ASK, 102, 2), (ASK, 103, 5)]
)


def test_book_families_on_two_levels() -> None:
    fs = declared(
        {"id": "wdi", "family": "weighted_depth_imbalance", "params": {"levels": 2, "decay": 0.5}},
        {"id": "wmid", "family": "weighted_mid", "params": {"levels": 2}},
        {"id": "slope", "family": "book_slope", "params": {"levels": 2}},
        {"id": "bps", "family": "spread_bps"},
        {"id": "ofi2", "family": "ofi", "params": {"levels": 2}},
    )
    _, (f0, f1) = run(fs, SNAP, book(S, 11, (BID, 99, 9)))
    # bids (100, 4) (99, 6), asks (102, 2) (103, 5)
    assert v(fs, f0, "wdi") == (7.0 - 4.5) / (7.0 + 4.5)  # 4 + 0.5 * 6 vs 2 + 0.5 * 5
    assert v(fs, f0, "wmid") == float(100 * 2 + 102 * 4 + 99 * 5 + 103 * 6) / 17.0 * TICK
    assert v(fs, f0, "slope") == 17.0 * LOT / (4.0 * TICK)
    assert v(fs, f0, "bps") == 40_000.0 / 202.0
    assert v(fs, f0, "ofi2") == 0 and not ready(fs, f0, "ofi2")
    # level 2 bid grew by 3 lots at the same price: e = +3 at level 2, level 1 unchanged
    assert v(fs, f1, "ofi2") == 3 and ready(fs, f1, "ofi2")
    assert v(fs, f1, "wdi") == (4.0 + 4.5 - 4.5) / (4.0 + 4.5 + 4.5)


def test_transforms_of_f64_and_half_tick_inputs() -> None:
    fs = declared(
        {"id": "mid", "family": "mid"},
        {"id": "mid_ema2", "family": "ema", "input": "mid", "params": {"span": 2}},
        {"id": "micro", "family": "microprice"},
        {"id": "micro_std3", "family": "rolling_std", "input": "micro", "params": {"window": 3}},
        {"id": "micro_z3", "family": "zscore", "input": "micro", "params": {"window": 3}},
        {"id": "mid_diff", "family": "diff", "input": "mid"},
        {"id": "diff_cum", "family": "cum", "input": "mid_diff"},
    )
    _, frames = run(fs, SNAP, book(S, 11, (ASK, 101, 2)), book(2 * S, 12, (BID, 100, 2)))
    mids = [202, 201, 201]
    micro = [(100 * 2 + 102 * 4) / 6 * TICK, (100 * 2 + 101 * 4) / 6 * TICK,
             (100 * 2 + 101 * 2) / 4 * TICK]  # fmt: skip
    assert [v(fs, f, "mid") for f in frames] == mids
    # EMA of a half-tick input: real = mid * (tick / 2); alpha = 2 / 3
    e0 = 202 * (TICK / 2.0)
    e1 = e0 + (2.0 / 3.0) * (201 * (TICK / 2.0) - e0)
    assert v(fs, frames[1], "mid_ema2") == e1
    assert not ready(fs, frames[0], "mid_ema2") and ready(fs, frames[1], "mid_ema2")
    assert [v(fs, f, "mid_diff") for f in frames] == [0, -1, 0]
    assert [ready(fs, f, "mid_diff") for f in frames] == [False, True, True]
    assert v(fs, frames[2], "diff_cum") == -1
    mean = (micro[0] + micro[1] + micro[2]) / 3.0
    var = ((micro[0] - mean) ** 2 + (micro[1] - mean) ** 2 + (micro[2] - mean) ** 2) / 3.0
    assert v(fs, frames[2], "micro_std3") == pytest.approx(math.sqrt(var), rel=1e-15)
    assert v(fs, frames[2], "micro_z3") == pytest.approx((micro[2] - mean) / math.sqrt(var))
    assert [ready(fs, f, "micro_z3") for f in frames] == [False, False, True]


W2 = {"window_ns": 2 * S}
TIME = [
    {"id": "spread", "family": "spread"},
    {"id": "sum2s", "family": "rolling_sum_time", "input": "spread", "params": W2},
    {"id": "mean2s", "family": "rolling_mean_time", "input": "spread", "params": W2},
    {"id": "std2s", "family": "rolling_std_time", "input": "spread", "params": W2},
]


DEEP = make_message(
    0, source_ts_ns=0, seq=10, snapshot=[(BID, 100, 4), (BID, 99, 6), (BID, 98, 1), (ASK, 102, 2)]
)
NO_100 = (BID, 100, 0)
NO_99 = (BID, 99, 0)


def test_time_windows_evict_exactly_window_ns_after_a_sample() -> None:
    fs = declared(*TIME)
    # spreads 2 (t = 0), 3 (t = 1 s), 4 (t = 2 s): at 2 s the window (0, 2 s] holds 3 and 4
    _, frames = run(fs, DEEP, book(S, 11, NO_100), book(2 * S, 12, NO_99))
    f1, f2 = frames[1], frames[2]
    assert [v(fs, f, "spread") for f in frames] == [2, 3, 4]
    assert v(fs, f1, "sum2s") == 5.0 * TICK and not ready(fs, f1, "sum2s")
    assert v(fs, f2, "sum2s") == 7.0 * TICK and ready(fs, f2, "sum2s")
    assert v(fs, f2, "mean2s") == 7.0 / 2.0 * TICK
    # exact integer sums: sqrt(n S2 - S1^2) / n * tick = sqrt(2 * 25 - 49) / 2 * 0.5
    assert v(fs, f2, "std2s") == 1.0 / 2.0 * TICK


def test_time_windows_when_source_time_steps_back() -> None:
    fs = declared(*TIME)
    # the last message is stamped 1.5 s but the clock is at 3 s: it joins at 3 s; the
    # t = 1 s sample (3) left the window at 3 s and does not come back
    _, frames = run(fs, DEEP, book(S, 11, NO_100), book(3 * S, 12, NO_99),
                    book(3 * S // 2, 13, (ASK, 101, 1)))  # fmt: skip
    assert [v(fs, f, "spread") for f in frames] == [2, 3, 4, 3]
    assert v(fs, frames[2], "sum2s") == 4.0 * TICK
    assert v(fs, frames[3], "sum2s") == 7.0 * TICK  # 4 + 3, both stamped 3 s


def test_time_windows_across_a_gap_and_a_reset() -> None:
    fs = declared(*TIME)
    eng, frames = run(
        fs,
        DEEP,
        book(S, 11, NO_100),
        book(2 * S, 12, NO_99),
        make_message(0, source_ts_ns=3 * S, seq=15, prev_seq=14, levels=[(ASK, 102, 0),
                                                                          (ASK, 103, 1)]),
    )  # fmt: skip
    gap = frames[3]
    # the gap frame is computed (the window moves on: 4 and 5) but nothing is ready
    assert gap.quality_flags & QualityFlag.GAP_DETECTED and gap.warmup_ready_mask == 0
    assert v(fs, gap, "sum2s") == 9.0 * TICK
    # the snapshot that resyncs resets the state: the window starts again
    snap = eng.process(make_message(0, source_ts_ns=4 * S, seq=20,
                                    snapshot=[(BID, 100, 1), (ASK, 101, 1)]))  # fmt: skip
    assert snap is not None and snap.quality_flags & QualityFlag.STATE_RESET
    assert v(fs, snap, "sum2s") == 1.0 * TICK and not ready(fs, snap, "sum2s")
    eng.reset_symbol("TEST")
    after = eng.process(make_message(0, source_ts_ns=9 * S, seq=30,
                                     snapshot=[(BID, 100, 1), (ASK, 103, 1)]))  # fmt: skip
    assert after is not None and v(fs, after, "sum2s") == 3.0 * TICK


def test_trade_windows_and_realized_vol() -> None:
    fs = declared(
        {"id": "tfi1s", "family": "trade_flow_imbalance", "params": {"window_ns": S}},
        {"id": "vwap1s", "family": "vwap", "params": {"window_ns": S}},
        {"id": "last", "family": "last_trade_px"},
        {"id": "mid", "family": "mid"},
        {"id": "rv1s", "family": "realized_vol", "input": "mid", "params": {"window_ns": S}},
    )
    msgs = [
        SNAP,
        make_message(0, source_ts_ns=S // 2, seq=11, prev_seq=10, trades=[(BUY, 100, 3)]),
        make_message(0, source_ts_ns=S, seq=12, prev_seq=11, trades=[(SELL, 101, 1)],
                     levels=[(ASK, 102, 0)]),
        make_message(0, source_ts_ns=8 * S // 5, seq=13, prev_seq=12, trades=[(BUY, 102, 2)],
                     levels=[(BID, 101, 1)]),
    ]  # fmt: skip
    _, frames = run(fs, *msgs)
    f3 = frames[3]
    # window (0.6 s, 1.6 s]: the 1 s sell and the 1.6 s buy
    assert v(fs, f3, "tfi1s") == (2.0 - 1.0) / 3.0 and ready(fs, f3, "tfi1s")
    assert v(fs, f3, "vwap1s") == float(101 * 1 + 102 * 2) / 3.0 * TICK
    assert not ready(fs, frames[0], "vwap1s")
    # mid 202 (t = 0), 203 (1 s: best ask 102 removed), 204 (1.6 s: bid 101 arrives)
    assert [v(fs, f, "mid") for f in frames] == [202, 202, 203, 204]
    r1, r2 = math.log(203.0 / 202.0), math.log(204.0 / 203.0)
    assert v(fs, frames[2], "rv1s") == math.sqrt(r1 * r1)
    assert v(fs, f3, "rv1s") == math.sqrt(r1 * r1 + r2 * r2)  # both returns in (0.6 s, 1.6 s]
    assert [ready(fs, f, "rv1s") for f in frames] == [False, False, True, True]


def test_rust_without_the_plan_kernel_refuses_or_falls_back() -> None:
    require_rust("engine")
    if _rust.rust_available("plan"):
        pytest.skip("the extension has the plan kernel")
    fs = declared({"id": "spread", "family": "spread"})
    with pytest.raises(BackendUnavailableError, match="plan kernel"):
        FeatureEngine([SPEC], fs, backend="rust")
    _rust._warned.discard("plan")
    with pytest.warns(RustBackendWarning, match="plan kernel"):
        eng = FeatureEngine([SPEC], fs)
    assert eng.backend == "python"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert FeatureEngine([SPEC], fs, backend="python").backend == "python"
