"""FeatureEngine: the one API that research, backtests and strategies consume.

The engine validates input, runs a backend kernel, and serves its results by pull
(`get_feature`, `get_feature_view`) and push (`on_features`). Backends: "python" (the reference,
`featureplane.engine.python`) and "rust" (where the extension is built).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.engine.backends import make_kernel, resolve_backend
from featureplane.engine.config import EngineConfig
from featureplane.engine.plan_state import PlanEngineState
from featureplane.engine.research import ResearchStage
from featureplane.engine.state import EngineState
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.plan import kernel_feature_set
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FeatureUpdateFrameV1, FeatureView, FrameBatch
from featureplane.frames.wire import codec_for, record_buffer
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet

Callback = Callable[[FeatureUpdateFrameV1], None]
_REPR_SYMBOLS = 8
"""Symbols a `FeatureEngine` repr names; the rest are counted."""


@dataclass
class Subscription:
    """A push subscriber; `cancel()` stops delivery."""

    callback: Callback
    symbol_ids: frozenset[int] | None
    _engine: FeatureEngine | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Stop delivery to this subscriber; cancelling twice is a no-op."""
        if self._engine is not None:
            self._engine._subscribers.remove(self)
            self._engine._route()
            self._engine = None


class FeatureEngine:
    """Per-symbol books and lob_shared_v1 feature state; frames per applied message.

    Parameters
    ----------
    symbols
        The instruments; ids in frames and messages index this table.
    feature_set
        A registered feature set id, a declaration TOML file, a `FeatureSetDecl` or a
        `FeatureSet` (default `lob_shared_v1`).
    backend
        "python" or "rust"; None reads $FEATUREPLANE_BACKEND, else Rust where built.
    config
        Options shared by every backend (the stale-input rule).
    """

    def __init__(
        self,
        symbols: SymbolTable | Sequence[InstrumentSpec],
        feature_set: str | Path | FeatureSet | FeatureSetDecl = DEFAULT_FEATURE_SET_ID,
        *,
        backend: str | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.symbols = symbols if isinstance(symbols, SymbolTable) else SymbolTable(list(symbols))
        self.feature_set = resolve_feature_set(feature_set)
        self.config = config or EngineConfig()
        # The kernels compute the set's kernel part; research-only features follow in Python.
        self._kernel_set = kernel_feature_set(self.feature_set)
        self._research = (
            ResearchStage(self.feature_set, self.symbols)
            if self._kernel_set is not self.feature_set
            else None
        )
        self.backend = resolve_backend(backend, self._kernel_set)
        self._kernel = make_kernel(self.backend, self.symbols, self._kernel_set, self.config)
        self._subscribers: list[Subscription] = []
        self._codec = codec_for(self.feature_set)
        self.frame_size: int = self._codec.size
        """Bytes of one FPF1 typed frame of this set (`process_into`'s buffer)."""
        self.frame_record_dtype: np.dtype = self._codec.dtype
        """The numpy structured dtype of that frame (docs/frame-abi.md)."""
        self._route()

    def _route(self) -> None:
        """With no research-only features and no subscribers, `process` and `process_into`
        are the kernel's own: a per-message call then pays no step through this class (about
        a tenth of a trade's cost). Called whenever the kernel, the research stage or the
        subscribers change."""
        if self._research is None and not self._subscribers:
            self.process = self._kernel.process  # type: ignore[method-assign]
            self.process_into = self._kernel.process_into  # type: ignore[method-assign]
        else:
            self.__dict__.pop("process", None)
            self.__dict__.pop("process_into", None)

    def __repr__(self) -> str:
        names = [spec.symbol for spec in self.symbols.specs[:_REPR_SYMBOLS]]
        if len(self.symbols) > _REPR_SYMBOLS:
            names.append(f"+{len(self.symbols) - _REPR_SYMBOLS} more")
        counters = self.counters
        # messages and applied always; the rest (gaps, duplicates, ...) when they happened.
        counts = ", ".join(
            f"{k} {v:,}" for k, v in counters.items() if v or k in ("messages", "applied")
        )
        return (
            f"<FeatureEngine backend={self.backend} feature_set={self.feature_set.feature_set_id} "
            f"symbols={len(self.symbols)} ({', '.join(names)}), {counts}>"
        )

    # ----- processing ---------------------------------------------------------------------

    def process(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        """Apply one message (its rows); the frame after it, or None if it was dropped."""
        # The kernel validates (events.validate's rules): the Rust kernel does it in Rust, so
        # the hot path pays no numpy calls per message.
        frame = self._kernel.process(message)
        if frame is not None and self._research is not None:
            frame = self._research.extend(self._kernel, frame, int(message[-1]["symbol_id"]))
        if frame is not None and self._subscribers:
            self._deliver(frame, int(message[-1]["symbol_id"]))
        return frame

    def process_into(self, message: np.ndarray, out: bytearray | np.ndarray) -> bool:
        """Apply one message and write its frame into `out` as an FPF1 typed frame
        (docs/frame-abi.md), making no Python object: the per-message path for a consumer
        that reads the frame in place or passes its bytes on.

        `out` is a writable, C-contiguous byte buffer of exactly `frame_size` bytes (a
        `bytearray`, or a uint8 numpy array), checked before the message is applied;
        `np.frombuffer(out, engine.frame_record_dtype)` reads it as one structured record, and
        stays valid across calls. Returns True when the frame was written, False when the
        message was dropped (`out` keeps the last frame). Subscribers get the frame object as
        with `process`.
        """
        view = record_buffer(out, self.frame_size)
        frame = self.process(message)
        if frame is None:
            return False
        view[:] = self._codec.pack(frame, int(message[-1]["symbol_id"]))
        return True

    def process_batch(self, events: np.ndarray) -> FrameBatch:
        """Apply every message of an event array; one frame per applied message, as columns."""
        if self._research is not None:
            batch = self._research.process_batch(self._kernel, events)
        else:
            batch = self._kernel.process_batch(events)
        if self._subscribers:
            for i in range(len(batch)):
                self._deliver(batch.frame(i), int(batch.columns["symbol_id"][i]))
        return batch

    def _deliver(self, frame: FeatureUpdateFrameV1, symbol_id: int) -> None:
        for sub in list(self._subscribers):
            if sub.symbol_ids is None or symbol_id in sub.symbol_ids:
                sub.callback(frame)

    # ----- pull ---------------------------------------------------------------------------

    def get_feature_set_id(self) -> str:
        """The id of the feature set this engine computes (e.g. "lob_shared_v1")."""
        return self.feature_set.feature_set_id

    def get_feature(self, symbol: str, feature: int | str) -> int | float:
        """Current value of one feature of a symbol (check readiness with the view)."""
        index = self.feature_set.index(feature)
        return self._symbol_values(self.symbols.id_of(symbol))[0][index]

    def get_feature_view(self, symbol: str) -> FeatureView:
        """The symbol's current values with their readiness, quality flags, seq and
        `source_ts_ns`, as of its last frame.

        Raises
        ------
        UnknownSymbolError
            `symbol` is not in the engine's symbol table.
        """
        values, ready, flags, seq, ts = self._symbol_values(self.symbols.id_of(symbol))
        return FeatureView(symbol, self.feature_set, values, ready, flags, seq, ts)

    def _symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]:
        values, ready, flags, seq, ts = self._kernel.symbol_values(sid)
        if self._research is not None:
            extra, extra_ready = self._research.values_of(sid)
            return (*values, *extra), ready | extra_ready, flags, seq, ts
        return values, ready, flags, seq, ts

    # ----- push ---------------------------------------------------------------------------

    def on_features(
        self,
        callback: Callback,
        *,
        symbols: Sequence[str] | None = None,
        feature_set_id: str | None = None,
        schema_hash: str | None = None,
    ) -> Subscription:
        """Call `callback(frame)` for every frame (of `symbols` when given).

        A consumer built for another feature set passes its `feature_set_id` / `schema_hash`
        and gets a `SchemaMismatchError` here rather than misread values later.
        """
        self.feature_set.check(feature_set_id, schema_hash)
        ids = None if symbols is None else frozenset(self.symbols.id_of(s) for s in symbols)
        sub = Subscription(callback, ids, self)
        self._subscribers.append(sub)
        self._route()
        return sub

    # ----- control ------------------------------------------------------------------------

    def reset_symbol(self, symbol: str) -> None:
        """Clear a symbol's book, sequence and feature state; its next frame carries STATE_RESET."""
        sid = self.symbols.id_of(symbol)
        self._kernel.reset_symbol(sid)
        if self._research is not None:
            self._research.reset(sid)

    def set_backend(self, backend: str | None) -> None:
        """Move this engine to another backend at runtime, keeping all of its state.

        The current kernel's state (every book level, sequences, feature state, last frames,
        counters) is exported, imported into a new kernel of `backend`, and the new kernel
        takes over; subscribers stay. The frames that follow equal the old backend's, bit for
        bit. `backend` resolves as in the constructor (None: $FEATUREPLANE_BACKEND, else Rust
        where built); the same backend is a no-op. `lob` is the new kernel's afterwards.
        """
        name = resolve_backend(backend, self._kernel_set)
        if name == self.backend:
            return
        kernel = make_kernel(name, self.symbols, self._kernel_set, self.config)
        kernel.import_state(self._kernel.export_state())
        self._kernel = kernel
        self.backend = name
        self._route()

    def export_state(self) -> EngineState | PlanEngineState:
        """A checkpoint of the engine: every symbol's book, sequence and feature state, last
        frame header, and the counters, as backend-neutral plain data
        (`featureplane.engine.state`; `to_dict()` for JSON, or pickle it). An engine of a
        declared set gives a `PlanEngineState` (`featureplane.engine.plan_state`), which
        carries the set's plan."""
        return self._kernel.export_state()

    def import_state(self, state: EngineState | PlanEngineState | Mapping[str, Any]) -> None:
        """Restore a checkpoint (an `EngineState` or its `to_dict()` form), from an engine of
        either backend: the frames that follow are those the exporting engine would have
        produced. The engine's symbol table must start with the state's symbols, on the same
        grids; symbols beyond them start fresh. Subscribers stay; nothing is delivered.

        Raises
        ------
        SchemaMismatchError
            The state is of another feature set or schema hash.
        InvalidStateError
            (a ValueError) another format, a malformed field, or other symbols; the engine is
            left unchanged.
        """
        self._kernel.import_state(state)
        if self._research is not None:  # research values start afresh (not in checkpoints)
            self._research = ResearchStage(self.feature_set, self.symbols)
        self._route()

    @property
    def lob(self) -> object:
        """The book engine of the backend (`get_l1_scaled`, `top_n`, `snapshot`, `book_stats`)."""
        return self._kernel.lob

    @property
    def counters(self) -> dict[str, int]:
        """Messages, applied, duplicates, out_of_order, stale, gaps, resets, ts_backwards."""
        return self._kernel.counters
