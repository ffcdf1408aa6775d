"""Checkpoints of an engine computing a declared feature set (the generic plan evaluator).

The same contract as `featureplane.engine.state` (export, import into a fresh engine, the
frames that follow are those the exporting engine would have produced), in a format of its
own, because the feature state is the plan's node states rather than lob_shared_v1's fields:

- `format`: `PLAN_STATE_FORMAT`;
- `feature_set`: the set's `to_json()`, which carries the plan (the declaration), so a
  checkpoint says what it is a state of and is refused by an engine of another plan;
- `counters`, and per symbol: name and grid, `book`, `sequencing` and `frame` as in
  `EngineState`, and `features`: `PlanState.export()` (frame counts, the previous top levels,
  every node's state in plan order).

Floats go through JSON exactly (a NaN other than `float("nan")` by its bits, as in
`EngineState`).

Both kernels export and import this form: the reference (`export_plan_state`,
`import_plan_state`) and the Rust plan evaluator (`_core.PlanEngine.export_state` gives the
counters and symbols; `engine.rust` adds the rest). A state exported by either imports into
the other, and the frames after it are equal bit for bit. Import checks everything first
(`checked_plan_state`, then per node `plan_node_state.check_node`); the Rust kernel checks
the same again, so a state is refused alike by both, and a refused one changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from featureplane.book.lob import COUNTER_NAMES
from featureplane.book.sequencing import SequenceState
from featureplane.engine.plan_node_state import check_node
from featureplane.engine.state import (
    _COUNT,
    _bool,
    _fields,
    _frame,
    _grid,
    _int,
    _levels,
    _list,
    _sequencing,
    _str,
)
from featureplane.errors import InvalidStateError, SchemaMismatchError
from featureplane.features.plan import FeaturePlan, feature_set_from_json
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

__all__ = [
    "PLAN_STATE_FORMAT",
    "PlanEngineState",
    "checked_plan_state",
    "export_plan_state",
    "import_plan_state",
    "kernel_part",
]

PLAN_STATE_FORMAT = "featureplane.plan_state.v1"


@dataclass(eq=False)
class PlanEngineState:
    """A checkpoint of an engine of a declared set; compare with `==` (exact)."""

    feature_set: dict[str, Any]
    counters: dict[str, int]
    symbols: list[dict[str, Any]]
    format: str = PLAN_STATE_FORMAT

    @property
    def feature_set_id(self) -> str:
        return str(self.feature_set["feature_set_id"])

    @property
    def schema_hash(self) -> str:
        return str(self.feature_set["schema_hash"])

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready nested dicts and lists (a copy)."""
        # Through json: a copy, tuples as lists, as a reader of the text would get it
        # (`dataclasses.asdict` deep-copies every leaf first, which costs more than json).
        out: dict[str, Any] = json.loads(json.dumps(self._fields()))
        return out

    def _fields(self) -> dict[str, Any]:
        return {
            "feature_set": self.feature_set,
            "counters": self.counters,
            "symbols": self.symbols,
            "format": self.format,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> PlanEngineState:
        """A state from `to_dict()`'s form; the carried feature set is checked against its
        plan and hash (`features.plan.feature_set_from_json`).

        Raises
        ------
        InvalidStateError
            Another format or a malformed state.
        SchemaMismatchError
            Metadata that does not follow from the carried plan.
        """
        if not isinstance(obj, Mapping) or obj.get("format") != PLAN_STATE_FORMAT:
            got = obj.get("format") if isinstance(obj, Mapping) else type(obj).__name__
            raise InvalidStateError(f"plan state: expected format {PLAN_STATE_FORMAT}, got {got!r}")
        keys = sorted(str(k) for k in obj)
        if keys != ["counters", "feature_set", "format", "symbols"]:
            raise InvalidStateError(
                f"plan state: expected the keys counters, feature_set, format, symbols; got "
                f"{', '.join(keys)}"
            )
        try:
            feature_set_from_json(obj["feature_set"])
            state = cls(dict(obj["feature_set"]), dict(obj["counters"]), list(obj["symbols"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SchemaMismatchError):
                raise
            raise InvalidStateError(f"plan state: malformed: {exc!r}") from None
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlanEngineState):
            return NotImplemented
        # The texts are exact: floats in their shortest exact form, NaNs other than
        # float("nan") by their bits (the exports write them so).
        return json.dumps(self._fields()) == json.dumps(other._fields())


def export_plan_state(kernel: Any) -> PlanEngineState:
    """The checkpoint of a reference kernel (`engine.python.ReferenceKernel`, untyped here so
    this module, which the `Kernel` protocol names, imports no kernel) running the generic
    evaluator."""
    from featureplane.features.families import PlanState

    symbols = []
    for sid, spec in enumerate(kernel.symbols.specs):
        book = kernel.lob._book_of(sid)
        sym = kernel._symbol(sid)
        assert isinstance(sym.state, PlanState)
        seq = book.seq
        symbols.append(
            {
                "symbol": spec.symbol,
                "tick_size": str(spec.tick_size),
                "lot_size": str(spec.lot_size),
                "book": {
                    "bids": [list(x) for x in book.book.bids.levels()],
                    "asks": [list(x) for x in book.book.asks.levels()],
                },
                "sequencing": {
                    "book_seq": seq.book_seq,
                    "trade_seq": seq.trade_seq,
                    "after_snapshot": seq.after_snapshot,
                    "last_source_ts_ns": seq.last_source_ts_ns,
                    "untrusted": book.untrusted,
                    "reset_pending": book.reset_pending,
                    "out_of_order_pending": book.out_of_order_pending,
                    "messages_applied": book.messages_applied,
                },
                "features": sym.state.export(),
                "frame": {
                    "quality_flags": sym.quality_flags,
                    "warmup_ready_mask": sym.ready_mask,
                    "seq": sym.seq,
                    "source_ts_ns": sym.source_ts_ns,
                    "local_ts_ns": sym.local_ts_ns,
                },
            }
        )
    return PlanEngineState(kernel.feature_set.to_json(), dict(kernel.lob.counters), symbols)


def checked_plan_state(
    state: PlanEngineState | Mapping[str, Any],
    feature_set: FeatureSet,
    plan: FeaturePlan,
    symbols: SymbolTable,
) -> dict[str, Any]:
    """A checked, normalized copy of `state` for an engine of `feature_set` (compiled to
    `plan`) over `symbols`: `{"counters", "symbols": [{"symbol", "tick_size", "lot_size",
    "book", "sequencing", "features", "frame"}]}` with plain ints, floats (NaNs as floats)
    and lists. Both kernels import this form, so both refuse the same states.

    Raises
    ------
    SchemaMismatchError
        A state of another feature set or plan.
    InvalidStateError
        Another format, a key missing or unexpected, a value of the wrong type or beyond what
        valid rows produce (`plan_node_state`), or symbols that do not match the table.
    """
    saved = state if isinstance(state, PlanEngineState) else PlanEngineState.from_dict(state)
    if (saved.feature_set_id, saved.schema_hash) != (
        feature_set.feature_set_id,
        feature_set.schema_hash,
    ):
        raise SchemaMismatchError(
            f"the state is of feature set {saved.feature_set_id!r} (schema "
            f"{saved.schema_hash[:16]}), the engine computes {feature_set.feature_set_id!r} "
            f"(schema {feature_set.schema_hash[:16]})"
        )
    try:
        return _checked(saved, plan, symbols)
    except InvalidStateError as exc:
        # The shared field checks of `engine.state` name the engine state; this is a plan's.
        raise InvalidStateError(str(exc).replace("engine state: ", "plan state: ", 1)) from None


def _checked(saved: PlanEngineState, plan: FeaturePlan, symbols: SymbolTable) -> dict[str, Any]:
    from featureplane.features.families import PlanState

    counters = _fields(saved.counters, "counters", COUNTER_NAMES)
    out_counters = {n: _int(counters[n], f"counters.{n}", _COUNT) for n in COUNTER_NAMES}
    items = _list(saved.symbols, "symbols")
    if len(items) > len(symbols):
        raise InvalidStateError(
            f"plan state: symbols: {len(items)} symbols, the engine's table holds {len(symbols)}"
        )
    depth = max(plan.depth, 1)
    out_symbols = []
    for sid, item in enumerate(items):
        at = f"symbols[{sid}]"
        s = _fields(item, at, _SYMBOL_KEYS)
        spec = symbols.spec_of(sid)
        name = _str(s["symbol"], f"{at}.symbol")
        tick, lot = _grid(s["tick_size"], f"{at}.tick_size"), _grid(s["lot_size"], f"{at}.lot_size")
        if (name, Decimal(tick), Decimal(lot)) != (spec.symbol, spec.tick_size, spec.lot_size):
            raise InvalidStateError(
                f"plan state: {at}: {name} (tick {tick}, lot {lot}), but id {sid} of the "
                f"engine is {spec.symbol} (tick {spec.tick_size}, lot {spec.lot_size})"
            )
        b = _fields(s["book"], f"{at}.book", ("bids", "asks"))
        f = _fields(s["features"], f"{at}.features", _FEATURE_KEYS)
        fp = f"{at}.features"
        prev_bids = _levels(f["prev_bids"], f"{fp}.prev_bids", True, depth)
        prev_asks = _levels(f["prev_asks"], f"{fp}.prev_asks", False, depth)
        has_bid = _bool(f["has_bid"], f"{fp}.has_bid")
        has_ask = _bool(f["has_ask"], f"{fp}.has_ask")
        # Both follow from the last book message: a side is present when it has a level.
        if has_bid != bool(prev_bids) or has_ask != bool(prev_asks):
            raise InvalidStateError(
                f"plan state: {fp}: has_bid / has_ask disagree with prev_bids / prev_asks"
            )
        nodes = _list(f["nodes"], f"{fp}.nodes")
        fresh = PlanState(plan, spec.tick_f64, spec.lot_f64).nodes
        if len(nodes) != len(fresh):
            raise InvalidStateError(
                f"plan state: {fp}.nodes: {len(nodes)} nodes, the plan has {len(fresh)}"
            )
        out_symbols.append(
            {
                "symbol": name,
                "tick_size": tick,
                "lot_size": lot,
                "book": {
                    "bids": [list(x) for x in _levels(b["bids"], f"{at}.book.bids", True)],
                    "asks": [list(x) for x in _levels(b["asks"], f"{at}.book.asks", False)],
                },
                "sequencing": asdict(_sequencing(s["sequencing"], f"{at}.sequencing", _COUNT)),
                "features": {
                    "n_book": _int(f["n_book"], f"{fp}.n_book", _COUNT),
                    "n_trade": _int(f["n_trade"], f"{fp}.n_trade", _COUNT),
                    "has_bid": has_bid,
                    "has_ask": has_ask,
                    "prev_bids": [list(x) for x in prev_bids],
                    "prev_asks": [list(x) for x in prev_asks],
                    "nodes": [
                        check_node(x, node, f"{fp}.nodes[{i}]")
                        for i, (x, node) in enumerate(zip(nodes, fresh, strict=True))
                    ],
                },
                "frame": asdict(_frame(s["frame"], f"{at}.frame")),
            }
        )
    return {"counters": out_counters, "symbols": out_symbols}


_SYMBOL_KEYS = ("symbol", "tick_size", "lot_size", "book", "sequencing", "features", "frame")
_FEATURE_KEYS = ("n_book", "n_trade", "has_bid", "has_ask", "prev_bids", "prev_asks", "nodes")


def kernel_part(checked: dict[str, Any]) -> dict[str, Any]:
    """What a kernel imports of a checked state: the counters, and per symbol its book,
    sequencing, features and frame (the names and grids are the engine's own)."""
    keep = ("book", "sequencing", "features", "frame")
    return {
        "counters": checked["counters"],
        "symbols": [{k: s[k] for k in keep} for s in checked["symbols"]],
    }


def import_plan_state(kernel: Any, state: Any) -> None:
    """Restore a checkpoint made by either backend (a `PlanEngineState` or its `to_dict()`
    form) into a reference kernel running the generic evaluator.

    Raises
    ------
    SchemaMismatchError
        A state of another feature set or plan.
    InvalidStateError
        See `checked_plan_state`; the kernel is left unchanged.
    """
    from featureplane.features.families import PlanState

    assert kernel.plan is not None
    checked = checked_plan_state(state, kernel.feature_set, kernel.plan, kernel.symbols)
    # Checked: nothing below can fail, so the kernel never holds half a state.
    kernel.lob.counters.update(checked["counters"])
    for sid, spec in enumerate(kernel.symbols.specs):
        book = kernel.lob._book_of(sid)
        kernel._symbol(sid)
        sym = kernel._new_symbol(spec.tick_f64, spec.lot_f64, spec.depth)
        kernel._features[sid] = sym
        book.reset()
        book.messages_applied = 0
        if sid >= len(checked["symbols"]):
            continue
        s = checked["symbols"][sid]
        for px, qty in reversed(s["book"]["bids"]):
            book.book.bids.set(px, qty)
        for px, qty in s["book"]["asks"]:
            book.book.asks.set(px, qty)
        q = s["sequencing"]
        book.seq = SequenceState(
            q["book_seq"], q["trade_seq"], q["after_snapshot"], q["last_source_ts_ns"]
        )
        book.untrusted = q["untrusted"]
        book.reset_pending = q["reset_pending"]
        book.out_of_order_pending = q["out_of_order_pending"]
        book.messages_applied = q["messages_applied"]
        st = PlanState(kernel.plan, spec.tick_f64, spec.lot_f64)
        st.restore(s["features"])
        sym.state = st
        f = s["frame"]
        sym.quality_flags = f["quality_flags"]
        sym.ready_mask = f["warmup_ready_mask"]
        sym.seq = f["seq"]
        sym.source_ts_ns = f["source_ts_ns"]
        sym.local_ts_ns = f["local_ts_ns"]
