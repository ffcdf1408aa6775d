"""The research stage: research-only features computed after the kernel, frame by frame.

`FeatureEngine` runs the kernel on the set's kernel part (`features.plan.kernel_feature_set`)
and, when the set declares research-only features (`features.research`), passes every frame
through `ResearchStage.extend`: each function is called with the symbol's best levels and the
kernel's frame, and its value is appended to the frame. The batch path goes message by message
(the functions read the book as of each frame), so a research set replays at the reference's
pace: these features are for research until promoted to the kernel.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from featureplane.events import iter_messages, message_bounds, validate
from featureplane.features.plan import research_of
from featureplane.features.research import BookTop, ResearchFn, load_function, value_of
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

if TYPE_CHECKING:
    from featureplane.engine.config import Kernel


class ResearchStage:
    """The research-only features of `feature_set`, after a kernel of its kernel part."""

    def __init__(self, feature_set: FeatureSet, symbols: SymbolTable) -> None:
        self.feature_set = feature_set
        self.symbols = symbols
        decls = research_of(feature_set)
        self.depths = [d.depth for d in decls]
        self.functions: list[ResearchFn] = [load_function(d.function) for d in decls]
        self.first = len(feature_set) - len(decls)
        """Frame index of the first research feature (they follow the kernel's)."""
        self._values: dict[int, list[float]] = {}
        self._ready: dict[int, int] = {}

    def values_of(self, sid: int) -> tuple[list[float], int]:
        """A symbol's research values and their ready bits (in frame positions)."""
        return self._values.get(sid, [math.nan] * len(self.functions)), self._ready.get(sid, 0)

    def reset(self, sid: int) -> None:
        self._values.pop(sid, None)
        self._ready.pop(sid, None)

    def extend(self, kernel: Kernel, frame: FeatureUpdateFrameV1, sid: int) -> FeatureUpdateFrameV1:
        """The frame with the research features appended (values, changed and ready bits)."""
        if frame.quality_flags & QualityFlag.STATE_RESET:
            self.reset(sid)
        before, _ = self.values_of(sid)
        values = list(before)
        spec = self.symbols.spec_of(sid)
        trusted = not kernel.lob.is_untrusted(sid)
        ready = 0
        for k, (fn, depth) in enumerate(zip(self.functions, self.depths, strict=True)):
            bids, asks = kernel.lob.top_n(sid, depth) if depth else ([], [])
            x, has = value_of(fn(BookTop(bids, asks, spec.tick_f64, spec.lot_f64), frame))
            if has:
                values[k] = x
                if trusted:
                    ready |= 1 << (self.first + k)
        changed = 0
        for k, (a, b) in enumerate(zip(before, values, strict=True)):
            if a != b and not (math.isnan(a) and math.isnan(b)):
                changed |= 1 << (self.first + k)
        self._values[sid] = values
        self._ready[sid] = ready
        return dataclasses.replace(
            frame,
            values=(*frame.values, *values),
            changed_mask=frame.changed_mask | changed,
            warmup_ready_mask=frame.warmup_ready_mask | ready,
        )

    def process_batch(self, kernel: Kernel, events: np.ndarray) -> FrameBatch:
        """Every message through the kernel one by one, each frame extended; as columns."""
        validate(events, len(self.symbols))
        batch = FrameBatch.allocate(self.feature_set, self.symbols, len(message_bounds(events)))
        cols = batch.columns
        value_cols = list(batch.values.values())
        n = 0
        row = -1
        for message in iter_messages(events):
            row += len(message)
            raw = kernel.process(message)
            if raw is None:
                continue
            sid = int(message[-1]["symbol_id"])
            frame = self.extend(kernel, raw, sid)
            cols["input_index"][n] = row
            cols["symbol_id"][n] = sid
            cols["seq"][n] = frame.seq
            cols["source_ts_ns"][n] = frame.source_ts_ns
            cols["local_ts_ns"][n] = frame.local_ts_ns
            cols["changed_mask"][n] = frame.changed_mask
            cols["warmup_ready_mask"][n] = frame.warmup_ready_mask
            cols["quality_flags"][n] = frame.quality_flags
            for col, value in zip(value_cols, frame.values, strict=True):
                col[n] = value
            n += 1
        return batch.truncate(n)
