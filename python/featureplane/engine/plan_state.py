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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from featureplane.book.sequencing import SequenceState
from featureplane.engine.state import _COUNT, _frame, _levels, _sequencing
from featureplane.errors import InvalidStateError, SchemaMismatchError
from featureplane.features.plan import feature_set_from_json

__all__ = ["PLAN_STATE_FORMAT", "PlanEngineState"]

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
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out

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
        try:
            feature_set_from_json(obj["feature_set"])
            state = cls(dict(obj["feature_set"]), dict(obj["counters"]), list(obj["symbols"]))
        except (KeyError, TypeError) as exc:
            raise InvalidStateError(f"plan state: malformed: {exc!r}") from None
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlanEngineState):
            return NotImplemented
        return repr(self.to_dict()) == repr(other.to_dict())


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


def import_plan_state(kernel: Any, state: Any) -> None:
    """Restore a checkpoint made by `export_plan_state` (or its `to_dict()` form).

    Raises
    ------
    SchemaMismatchError
        A state of another feature set or plan.
    InvalidStateError
        Another format, a malformed field, or other symbols; the kernel is left unchanged.
    """
    from featureplane.features.families import PlanState

    saved = state if isinstance(state, PlanEngineState) else PlanEngineState.from_dict(state)
    fs = kernel.feature_set
    if (saved.feature_set_id, saved.schema_hash) != (fs.feature_set_id, fs.schema_hash):
        raise SchemaMismatchError(
            f"the state is of feature set {saved.feature_set_id!r} (schema "
            f"{saved.schema_hash[:16]}), the engine computes {fs.feature_set_id!r} "
            f"(schema {fs.schema_hash[:16]})"
        )
    if len(saved.symbols) > len(kernel.symbols):
        raise InvalidStateError(
            f"plan state: {len(saved.symbols)} symbols, the engine's table holds "
            f"{len(kernel.symbols)}"
        )
    assert kernel.plan is not None
    # Build everything first: a malformed field fails here, before the kernel changes.
    staged = []
    try:
        for sid, s in enumerate(saved.symbols):
            spec = kernel.symbols.spec_of(sid)
            if (s["symbol"], Decimal(s["tick_size"]), Decimal(s["lot_size"])) != (
                spec.symbol,
                spec.tick_size,
                spec.lot_size,
            ):
                raise InvalidStateError(
                    f"plan state: symbols[{sid}] is {s['symbol']}, the engine's id {sid} is "
                    f"{spec.symbol} (or another grid)"
                )
            at = f"symbols[{sid}]"
            _levels(s["book"]["bids"], f"{at}.book.bids", True)
            _levels(s["book"]["asks"], f"{at}.book.asks", False)
            _sequencing(s["sequencing"], f"{at}.sequencing", _COUNT)
            _frame(s["frame"], f"{at}.frame")
            st = PlanState(kernel.plan, spec.tick_f64, spec.lot_f64)
            st.restore(s["features"])
            staged.append((s, st))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        if isinstance(exc, InvalidStateError):
            raise
        raise InvalidStateError(f"plan state: malformed: {exc!r}") from None

    kernel.lob.counters.update(saved.counters)
    for sid, spec in enumerate(kernel.symbols.specs):
        book = kernel.lob._book_of(sid)
        kernel._symbol(sid)
        sym = kernel._new_symbol(spec.tick_f64, spec.lot_f64, spec.depth)
        kernel._features[sid] = sym
        book.reset()
        book.messages_applied = 0
        if sid >= len(staged):
            continue
        s, st = staged[sid]
        for px, qty in reversed(s["book"]["bids"]):
            book.book.bids.set(int(px), int(qty))
        for px, qty in s["book"]["asks"]:
            book.book.asks.set(int(px), int(qty))
        q = s["sequencing"]
        book.seq = SequenceState(
            q["book_seq"], q["trade_seq"], q["after_snapshot"], q["last_source_ts_ns"]
        )
        book.untrusted = q["untrusted"]
        book.reset_pending = q["reset_pending"]
        book.out_of_order_pending = q["out_of_order_pending"]
        book.messages_applied = q["messages_applied"]
        sym.state = st
        f = s["frame"]
        sym.quality_flags = f["quality_flags"]
        sym.ready_mask = f["warmup_ready_mask"]
        sym.seq = f["seq"]
        sym.source_ts_ns = f["source_ts_ns"]
        sym.local_ts_ns = f["local_ts_ns"]
