"""Engine state: a versioned, backend-neutral snapshot of everything a `FeatureEngine` holds.

`FeatureEngine.export_state()` returns an `EngineState`; `FeatureEngine.import_state()` puts one
into an engine of either backend, which then emits exactly the frames the exporting engine
would have (headers, masks, flags, values bit for bit). `FeatureEngine.set_backend()` moves a
live engine between kernels this way, and a live process checkpoints and restores with it
(docs/backends.md).

A state holds, per symbol id in order:

- `book`: every level of both sides, best first, as (px ticks, qty lots);
- `sequencing`: the ordering state of `docs/features/ordering.md` (each channel's last
  sequence, whether the last book message was a snapshot, the last source time, the untrusted /
  reset-pending / out-of-order-pending flags, applied messages);
- `features`: the lob_shared_v1 state (`LobSharedV1State`): values in schema order, frame
  counts, the previous top-5 levels, cumulative OFI and signed size, each EMA's value and count,
  each decayed sum's value, last time and count, the mid and mid-change windows oldest first
  (their lengths follow from `n_mids`), `n_mids`;
- `frame`: the header of the symbol's last frame (what the pull API serves);

and, for the engine, its counters, the format tag (`ENGINE_STATE_FORMAT`), the feature set id
and its schema hash. A state of another format or feature set is refused
(`InvalidStateError`, `SchemaMismatchError`), as is a malformed one, before anything changes.

Everything is plain Python data (str, int, float, bool, None, lists, tuples), so a state
pickles, and `to_dict()` / `from_dict()` go through the standard library's `json` exactly:
every float is written in its shortest exact form, and a NaN other than Python's own
`float("nan")` (a negative NaN, as x86 arithmetic makes, or another payload) as the string
`"f64:<16 hex digits of its bits>"`, because JSON's `NaN` reads back as that one NaN and the
next frames would differ in the NaN's sign. orjson does not fit: it writes NaN as null.

Bounds: every count is at most `MAX_COUNT` (2^63 - 1, so no count can wrap in either backend),
the cumulative sums lie in `[CUM_LOW, CUM_HIGH]` (one past i64 on each side: saturated), the mid
window in `+-2 * MAX_ABS_UNITS` and the mid-change window in `+-4 * MAX_ABS_UNITS` (what valid
rows can produce). The Rust core checks the same bounds, so both backends accept the same states.

Not part of a state: the engine's `EngineConfig`, its subscribers, and the symbol table (the
importing engine brings its own; it must start with the state's symbols, on the same grids).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import numpy as np

from featureplane.book.lob import COUNTER_NAMES
from featureplane.errors import InvalidStateError, SchemaMismatchError
from featureplane.features.lob_shared_v1 import DEPTH, MID_RET_WINDOW, MID_Z_WINDOW
from featureplane.features.rolling import CUM_HIGH, CUM_LOW
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet, get_feature_set

__all__ = [
    "ENGINE_STATE_FORMAT",
    "MAX_COUNT",
    "NAN_TAG",
    "BookState",
    "DecayedSumState",
    "EmaState",
    "EngineState",
    "FeatureState",
    "FrameState",
    "InvalidStateError",
    "SequencingState",
    "SymbolState",
    "checked_state",
    "kernel_state",
]

ENGINE_STATE_FORMAT = "featureplane.engine_state.v1"

Level = tuple[int, int]

MAX_COUNT = (1 << 63) - 1
"""Largest count a state may hold (messages, frames, EMA steps...): a count at 2^64 - 1 would
wrap on its next step in the Rust kernel and not in Python, and no run reaches 2^63."""
NAN_TAG = "f64:"
"""Prefix of a NaN written by its bits in `to_dict()` (see the module docstring)."""

_I64 = (-(1 << 63), (1 << 63) - 1)
_U32 = (0, (1 << 32) - 1)
_U64 = (0, (1 << 64) - 1)
_COUNT = (0, MAX_COUNT)
_CUM = (CUM_LOW, CUM_HIGH)
_MAX_ABS_UNITS = 1 << 48  # events.MAX_ABS_UNITS: no valid row puts more in a book
_MIDS = (-2 * _MAX_ABS_UNITS, 2 * _MAX_ABS_UNITS)  # mid = A + B half ticks
_MID_CHANGES = (-4 * _MAX_ABS_UNITS, 4 * _MAX_ABS_UNITS)
_CANONICAL_NAN = struct.unpack("<Q", struct.pack("<d", math.nan))[0]


def _f64_out(x: float) -> float | str:
    """A float as `to_dict()` writes it: itself, or a NaN JSON cannot carry as its bits."""
    if x != x:
        bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
        if bits != _CANONICAL_NAN:
            return f"{NAN_TAG}{bits:016x}"
    return x


def _f64_plain(x: float) -> float:
    return x


# ----- the state tree ----------------------------------------------------------------------


@dataclass
class EmaState:
    value: float
    count: int


@dataclass
class DecayedSumState:
    value: float
    last_ts_ns: int
    count: int


@dataclass
class BookState:
    """Every level of each side, best first, as (px ticks, qty lots)."""

    bids: list[Level]
    asks: list[Level]


@dataclass
class SequencingState:
    book_seq: int
    trade_seq: int
    after_snapshot: bool
    last_source_ts_ns: int | None
    untrusted: bool
    reset_pending: bool
    out_of_order_pending: bool
    messages_applied: int


@dataclass
class FeatureState:
    """The lob_shared_v1 state of one symbol (the fields of `LobSharedV1State`)."""

    values: list[int | float]
    n_book: int
    n_trade: int
    has_bid: bool
    has_ask: bool
    prev_bids: list[Level]
    prev_asks: list[Level]
    ofi_cum: int
    ofi_ema: EmaState
    ofi_decay: DecayedSumState
    spread_ema: EmaState
    imbalance_ema: EmaState
    mids: list[int]
    """The last `MID_Z_WINDOW` mids (half ticks), oldest first."""
    mid_changes: list[int]
    """The last `MID_RET_WINDOW` mid changes, oldest first."""
    n_mids: int
    signed_qty_cum: int
    tfi: DecayedSumState


@dataclass
class FrameState:
    """The header of a symbol's last frame."""

    quality_flags: int
    warmup_ready_mask: int
    seq: int
    source_ts_ns: int
    local_ts_ns: int


@dataclass
class SymbolState:
    symbol: str
    tick_size: str
    lot_size: str
    book: BookState
    sequencing: SequencingState
    features: FeatureState
    frame: FrameState


@dataclass(eq=False, repr=False)
class EngineState:
    """A snapshot of a `FeatureEngine` (see the module docstring); compare with `==`.

    `==` is exact: floats bit for bit, NaN equal to a NaN of the same bits, -0.0 unequal to 0.0.
    """

    feature_set_id: str
    schema_hash: str
    counters: dict[str, int]
    symbols: list[SymbolState]
    format: str = ENGINE_STATE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        """The state as nested dicts and lists (a copy; levels as (px, qty) tuples), ready for
        `json.dump`: a NaN other than `float("nan")` is written as `"f64:<bits>"`, so the
        round trip through JSON keeps every float bit for bit."""
        return self._as_dict(_f64_out)

    def _as_dict(self, f64: Callable[[float], float | str] = _f64_plain) -> dict[str, Any]:
        """`to_dict()` with every float through `f64` (as is, for the Rust kernel's import)."""
        return {
            "feature_set_id": self.feature_set_id,
            "schema_hash": self.schema_hash,
            "counters": dict(self.counters),
            "symbols": [_symbol_dict(s, f64) for s in self.symbols],
            "format": self.format,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> EngineState:
        """A state from `to_dict()`'s form (e.g. read back from JSON), checked field by field.

        Raises
        ------
        InvalidStateError
            Another format, or a field missing, of the wrong type or out of range.
        SchemaMismatchError
            A feature set that is not registered, or whose schema hash differs.
        """
        if not isinstance(obj, Mapping):
            _fail("state", f"expected a mapping, got {type(obj).__name__}")
        _check_format(obj)
        feature_set = get_feature_set(_str(obj.get("feature_set_id"), "feature_set_id"))
        return _parse(obj, feature_set)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EngineState):
            return NotImplemented
        return _exact(self) == _exact(other)

    def __repr__(self) -> str:
        levels = sum(len(s.book.bids) + len(s.book.asks) for s in self.symbols)
        return (
            f"EngineState({self.format}, {self.feature_set_id}, "
            f"symbols={[s.symbol for s in self.symbols]}, levels={levels}, "
            f"messages={self.counters.get('messages')})"
        )


def _pairs(levels: Sequence[Sequence[int]]) -> list[Level]:
    return [(px, qty) for px, qty in levels]


def _symbol_dict(s: SymbolState, f64: Callable[[float], float | str]) -> dict[str, Any]:
    # By hand: dataclasses.asdict deep-copies every leaf, which costs ~10x on a deep book.
    f = s.features

    def ema(e: EmaState) -> dict[str, Any]:
        return {"value": f64(e.value), "count": e.count}

    def decayed(d: DecayedSumState) -> dict[str, Any]:
        return {"value": f64(d.value), "last_ts_ns": d.last_ts_ns, "count": d.count}

    return {
        "symbol": s.symbol,
        "tick_size": s.tick_size,
        "lot_size": s.lot_size,
        "book": {"bids": _pairs(s.book.bids), "asks": _pairs(s.book.asks)},
        "sequencing": dict(vars(s.sequencing)),
        "features": {
            "values": [f64(v) if isinstance(v, float) else v for v in f.values],
            "n_book": f.n_book,
            "n_trade": f.n_trade,
            "has_bid": f.has_bid,
            "has_ask": f.has_ask,
            "prev_bids": _pairs(f.prev_bids),
            "prev_asks": _pairs(f.prev_asks),
            "ofi_cum": f.ofi_cum,
            "ofi_ema": ema(f.ofi_ema),
            "ofi_decay": decayed(f.ofi_decay),
            "spread_ema": ema(f.spread_ema),
            "imbalance_ema": ema(f.imbalance_ema),
            "mids": list(f.mids),
            "mid_changes": list(f.mid_changes),
            "n_mids": f.n_mids,
            "signed_qty_cum": f.signed_qty_cum,
            "tfi": decayed(f.tfi),
        },
        "frame": dict(vars(s.frame)),
    }


def _exact(state: EngineState) -> str:
    """A text that two states share only if they are equal, floats bit for bit.

    `repr` of a float is its shortest exact form (-0.0 and 0.0 differ), `to_dict()` writes a
    NaN other than `float("nan")` by its bits, and `repr` tells 1 from 1.0 and True; states hold
    Python scalars (exports and `from_dict` make them), so this is exact and far cheaper than a
    walk over every level.
    """
    d = state.to_dict()
    d["counters"] = sorted(d["counters"].items())
    return repr(d)


def checked_state(
    state: EngineState | Mapping[str, Any], feature_set: FeatureSet, symbols: SymbolTable
) -> EngineState:
    """A checked, normalized copy of `state` for an engine of `feature_set` over `symbols`.

    The state's symbols must be the first ids of `symbols`, by name and grid; the table may
    hold more (they start fresh on import).

    Raises
    ------
    SchemaMismatchError
        The state is of another feature set or schema hash.
    InvalidStateError
        Another format, a malformed field, or symbols that do not match the table.
    """
    obj = state.to_dict() if isinstance(state, EngineState) else state
    if not isinstance(obj, Mapping):
        _fail("state", f"expected an EngineState or a mapping, got {type(obj).__name__}")
    _check_format(obj)
    saved = _parse(obj, feature_set)
    if len(saved.symbols) > len(symbols):
        _fail("symbols", f"{len(saved.symbols)} symbols, the engine's table holds {len(symbols)}")
    for i, sym in enumerate(saved.symbols):
        spec = symbols.spec_of(i)
        if (sym.symbol, Decimal(sym.tick_size), Decimal(sym.lot_size)) != (
            spec.symbol,
            spec.tick_size,
            spec.lot_size,
        ):
            _fail(
                f"symbols[{i}]",
                f"{sym.symbol} (tick {sym.tick_size}, lot {sym.lot_size}), but id {i} of the "
                f"engine is {spec.symbol} (tick {spec.tick_size}, lot {spec.lot_size})",
            )
    return saved


def kernel_state(
    raw: Mapping[str, Any], feature_set: FeatureSet, symbols: SymbolTable
) -> EngineState:
    """An `EngineState` from a kernel's `{"counters", "symbols": [{"book", "sequencing",
    "features", "frame"}]}` (what `_core.Engine.export_state` returns): adds the format, the
    feature set and each symbol's name and grid, and checks the rest."""
    specs = symbols.specs
    items = raw["symbols"]
    full = {
        "format": ENGINE_STATE_FORMAT,
        "feature_set_id": feature_set.feature_set_id,
        "schema_hash": feature_set.schema_hash,
        "counters": raw["counters"],
        "symbols": [
            {
                "symbol": specs[i].symbol,
                "tick_size": str(specs[i].tick_size),
                "lot_size": str(specs[i].lot_size),
                **item,
            }
            for i, item in enumerate(items)
        ],
    }
    return _parse(full, feature_set, _U64)


# ----- checking ----------------------------------------------------------------------------


def _fail(path: str, what: str) -> NoReturn:
    raise InvalidStateError(f"engine state: {path}: {what}")


def _check_format(obj: Mapping[str, Any]) -> None:
    fmt = obj.get("format")
    if fmt != ENGINE_STATE_FORMAT:
        _fail("format", f"{fmt!r} is not a format this version reads ({ENGINE_STATE_FORMAT!r})")


def _fields(obj: Any, path: str, names: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        _fail(path, f"expected a mapping, got {type(obj).__name__}")
    missing = [n for n in names if n not in obj]
    extra = sorted(str(k) for k in obj if k not in names)
    if missing:
        _fail(path, f"missing {', '.join(missing)}")
    if extra:
        _fail(path, f"unexpected {', '.join(extra)}")
    return obj


def _str(x: Any, path: str) -> str:
    if not isinstance(x, str):
        _fail(path, f"expected a str, got {type(x).__name__}")
    return x


def _int(x: Any, path: str, bounds: tuple[int, int] = _I64) -> int:
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer):
        _fail(path, f"expected an int, got {type(x).__name__}")
    value = int(x)
    if not bounds[0] <= value <= bounds[1]:
        _fail(path, f"{value} is outside [{bounds[0]}, {bounds[1]}]")
    return value


def _count(x: Any, path: str, counts: tuple[int, int]) -> int:
    return _int(x, path, counts)


def _float(x: Any, path: str) -> float:
    if isinstance(x, str) and x.startswith(NAN_TAG):
        return _tagged_nan(x, path)
    if not isinstance(x, float):  # np.float64 is a float
        _fail(path, f"expected a float, got {type(x).__name__}")
    return float(x)


def _tagged_nan(text: str, path: str) -> float:
    """A NaN written by its bits (`"f64:7ff8000000000001"`); any other value is refused, so
    each float has one form."""
    digits = text[len(NAN_TAG) :]
    try:
        if len(digits) != 16:
            raise ValueError
        bits = int(digits, 16)
    except ValueError:
        _fail(path, f"{text!r} is not {NAN_TAG} and 16 hex digits")
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if value == value:
        _fail(path, f"{text!r} is not a NaN: write it as a number")
    return value


def _bool(x: Any, path: str) -> bool:
    if not isinstance(x, bool | np.bool_):
        _fail(path, f"expected a bool, got {type(x).__name__}")
    return bool(x)


def _list(x: Any, path: str) -> Sequence[Any]:
    if not isinstance(x, list | tuple):
        _fail(path, f"expected a list, got {type(x).__name__}")
    return x


def _grid(x: Any, path: str) -> str:
    text = _str(x, path)
    try:
        step = Decimal(text)
    except InvalidOperation:
        _fail(path, f"{text!r} is not a decimal number")
    if not step.is_finite() or step <= 0:
        _fail(path, f"{text!r} is not a finite positive grid size")
    return text


def _levels(x: Any, path: str, is_bid: bool, max_len: int | None = None) -> list[Level]:
    items = _list(x, path)
    if max_len is not None and len(items) > max_len:
        _fail(path, f"{len(items)} levels, at most {max_len} allowed")
    out: list[Level] = []
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        pair = _list(item, at)
        if len(pair) != 2:
            _fail(at, f"expected (px, qty), got {len(pair)} items")
        px = _int(pair[0], at, (-_MAX_ABS_UNITS, _MAX_ABS_UNITS))
        qty = _int(pair[1], at, (1, _MAX_ABS_UNITS))
        if out and not (px < out[-1][0] if is_bid else px > out[-1][0]):
            order = "descending" if is_bid else "ascending"
            _fail(at, f"prices must be strictly {order} (best first), got {out[-1][0]} then {px}")
        out.append((px, qty))
    return out


def _window(x: Any, path: str, bounds: tuple[int, int]) -> list[int]:
    return [_int(v, f"{path}[{i}]", bounds) for i, v in enumerate(_list(x, path))]


def _ema(x: Any, path: str, counts: tuple[int, int]) -> EmaState:
    d = _fields(x, path, ("value", "count"))
    return EmaState(
        _float(d["value"], f"{path}.value"), _count(d["count"], f"{path}.count", counts)
    )


def _decayed(x: Any, path: str, counts: tuple[int, int]) -> DecayedSumState:
    d = _fields(x, path, ("value", "last_ts_ns", "count"))
    return DecayedSumState(
        _float(d["value"], f"{path}.value"),
        _int(d["last_ts_ns"], f"{path}.last_ts_ns"),
        _count(d["count"], f"{path}.count", counts),
    )


def _values(x: Any, path: str, feature_set: FeatureSet) -> list[int | float]:
    items = _list(x, path)
    if len(items) != len(feature_set.features):
        _fail(path, f"{len(items)} values, the feature set has {len(feature_set.features)}")
    out: list[int | float] = []
    for spec, item in zip(feature_set.features, items, strict=True):
        at = f"{path}[{spec.feature_id}] ({spec.name})"
        if spec.dtype == "f64":
            out.append(_float(item, at))
        else:
            out.append(_int(item, at, _U32 if spec.dtype == "u32" else _I64))
    return out


def _features(x: Any, path: str, feature_set: FeatureSet, counts: tuple[int, int]) -> FeatureState:
    names = [f.name for f in dataclasses.fields(FeatureState)]
    d = _fields(x, path, names)

    def at(name: str) -> str:
        return f"{path}.{name}"

    n_mids = _count(d["n_mids"], at("n_mids"), counts)
    mids = _window(d["mids"], at("mids"), _MIDS)
    changes = _window(d["mid_changes"], at("mid_changes"), _MID_CHANGES)
    # The windows' lengths follow from n_mids: one change per mid after the first.
    for name, window, want in (
        ("mids", mids, min(n_mids, MID_Z_WINDOW)),
        ("mid_changes", changes, min(max(n_mids - 1, 0), MID_RET_WINDOW)),
    ):
        if len(window) != want:
            _fail(at(name), f"{len(window)} values, but n_mids = {n_mids} needs {want}")
    return FeatureState(
        values=_values(d["values"], at("values"), feature_set),
        n_book=_count(d["n_book"], at("n_book"), counts),
        n_trade=_count(d["n_trade"], at("n_trade"), counts),
        has_bid=_bool(d["has_bid"], at("has_bid")),
        has_ask=_bool(d["has_ask"], at("has_ask")),
        prev_bids=_levels(d["prev_bids"], at("prev_bids"), True, DEPTH),
        prev_asks=_levels(d["prev_asks"], at("prev_asks"), False, DEPTH),
        ofi_cum=_int(d["ofi_cum"], at("ofi_cum"), _CUM),
        ofi_ema=_ema(d["ofi_ema"], at("ofi_ema"), counts),
        ofi_decay=_decayed(d["ofi_decay"], at("ofi_decay"), counts),
        spread_ema=_ema(d["spread_ema"], at("spread_ema"), counts),
        imbalance_ema=_ema(d["imbalance_ema"], at("imbalance_ema"), counts),
        mids=mids,
        mid_changes=changes,
        n_mids=n_mids,
        signed_qty_cum=_int(d["signed_qty_cum"], at("signed_qty_cum"), _CUM),
        tfi=_decayed(d["tfi"], at("tfi"), counts),
    )


def _sequencing(x: Any, path: str, counts: tuple[int, int]) -> SequencingState:
    names = [f.name for f in dataclasses.fields(SequencingState)]
    d = _fields(x, path, names)
    last_ts = d["last_source_ts_ns"]
    return SequencingState(
        book_seq=_int(d["book_seq"], f"{path}.book_seq"),
        trade_seq=_int(d["trade_seq"], f"{path}.trade_seq"),
        after_snapshot=_bool(d["after_snapshot"], f"{path}.after_snapshot"),
        last_source_ts_ns=None if last_ts is None else _int(last_ts, f"{path}.last_source_ts_ns"),
        untrusted=_bool(d["untrusted"], f"{path}.untrusted"),
        reset_pending=_bool(d["reset_pending"], f"{path}.reset_pending"),
        out_of_order_pending=_bool(d["out_of_order_pending"], f"{path}.out_of_order_pending"),
        messages_applied=_count(d["messages_applied"], f"{path}.messages_applied", counts),
    )


def _frame(x: Any, path: str) -> FrameState:
    d = _fields(x, path, [f.name for f in dataclasses.fields(FrameState)])
    return FrameState(
        quality_flags=_int(d["quality_flags"], f"{path}.quality_flags", _U32),
        warmup_ready_mask=_int(d["warmup_ready_mask"], f"{path}.warmup_ready_mask", _U64),
        seq=_int(d["seq"], f"{path}.seq"),
        source_ts_ns=_int(d["source_ts_ns"], f"{path}.source_ts_ns"),
        local_ts_ns=_int(d["local_ts_ns"], f"{path}.local_ts_ns"),
    )


def _symbol(x: Any, path: str, feature_set: FeatureSet, counts: tuple[int, int]) -> SymbolState:
    d = _fields(x, path, [f.name for f in dataclasses.fields(SymbolState)])
    book = _fields(d["book"], f"{path}.book", ("bids", "asks"))
    return SymbolState(
        symbol=_str(d["symbol"], f"{path}.symbol"),
        tick_size=_grid(d["tick_size"], f"{path}.tick_size"),
        lot_size=_grid(d["lot_size"], f"{path}.lot_size"),
        book=BookState(
            _levels(book["bids"], f"{path}.book.bids", True),
            _levels(book["asks"], f"{path}.book.asks", False),
        ),
        sequencing=_sequencing(d["sequencing"], f"{path}.sequencing", counts),
        features=_features(d["features"], f"{path}.features", feature_set, counts),
        frame=_frame(d["frame"], f"{path}.frame"),
    )


def _parse(
    obj: Mapping[str, Any], feature_set: FeatureSet, counts: tuple[int, int] = _COUNT
) -> EngineState:
    """Check the feature set first (the layout of `features` depends on it), then the rest.

    `counts`: the bounds of every count; an export takes `_U64` (a count imported at
    `MAX_COUNT` may have stepped past it: the state is exported, and refused on import)."""
    set_id = _str(obj.get("feature_set_id"), "feature_set_id")
    schema_hash = _str(obj.get("schema_hash"), "schema_hash")
    if (set_id, schema_hash) != (feature_set.feature_set_id, feature_set.schema_hash):
        raise SchemaMismatchError(
            f"the state is of feature set {set_id!r} (schema {schema_hash[:16]}), the engine "
            f"computes {feature_set.feature_set_id!r} (schema {feature_set.schema_hash[:16]})"
        )
    d = _fields(obj, "state", [f.name for f in dataclasses.fields(EngineState)])
    counters = _fields(d["counters"], "counters", COUNTER_NAMES)
    symbols = _list(d["symbols"], "symbols")
    return EngineState(
        feature_set_id=set_id,
        schema_hash=schema_hash,
        counters={
            name: _count(counters[name], f"counters.{name}", counts) for name in COUNTER_NAMES
        },
        symbols=[_symbol(s, f"symbols[{i}]", feature_set, counts) for i, s in enumerate(symbols)],
    )
