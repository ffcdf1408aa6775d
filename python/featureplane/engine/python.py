"""The reference kernel: LOBEngine + lob_shared_v1 state -> frames, one message at a time.

This is the executable spec of the whole per-message pipeline (ordering verdict, book update,
feature update, quality flags, masks). The Rust kernel implements the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from featureplane.book.lob import LOBEngine
from featureplane.book.sequencing import SequenceState
from featureplane.engine.config import EngineConfig
from featureplane.engine.plan_state import PlanEngineState
from featureplane.engine.state import (
    BookState,
    DecayedSumState,
    EmaState,
    EngineState,
    FeatureState,
    FrameState,
    SequencingState,
    SymbolState,
    checked_state,
)
from featureplane.errors import InvalidMessageError
from featureplane.events import NO_SEQ, iter_messages, message_bounds, validate
from featureplane.features.families import PlanState
from featureplane.features.families.evaluator import changed_bits
from featureplane.features.lob_shared_v1 import (
    ALL_BITS,
    DEPTH,
    IS_F64,
    LOB_SHARED_V1,
    LobSharedV1State,
    ready_limit,
)
from featureplane.features.plan import FeaturePlan, plan_of
from featureplane.features.rolling import DecayedSum, Ema, IntWindow
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from featureplane.frames.wire import codec_for, record_buffer
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

FeatureStateT = LobSharedV1State | PlanState
"""A symbol's feature state: the specialised lob_shared_v1 state or the generic one."""


class SymbolFeatures:
    """A symbol's feature state plus the header of its last frame."""

    def __init__(
        self, tick: float, lot: float, limit: int = ALL_BITS, plan: FeaturePlan | None = None
    ) -> None:
        self.tick = tick
        self.lot = lot
        self.limit = limit
        """Features the source's depth can make ready (`lob_shared_v1.ready_limit`)."""
        self.plan = plan
        """The plan of the generic evaluator; None runs the specialised lob_shared_v1 state."""
        self.state: FeatureStateT = self._fresh()
        self.quality_flags = 0
        self.ready_mask = 0
        self.seq = NO_SEQ
        self.source_ts_ns = 0
        self.local_ts_ns = 0

    def _fresh(self) -> FeatureStateT:
        if self.plan is None:
            return LobSharedV1State(self.tick, self.lot)
        return PlanState(self.plan, self.tick, self.lot)

    def reset(self) -> None:
        self.state = self._fresh()
        self.ready_mask = 0


def plan_ready_limit(plan: FeaturePlan, depth: int | None) -> int:
    """The output bits a source carrying `depth` levels per side can make ready: a feature
    reading more levels (itself or through its input) than the source has is never ready."""
    if depth is None:
        return (1 << len(plan.outputs)) - 1
    return sum(1 << bit for bit, i in enumerate(plan.outputs) if plan.nodes[i].meta.depth <= depth)


class ReferenceKernel:
    """The Python backend of `FeatureEngine`.

    The built-in lob_shared_v1 runs its specialised state (`features.lob_shared_v1`); any
    other declared set runs the generic plan evaluator (`features.families`), which
    `generic=True` also selects for lob_shared_v1 (the two agree bit for bit).
    """

    name = "python"

    def __init__(
        self,
        symbols: SymbolTable,
        feature_set: FeatureSet,
        config: EngineConfig,
        *,
        generic: bool = False,
    ) -> None:
        specialised = feature_set.schema_hash == LOB_SHARED_V1.schema_hash and not generic
        self.plan: FeaturePlan | None = None if specialised else plan_of(feature_set)
        self.depth = DEPTH if self.plan is None else max(self.plan.depth, 1)
        self._is_f64 = [spec.dtype == "f64" for spec in feature_set.features]
        self.symbols = symbols
        self.feature_set = feature_set
        self.config = config
        self.lob = LOBEngine(symbols)
        self._features: list[SymbolFeatures] = []
        self._codec = codec_for(feature_set)
        self.frame_size = self._codec.size
        """Bytes of this set's FPF1 typed frame (`process_into`'s buffer)."""

    def _limit(self, depth: int | None) -> int:
        return ready_limit(depth) if self.plan is None else plan_ready_limit(self.plan, depth)

    def _new_symbol(self, tick: float, lot: float, depth: int | None) -> SymbolFeatures:
        return SymbolFeatures(tick, lot, self._limit(depth), self.plan)

    def _symbol(self, sid: int) -> SymbolFeatures:
        self.symbols.spec_of(sid)  # UnknownSymbolError for an id the table does not hold
        while len(self._features) <= sid:
            spec = self.symbols.spec_of(len(self._features))
            self._features.append(self._new_symbol(spec.tick_f64, spec.lot_f64, spec.depth))
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

    def process_into(self, message: np.ndarray, out: Any) -> bool:
        """`process`, its frame written into `out` as an FPF1 typed frame (`out` is checked
        first, as `frames.wire.record_buffer` says); False when the message was dropped."""
        view = record_buffer(out, self.frame_size)
        frame = self.process(message)
        if frame is None:
            return False
        view[:] = self._codec.pack(frame, int(message[-1]["symbol_id"]))
        return True

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
            bids, asks = self.lob.top_n(result.symbol_id, self.depth)
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
        if state.saturated:
            flags |= QualityFlag.VALUE_SATURATED
        # An untrusted book makes every feature of the frame unready until a snapshot; a feature
        # reading more levels than the source carries is never ready.
        ready = 0 if result.untrusted else state.ready_mask() & sym.limit

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
            changed_mask=changed_bits(self._is_f64, before, state.values),
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
        """Clear symbol `sid`'s book, sequence and feature state; its next frame carries
        STATE_RESET."""
        self.lob.reset_symbol(sid)
        sym = self._symbol(sid)
        sym.reset()
        sym.quality_flags = 0

    @property
    def counters(self) -> dict[str, int]:
        """A copy of the message counters by name (`featureplane.book.lob.COUNTER_NAMES`)."""
        return dict(self.lob.counters)

    # ----- state (featureplane.engine.state) ---------------------------------------------

    def export_state(self) -> EngineState | PlanEngineState:
        """Everything the next frames depend on, backend-neutral: every symbol's book (all
        levels), sequence state, lob_shared_v1 state and last frame header, and the counters."""
        if self.plan is not None:
            return export_plan_state(self)
        symbols = []
        for sid, spec in enumerate(self.symbols.specs):
            book = self.lob._book_of(sid)
            sym = self._symbol(sid)
            seq = book.seq
            symbols.append(
                SymbolState(
                    symbol=spec.symbol,
                    tick_size=str(spec.tick_size),
                    lot_size=str(spec.lot_size),
                    book=BookState(book.book.bids.levels(), book.book.asks.levels()),
                    sequencing=SequencingState(
                        book_seq=seq.book_seq,
                        trade_seq=seq.trade_seq,
                        after_snapshot=seq.after_snapshot,
                        last_source_ts_ns=seq.last_source_ts_ns,
                        untrusted=book.untrusted,
                        reset_pending=book.reset_pending,
                        out_of_order_pending=book.out_of_order_pending,
                        messages_applied=book.messages_applied,
                    ),
                    features=_feature_state(sym.state),
                    frame=FrameState(
                        sym.quality_flags,
                        sym.ready_mask,
                        sym.seq,
                        sym.source_ts_ns,
                        sym.local_ts_ns,
                    ),
                )
            )
        return EngineState(
            self.feature_set.feature_set_id,
            self.feature_set.schema_hash,
            dict(self.lob.counters),
            symbols,
        )

    def import_state(self, state: EngineState | PlanEngineState | Mapping[str, Any]) -> None:
        """Replace the whole state with `state` (from either backend); symbols of the table
        beyond the state's start fresh.

        Raises
        ------
        SchemaMismatchError, InvalidStateError
            See `engine_state.checked_state`; the kernel is left unchanged.
        """
        if self.plan is not None:
            import_plan_state(self, state)
            return
        if isinstance(state, PlanEngineState):
            state = state.to_dict()  # refused below: another format
        saved = checked_state(state, self.feature_set, self.symbols)
        # Checked: nothing below can fail, so the kernel never holds half a state.
        self.lob.counters.update(saved.counters)
        for sid, spec in enumerate(self.symbols.specs):
            book = self.lob._book_of(sid)
            self._symbol(sid)  # makes room for sid
            sym = self._new_symbol(spec.tick_f64, spec.lot_f64, spec.depth)
            self._features[sid] = sym
            book.reset()
            book.messages_applied = 0
            if sid >= len(saved.symbols):
                continue
            s = saved.symbols[sid]
            for px, qty in reversed(s.book.bids):  # ascending: each insert is an append
                book.book.bids.set(px, qty)
            for px, qty in s.book.asks:
                book.book.asks.set(px, qty)
            q = s.sequencing
            book.seq = SequenceState(q.book_seq, q.trade_seq, q.after_snapshot, q.last_source_ts_ns)
            book.untrusted = q.untrusted
            book.reset_pending = q.reset_pending
            book.out_of_order_pending = q.out_of_order_pending
            book.messages_applied = q.messages_applied
            sym.state = _lob_shared_v1_state(spec.tick_f64, spec.lot_f64, s.features)
            f = s.frame
            sym.quality_flags = f.quality_flags
            sym.ready_mask = f.warmup_ready_mask
            sym.seq = f.seq
            sym.source_ts_ns = f.source_ts_ns
            sym.local_ts_ns = f.local_ts_ns


def _ema_state(ema: Ema) -> EmaState:
    return EmaState(float(ema.value), ema.count)


def _decayed_state(s: DecayedSum) -> DecayedSumState:
    return DecayedSumState(float(s.value), s.last_ts_ns, s.count)


def _feature_state(st: FeatureStateT) -> FeatureState:
    assert isinstance(st, LobSharedV1State)
    return FeatureState(
        values=[float(v) if f64 else int(v) for v, f64 in zip(st.values, IS_F64, strict=True)],
        n_book=st.n_book,
        n_trade=st.n_trade,
        has_bid=st.has_bid,
        has_ask=st.has_ask,
        prev_bids=list(st.prev_bids),
        prev_asks=list(st.prev_asks),
        ofi_cum=st.ofi_cum,
        ofi_ema=_ema_state(st.ofi_ema),
        ofi_decay=_decayed_state(st.ofi_decay),
        spread_ema=_ema_state(st.spread_ema),
        imbalance_ema=_ema_state(st.imbalance_ema),
        mids=list(st.mids.values),
        mid_changes=list(st.mid_changes.values),
        n_mids=st.n_mids,
        signed_qty_cum=st.signed_qty_cum,
        tfi=_decayed_state(st.tfi),
    )


def _set_ema(ema: Ema, saved: EmaState) -> None:
    ema.value, ema.count = saved.value, saved.count


def _set_decayed(s: DecayedSum, saved: DecayedSumState) -> None:
    s.value, s.last_ts_ns, s.count = saved.value, saved.last_ts_ns, saved.count


def _fill(window: IntWindow, values: list[int]) -> None:
    for x in values:  # the running sums follow from the values
        window.push(x)


def _lob_shared_v1_state(tick: float, lot: float, saved: FeatureState) -> LobSharedV1State:
    st = LobSharedV1State(tick, lot)
    st.values = list(saved.values)
    st.n_book = saved.n_book
    st.n_trade = saved.n_trade
    st.has_bid = saved.has_bid
    st.has_ask = saved.has_ask
    st.prev_bids = list(saved.prev_bids)
    st.prev_asks = list(saved.prev_asks)
    st.ofi_cum = saved.ofi_cum
    _set_ema(st.ofi_ema, saved.ofi_ema)
    _set_decayed(st.ofi_decay, saved.ofi_decay)
    _set_ema(st.spread_ema, saved.spread_ema)
    _set_ema(st.imbalance_ema, saved.imbalance_ema)
    _fill(st.mids, saved.mids)
    _fill(st.mid_changes, saved.mid_changes)
    st.n_mids = saved.n_mids
    st.signed_qty_cum = saved.signed_qty_cum
    _set_decayed(st.tfi, saved.tfi)
    return st


def export_plan_state(kernel: ReferenceKernel) -> PlanEngineState:
    """The checkpoint of a kernel running the generic evaluator."""
    from featureplane.engine.plan_state import export_plan_state as export

    return export(kernel)


def import_plan_state(kernel: ReferenceKernel, state: object) -> None:
    """Restore a checkpoint into a kernel running the generic evaluator."""
    from featureplane.engine.plan_state import import_plan_state as restore

    restore(kernel, state)
