"""`MarketDataService`: normalizer -> LOBEngine -> FeatureEngine on one event loop.

The feed's readers hand it what the research chain released (`offer`, from the network side);
the service's consumer applies it message by message to the `FeatureEngine` (or, with
`feature_engine.enabled = false`, to a bare `LOBEngine`: the legacy path, where strategies get
books and trades and compute their own features) and delivers each applied message, with its
frame, to the listeners (strategy runner, paper adapter, frame writer) in order.

**The inbox is bounded** (`queue_max_messages`; one release may carry a snapshot and the
diffs held with it, so the inbox never holds more than the bound plus `max_held_diffs`
messages). An arrival that finds it full is not queued,
and that is never silent: the messages are counted (`overflow_messages`, per symbol), the
symbol is resynced at once (the feed asks for a fresh snapshot, epoch-tagged), and from that
point in the stream until the resync snapshot is applied every frame of the symbol carries
`GAP_DETECTED` with a `warmup_ready_mask` of 0, as the engine's own gap rule would mark them: a
slow consumer loses data visibly and catches up by resyncing, never by falling further behind.
Control work (order responses, risk state, the kill switch) is queued apart and always runs
before the next market-data message.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from featureplane.book.lob import LOBEngine
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.events import CLEAR, END_OF_MESSAGE
from featureplane.features.plan import refuse_research_only
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FeatureUpdateFrameV1, QualityFlag
from featureplane.instruments import SymbolTable
from featureplane.live.feed.client import FeedData
from featureplane.live.latency import LatencyRecorder
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet


@dataclass(frozen=True, slots=True)
class MarketUpdate:
    """One applied message, as the listeners see it."""

    symbol_id: int
    message: np.ndarray
    """The message's `EVENT_DTYPE` rows."""
    frame: FeatureUpdateFrameV1 | None
    """Its feature frame (None on the legacy path)."""
    now_ns: int
    """Event clock: the largest exchange time seen so far, any symbol."""
    local_ts_ns: int


class Listener(Protocol):
    def __call__(self, update: MarketUpdate) -> None: ...


class FeedControl(Protocol):
    """What the service needs of a feed: resync a symbol, and its sync and stale states."""

    def resync(self, symbol_id: int, reason: str) -> int:
        """Start a resync of the symbol; returns its new epoch."""
        ...


@dataclass
class ServiceCounters:
    items_in: int = 0
    messages_in: int = 0
    messages_applied: int = 0
    messages_dropped_by_engine: int = 0
    frames: int = 0
    overflow_items: int = 0
    overflow_messages: int = 0
    overflow_by_symbol: Counter[str] = field(default_factory=Counter)
    queue_high_water: int = 0
    control_run: int = 0


class StageTimes:
    """Time spent in risk checks and in the order adapter during the message being applied
    (ns, `perf_counter_ns`); the gate and the paper adapter add, the service reads and clears
    them per message when stage metrics are on."""

    __slots__ = ("order_ns", "risk_ns")

    def __init__(self) -> None:
        self.risk_ns = 0
        self.order_ns = 0


class SymbolMetrics:
    """Per-symbol counters kept for the metrics exporter (plain ints, indexed by symbol id),
    recorded only while stage metrics are on (`MarketDataService.stages`)."""

    def __init__(self, n: int, start_ns: int) -> None:
        self.frames = [0] * n
        self.last_local_ns = [0] * n
        """Local receive time of each symbol's last frame (0: none yet)."""
        self.flag_values: list[dict[int, int]] = [{} for _ in range(n)]
        """Per symbol, frames by their whole `quality_flags` value (split into flags at
        scrape time: one dict update per flagged frame instead of one per flag)."""
        self.start_ns = start_ns


class MarketDataService:
    """See the module doc.

    Parameters
    ----------
    symbols
        The engine's symbol table (the feed's ids index it).
    feature_set, backend, engine_config
        The FeatureEngine's, when `features` is on.
    features
        The feature flag: False runs the legacy path (books and trades, no frames).
    queue_max_messages
        The inbox bound, in messages.
    latency
        Where to record per-stage times (the benchmark); None records nothing.
    """

    def __init__(
        self,
        symbols: SymbolTable,
        *,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        backend: str | None = None,
        engine_config: EngineConfig | None = None,
        features: bool = True,
        queue_max_messages: int = 16_384,
        batch_max: int = 256,
        latency: LatencyRecorder | None = None,
    ) -> None:
        self.symbols = symbols
        self.features = features
        if features:
            refuse_research_only(resolve_feature_set(feature_set))
        self.engine: FeatureEngine | None = (
            FeatureEngine(symbols, feature_set, backend=backend, config=engine_config)
            if features
            else None
        )
        self._lob = LOBEngine(symbols) if not features else None
        self.queue_max = queue_max_messages
        self.batch_max = batch_max
        self.latency = latency
        self.counters = ServiceCounters()
        self.feed: FeedControl | None = None
        self.recorder: Any = None
        self.shadow: Any = None
        """Shadow parity (`featureplane.rollout.shadow.ShadowParity`): when set, every message
        goes through its `process(engine, message)`, which samples it for the comparison."""
        self._inbox: deque[FeedData | _GapMark] = deque()
        self._queued_messages = 0
        self._control: deque[Callable[[], None]] = deque()
        self._listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._gap_until: dict[int, int] = {}
        """Symbols with lost input -> the epoch whose snapshot clears them (from the loss on
        in stream order)."""
        self._lossy: set[int] = set()
        """Symbols with lost input whose resync has been asked for (from the loss on in
        arrival order)."""
        self._last_flags: dict[int, int] = {}
        self._last_ready: dict[int, int] = {}
        self.now_ns = 0
        self.stages: Any = None
        """A stage ring (`featureplane.live.metrics.stages.StageRing`) to record per-message
        stage durations into; None records nothing (set by the bootstrap with `[metrics]`)."""
        self.stage_times = StageTimes()
        self.symbol_metrics = SymbolMetrics(len(symbols), time.time_ns())

    # ----- wiring -------------------------------------------------------------------------

    @property
    def book(self) -> Any:
        """The books the listeners read (`top_n`, `get_l1_scaled`): the engine's, or the
        legacy path's LOBEngine."""
        return self.engine.lob if self.engine is not None else self._lob

    def listen(self, listener: Listener) -> None:
        """Call `listener(update)` for every applied message, in order."""
        self._listeners.append(listener)

    def post_control(self, action: Callable[[], None]) -> None:
        """Run `action` before the next market-data message (control before data)."""
        self._control.append(action)
        self._wake.set()

    # ----- network side -------------------------------------------------------------------

    def offer(self, data: FeedData) -> bool:
        """Queue a release of the feed; False when the inbox is full (see the module doc)."""
        n = int(np.count_nonzero(data.released.events["flags"] & END_OF_MESSAGE))
        c = self.counters
        c.items_in += 1
        c.messages_in += n
        if self._queued_messages >= self.queue_max:
            c.overflow_items += 1
            c.overflow_messages += n
            c.overflow_by_symbol[self.symbols.name_of(data.symbol_id)] += n
            events = data.released.events
            self._lost_input(data.symbol_id, bool(np.any(events["kind"] == CLEAR)))
            return False
        self._inbox.append(data)
        self._queued_messages += n
        if self._queued_messages > c.queue_high_water:
            c.queue_high_water = self._queued_messages
        self._wake.set()
        return True

    def _lost_input(self, sid: int, snapshot: bool) -> None:
        # One resync per loss, unless what was lost is the very snapshot it waits for.
        if sid in self._lossy and not snapshot:
            return
        self._lossy.add(sid)
        epoch = self.feed.resync(sid, "service queue overflow") if self.feed is not None else 0
        # The mark goes into the stream where the loss happened: frames from here are gapped.
        self._inbox.append(_GapMark(sid, epoch))
        self._wake.set()

    def offer_data(self, data: FeedData) -> None:
        """`offer`, for a feed's `on_data` (a refusal is already counted and handled)."""
        self.offer(data)

    @property
    def queued(self) -> int:
        return self._queued_messages

    # ----- consumer side ------------------------------------------------------------------

    def step(self, limit: int | None = None) -> int:
        """Process up to `limit` queued items (control first before each); returns how many."""
        limit = self.batch_max if limit is None else limit
        done = 0
        inbox, control = self._inbox, self._control
        while done < limit and (inbox or control):
            while control:
                control.popleft()()
                self.counters.control_run += 1
            if not inbox:
                break
            self._process(inbox.popleft())
            done += 1
        return done

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set and the inbox is empty."""
        while True:
            if not self._inbox and not self._control:
                if stop.is_set():
                    return
                self._wake.clear()
                stopping = asyncio.create_task(stop.wait())
                woke = asyncio.create_task(self._wake.wait())
                await asyncio.wait({stopping, woke}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                woke.cancel()
                continue
            self.step()
            await asyncio.sleep(0)  # the network's turn

    def drain(self) -> int:
        """Process everything queued now (a shutdown flushes this way)."""
        total = 0
        while self._inbox or self._control:
            total += self.step(1 << 30)
        return total

    def _process(self, data: FeedData | _GapMark) -> None:
        sid = data.symbol_id
        if isinstance(data, _GapMark):
            self._gap_until[sid] = max(self._gap_until.get(sid, 0), data.epoch)
            return
        released = data.released
        dequeued = time.perf_counter_ns()
        events = released.events
        if self.recorder is not None:
            self.recorder.write(self.symbols.name_of(sid), released.lines)
        ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE) + 1
        n = len(ends)
        self._queued_messages -= n
        start = 0
        engine, lob = self.engine, self._lob
        shadow = self.shadow
        c = self.counters
        stages = self.stages
        t_in = 0
        for end in ends.tolist():
            message = events[start:end]
            start = end
            src = int(message["source_ts_ns"][-1])
            if src > self.now_ns:
                self.now_ns = src
            frame: FeatureUpdateFrameV1 | None = None
            if stages is not None:
                t_in = time.perf_counter_ns()
            if engine is not None:
                if shadow is None:
                    frame = engine.process(message)
                else:  # the shadow samples the message and its frame, off the hot path
                    frame = shadow.process(engine, message)
                if frame is None:
                    c.messages_dropped_by_engine += 1
                    continue
                if sid in self._gap_until:
                    frame = self._gapped(sid, data.epoch, message, frame)
                self._last_flags[sid] = frame.quality_flags
                self._last_ready[sid] = frame.warmup_ready_mask
                c.frames += 1
            else:
                assert lob is not None
                result = lob.apply(message)
                if not result.applied:
                    c.messages_dropped_by_engine += 1
                    continue
                # The legacy path has no frames: its health comes from the book's own rules.
                flags = (
                    (int(QualityFlag.GAP_DETECTED) if result.untrusted else 0)
                    | (int(QualityFlag.STATE_RESET) if result.reset else 0)
                    | (int(QualityFlag.OUT_OF_ORDER_INPUT) if result.out_of_order else 0)
                )
                l1 = lob.get_l1_scaled(sid)
                two_sided = bool(l1.bid_qty) and bool(l1.ask_qty)
                if not two_sided:
                    flags |= int(QualityFlag.PARTIAL_FEATURES)
                self._last_flags[sid] = flags
                self._last_ready[sid] = int(two_sided)
            c.messages_applied += 1
            framed = time.perf_counter_ns()
            local = int(message["local_ts_ns"][-1])
            update = MarketUpdate(sid, message, frame, self.now_ns, local)
            for listener in self._listeners:
                listener(update)
            if stages is not None:
                delivered = time.perf_counter_ns()
                self._record(data, sid, frame, local, dequeued, t_in, framed, delivered)
                if self.latency is not None:
                    self.latency.add(data.wire_ns, data.parsed_ns, dequeued, framed, delivered)
            elif self.latency is not None:
                self.latency.add(
                    data.wire_ns, data.parsed_ns, dequeued, framed, time.perf_counter_ns()
                )

    def _record(
        self, data: FeedData, sid: int, frame: FeatureUpdateFrameV1 | None, local: int,
        dequeued: int, t_in: int, framed: int, delivered: int,
    ) -> None:  # fmt: skip
        """One applied message into the stage ring and the per-symbol counters."""
        sm = self.symbol_metrics
        sm.last_local_ns[sid] = local
        st = self.stage_times
        if frame is not None:
            sm.frames[sid] += 1
            flags = frame.quality_flags
            if flags:
                fv = sm.flag_values[sid]
                fv[flags] = fv.get(flags, 0) + 1
            book, features = 0, framed - t_in
        else:
            book, features = framed - t_in, 0
        self.stages.record(
            dequeued - data.parsed_ns, data.parsed_ns - data.wire_ns, book, features,
            delivered - framed, st.risk_ns, st.order_ns,
        )  # fmt: skip
        st.risk_ns = st.order_ns = 0

    def _gapped(
        self, sid: int, epoch: int, message: np.ndarray, frame: FeatureUpdateFrameV1
    ) -> FeatureUpdateFrameV1:
        """A frame of a symbol whose input was lost: gapped until its resync snapshot."""
        need = self._gap_until[sid]
        if int(message["kind"][0]) == CLEAR and epoch >= need:
            del self._gap_until[sid]
            self._lossy.discard(sid)
            return frame
        return replace(
            frame,
            quality_flags=frame.quality_flags | int(QualityFlag.GAP_DETECTED),
            warmup_ready_mask=0,
        )

    def disable_features(self) -> None:
        """Turn the feature path off mid-run (the canary's legacy fallback): the books go on
        in the reference's `LOBEngine`, with every level and sequence the engine held, and
        the listeners get books and trades and no frames from the next message on."""
        engine = self.engine
        if engine is None:
            return
        engine.set_backend("python")  # the reference kernel's books are a LOBEngine
        self._lob = engine.lob  # type: ignore[assignment]
        self.engine = None
        self.features = False

    # ----- health -------------------------------------------------------------------------

    def gapped(self, sid: int) -> bool:
        """The symbol lost input in the service and waits for its resync."""
        return sid in self._gap_until

    def last_flags(self, sid: int) -> tuple[int, int]:
        """(quality flags, ready mask) of the symbol's last frame; (0, 0) before any."""
        return self._last_flags.get(sid, 0), self._last_ready.get(sid, 0)


@dataclass(frozen=True, slots=True)
class _GapMark:
    """Stands in the inbox where input of a symbol was lost (see `_lost_input`)."""

    symbol_id: int
    epoch: int
