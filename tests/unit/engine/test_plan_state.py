"""Checkpoints of an engine of a declared set, on both backends: export, JSON, import into
either backend, the same frames after; states of another set refused; malformed states
refused alike by both backends (and by the Rust kernel's own check) before anything
changes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PLAN_STATE_FORMAT, PlanEngineState
from featureplane.errors import InvalidStateError, SchemaMismatchError
from featureplane.events import message_bounds
from featureplane.features.resolve import resolve_feature_set
from tests.support.rust import require_rust
from tests.support.sessions import SYMBOLS, session

RESEARCH = Path(__file__).resolve().parents[3] / "examples" / "feature-sets" / "research_v1.toml"


@pytest.mark.parametrize("second", ["python", "rust"])
def test_checkpoint_through_json_gives_the_same_frames(backend: str, second: str) -> None:
    if second == "rust":
        require_rust("plan")
    fs = resolve_feature_set(RESEARCH)
    events = session(400)
    cut = int(message_bounds(events)[150])
    whole = FeatureEngine(SYMBOLS, fs, backend="python").process_batch(events)
    first = FeatureEngine(SYMBOLS, fs, backend=backend)
    head = first.process_batch(events[:cut])
    state = first.export_state()
    assert isinstance(state, PlanEngineState) and state.format == PLAN_STATE_FORMAT
    assert state.feature_set["plan"] == fs.plan  # the checkpoint carries the declaration
    text = json.dumps(state.to_dict())
    assert PlanEngineState.from_dict(json.loads(text)) == state
    other = FeatureEngine(SYMBOLS, fs, backend=second)
    other.import_state(json.loads(text))
    assert other.export_state() == state
    tail = other.process_batch(events[cut:])
    assert len(head) + len(tail) == len(whole)
    for name, col in whole.values.items():
        assert np.concatenate([head.values[name], tail.values[name]]).tobytes() == col.tobytes()
    for name in ("warmup_ready_mask", "quality_flags", "changed_mask", "seq"):
        joined = np.concatenate([head.columns[name], tail.columns[name]])
        assert np.array_equal(joined, whole.columns[name]), name
    first.process_batch(events[cut:])
    assert other.export_state() == first.export_state()


def test_states_of_another_set_are_refused(backend: str) -> None:
    fs = resolve_feature_set(RESEARCH)
    declared = FeatureEngine(SYMBOLS, fs, backend=backend)
    declared.process_batch(session(60))
    builtin = FeatureEngine(SYMBOLS, backend=backend)
    builtin.process_batch(session(60))
    with pytest.raises(InvalidStateError, match="format"):
        builtin.import_state(declared.export_state())
    with pytest.raises(InvalidStateError, match="format"):
        declared.import_state(builtin.export_state())
    other = dict(declared.export_state().to_dict())
    other["feature_set"] = dict(other["feature_set"], schema_hash="0" * 64)
    with pytest.raises(SchemaMismatchError):
        declared.import_state(other)


# ----- malformed states: one table, both backends ----------------------------------------

# Plan nodes of research_v1 by the kind of state they keep (see its plan).
MID, MICROPRICE, CUM, EMA, DECAYED, SUM_TIME = 5, 6, 21, 22, 24, 26
ZSCORE_F64, DIFF, STD_INT, STD_TIME, VOL, TFI, VWAP, REGIME = 30, 31, 32, 33, 37, 43, 45, 49

Doc = dict[str, Any]


def _node(d: Doc, i: int) -> Doc:
    node: Doc = d["symbols"][0]["features"]["nodes"][i]
    return node


def _set(*path: str | int, value: Any) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        at: Any = d
        for key in path[:-1]:
            at = at[key]
        at[path[-1]] = value

    return edit


def _node_set(i: int, *path: str, value: Any) -> Callable[[Doc], None]:
    return _set("symbols", 0, "features", "nodes", i, *path, value=value)


def _drop(*path: str | int) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        at: Any = d
        for key in path[:-1]:
            at = at[key]
        del at[path[-1]]

    return edit


def _edit(f: Callable[[Doc], Any]) -> Callable[[Doc], None]:
    def edit(d: Doc) -> None:
        f(d)

    return edit


F = ("symbols", 0, "features")
BAD: dict[str, tuple[Callable[[Doc], None], bool]] = {
    # name: (the edit, whether the Rust kernel's own check sees it: a kernel-part field)
    "format": (_set("format", value="featureplane.plan_state.v0"), False),
    "extra top key": (_set("note", value=1), False),
    "symbol name": (_set("symbols", 0, "symbol", value="ETHUSDT"), False),
    "symbol grid": (_set("symbols", 0, "tick_size", value="0.5"), False),
    "extra symbol key": (_set("symbols", 0, "extra", value=0), False),
    "counter missing": (_drop("counters", "gaps"), True),
    "counter negative": (_set("counters", "applied", value=-1), True),
    "counter past MAX_COUNT": (_set("counters", "messages", value=1 << 63), True),
    "bids out of order": (
        _edit(lambda d: d["symbols"][0]["book"]["bids"].reverse()),
        True,
    ),
    "ask size 0": (_set("symbols", 0, "book", "asks", 0, 1, value=0), True),
    "price past 2^48": (_set("symbols", 0, "book", "asks", 0, 0, value=(1 << 48) + 1), True),
    "messages_applied bool": (
        _set("symbols", 0, "sequencing", "messages_applied", value=True),
        True,
    ),
    "n_book float": (_set(*F, "n_book", value=3.0), True),
    "n_trade past MAX_COUNT": (_set(*F, "n_trade", value=1 << 63), True),
    "prev_bids deeper than the plan": (
        _edit(
            lambda d: d["symbols"][0]["features"].update(
                prev_bids=[[100 - i, 1] for i in range(11)]
            )
        ),
        True,
    ),
    "has_bid without a bid": (_set(*F, "prev_bids", value=[]), True),
    "a node missing": (_edit(lambda d: d["symbols"][0]["features"]["nodes"].pop()), True),
    "node extra key": (_node_set(MID, "extra", value=0), True),
    "node value missing": (_drop(*F, "nodes", MID, "value"), True),
    "i64 value as float": (_node_set(MID, "value", value=1.0), True),
    "i64 value past i64": (_node_set(MID, "value", value=1 << 63), True),
    "f64 value as int": (_node_set(MICROPRICE, "value", value=1), True),
    "f64 value as bool": (_node_set(MICROPRICE, "value", value=True), True),
    "u32 value negative": (_node_set(REGIME, "value", value=-1), True),
    "NaN tag malformed": (_node_set(MICROPRICE, "value", value="f64:zz"), True),
    "NaN tag of a number": (_node_set(MICROPRICE, "value", value="f64:3ff0000000000000"), True),
    "cum past its bound": (_node_set(CUM, "total", value=(1 << 63) + 1), True),
    "ema alpha of another span": (_node_set(EMA, "ema", "alpha", value=0.5), True),
    "ema count past MAX_COUNT": (_node_set(EMA, "ema", "count", value=1 << 63), True),
    "decayed half-life": (_node_set(DECAYED, "decayed", "half_life_ns", value=1.0), True),
    "decayed last_ts as float": (_node_set(DECAYED, "decayed", "last_ts_ns", value=1.5), True),
    "diff prev before any input": (
        _edit(lambda d: _node(d, DIFF).update(count=0, prev=5)),
        True,
    ),
    "window size": (_node_set(STD_INT, "window", "size", value=31), True),
    "window s1": (
        _edit(
            lambda d: _node(d, STD_INT)["window"].update(s1=_node(d, STD_INT)["window"]["s1"] + 1)
        ),
        True,
    ),
    "window overfull": (
        _edit(lambda d: _node(d, ZSCORE_F64)["window"].update(values=[0.5] * 129)),
        True,
    ),
    "f64 window with sums": (_node_set(ZSCORE_F64, "window", "s1", value=1), True),
    "int window of floats": (
        _edit(lambda d: _node(d, STD_INT)["window"].update(values=[0.5], s1=0, s2=0)),
        True,
    ),
    "time sample past the clock": (
        _edit(
            lambda d: _node(d, SUM_TIME).update(
                samples=[[_node(d, SUM_TIME)["clock"]["now"] + 1, 0]], s1=0, s2=0
            )
        ),
        True,
    ),
    "time sample expired": (
        _edit(
            lambda d: _node(d, SUM_TIME).update(
                samples=[[_node(d, SUM_TIME)["clock"]["now"] - 10**9, 0]], s1=0, s2=0
            )
        ),
        True,
    ),
    "clock first after now": (
        _edit(lambda d: _node(d, VOL)["clock"].update(first=_node(d, VOL)["clock"]["now"] + 1)),
        True,
    ),
    "clock not started holds time": (_node_set(VOL, "clock", "started", value=False), True),
    "time s2": (_edit(lambda d: _node(d, SUM_TIME).update(s2=_node(d, SUM_TIME)["s2"] + 1)), True),
    "time sum window with squares": (
        _edit(
            lambda d: _node(d, SUM_TIME).update(
                s2=sum(int(x) ** 2 for _, x in _node(d, SUM_TIME)["samples"]) or 1
            )
        ),
        True,
    ),
    "window saturated with values": (_node_set(STD_INT, "saturated", value=True), True),
    "window saturated missing": (_drop(*F, "nodes", STD_INT, "saturated"), True),
    "f64 window saturated": (
        _edit(
            lambda d: _node(d, ZSCORE_F64).update(
                saturated=True, window={**_node(d, ZSCORE_F64)["window"], "values": []}
            )
        ),
        True,
    ),
    "window past n * S2 unflagged": (
        _edit(
            lambda d: _node(d, STD_INT).update(
                window={"s1": -(1 << 63), "s2": 1 << 126, "size": 32, "values": [0, -(1 << 63)]}
            )
        ),
        True,
    ),
    "time window saturated with a clock": (
        _edit(lambda d: _node(d, STD_TIME).update(saturated=True, samples=[], s1=0, s2=0)),
        True,
    ),
    "time window past n * S2 unflagged": (
        _edit(
            lambda d: _node(d, STD_TIME).update(
                samples=[[_node(d, STD_TIME)["clock"]["now"], x] for x in (-(1 << 63), 0)],
                s1=-(1 << 63),
                s2=1 << 126,
            )
        ),
        True,
    ),
    "realized vol prev as int": (_node_set(VOL, "prev", value=1), True),
    "trade sizes and sums": (
        _edit(lambda d: _node(d, TFI).update(buy=_node(d, TFI)["buy"] + 1)),
        True,
    ),
    "trade size negative": (
        _edit(
            lambda d: _node(d, TFI).update(
                trades=[[_node(d, TFI)["clock"]["now"], -1, 0]], buy=-1, sell=0
            )
        ),
        True,
    ),
    "vwap notional past px * qty": (
        _edit(
            lambda d: _node(d, VWAP).update(
                trades=[[_node(d, VWAP)["clock"]["now"], (1 << 96) + 1, 1]],
                notional=(1 << 96) + 1,
                qty=1,
            )
        ),
        True,
    ),
    "frame flags past u32": (_set("symbols", 0, "frame", "quality_flags", value=1 << 32), True),
}


@pytest.fixture(scope="module")
def good_state() -> Doc:
    fs = resolve_feature_set(RESEARCH)
    eng = FeatureEngine(SYMBOLS, fs, backend="python")
    eng.process_batch(session(400))
    d = eng.export_state().to_dict()
    # The edits need windows that hold something.
    for i in (SUM_TIME, VOL, TFI, VWAP):
        assert _node(d, i)["clock"]["started"], i
    assert _node(d, STD_INT)["window"]["values"] and _node(d, DIFF)["count"] > 1
    assert _node(d, STD_TIME)["clock"]["started"] and not _node(d, STD_TIME)["saturated"]
    return d


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_state_is_refused_alike_and_changes_nothing(
    case: str, good_state: Doc, backend: str
) -> None:
    if backend == "rust":
        require_rust("plan")
    edit, _ = BAD[case]
    bad = copy.deepcopy(good_state)
    edit(bad)
    eng = FeatureEngine(SYMBOLS, resolve_feature_set(RESEARCH), backend=backend)
    eng.process_batch(session(40))
    before = eng.export_state()
    with pytest.raises(InvalidStateError):
        eng.import_state(bad)
    assert eng.export_state() == before
    eng.import_state(good_state)  # and the good one still goes in
    assert eng.export_state() == PlanEngineState.from_dict(good_state)


@pytest.mark.parametrize("case", sorted(c for c, (_, kernel) in BAD.items() if kernel))
def test_the_rust_kernel_refuses_the_same_states_itself(case: str, good_state: Doc) -> None:
    """The kernel's own check (behind the shared one): the kernel part of each bad state is a
    ValueError naming the field, and the kernel is unchanged."""
    require_rust("plan")
    from featureplane.engine.plan_state import kernel_part
    from featureplane.engine.rust import plan_engine

    fs = resolve_feature_set(RESEARCH)
    raw = plan_engine(fs)
    for spec in SYMBOLS.specs:
        raw.add_symbol(spec.tick_f64, spec.lot_f64)
    before = raw.export_state()
    bad = copy.deepcopy(good_state)
    BAD[case][0](bad)
    with pytest.raises(ValueError, match="plan state: "):
        raw.import_state(kernel_part(bad))
    assert repr(raw.export_state()) == repr(before)
    raw.import_state(kernel_part(good_state))
    assert repr(raw.export_state()) == repr(kernel_part(good_state))


def test_a_schema_of_another_plan_is_a_mismatch_on_both(backend: str, good_state: Doc) -> None:
    if backend == "rust":
        require_rust("plan")
    bad = copy.deepcopy(good_state)
    bad["feature_set"]["schema_hash"] = "0" * 64
    eng = FeatureEngine(SYMBOLS, resolve_feature_set(RESEARCH), backend=backend)
    with pytest.raises(SchemaMismatchError):
        eng.import_state(bad)


def test_nan_payloads_survive_both_backends(good_state: Doc) -> None:
    """A negative NaN (as x86 makes) and another payload in node values, an EMA and a window:
    written `"f64:<bits>"`, taken by both backends, exported back with the same bits, and the
    frames after them equal between the backends, bit for bit."""
    require_rust("plan")
    d = copy.deepcopy(good_state)
    neg, odd = "f64:fff8000000000000", "f64:7ff0000000000001"
    _node(d, MICROPRICE)["value"] = neg
    _node(d, EMA)["ema"]["value"] = neg
    _node(d, EMA)["value"] = neg
    _node(d, VOL)["prev"] = odd
    _node(d, ZSCORE_F64)["window"]["values"][:2] = [neg, odd]
    fs = resolve_feature_set(RESEARCH)
    events = session(120, seed=9)
    frames = []
    for backend in ("python", "rust"):
        eng = FeatureEngine(SYMBOLS, fs, backend=backend)
        eng.import_state(d)
        back = eng.export_state().to_dict()
        assert _node(back, EMA)["ema"]["value"] == neg and _node(back, VOL)["prev"] == odd
        assert _node(back, ZSCORE_F64)["window"]["values"][:2] == [neg, odd]
        assert eng.export_state() == PlanEngineState.from_dict(d)
        frames.append(eng.process_batch(events))
    py, rs = frames
    assert len(py) == len(rs) > 0
    for name, col in py.values.items():
        assert col.tobytes() == rs.values[name].tobytes(), name
