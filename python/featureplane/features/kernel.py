"""The reference kernel: LOBEngine + lob_shared_v1 state -> frames, one message at a time.

This is the executable spec of the whole per-message pipeline (ordering verdict, book update,
feature update, quality flags, masks). The Rust kernel implements the same steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from featureplane.book.lob_engine import LOBEngine
from featureplane.errors import InvalidMessageError
from featureplane.events import NO_SEQ, iter_messages, message_bounds, validate
from featureplane.features.lob_shared_v1 import (
    DEPTH,
    LOB_SHARED_V1,
    LobSharedV1State,
    changed_mask,
)
from featureplane.features.registry import FeatureSet
from featureplane.frames import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from featureplane.instruments import SymbolTable


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


class SymbolFeatures:
    """A symbol's feature state plus the header of its last frame."""

    def __init__(self, tick: float, lot: float) -> None:
        self.tick = tick
        self.lot = lot
        self.state = LobSharedV1State(tick, lot)
        self.quality_flags = 0
        self.ready_mask = 0
        self.seq = NO_SEQ
        self.source_ts_ns = 0
        self.local_ts_ns = 0

    def reset(self) -> None:
        self.state = LobSharedV1State(self.tick, self.lot)
        self.ready_mask = 0


class ReferenceKernel:
    """The Python backend of `FeatureEngine`."""

    name = "python"

    def __init__(self, symbols: SymbolTable, feature_set: FeatureSet, config: EngineConfig) -> None:
        if feature_set.schema_hash != LOB_SHARED_V1.schema_hash:
            raise ValueError(
                f"the reference kernel computes lob_shared_v1, not {feature_set.feature_set_id}"
            )
        self.symbols = symbols
        self.feature_set = feature_set
        self.config = config
        self.lob = LOBEngine(symbols)
        self._features: list[SymbolFeatures] = []

    def _symbol(self, sid: int) -> SymbolFeatures:
        self.symbols.spec_of(sid)  # UnknownSymbolError for an id the table does not hold
        while len(self._features) <= sid:
            spec = self.symbols.spec_of(len(self._features))
            self._features.append(SymbolFeatures(spec.tick_f64, spec.lot_f64))
        return self._features[sid]

    def process(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        """Validate and apply one message; the frame after it, or None if it was dropped.

        Raises
        ------
        InvalidMessageError
            For anything `events.validate` refuses, or rows that are not exactly one message.
        """
        validate(message, len(self.symbols))
        if len(message_bounds(message)) != 1:
            raise InvalidMessageError("process() takes exactly one message; use process_batch()")
        return self._apply(message)

    def _apply(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        result = self.lob.apply(message)
        if not result.applied:
            return None
        sym = self._symbol(result.symbol_id)
        if result.reset:
            sym.reset()
        state = sym.state
        before = list(state.values)
        last = message[-1]
        source_ts = int(last["source_ts_ns"])
        local_ts = int(last["local_ts_ns"])
        if result.book_changed:
            bids, asks = self.lob.top_n(result.symbol_id, DEPTH)
            state.on_book(bids, asks, source_ts)
        for trade in result.trades:
            state.on_trade(trade.side, trade.px, trade.qty, trade.source_ts_ns)

        flags = 0
        if result.untrusted:
            flags |= QualityFlag.GAP_DETECTED
        if result.reset:
            flags |= QualityFlag.STATE_RESET
        stale_after = self.config.stale_after_ns
        if stale_after is not None and local_ts > 0 and local_ts - source_ts > stale_after:
            flags |= QualityFlag.STALE_INPUT
        if result.out_of_order:
            flags |= QualityFlag.OUT_OF_ORDER_INPUT
        if not state.two_sided:
            flags |= QualityFlag.PARTIAL_FEATURES
        # An untrusted book makes every feature of the frame unready until a snapshot.
        ready = 0 if result.untrusted else state.ready_mask()

        sym.quality_flags = int(flags)
        sym.ready_mask = ready
        sym.seq = int(last["seq"])
        sym.source_ts_ns = source_ts
        sym.local_ts_ns = local_ts
        return FeatureUpdateFrameV1(
            symbol=self.symbols.name_of(result.symbol_id),
            seq=sym.seq,
            source_ts_ns=source_ts,
            local_ts_ns=local_ts,
            feature_set_id=self.feature_set.feature_set_id,
            changed_mask=changed_mask(before, state.values),
            warmup_ready_mask=ready,
            quality_flags=int(flags),
            values=tuple(state.values),
        )

    def process_batch(self, events: np.ndarray) -> FrameBatch:
        """Validate, then apply every message of an event array; frames as columns.

        The whole array is validated before anything is applied, so bad input leaves no
        partial state.
        """
        validate(events, len(self.symbols))
        n_messages = len(message_bounds(events))
        batch = FrameBatch.allocate(self.feature_set, self.symbols, n_messages)
        cols = batch.columns
        value_cols = list(batch.values.values())
        n = 0
        row = -1
        for message in iter_messages(events):
            row += len(message)
            frame = self._apply(message)
            if frame is None:
                continue
            cols["input_index"][n] = row
            cols["symbol_id"][n] = int(message[-1]["symbol_id"])
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

    # ----- pull API -----------------------------------------------------------------------

    def symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]:
        """(values, ready mask, quality flags of the last frame, seq, source ts) of a symbol."""
        sym = self._symbol(sid)
        return tuple(sym.state.values), sym.ready_mask, sym.quality_flags, sym.seq, sym.source_ts_ns

    def reset_symbol(self, sid: int) -> None:
        self.lob.reset_symbol(sid)
        sym = self._symbol(sid)
        sym.reset()
        sym.quality_flags = 0

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.lob.counters)
