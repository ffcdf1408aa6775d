"""The family catalogue v1: every family a feature set may declare, as data.

A family fixes what a node computes from (the book, trades, or one input node), its parameters
(type and range), the dtype of its value, and how its metadata follows from its parameters and
its input: scale, unit, warm-up, flags and the book depth it reads. `featureplane.features.plan`
turns a declaration into `FeatureSpec`s with these rules; the reference evaluator
(`featureplane.features.families`) computes the values; docs/features/ states each family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from featureplane.schema import FLAG_EXACT, FLAG_ROLLING, FLAG_SCALED_INT, Dtype

__all__ = [
    "CATALOGUE",
    "CATALOGUE_VERSION",
    "Family",
    "NodeMeta",
    "Param",
    "family",
]

CATALOGUE_VERSION = 1
MAX_LEVELS = 64
"""Most levels per side a book family may read: deeper books are rare and the reference reads
the top levels as Python lists on every message."""
MAX_WINDOW = 1 << 20
"""Longest count window: the state holds every value of the window."""
MAX_WINDOW_NS = 7 * 86_400 * 10**9
"""Longest time window or half-life: one week of source time."""
MAX_SPAN = 1 << 20

Trigger = Literal["book", "trade", "input"]
ParamValue = int | float
_INT = FLAG_SCALED_INT | FLAG_EXACT


@dataclass(frozen=True)
class Param:
    """One parameter: its type and closed range (`lo`, `hi`); floats may exclude `lo`."""

    kind: type[int] | type[float]
    lo: ParamValue
    hi: ParamValue
    lo_open: bool = False
    doc: str = ""

    def check(self, name: str, value: object) -> str | None:
        """None if `value` is valid, else why not."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"parameter {name!r} must be {self.kind.__name__}, got {value!r}"
        if self.kind is int and not isinstance(value, int):
            return f"parameter {name!r} must be int, got {value!r}"
        if value != value:  # NaN
            return f"parameter {name!r} must be a number, got nan"
        low_ok = value > self.lo if self.lo_open else value >= self.lo
        if not low_ok or value > self.hi:
            lo = "(" if self.lo_open else "["
            return f"parameter {name!r} = {value!r} is out of range {lo}{self.lo}, {self.hi}]"
        return None


@dataclass(frozen=True)
class NodeMeta:
    """What a node's metadata follows from: its input's, when it has one."""

    dtype: Dtype
    scale: int
    unit: str
    warmup: int
    flags: int
    source_kind: str
    depth: int
    """Levels per side the node reads, itself and through its input."""


MetaRule = Callable[[Mapping[str, ParamValue], "NodeMeta | None"], NodeMeta]


@dataclass(frozen=True)
class Family:
    """A family of the catalogue.

    trigger
        What evaluates a node: "book" (every applied book message), "trade" (every trade
        row), or "input" (every update of its input node).
    inputs
        The input dtypes accepted (empty: the family takes no input).
    """

    name: str
    trigger: Trigger
    params: Mapping[str, Param]
    meta: MetaRule
    describe: Callable[[Mapping[str, ParamValue], str | None], str]
    inputs: tuple[Dtype, ...] = ()
    input_family: str | None = None
    """The family the input node must be of (book_regime reads an EMA of the spread)."""
    input_units: tuple[str, ...] = ()
    """The units the input node must be in (empty: any)."""
    doc: str = field(default="", compare=False)


def _fixed(
    dtype: Dtype,
    scale: int,
    unit: str,
    flags: int,
    kind: str,
    *,
    warmup: int = 1,
    depth: int | str = 1,
) -> MetaRule:
    """A book or trade family's metadata; `depth` a number or the name of a parameter."""

    def rule(params: Mapping[str, ParamValue], _inp: NodeMeta | None) -> NodeMeta:
        levels = int(params[depth]) if isinstance(depth, str) else depth
        return NodeMeta(dtype, scale, unit, warmup, flags, kind, levels)

    return rule


def _transform(
    dtype: Dtype | None,
    *,
    unit: str | None = None,
    warmup: Callable[[Mapping[str, ParamValue], int], int] = lambda _p, w: w,
    int_flags: bool = False,
) -> MetaRule:
    """A transform's metadata from its input's: same dtype and scale for integer results
    (`dtype` None), real units (scale 0) for f64 results."""

    def rule(params: Mapping[str, ParamValue], inp: NodeMeta | None) -> NodeMeta:
        assert inp is not None  # the plan checks that a transform has an input first
        out: Dtype = inp.dtype if dtype is None else dtype
        scale = inp.scale if out == "i64" else 0
        flags = FLAG_ROLLING | ((inp.flags & _INT) if int_flags else 0)
        return NodeMeta(
            out,
            scale,
            inp.unit if unit is None else unit,
            warmup(params, inp.warmup),
            flags,
            inp.source_kind,
            inp.depth,
        )

    return rule


def _desc(text: str) -> Callable[[Mapping[str, ParamValue], str | None], str]:
    def describe(params: Mapping[str, ParamValue], inp: str | None) -> str:
        return text.format(input=inp, **params)

    return describe


_LEVELS = Param(int, 1, MAX_LEVELS, doc="levels per side, best first")
_WINDOW_NS = Param(int, 1, MAX_WINDOW_NS, doc="time window on source time (ns)")
_NUMERIC: tuple[Dtype, ...] = ("i64", "f64")
_BOOK = "book"
_TRADE = "trade"


def _families() -> dict[str, Family]:
    fams = [
        # ----- book: evaluated on every applied book message ---------------------------
        Family("bid_px", "book", {}, _fixed("i64", 1, "price", _INT, _BOOK),
               _desc("best bid price B_1 (ticks)")),
        Family("ask_px", "book", {}, _fixed("i64", 1, "price", _INT, _BOOK),
               _desc("best ask price A_1 (ticks)")),
        Family("bid_qty", "book", {}, _fixed("i64", 1, "size", _INT, _BOOK),
               _desc("best bid size QB_1 (lots)")),
        Family("ask_qty", "book", {}, _fixed("i64", 1, "size", _INT, _BOOK),
               _desc("best ask size QA_1 (lots)")),
        Family("spread", "book", {}, _fixed("i64", 1, "price", _INT, _BOOK),
               _desc("A_1 - B_1 (ticks)")),
        Family("spread_bps", "book", {}, _fixed("f64", 0, "bps", 0, _BOOK),
               _desc("(A_1 - B_1) / mid in basis points")),
        Family("mid", "book", {}, _fixed("i64", 2, "price", _INT, _BOOK),
               _desc("(A_1 + B_1) / 2 exactly, in half ticks")),
        Family("microprice", "book", {}, _fixed("f64", 0, "price", 0, _BOOK),
               _desc("(B_1 QA_1 + A_1 QB_1) / (QB_1 + QA_1)")),
        Family("depth_imbalance", "book", {"levels": _LEVELS},
               _fixed("f64", 0, "ratio", 0, _BOOK, depth="levels"),
               _desc("size imbalance of the best {levels} levels")),
        Family("weighted_depth_imbalance", "book",
               {"levels": _LEVELS, "decay": Param(float, 0.0, 1.0, lo_open=True,
                                                  doc="weight of level m is decay^m")},
               _fixed("f64", 0, "ratio", 0, _BOOK, depth="levels"),
               _desc("size imbalance of the best {levels} levels, weights {decay}^m")),
        Family("weighted_mid", "book", {"levels": _LEVELS},
               _fixed("f64", 0, "price", 0, _BOOK, depth="levels"),
               _desc("microprice over the best {levels} level pairs")),
        Family("book_slope", "book", {"levels": _LEVELS},
               _fixed("f64", 0, "size_per_price", 0, _BOOK, depth="levels"),
               _desc("size of the best {levels} levels per unit of price between them")),
        Family("ofi", "book", {"levels": _LEVELS},
               _fixed("i64", 1, "size", _INT | FLAG_ROLLING, _BOOK, warmup=2, depth="levels"),
               _desc("order-flow imbalance, levels 1..{levels} (lots)")),
        Family("book_regime", "book",
               {"wide_spread_factor": Param(float, 0.0, 1e6, lo_open=True,
                                            doc="wide when spread > factor x the input EMA")},
               _fixed("u32", 0, "bits", FLAG_EXACT, _BOOK),
               _desc("bit 0 crossed/locked, bit 1 one side empty, bit 2 spread > "
                     "{wide_spread_factor} x {input}"),
               inputs=("f64",), input_family="ema"),
        # ----- trade: evaluated on every trade row ------------------------------------
        Family("last_trade_px", "trade", {}, _fixed("i64", 1, "price", _INT, _TRADE, depth=0),
               _desc("price of the last trade (ticks)")),
        Family("trade_signed_qty", "trade", {},
               _fixed("i64", 1, "size", _INT, _TRADE, depth=0),
               _desc("signed size of the last trade (lots)")),
        Family("trade_flow_imbalance", "trade", {"window_ns": _WINDOW_NS},
               _fixed("f64", 0, "ratio", FLAG_ROLLING, _TRADE, depth=0),
               _desc("(buy - sell) / (buy + sell) trade size over {window_ns} ns")),
        Family("vwap", "trade", {"window_ns": _WINDOW_NS},
               _fixed("f64", 0, "price", FLAG_ROLLING, _TRADE, depth=0),
               _desc("volume-weighted trade price over {window_ns} ns")),
        # ----- transforms: evaluated on every update of their input -------------------
        Family("cum", "input", {}, _transform(None, int_flags=True),
               _desc("sum of {input} since reset"), inputs=("i64",)),
        Family("diff", "input", {},
               _transform(None, warmup=lambda _p, w: w + 1, int_flags=True),
               _desc("change of {input} between its updates"), inputs=("i64",)),
        Family("ema", "input", {"span": Param(int, 1, MAX_SPAN)},
               _transform("f64", warmup=lambda p, w: max(int(p["span"]), w)),
               _desc("EMA span {span} of {input}"), inputs=_NUMERIC),
        Family("decayed_sum", "input", {"half_life_ns": _WINDOW_NS}, _transform("f64"),
               _desc("{input} decayed, half-life {half_life_ns} ns"), inputs=_NUMERIC),
        Family("rolling_std", "input", {"window": Param(int, 1, MAX_WINDOW)},
               _transform("f64", warmup=lambda p, w: w + int(p["window"]) - 1),
               _desc("std of the last {window} values of {input}"), inputs=_NUMERIC),
        Family("zscore", "input", {"window": Param(int, 1, MAX_WINDOW)},
               _transform("f64", unit="zscore", warmup=lambda p, w: w + int(p["window"]) - 1),
               _desc("z-score of {input} over its last {window} values"), inputs=_NUMERIC),
        Family("rolling_mean_time", "input", {"window_ns": _WINDOW_NS}, _transform("f64"),
               _desc("mean of {input} over {window_ns} ns"), inputs=_NUMERIC),
        Family("rolling_std_time", "input", {"window_ns": _WINDOW_NS}, _transform("f64"),
               _desc("std of {input} over {window_ns} ns"), inputs=_NUMERIC),
        Family("rolling_sum_time", "input", {"window_ns": _WINDOW_NS}, _transform("f64"),
               _desc("sum of {input} over {window_ns} ns"), inputs=_NUMERIC),
        Family("realized_vol", "input", {"window_ns": _WINDOW_NS},
               _transform("f64", unit="ratio", warmup=lambda _p, w: w + 1),
               _desc("sqrt of the summed squared log returns of {input} over {window_ns} ns"),
               inputs=_NUMERIC, input_units=("price",)),
    ]  # fmt: skip
    return {f.name: f for f in fams}


CATALOGUE: Mapping[str, Family] = _families()
"""Every family by name."""


def family(name: str) -> Family:
    """The catalogue entry `name` (KeyError if there is none)."""
    return CATALOGUE[name]
