"""Parity over random declarations: the Rust plan kernel against the Python reference.

Hypothesis draws a feature set (book and trade families with random parameters, then chains
of transforms over them: every family of the catalogue, internal and output nodes; half the
time a tower of cumulative sums with integer windows over it, for extreme magnitudes) and a
valid message stream (tests/parity/test_backend_parity.py's: snapshots, gaps, duplicates,
out-of-order and stale messages, one-sided, empty and crossed books, backwards time, explicit
resets; half the time sizes near 2^48). Both backends run it by `process_batch` and by
per-message `process`; every header, mask, flag and value must be equal, f64 bit for bit: the
families' f64 operations are the reference's in its order (docs/features/).

Bounded here (`FEATUREPLANE_PLAN_EXAMPLES`, default 60); the long run sets it to 5,000.
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.events import concat
from featureplane.features.catalogue import CATALOGUE, NodeMeta
from featureplane.features.declare import FeatureDecl, FeatureSetDecl
from featureplane.features.plan import MAX_OUTPUTS, compile_plan
from featureplane.frames.frame import FrameBatch
from featureplane.schema import FeatureSet
from tests.parity.test_backend_parity import (
    SPECS,
    Msg,
    Stream,
    assert_frames_equal,
    assert_values_equal,
    streams,
)
from tests.support.rust import require_rust

EXAMPLES = int(os.environ.get("FEATUREPLANE_PLAN_EXAMPLES", "60"))
PLAN_FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

BOOK = [n for n, f in CATALOGUE.items() if f.trigger == "book" and n != "book_regime"]
TRADE = [n for n, f in CATALOGUE.items() if f.trigger == "trade"]
TRANSFORMS = [n for n, f in CATALOGUE.items() if f.trigger == "input"]
# Around the streams' steps of 0 to 3 s of source time.
WINDOWS_NS = (1, 10**6, 10**9, 2 * 10**9, 10**10)


@st.composite
def params_of(draw: st.DrawFn, family: str) -> dict[str, int | float]:
    out: dict[str, int | float] = {}
    for name in CATALOGUE[family].params:
        if name == "levels":
            out[name] = draw(st.integers(1, 7))
        elif name == "decay":
            out[name] = draw(st.sampled_from((1.0, 0.5, 0.3, 1e-3)))
        elif name in ("span", "window"):
            out[name] = draw(st.integers(1, 12))
        elif name in ("window_ns", "half_life_ns"):
            out[name] = draw(st.sampled_from(WINDOWS_NS))
        elif name == "wide_spread_factor":
            out[name] = draw(st.sampled_from((0.5, 1.0, 4.0)))
        else:  # a parameter this strategy does not know yet
            raise AssertionError(f"no strategy for parameter {name!r} of {family}")
    return out


KNOWN_PARAMS = {"levels", "decay", "span", "window", "window_ns", "half_life_ns",
                "wide_spread_factor"}  # fmt: skip


@st.composite
def declarations(draw: st.DrawFn) -> FeatureSet:
    """A valid declared set over every family of the catalogue."""
    feats: list[FeatureDecl] = []
    metas: dict[str, NodeMeta] = {}
    dtypes: dict[str, str] = {}
    units: dict[str, str] = {}
    families: dict[str, str] = {}

    def add(family: str, inp: str | None, params: dict[str, int | float]) -> None:
        fid = f"f{len(feats)}_{family}"
        feats.append(FeatureDecl(fid, family, inp, params, draw(st.booleans())))
        meta = CATALOGUE[family].meta(params, None if inp is None else metas[inp])
        metas[fid] = meta
        dtypes[fid], units[fid], families[fid] = meta.dtype, meta.unit, family

    for family in draw(st.lists(st.sampled_from(BOOK + TRADE), min_size=1, max_size=6)):
        add(family, None, draw(params_of(family)))
    for _ in range(draw(st.integers(0, 10))):
        family = draw(st.sampled_from(TRANSFORMS))
        fam = CATALOGUE[family]
        fits = [
            fid
            for fid in dtypes
            if dtypes[fid] in fam.inputs and (not fam.input_units or units[fid] in fam.input_units)
        ]
        if fits:
            add(family, draw(st.sampled_from(fits)), draw(params_of(family)))
    if draw(st.booleans()):
        # A tower of cumulative sums over a source of positive values: with the streams'
        # sizes near 2^48 (or prices near 2^45) its top reaches 2^60 and i64's end within
        # ten-odd updates, and the integer windows over it their saturation bound (n * S2
        # past i128).
        add(draw(st.sampled_from(("bid_qty", "ask_qty", "mid"))), None, {})
        for _ in range(draw(st.integers(6, 12))):
            add("cum", feats[-1].id, {})
        top = feats[-1].id
        for _ in range(draw(st.integers(1, 3))):
            family = draw(st.sampled_from(("rolling_std", "zscore", "rolling_std_time")))
            add(family, draw(st.sampled_from((top, feats[-1].id))), draw(params_of(family)))
    if draw(st.booleans()):  # book_regime over an EMA of a spread
        spreads = [fid for fid, fam in families.items() if fam == "spread"]
        if not spreads:
            add("spread", None, {})
            spreads = [feats[-1].id]
        add("ema", draw(st.sampled_from(spreads)), {"span": draw(st.integers(1, 8))})
        add("book_regime", feats[-1].id, {"wide_spread_factor": 4.0})
    outputs = [f for f in feats if f.output][:MAX_OUTPUTS]
    if not outputs:
        feats[-1] = FeatureDecl(feats[-1].id, feats[-1].family, feats[-1].input,
                                feats[-1].params, True)  # fmt: skip
    fs = compile_plan(FeatureSetDecl("fuzz", 1, tuple(feats))).feature_set()
    assert fs.plan is not None
    return fs


def engines(stream: Stream, fs: FeatureSet) -> tuple[FeatureEngine, FeatureEngine]:
    config = EngineConfig(stale_after_ns=stream.stale_after_ns)
    return (
        FeatureEngine(stream.specs(), backend="python", config=config, feature_set=fs),
        FeatureEngine(stream.specs(), backend="rust", config=config, feature_set=fs),
    )


def run_batches(engine: FeatureEngine, stream: Stream) -> list[FrameBatch]:
    """process_batch over the runs of messages between resets."""
    out: list[FrameBatch] = []
    run: list[np.ndarray] = []
    for msg in [*stream.msgs, Msg(0, [], reset=True)]:
        if msg.reset:
            out.append(engine.process_batch(concat(run)))
            run = []
            engine.reset_symbol(SPECS[msg.symbol_id].symbol)
        else:
            run.append(msg.build())
    return out


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint64) if a.dtype == np.float64 else a


def assert_batches_identical(py: FrameBatch, rs: FrameBatch) -> None:
    assert len(py) == len(rs)
    for name, col in py.columns.items():
        np.testing.assert_array_equal(rs.columns[name], col, err_msg=name)
    assert list(rs.values) == list(py.values)
    for name, col in py.values.items():
        assert rs.values[name].dtype == col.dtype, name
        np.testing.assert_array_equal(bits(rs.values[name]), bits(col), err_msg=name)


def check(fs: FeatureSet, stream: Stream) -> None:
    require_rust("plan")
    py, rs = engines(stream, fs)
    assert not rs._kernel.specialised  # type: ignore[attr-defined]
    for pb, rb in zip(run_batches(py, stream), run_batches(rs, stream), strict=True):
        assert_batches_identical(pb, rb)

    py, rs = engines(stream, fs)
    for msg in stream.msgs:
        if msg.reset:
            py.reset_symbol(SPECS[msg.symbol_id].symbol)
            rs.reset_symbol(SPECS[msg.symbol_id].symbol)
            continue
        rows = msg.build()
        assert_frames_equal(py.process(rows), rs.process(rows))
    assert py.counters == rs.counters
    for spec in py.symbols:
        pv, rv = py.get_feature_view(spec.symbol), rs.get_feature_view(spec.symbol)
        assert (pv.warmup_ready_mask, pv.quality_flags, pv.seq) == (
            rv.warmup_ready_mask,
            rv.quality_flags,
            rv.seq,
        )
        assert_values_equal(pv.values, rv.values)


@PLAN_FUZZ
@given(fs=declarations(), stream=streams(max_messages=80, huge_sizes=True))
def test_random_declarations_rust_equals_reference(fs: FeatureSet, stream: Stream) -> None:
    check(fs, stream)


def test_every_family_is_drawn() -> None:
    """The strategy knows every family and parameter of the catalogue (a new one fails here
    until it is drawn)."""
    for family in CATALOGUE.values():
        assert set(family.params) <= KNOWN_PARAMS, family.name
    assert set(BOOK + TRADE + TRANSFORMS + ["book_regime"]) == set(CATALOGUE)
