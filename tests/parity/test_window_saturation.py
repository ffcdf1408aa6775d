"""Integer windows past their exact range: the same saturation on both backends.

A declared set's integer windows (`rolling_std`, `zscore`, `rolling_std_time`) saturate once
`n * S2` leaves i128 (docs/features/transforms.md): NaN, not ready, `VALUE_SATURATED`, until
the next reset. The windows here read the cumulative signed trade size driven by 2^48-lot
trades (`MAX_ABS_UNITS`), so their values reach 2^62; the bound is worked out by hand on
both sides and each backend must give the very same frames and checkpoints. A property test
then draws towers of cumulative sums over sizes near 2^48 (their tops reach i64's end in a
few updates) with windows over every level, and holds the backends to the same frames and
to checkpoints that continue alike (`FEATUREPLANE_PLAN_EXAMPLES`, default 60, as the plan
fuzz).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featureplane import InstrumentSpec
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PlanEngineState
from featureplane.errors import InvalidStateError
from featureplane.events import (
    ASK,
    BID,
    CLEAR,
    LEVEL,
    MAX_ABS_UNITS,
    SELL,
    SNAPSHOT,
    TRADE,
    make_message,
)
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FeatureUpdateFrameV1, QualityFlag
from featureplane.schema import FeatureSet
from tests.parity.test_backend_parity import Msg, Stream, assert_frames_equal
from tests.parity.test_plan_fuzz import PLAN_FUZZ, WINDOWS_NS, check
from tests.parity.test_plan_state_fuzz import check_cut
from tests.support.rust import require_rust

SPEC = InstrumentSpec("TEST", "0.5", "0.01")
LOT = 0.01
I128_MAX = (1 << 127) - 1
BACKENDS = ("python", "rust")
SATURATED = int(QualityFlag.VALUE_SATURATED)


def declared(*features: dict[str, Any]) -> FeatureSet:
    base = [
        {"id": "qty", "family": "trade_signed_qty", "output": False},
        {"id": "cum", "family": "cum", "input": "qty"},
        {"id": "px", "family": "last_trade_px"},
    ]
    return resolve_feature_set(FeatureSetDecl.from_dict(
        {"feature_set": {"id": "sat_v1", "version": 1}, "features": base + list(features)}
    ))  # fmt: skip


COUNT = declared(
    {"id": "z2", "family": "zscore", "input": "cum", "params": {"window": 2}},
    {"id": "std2", "family": "rolling_std", "input": "cum", "params": {"window": 2}},
    {"id": "sum_t", "family": "rolling_sum_time", "input": "cum", "params": {"window_ns": 10**9}},
)
TIME = declared(
    {"id": "std_t", "family": "rolling_std_time", "input": "cum", "params": {"window_ns": 10**9}},
)


def sells(ts: int, n: int, qty: int = MAX_ABS_UNITS, side: int = SELL) -> np.ndarray:
    """One message of `n` trades of `qty` lots (one frame; every row updates the nodes)."""
    return make_message(0, source_ts_ns=ts, trades=[(side, 100, qty)] * n)


def run_both(fs: FeatureSet, msgs: list[np.ndarray]) -> list[FeatureUpdateFrameV1]:
    """The frames of both backends, asserted identical; the reference's are returned."""
    require_rust("plan")
    out = {}
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], fs, backend=backend)
        frames = [eng.process(m) for m in msgs]
        assert all(f is not None for f in frames)
        out[backend] = frames
    for p, r in zip(out["python"], out["rust"], strict=True):
        assert_frames_equal(p, r)
    return [f for f in out["python"] if f is not None]


def node_index(fs: FeatureSet, name: str) -> int:
    """The plan node of feature `name` (checkpoints list every node, internal ones too)."""
    assert fs.plan is not None
    ids = [n["id"] for n in json.loads(fs.plan)["nodes"]]
    return ids.index(name)


def v(fs: FeatureSet, f: FeatureUpdateFrameV1, name: str) -> float:
    return float(f.values[fs.index(name)])


def ready(fs: FeatureSet, f: FeatureUpdateFrameV1, name: str) -> bool:
    return f.is_ready(fs.index(name))


def test_a_count_window_of_a_cumulative_sum_saturates_at_its_bound() -> None:
    # Window of 2 over cum = -k 2^48, -(k+1) 2^48: n S2 = 2^97 (k^2 + (k+1)^2), past i128
    # from k^2 + (k+1)^2 >= 2^30: the pair (23169, 23170) is within, (23170, 23171) is not.
    assert 23169**2 + 23170**2 < 1 << 30 <= 23170**2 + 23171**2
    within, past = 2 * (23169**2 + 23170**2) << 96, 2 * (23170**2 + 23171**2) << 96
    assert within <= I128_MAX < past
    step = MAX_ABS_UNITS
    _, f2, f3, f4 = run_both(
        COUNT, [sells(1, 23169), sells(2, 1), sells(3, 1), sells(4, 3, side=-SELL)]
    )
    # Within: exact on both, (x - mean) / std of two values one step apart.
    assert v(COUNT, f2, "cum") == -23170 * step
    assert v(COUNT, f2, "z2") == -1.0 and ready(COUNT, f2, "z2")
    assert v(COUNT, f2, "std2") == math.sqrt(float(step * step)) / 2.0 * LOT
    assert ready(COUNT, f2, "std2") and not f2.quality_flags & SATURATED
    # Past: both windows saturate; the cum (within i64) and the rest stay ready.
    assert v(COUNT, f3, "cum") == -23171 * step and ready(COUNT, f3, "cum")
    assert f3.quality_flags & SATURATED
    for name in ("z2", "std2"):
        assert math.isnan(v(COUNT, f3, name)) and not ready(COUNT, f3, name)
    assert ready(COUNT, f3, "px")
    # The time sum never saturates (|S1| <= n 2^63): exactly the sum of the cum's values.
    assert v(COUNT, f3, "sum_t") == float(-step * sum(range(1, 23172))) * LOT
    # Buys bring the cum back to small steps: still saturated until the next reset.
    assert f4.quality_flags & SATURATED and math.isnan(v(COUNT, f4, "z2"))
    assert not ready(COUNT, f4, "std2")


def test_the_saturation_ends_at_the_next_reset_on_both_backends() -> None:
    require_rust("plan")
    msgs = [sells(1, 23169), sells(2, 2), sells(3, 1, qty=5)]
    frames = {}
    for backend in BACKENDS:
        eng = FeatureEngine([SPEC], COUNT, backend=backend)
        out = [eng.process(m) for m in msgs]
        eng.reset_symbol(SPEC.symbol)
        out += [eng.process(sells(4, 1, qty=3)), eng.process(sells(5, 1, qty=4))]
        frames[backend] = out
    for p, r in zip(frames["python"], frames["rust"], strict=True):
        assert_frames_equal(p, r)
    *_, saturated, first, second = frames["python"]
    assert saturated is not None and saturated.quality_flags & SATURATED
    assert first is not None and not first.quality_flags & SATURATED
    assert second is not None and not second.quality_flags & SATURATED
    # After the reset: cum -3, -7; window (-3, -7): z = (2 * -7 - -10) / sqrt(2 * 58 - 100).
    assert v(COUNT, second, "z2") == -4.0 / math.sqrt(16.0) and ready(COUNT, second, "z2")


def test_a_time_window_saturates_where_its_exact_spread_outgrows_i128() -> None:
    # One message of k sells: the window holds cum = -2^48 .. -k 2^48 (one stamp), so
    # n S2 = k * 2^96 * k (k+1) (2k+1) / 6. The first k past i128 is worked out here; well
    # after it (k = 600) the exact n S2 - S1^2 = 2^96 k^2 (k^2 - 1) / 12 leaves i128 too,
    # where wrapping arithmetic would give another value than the reference's ints.
    def n_s2(k: int) -> int:
        return k * (k * (k + 1) * (2 * k + 1) // 6 << 96)

    k = next(k for k in range(1, 1000) if n_s2(k) > I128_MAX)
    assert (k * k * (k * k - 1) // 12 << 96) <= I128_MAX < (600**2 * (600**2 - 1) // 12 << 96)
    within, past, far = run_both(TIME, [sells(1, k - 1), sells(1, 1), sells(2, 600 - k)])
    j = k - 1
    want = math.sqrt(float(j * j * (j * j - 1) // 12 << 96)) / float(j) * LOT
    assert v(TIME, within, "std_t") == want and not within.quality_flags & SATURATED
    for f in (past, far):
        assert f.quality_flags & SATURATED and math.isnan(v(TIME, f, "std_t"))
        assert not ready(TIME, f, "std_t") and ready(TIME, f, "cum")


@pytest.mark.parametrize("first", BACKENDS)
def test_a_saturated_window_round_trips_a_checkpoint(first: str) -> None:
    require_rust("plan")
    fs = declared(
        {"id": "z2", "family": "zscore", "input": "cum", "params": {"window": 2}},
        {"id": "std_t", "family": "rolling_std_time", "input": "cum", "params": {"window_ns": 9}},
    )
    head = [sells(1, 23169), sells(2, 2)]
    tail = [sells(3, 2, side=-SELL), sells(4, 1)]
    whole = FeatureEngine([SPEC], fs, backend="python")
    want = [whole.process(m) for m in head + tail]
    source = FeatureEngine([SPEC], fs, backend=first)
    for m in head:
        source.process(m)
    state = source.export_state()
    assert isinstance(state, PlanEngineState)
    nodes = state.to_dict()["symbols"][0]["features"]["nodes"]
    z2, std_t = nodes[node_index(fs, "z2")], nodes[node_index(fs, "std_t")]
    assert z2["saturated"] and z2["window"]["values"] == [] and math.isnan(z2["value"])
    assert std_t["saturated"] and not std_t["clock"]["started"]
    text = json.dumps(state.to_dict())
    for second in BACKENDS:
        target = FeatureEngine([SPEC], fs, backend=second)
        target.import_state(json.loads(text))
        assert target.export_state() == state, (first, second)
        got = [target.process(m) for m in tail]
        for w, g in zip(want[len(head) :], got, strict=True):
            assert_frames_equal(w, g)
        assert target.export_state() == whole.export_state()


def _state_with(edit: Any) -> dict[str, Any]:
    eng = FeatureEngine([SPEC], COUNT, backend="python")
    eng.process(sells(1, 1, qty=7))
    d = eng.export_state().to_dict()
    edit(d["symbols"][0]["features"]["nodes"][node_index(COUNT, "z2")])
    return d


BAD_WINDOWS = {
    # n S2 = 2 * 2^126: valid rows saturate such a window, so no state holds it unflagged.
    "n S2 past i128, not saturated": lambda n: n.update(
        window={**n["window"], "values": [0, -(1 << 63)], "s1": -(1 << 63), "s2": 1 << 126}
    ),
    "saturated with values": lambda n: n.update(saturated=True),
    "saturated as an int": lambda n: n.update(saturated=1),
}


@pytest.mark.parametrize("case", sorted(BAD_WINDOWS))
def test_a_window_state_past_the_bound_is_refused_alike(case: str, backend: str) -> None:
    if backend == "rust":
        require_rust("plan")
    bad = _state_with(BAD_WINDOWS[case])
    eng = FeatureEngine([SPEC], COUNT, backend=backend)
    before = eng.export_state()
    with pytest.raises(InvalidStateError, match="saturat"):
        eng.import_state(bad)
    assert eng.export_state() == before


def test_weighted_mid_and_vwap_at_the_row_bounds_are_exact_on_both_backends() -> None:
    # 64 level pairs of 2^48 lots at prices up to 2^48: the weighted-mid numerator is near
    # 2^103 and 1,000 trades of 2^48 lots at 2^48 make a notional of about 2^106, all within
    # i128 (docs/features/book.md, trade-windows.md): the exact ints of the reference.
    fs = resolve_feature_set(FeatureSetDecl.from_dict({
        "feature_set": {"id": "bounds_v1", "version": 1},
        "features": [
            {"id": "wmid", "family": "weighted_mid", "params": {"levels": 64}},
            {"id": "vwap", "family": "vwap", "params": {"window_ns": 10**9}},
        ],
    }))  # fmt: skip
    top, q = MAX_ABS_UNITS, MAX_ABS_UNITS
    asks = [top - m for m in range(64)]
    bids = [top - 64 - m for m in range(64)]
    levels = [(BID, b, q) for b in bids] + [(ASK, a, q) for a in asks]
    book = make_message(0, source_ts_ns=1, snapshot=levels)
    trades = make_message(0, source_ts_ns=2, trades=[(SELL, top, q)] * 1000)
    f1, f2 = run_both(fs, [book, trades])
    num = sum(b * q + a * q for b, a in zip(bids, asks, strict=True))
    assert num.bit_length() == 103
    assert v(fs, f1, "wmid") == float(num) / float(128 * q) * 0.5
    assert v(fs, f2, "vwap") == float(1000 * top * q) / float(1000 * q) * 0.5 == top * 0.5


# ----- towers of cumulative sums, drawn ------------------------------------------------------

WINDOWED = ("rolling_std", "zscore", "rolling_std_time", "rolling_sum_time", "rolling_mean_time")


@st.composite
def towers(draw: st.DrawFn) -> FeatureSet:
    """A source of large values, cumulative sums over it up to sixteen deep, and integer
    windows over the top or any level. The top of d sums after k updates of x is
    C(k + d - 1, d) x: past 2^62 (where n * S2 passes i128 from n = 2) within about ten
    updates of 2^48 for d = 9, seven for d = 16."""
    source = draw(st.sampled_from(("bid_qty", "ask_qty", "mid", "trade_signed_qty", "ofi")))
    feats: list[dict[str, Any]] = [
        {"id": "l0", "family": source, "params": {"levels": 2} if source == "ofi" else {}}
    ]
    depth = draw(st.integers(1, 16))
    feats += [{"id": f"l{i}", "family": "cum", "input": f"l{i - 1}"} for i in range(1, depth + 1)]
    for j in range(draw(st.integers(1, 4))):
        family = draw(st.sampled_from(WINDOWED))
        param = (
            {"window": draw(st.integers(1, 12))}
            if family in ("rolling_std", "zscore")
            else {"window_ns": draw(st.sampled_from(WINDOWS_NS))}
        )
        level = draw(st.one_of(st.just(depth), st.integers(0, depth)))
        feats.append({"id": f"w{j}", "family": family, "input": f"l{level}", "params": param})
    return resolve_feature_set(FeatureSetDecl.from_dict(
        {"feature_set": {"id": "tower_v1", "version": 1}, "features": feats}
    ))  # fmt: skip


@st.composite
def swelling_streams(draw: st.DrawFn) -> Stream:
    """One symbol: a snapshot, then book and trade messages with sizes near 2^48 (a few
    deletes, so ofi swings both ways), source time mostly forward, now and then a reset."""
    big = st.integers(2**47, MAX_ABS_UNITS)
    mid = draw(st.sampled_from((1000, 2**45)))
    stream = Stream(1, None)
    snap = [
        (CLEAR, 0, 0, 0),
        (SNAPSHOT, BID, mid - 1, draw(big)),
        (SNAPSHOT, ASK, mid + 1, draw(big)),
    ]
    stream.msgs.append(Msg(0, snap, source_ts_ns=1))
    ts = 1
    for _ in range(draw(st.integers(12, 40))):
        action = draw(st.sampled_from(("book",) * 12 + ("trades",) * 6 + ("reset",)))
        ts += draw(st.integers(0, 2 * 10**9))
        if action == "reset":
            stream.msgs.append(Msg(0, [], reset=True))
            continue
        if action == "book":
            side = draw(st.sampled_from((BID, ASK)))
            px = mid - draw(st.integers(1, 2)) if side == BID else mid + draw(st.integers(1, 2))
            qty = draw(st.one_of(big, st.just(0)))
            rows = [(LEVEL, side, px, qty)]
        else:
            n = draw(st.integers(1, 6))
            rows = [(TRADE, draw(st.sampled_from((1, 1, -1))), mid, draw(big)) for _ in range(n)]
        stream.msgs.append(Msg(0, rows, source_ts_ns=ts))
    return stream


@PLAN_FUZZ
@given(fs=towers(), stream=swelling_streams())
def test_towers_of_cumulative_sums_saturate_alike(fs: FeatureSet, stream: Stream) -> None:
    check(fs, stream)


@PLAN_FUZZ
@given(
    fs=towers(),
    stream=swelling_streams(),
    at=st.floats(0.0, 1.0),
    first=st.sampled_from(BACKENDS),
)
def test_towers_checkpoint_at_a_random_cut_alike(
    fs: FeatureSet, stream: Stream, at: float, first: str
) -> None:
    check_cut(fs, stream, at, first)
