"""The check of one saved plan node (`features.nodes[i]` of `featureplane.plan_state.v1`).

A node's saved form is what its reference class exports (`Node.export`): the keys of a fresh
node of the plan, each of a fixed type. Besides types, a saved node must be one valid rows
can produce, so that both kernels (the Rust one keeps some of it in another shape) continue
alike from it:

- counts in `[0, MAX_COUNT]`, cumulative sums in `[CUM_LOW, CUM_HIGH]`;
- what the plan fixes is the plan's: an EMA's alpha, a decayed sum's half-life, a count
  window's size (and no more values than it holds);
- running sums equal the sums of the window's samples (exactly, within i128: the Rust
  kernel's integer); an f64 window keeps none (0), nor a time window that reads no squares
  (S2 of `rolling_sum_time`, `rolling_mean_time`);
- an integer window (`rolling_std`, `zscore`, `rolling_std_time`) either holds `n * S2`
  within i128 or is saturated, and a saturated one is empty (clock included: it restarts
  only at the next reset); an f64 window is never saturated;
- a clock not started reads 0 and holds no samples; a started one has `first <= now`; the
  samples' stamps never decrease and lie in `(now - window_ns, now]`, from `first` on;
- trade sizes are row sizes (`0..=MAX_ABS_UNITS`), a VWAP notional a row's `px * qty`;
- a `diff` before its first input holds no previous value.

The Rust kernel checks the same (`crates/featureplane-core/src/plan/node_state.rs`), so both
backends refuse the same states. The check returns the node's data normalized (Python ints,
floats and lists), which is what both kernels then read.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NoReturn

from featureplane.engine.state import (
    _COUNT,
    _CUM,
    _I64,
    _U32,
    _bool,
    _fields,
    _float,
    _int,
    _list,
)
from featureplane.errors import InvalidStateError
from featureplane.features.families import book, timewin, trade, transforms
from featureplane.features.families.base import Node
from featureplane.features.rolling import squares_saturated

__all__ = ["check_node"]

_I128 = (-(1 << 127), (1 << 127) - 1)
_UNITS = 1 << 48  # events.MAX_ABS_UNITS
_SIZE = (0, _UNITS)
_NOTIONAL = (-_UNITS * _UNITS, _UNITS * _UNITS)


def _fail(path: str, what: str) -> NoReturn:
    raise InvalidStateError(f"plan state: {path}: {what}")


def _bits(x: float) -> int:
    bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return bits


def _value(node: Node, x: Any, path: str) -> int | float:
    dtype = node.meta.dtype
    if dtype == "f64":
        return _float(x, path)
    return _int(x, path, _U32 if dtype == "u32" else _I64)


def _sum(path: str, saved: int, want: int) -> None:
    if not _I128[0] <= want <= _I128[1]:
        _fail(path, "the samples' sum leaves i128")
    if saved != want:
        _fail(path, f"{saved}, but the samples sum to {want}")


def _clock(x: Any, path: str) -> dict[str, Any]:
    d = _fields(x, path, ("first", "now", "started"))
    first = _int(d["first"], f"{path}.first")
    now = _int(d["now"], f"{path}.now")
    started = _bool(d["started"], f"{path}.started")
    if started and first > now:
        _fail(path, f"first {first} after now {now}")
    if not started and (first, now) != (0, 0):
        _fail(path, "a clock not started holds first = now = 0")
    return {"first": first, "now": now, "started": started}


def _stamps(path: str, clock: dict[str, Any], window_ns: int, stamps: list[int]) -> None:
    if not clock["started"] and stamps:
        _fail(path, "samples before the clock started")
    oldest = clock["now"] - window_ns
    last = clock["first"]
    for i, stamp in enumerate(stamps):
        if stamp < last or stamp > clock["now"] or stamp <= oldest:
            _fail(f"{path}[{i}]", f"stamp {stamp} out of order or outside the window")
        last = stamp


def _pair_list(x: Any, path: str, n: int) -> list[list[Any]]:
    out = []
    for i, item in enumerate(_list(x, path)):
        at = f"{path}[{i}]"
        items = _list(item, at)
        if len(items) != n:
            _fail(at, f"expected {n} items, got {len(items)}")
        out.append(list(items))
    return out


def _time_window(node: timewin.TimeWindow, d: Any, path: str) -> dict[str, Any]:
    window_ns = int(node.params["window_ns"])
    integer = node.is_int and not isinstance(node, timewin.RealizedVol)
    clock = _clock(d["clock"], f"{path}.clock")
    sp = f"{path}.samples"
    samples: list[list[int | float]] = []
    for i, (stamp, x) in enumerate(_pair_list(d["samples"], sp, 2)):
        at = f"{sp}[{i}]"
        samples.append([_int(stamp, at), _int(x, at) if integer else _float(x, at)])
    _stamps(sp, clock, window_ns, [int(s[0]) for s in samples])
    s1 = _int(d["s1"], f"{path}.s1", _I128)
    s2 = _int(d["s2"], f"{path}.s2", _I128)
    xs = [int(s[1]) for s in samples] if integer else []
    _sum(f"{path}.s1", s1, sum(xs))
    _sum(f"{path}.s2", s2, sum(x * x for x in xs) if node.squares else 0)
    out = {"clock": clock, "samples": samples, "s1": s1, "s2": s2}
    if isinstance(node, timewin.RollingStdTime):
        saturated = _saturation(d["saturated"], f"{path}.saturated", integer, len(xs), s2)
        if saturated and clock["started"]:
            _fail(f"{path}.clock", "a saturated window restarts only at a reset")
        out["saturated"] = saturated
    return out


def _saturation(x: Any, path: str, integer: bool, n: int, s2: int) -> bool:
    """A window's `saturated`: only an integer window's, then empty; else `n * S2` fits."""
    saturated = _bool(x, path)
    if saturated and not integer:
        _fail(path, "an f64 window never saturates")
    if saturated and n:
        _fail(path, "a saturated window holds no values")
    if not saturated and squares_saturated(n, s2):
        _fail(path, "n * S2 leaves i128: the window would have saturated")
    return saturated


def _trade_window(
    node: trade.TradeFlowImbalance | trade.Vwap, d: Any, path: str, names: tuple[str, str]
) -> dict[str, Any]:
    window_ns = int(node.params["window_ns"])
    clock = _clock(d["clock"], f"{path}.clock")
    tp = f"{path}.trades"
    a_bounds = _NOTIONAL if names[0] == "notional" else _SIZE
    trades: list[list[int]] = []
    for i, (stamp, a, b) in enumerate(_pair_list(d["trades"], tp, 3)):
        at = f"{tp}[{i}]"
        trades.append([_int(stamp, at), _int(a, at, a_bounds), _int(b, at, _SIZE)])
    _stamps(tp, clock, window_ns, [t[0] for t in trades])
    a_sum = _int(d[names[0]], f"{path}.{names[0]}", _I128)
    b_sum = _int(d[names[1]], f"{path}.{names[1]}", _I128)
    _sum(f"{path}.{names[0]}", a_sum, sum(t[1] for t in trades))
    _sum(f"{path}.{names[1]}", b_sum, sum(t[2] for t in trades))
    return {"clock": clock, "trades": trades, names[0]: a_sum, names[1]: b_sum}


def _count_window(node: transforms.CountWindow, x: Any, path: str) -> dict[str, Any]:
    d = _fields(x, path, ("s1", "s2", "size", "values"))
    size = node.window.size
    if _int(d["size"], f"{path}.size", (0, _I128[1])) != size:
        _fail(f"{path}.size", f"not the plan's window of {size}")
    vp = f"{path}.values"
    items = _list(d["values"], vp)
    if len(items) > size:
        _fail(vp, f"{len(items)} values, the window holds {size}")
    integer = node.input_dtype == "i64"
    check: Callable[[Any, str], int | float] = _int if integer else _float
    values = [check(v, f"{vp}[{i}]") for i, v in enumerate(items)]
    s1 = _int(d["s1"], f"{path}.s1", _I128)
    s2 = _int(d["s2"], f"{path}.s2", _I128)
    xs = [int(v) for v in values] if integer else []
    _sum(f"{path}.s1", s1, sum(xs))
    _sum(f"{path}.s2", s2, sum(v * v for v in xs))
    return {"s1": s1, "s2": s2, "size": size, "values": values}


def check_node(saved: Any, node: Node, path: str) -> dict[str, Any]:
    """The checked, normalized saved form of `node` (a fresh node of the plan).

    Raises
    ------
    InvalidStateError
        Another set of keys, a value of the wrong type or beyond what valid rows produce.
    """
    keys = list(node.export())
    d = _fields(saved, path, keys)
    out: dict[str, Any] = {}

    def at(key: str) -> str:
        return f"{path}.{key}"

    if isinstance(node, timewin.TimeWindow):
        out.update(_time_window(node, d, path))
        if isinstance(node, timewin.RealizedVol):
            out["prev"] = _float(d["prev"], at("prev"))
    elif isinstance(node, trade.TradeFlowImbalance):
        out.update(_trade_window(node, d, path, ("buy", "sell")))
    elif isinstance(node, trade.Vwap):
        out.update(_trade_window(node, d, path, ("notional", "qty")))
    elif isinstance(node, transforms.Cum):
        out["total"] = _int(d["total"], at("total"), _CUM)
    elif isinstance(node, transforms.Diff):
        out["prev"] = _int(d["prev"], at("prev"))
        out["count"] = _int(d["count"], at("count"), _COUNT)
        out["clipped"] = _bool(d["clipped"], at("clipped"))
        if out["count"] == 0 and out["prev"] != 0:
            _fail(at("prev"), "a previous value before any input")
    elif isinstance(node, transforms.EmaNode):
        e = _fields(d["ema"], at("ema"), ("alpha", "count", "value"))
        alpha = _float(e["alpha"], at("ema.alpha"))
        if _bits(alpha) != _bits(node.ema.alpha):
            _fail(at("ema.alpha"), "not the alpha of the plan's span")
        out["ema"] = {
            "alpha": alpha,
            "count": _int(e["count"], at("ema.count"), _COUNT),
            "value": _float(e["value"], at("ema.value")),
        }
    elif isinstance(node, transforms.DecayedSumNode):
        e = _fields(d["decayed"], at("decayed"), ("count", "half_life_ns", "last_ts_ns", "value"))
        half_life = _float(e["half_life_ns"], at("decayed.half_life_ns"))
        if _bits(half_life) != _bits(node.decayed.half_life_ns):
            _fail(at("decayed.half_life_ns"), "not the plan's half-life")
        out["decayed"] = {
            "count": _int(e["count"], at("decayed.count"), _COUNT),
            "half_life_ns": half_life,
            "last_ts_ns": _int(e["last_ts_ns"], at("decayed.last_ts_ns")),
            "value": _float(e["value"], at("decayed.value")),
        }
    elif isinstance(node, transforms.CountWindow):
        window = _count_window(node, d["window"], at("window"))
        integer = node.input_dtype == "i64"
        n = len(window["values"])
        out["window"] = window
        out["saturated"] = _saturation(d["saturated"], at("saturated"), integer, n, window["s2"])
    elif not isinstance(node, book.BidPx | book.AskPx | book.TwoSided | book.Ofi) and not (
        isinstance(node, book.BookRegime | trade.TradeNode)
    ):
        _fail(path, f"no saved form for {type(node).__name__}")  # a family added unchecked
    out["value"] = _value(node, d["value"], at("value"))
    unchecked = [k for k in keys if k not in out]
    if unchecked:  # a family whose state gained a field this check does not know yet
        _fail(path, f"no check for {', '.join(unchecked)} of {type(node).__name__}")
    return {k: out[k] for k in keys}
