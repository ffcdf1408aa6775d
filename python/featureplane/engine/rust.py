"""The Rust backend of `FeatureEngine`: `featureplane._core.Engine` behind the interface of
`featureplane.engine.python.ReferenceKernel`.

The kernel itself (sequencing, books, features, frames) runs in Rust; this module checks
dtypes, hands numpy buffers across, and builds the package's Python objects from the results.
The built-in lob_shared_v1 runs on its specialised kernel (`_core.Engine`); any other feature
set on the generic evaluator of its compiled plan (`_core.PlanEngine`, docs/backends.md), with
the same calls.

- `process_batch` passes the event rows as a uint8 view (no copy) and receives one numpy array
  per column, moved out of Rust.
- `process` is the extension's own method: it reads a message array of `EVENT_DTYPE` in
  place (type, shape and dtype object tested in Rust, no bytes made; anything unusual takes
  the checked Python path) and gives the `FeatureUpdateFrameV1` back, made in Rust (the
  extension fills the frozen dataclass's slots through their own setters, after checking
  once that this gives what the constructor gives; `fills_frame_slots`).
- `process_into`, for consumers that read frames in place without any allocation, is the
  extension's too: the same input, an FPF1 typed frame (`FRAME_RECORD_DTYPE`, the layout of
  `featureplane.frames.wire`) written into a buffer they own.

Importing this module raises ImportError when the extension lacks the engine (a build without
Rust, or a stale one), which is how `backends.rust_available()` decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from featureplane import _core
from featureplane.book.l2 import L1, L2Book
from featureplane.book.lob import BookStats
from featureplane.engine.config import EngineConfig, Levels, SymbolRef
from featureplane.engine.plan_state import PlanEngineState, checked_plan_state, kernel_part
from featureplane.engine.state import EngineState, checked_state, kernel_state
from featureplane.errors import (
    FeatureSetDeclarationError,
    InvalidMessageError,
    InvalidStateError,
    SchemaMismatchError,
)
from featureplane.events import EVENT_DTYPE, check_array
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.plan import plan_of
from featureplane.frames.frame import FRAME_MARKER, HEADER_COLUMNS, FeatureUpdateFrameV1, FrameBatch
from featureplane.frames.wire import frame_batch_dtype
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

if not hasattr(_core, "Engine"):
    raise ImportError("featureplane._core was built without the Rust engine; rebuild it")

__all__ = ["FRAME_RECORD_DTYPE", "RustKernel", "RustLob", "plan_engine"]

_U8 = np.dtype(np.uint8)

FRAME_RECORD_DTYPE = frame_batch_dtype(LOB_SHARED_V1)
"""The FPF1 typed frame `_core.Engine.process_into` writes (docs/frame-abi.md): the header,
then one 8-byte slot per feature (a u32 feature is a `<u8` slot: cast it back)."""
# Names, dtypes and offsets of the header the extension writes must be transport's own.
_RUST_HEADER = np.dtype(list(_core.FRAME_RECORD_HEADER)).descr
if (
    FRAME_RECORD_DTYPE.itemsize != _core.FRAME_RECORD_SIZE
    or FRAME_RECORD_DTYPE.descr[: len(_RUST_HEADER)] != _RUST_HEADER
):
    raise ImportError("featureplane._core's frame record is not the FPF1 layout; rebuild")


def _as_bytes(events: np.ndarray) -> np.ndarray:
    """The rows of `events` as a C-contiguous uint8 view (a copy only if they are strided)."""
    check_array(events)  # the reference's first check: the same error for the same input
    try:
        return events.view(_U8)
    except ValueError:  # not contiguous
        return np.ascontiguousarray(events).view(_U8)


class RustKernel:
    """The Rust backend of `FeatureEngine` (the same interface as `ReferenceKernel`)."""

    name = "rust"

    def __init__(self, symbols: SymbolTable, feature_set: FeatureSet, config: EngineConfig) -> None:
        self.symbols = symbols
        self.feature_set = feature_set
        self.config = config
        self._feature_set_id = feature_set.feature_set_id
        self._event_dtype = EVENT_DTYPE
        self._engine: _core.Engine | _core.PlanEngine
        self.specialised = feature_set.schema_hash == LOB_SHARED_V1.schema_hash
        """The built-in set runs on its specialised kernel; any other on the plan evaluator."""
        if self.specialised:
            rust_schema = [tuple(item) for item in _core.FEATURES]
            if rust_schema != [(f.name, f.dtype) for f in feature_set.features]:
                raise ImportError(
                    "featureplane._core computes another lob_shared_v1 schema; rebuild"
                )
            self._engine = _core.Engine(
                [], config.stale_after_ns, schema_hash64=LOB_SHARED_V1.schema_hash64
            )
        else:
            self._engine = plan_engine(feature_set, config.stale_after_ns)
        self.frame_record_dtype = frame_batch_dtype(feature_set)
        """The FPF1 typed frame `_engine.process_into` writes for this set."""
        self.fills_frame_slots = self._engine.frame_type(
            FeatureUpdateFrameV1, self._feature_set_id, FRAME_MARKER
        )
        """True when the extension fills each frame's slots itself (the fast path); False when
        it calls the frame class, which stays correct if the class changes shape."""
        self._process_frame = self._engine.process_frame
        # `process` is the extension's own method: it reads a message array of this dtype
        # object in place and hands anything else (and any message it refuses) to the checked
        # path below; a Python method between the two would cost a tenth of a trade's time.
        self._fallbacks = (self._process_checked, self._process_into_checked)
        self._engine.message_input(EVENT_DTYPE, *self._fallbacks)
        self.process = self._engine.process
        self.process_into = self._engine.process_into
        self.frame_size: int = self.frame_record_dtype.itemsize
        self._names: list[str] = []
        self._sync_symbols()
        self.lob = RustLob(self)

    def _sync_symbols(self) -> bool:
        """Register symbols added to the table since the last call; True if any were."""
        n = len(self.symbols)
        if n == len(self._names):
            return False
        for sid in range(len(self._names), n):
            spec = self.symbols.spec_of(sid)
            self._engine.add_symbol(spec.tick_f64, spec.lot_f64)
            if spec.depth is not None:  # a source showing only its best levels
                self._engine.set_source_depth(sid, spec.depth)
            self._names.append(spec.symbol)
        self._engine.frame_names(self._names)
        return True

    def _check_message(self, message: object) -> None:
        """Refuse anything but a 1-d EVENT_DTYPE array (`events.check_array`, as the reference
        does); remember an equal dtype object (a structured dtype comparison costs more than
        the whole Rust call, and a feed reuses one dtype object)."""
        check_array(message)
        assert isinstance(message, np.ndarray)
        if message.dtype is not self._event_dtype:
            self._event_dtype = message.dtype
            self._engine.message_input(message.dtype, *self._fallbacks)

    def _sid(self, sid: int) -> int:
        self._sync_symbols()
        self.symbols.spec_of(sid)  # UnknownSymbolError for an id the table does not hold
        return sid

    # ----- processing ---------------------------------------------------------------------

    process: Callable[[np.ndarray], FeatureUpdateFrameV1 | None]
    """Apply one message; the frame after it, or None if it was dropped (set per instance:
    the extension's `process`, falling back to `_process_checked`)."""

    def _process_checked(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        """`process` of a message the extension does not read in place, or refuses: checked
        as the reference checks it, then passed as bytes; symbols added to the table since the
        last call are registered before a refused message is tried again."""
        # One attribute test first; anything unusual takes the full check. A 0-d array or a
        # row scalar would otherwise pass as 64 bytes of one message.
        try:
            usual = message.dtype is self._event_dtype and message.ndim == 1
        except AttributeError:
            usual = False
        if not usual:
            self._check_message(message)
        rows = message.tobytes()
        try:
            return self._process_frame(rows)
        except InvalidMessageError:
            # Validation changes nothing, so after registering new symbols it can run again.
            if not self._sync_symbols():
                raise
            return self._process_frame(rows)

    process_into: Callable[[np.ndarray, Any], bool]
    """Apply one message and write its FPF1 frame into `out`; False when it was dropped (set
    per instance: the extension's `process_into`, falling back to `_process_into_checked`)."""

    def _process_into_checked(self, message: np.ndarray, out: Any) -> bool:
        """`process_into` of a message the extension does not read in place, or refuses;
        `_process_checked`'s rules (`out` has been checked)."""
        try:
            usual = message.dtype is self._event_dtype and message.ndim == 1
        except AttributeError:
            usual = False
        if not usual:
            self._check_message(message)
        rows = message.tobytes()
        try:
            return self._engine.process_into(rows, out)
        except InvalidMessageError:
            if not self._sync_symbols():
                raise
            return self._engine.process_into(rows, out)

    def process_batch(self, events: np.ndarray) -> FrameBatch:
        """Apply every message of an event array; frames as columns (moved out of Rust)."""
        self._sync_symbols()
        out = self._engine.process_batch(_as_bytes(events))
        columns: dict[str, np.ndarray] = dict(zip(HEADER_COLUMNS, out[:8], strict=True))
        values: dict[str, np.ndarray] = dict(zip(self.feature_set.names, out[8], strict=True))
        return FrameBatch(self.feature_set, self.symbols, columns, values)

    # ----- pull API -----------------------------------------------------------------------

    def symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]:
        """(values, ready mask, quality flags of the last frame, seq, source ts) of a symbol."""
        return self._engine.symbol_values(self._sid(sid))

    def reset_symbol(self, sid: int) -> None:
        """Clear symbol `sid`'s book, sequence and feature state (as the reference)."""
        self._engine.reset_symbol(self._sid(sid))

    @property
    def counters(self) -> dict[str, int]:
        """The kernel's message counters by name (as the reference's)."""
        return self._engine.counters()

    # ----- state (featureplane.engine.state, engine.plan_state) ---------------------------

    def export_state(self) -> EngineState | PlanEngineState:
        """The kernel's whole state, backend-neutral (as `ReferenceKernel.export_state`): an
        `EngineState` of lob_shared_v1, a `PlanEngineState` of a declared set."""
        self._sync_symbols()
        if isinstance(self._engine, _core.PlanEngine):
            raw = self._engine.export_state()
            specs = self.symbols.specs
            symbols = [
                {
                    "symbol": specs[i].symbol,
                    "tick_size": str(specs[i].tick_size),
                    "lot_size": str(specs[i].lot_size),
                    **item,
                }
                for i, item in enumerate(raw["symbols"])
            ]
            return PlanEngineState(self.feature_set.to_json(), raw["counters"], symbols)
        return kernel_state(self._engine.export_state(), self.feature_set, self.symbols)

    def import_state(self, state: EngineState | PlanEngineState | Mapping[str, Any]) -> None:
        """Replace the whole state with `state` (from either backend); checked in full first,
        so a refused state leaves the kernel unchanged."""
        if isinstance(self._engine, _core.PlanEngine):
            self._import_plan_state(self._engine, state)
            return
        if isinstance(state, PlanEngineState):
            state = state.to_dict()  # refused below: another format
        saved = checked_state(state, self.feature_set, self.symbols)
        self._sync_symbols()
        self._engine.import_state(saved._as_dict())  # floats as floats, NaN bits and all

    def _import_plan_state(
        self, engine: _core.PlanEngine, state: EngineState | PlanEngineState | Mapping[str, Any]
    ) -> None:
        if isinstance(state, EngineState):
            state = state.to_dict()  # refused below: another format
        plan = plan_of(self.feature_set)
        checked = checked_plan_state(state, self.feature_set, plan, self.symbols)
        self._sync_symbols()
        try:
            engine.import_state(kernel_part(checked))
        except ValueError as exc:  # the kernel's own check of the same rules
            raise InvalidStateError(str(exc)) from None


def plan_engine(feature_set: FeatureSet, stale_after_ns: int | None = None) -> _core.PlanEngine:
    """The plan evaluator of `feature_set` (no symbols yet), its columns checked against the
    set's metadata.

    Raises
    ------
    FeatureSetDeclarationError
        The kernel refuses the plan (a malformed plan, or a family it does not evaluate).
    """
    plan = plan_of(feature_set)
    try:
        engine = _core.PlanEngine(
            plan.canonical_json(), [], stale_after_ns, schema_hash64=feature_set.schema_hash64
        )
    except ValueError as exc:
        raise FeatureSetDeclarationError(feature_set.feature_set_id, [str(exc)]) from None
    if [tuple(item) for item in engine.features] != [
        (f.name, f.dtype) for f in feature_set.features
    ]:
        raise SchemaMismatchError(
            f"the plan of {feature_set.feature_set_id} gives other columns than its metadata"
        )
    return engine


class RustLob:
    """The books of a `RustKernel`, with the read API of `LOBEngine`.

    Messages go through the kernel (`process`, `process_batch`), which keeps books and features
    in step; there is no `apply` here.
    """

    def __init__(self, kernel: RustKernel) -> None:
        self._kernel = kernel
        self._engine = kernel._engine
        self.symbols = kernel.symbols

    def _sid(self, symbol: SymbolRef) -> int:
        sid = symbol if isinstance(symbol, int) else self.symbols.id_of(symbol)
        return self._kernel._sid(sid)

    def get_l1_scaled(self, symbol: SymbolRef) -> L1:
        """Best bid/ask of a symbol in ticks and lots (None for an empty side)."""
        return L1(*self._engine.l1(self._sid(symbol)))

    def top_n(self, symbol: SymbolRef, n: int) -> tuple[Levels, Levels]:
        """The best `n` levels of each side, best first, as (px ticks, qty lots)."""
        return self._engine.top_n(self._sid(symbol), n)

    def snapshot(self, symbol: SymbolRef) -> tuple[Levels, Levels]:
        """Every level of each side, best first."""
        return self._engine.snapshot(self._sid(symbol))

    def book(self, symbol: SymbolRef) -> L2Book:
        """A copy of the symbol's book as the reference's `L2Book` (later messages do not
        change it)."""
        bids, asks = self.snapshot(symbol)
        book = L2Book()
        for px, qty in bids:
            book.bids.set(px, qty)
        for px, qty in asks:
            book.asks.set(px, qty)
        return book

    def book_stats(self, symbol: SymbolRef) -> BookStats:
        """Level counts, depth (lots), crossed and untrusted state of a symbol's book."""
        return BookStats(*self._engine.book_stats(self._sid(symbol)))

    def is_untrusted(self, symbol: SymbolRef) -> bool:
        """A gap was seen on the symbol's book and no snapshot has resynced it yet."""
        return self.book_stats(symbol).untrusted

    def reset_symbol(self, symbol: SymbolRef) -> None:
        """Return a symbol's book to session start; its features restart on the next frame."""
        self._engine.reset_book(self._sid(symbol))

    @property
    def counters(self) -> dict[str, int]:
        """The kernel's message counters by name (the books and the kernel share them)."""
        return self._engine.counters()
