"""What every backend shares: the engine options and the protocols a kernel implements.

A leaf of the engine package: the facade, both kernels and the state code import it, it
imports neither kernel. `ReferenceKernel` (`engine.python`) is the specification of `Kernel`;
`RustKernel` (`engine.rust`) implements the same protocol over `featureplane._core`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from featureplane.book.l2 import L1, L2Book
    from featureplane.book.lob import BookStats
    from featureplane.engine.plan_state import PlanEngineState
    from featureplane.engine.state import EngineState
    from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch

SymbolRef = str | int
"""A symbol by name or by id in the engine's `SymbolTable`."""
Levels = list[tuple[int, int]]
"""Book levels best first, as (px ticks, qty lots)."""


@dataclass(frozen=True)
class EngineConfig:
    """Engine options shared by every backend.

    stale_after_ns
        `STALE_INPUT` rule: a frame is stale when its message was received more than this many
        ns after its exchange time (`local_ts_ns - source_ts_ns > stale_after_ns`, only where the
        source gives a local time). None (the default) turns the rule off, because recorded
        captures often carry a skewed local clock (the Binance samples lag by about 1.27 s).
    """

    stale_after_ns: int | None = None


class BookView(Protocol):
    """A kernel's books, read-only: what `FeatureEngine.lob` gives on either backend.

    `book()` returns a copy on both backends: later messages do not change it.
    """

    def get_l1_scaled(self, symbol: SymbolRef) -> L1:
        """Best bid and ask of a symbol in ticks and lots (None for an empty side)."""
        ...

    def top_n(self, symbol: SymbolRef, n: int) -> tuple[Levels, Levels]:
        """The best `n` levels of each side, (bids, asks), best first."""
        ...

    def snapshot(self, symbol: SymbolRef) -> tuple[Levels, Levels]:
        """Every level of each side, (bids, asks), best first."""
        ...

    def book(self, symbol: SymbolRef) -> L2Book:
        """A copy of the symbol's book as the reference's `L2Book`."""
        ...

    def book_stats(self, symbol: SymbolRef) -> BookStats:
        """Level counts, depth (lots), crossed and untrusted state of a symbol's book."""
        ...

    def is_untrusted(self, symbol: SymbolRef) -> bool:
        """A gap was seen on the symbol's book and no snapshot has resynced it yet."""
        ...

    def reset_symbol(self, symbol: SymbolRef) -> None:
        """Return a symbol's book to session start: empty, trusted, no sequence."""
        ...


class Kernel(Protocol):
    """What a backend implements; `ReferenceKernel` is the specification."""

    name: str

    def process(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        """Validate and apply one message (its `EVENT_DTYPE` rows); its frame, or None when
        the ordering rules dropped it. Raises `InvalidMessageError` before any state change."""
        ...

    def process_into(self, message: np.ndarray, out: Any) -> bool:
        """`process`, the frame written into `out` (a writable byte buffer of exactly
        `frame_size` bytes, checked first: `frames.wire.record_buffer`) as an FPF1 typed
        frame; False when the message was dropped."""
        ...

    def process_batch(self, events: np.ndarray) -> FrameBatch:
        """Validate a whole event array, then apply its messages; one frame per applied
        message. Raises `InvalidMessageError` before any state change."""
        ...

    def symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]:
        """Symbol `sid`'s current (values, warmup_ready_mask, quality_flags, seq,
        source_ts_ns), as of its last frame."""
        ...

    def reset_symbol(self, sid: int) -> None:
        """Clear symbol `sid`'s book, sequence and feature state; its next frame carries
        STATE_RESET."""
        ...

    def export_state(self) -> EngineState | PlanEngineState:
        """Every symbol's state and the counters, as backend-neutral plain data (a
        `PlanEngineState` for a declared set)."""
        ...

    def import_state(self, state: EngineState | PlanEngineState | Mapping[str, Any]) -> None:
        """Take over an exported state, from a kernel of either backend. Raises
        `SchemaMismatchError` or `InvalidStateError` and leaves the kernel unchanged."""
        ...

    @property
    def lob(self) -> BookView:
        """The kernel's books, read-only."""
        ...

    @property
    def counters(self) -> dict[str, int]:
        """Message counts by name: messages, applied, duplicates, out_of_order, stale, gaps,
        resets, ts_backwards (a checkpoint carries them)."""
        ...
