"""The live `StrategyRunner`: backtest strategies, unchanged, on the live market data service.

A strategy is the same `BaseStrategy` with the same `StrategyContext` as in a backtest: one
context per symbol (the first is the strategy's `ctx`, the others reached with
`ctx.for_symbol`), features pulled from the engine (`get_feature_view`) or pushed
(`on_features`), orders through the risk gate to the paper adapter.

The runner listens to the service; for each applied message of one of its symbols:

1. **control first**: order responses queued since the last message are delivered
   (`on_order_response`), then the paper adapter applies the message (fills, queue, arrivals)
   and the responses that makes are delivered too, before any market data hook;
2. `on_features(frame)` for a strategy that defines it;
3. `on_book()` when the message changed the book, `on_trade(trades)` when it held trades;
4. the decision clock, as the backtest runner's: the first message starts it, and the first
   message at or after `next_decision` calls `on_wakeup`. Its time is the event clock (the
   largest exchange time seen, `[runner] clock = "event"`: a replayed capture gives the same
   decisions every time) or the host's (`"wall"`: a timer wakes the strategy too).

Every hook call is timed; one longer than the strategy's `callback_budget_us` is an overrun,
counted and kept (the slowest ones) for the report; the loop does not wait for it, nor stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featureplane.errors import ConfigError
from featureplane.events import CLEAR, LEVEL, SNAPSHOT, TRADE
from featureplane.frames.frame import FeatureView, QualityFlag, Value
from featureplane.live.config import LiveConfig, StrategyConfig, import_object
from featureplane.live.paper import PaperOrder, PaperOrderAdapter
from featureplane.live.risk import RiskEngine, RiskGate, frame_health
from featureplane.live.service import MarketDataService, MarketUpdate
from featureplane.strategy.base import TRADE_DTYPE, BaseStrategy, wants_push
from featureplane.strategy.context import L1, Levels, StrategyContext
from featureplane.strategy.orders import Side

_BOOK_KINDS = np.array([LEVEL, CLEAR, SNAPSHOT])


def build_strategy(config: StrategyConfig) -> BaseStrategy:
    """Import a strategy class and build it with its parameters.

    A class whose `__init__` takes `params` gets them as its parameter dataclass when the
    annotation names one (the example market makers' `ImbalanceMMParams`), else as a dict;
    otherwise the parameters are its keyword arguments.
    """
    cls = import_object(config.cls)
    if not (isinstance(cls, type) and issubclass(cls, BaseStrategy)):
        raise TypeError(f"{config.cls} is not a BaseStrategy subclass")
    params = dict(config.params)
    sig = inspect.signature(cls)
    if "params" in sig.parameters:
        hint = sig.parameters["params"].annotation
        ptype = _params_type(cls, hint)
        return cls(params=ptype(**params) if ptype is not None else params)  # type: ignore[call-arg]
    return cls(**params)


def _params_type(cls: type, hint: Any) -> Any:
    try:
        init = next(k.__dict__["__init__"] for k in cls.__mro__ if "__init__" in k.__dict__)
        hints = inspect.get_annotations(init, eval_str=True)
    except Exception:  # an annotation that does not evaluate: take a dict
        return None
    hint = hints.get("params", hint)
    for arg in (*getattr(hint, "__args__", ()), hint):
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


class LiveMarket:
    """A context's market side: the runner's clock and the service's book of one symbol."""

    def __init__(self, runner: LiveStrategyRunner, service: MarketDataService, symbol: str) -> None:
        self._runner = runner
        self._service = service
        self.symbol = symbol

    @property
    def now_ns(self) -> int:
        return self._runner.now_ns

    def l1(self) -> L1:
        b = self._service.book.get_l1_scaled(self.symbol)
        # The book's L1 says None for an empty side; the strategy's says qty 0.
        return L1(b.bid_px or 0, b.bid_qty or 0, b.ask_px or 0, b.ask_qty or 0)

    def levels(self, side: int, n: int) -> Levels:
        if side not in (1, -1):
            raise ValueError(f"side is 1 (bid) or -1 (ask), got {side}")
        bids, asks = self._service.book.top_n(self.symbol, n)
        return [(int(p), int(q)) for p, q in (bids if side == 1 else asks)]


class _ServiceBook:
    """The service's books as they are now: a backend switch or a fallback to the legacy path
    replaces the book object, and the paper adapter must follow it."""

    def __init__(self, service: MarketDataService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service.book, name)


class LiveFeatures:
    """A context's features: the engine's current view, with the service's gap mark."""

    def __init__(self, service: MarketDataService, symbol: str) -> None:
        assert service.engine is not None
        self._engine = service.engine
        self._service = service
        self.symbol = symbol
        self._sid = service.symbols.id_of(symbol)

    @property
    def feature_set_id(self) -> str:
        return self._engine.get_feature_set_id()

    def value(self, feature: int | str) -> Value:
        return self._engine.get_feature(self.symbol, feature)

    def view(self) -> FeatureView:
        view = self._engine.get_feature_view(self.symbol)
        if self._service.engine is None:
            # The feature path was turned off mid-run (a canary rollback): nothing is ready.
            flags = view.quality_flags | int(QualityFlag.PARTIAL_FEATURES)
            return dataclasses.replace(view, quality_flags=flags, warmup_ready_mask=0)
        if self._service.gapped(self._sid):
            flags = view.quality_flags | int(QualityFlag.GAP_DETECTED)
            view = dataclasses.replace(view, quality_flags=flags, warmup_ready_mask=0)
        return view


@dataclass
class RunnerReport:
    messages: int = 0
    decisions: int = 0
    order_responses: int = 0
    frames_pushed: int = 0
    book_calls: int = 0
    trade_calls: int = 0
    hook_calls: int = 0
    overruns: int = 0
    worst_us: list[tuple[float, str]] = field(default_factory=list)
    position: dict[str, int] = field(default_factory=dict)
    fills: dict[str, int] = field(default_factory=dict)
    refused: int = 0


class LiveStrategyRunner:
    """Runs one strategy on the live service (see the module doc).

    Parameters
    ----------
    name, strategy, symbols
        The strategy and the symbols it trades (the first is `ctx`'s).
    service
        The market data service it listens to.
    risk
        The shared risk engine.
    decision_interval_ns, callback_budget_ns
        The decision period and the per-hook budget.
    clock
        "event" or "wall" (see the module doc).
    latency_ns
        The paper adapter's order latency (event time).
    """

    def __init__(
        self,
        name: str,
        strategy: BaseStrategy,
        symbols: tuple[str, ...],
        service: MarketDataService,
        risk: RiskEngine,
        *,
        decision_interval_ns: int = 100_000_000,
        callback_budget_ns: int = 1_000_000,
        clock: str = "event",
        latency_ns: int = 0,
        health: Any = None,
    ) -> None:
        if decision_interval_ns <= 0:
            raise ValueError("decision_interval_ns must be positive")
        self.name = name
        self.strategy = strategy
        self.symbols = symbols
        self.service = service
        self.risk = risk
        self.interval = decision_interval_ns
        self.budget_ns = callback_budget_ns
        self.clock = clock
        self.stats = RunnerReport()
        self._sids = {service.symbols.id_of(s): s for s in symbols}
        self._control: deque[PaperOrder] = deque()
        self._push = wants_push(strategy)
        self._started = False
        self._next_decision: int | None = None
        self._wall_task: asyncio.Task[None] | None = None
        self.health = health or self._health
        peers: dict[str, StrategyContext] = {}
        self.adapters: dict[str, PaperOrderAdapter] = {}
        self.gates: dict[str, RiskGate] = {}
        for symbol in symbols:
            sid = service.symbols.id_of(symbol)
            spec = service.symbols.spec(symbol)
            paper = PaperOrderAdapter(
                symbol, sid, _ServiceBook(service), lambda: self.service.now_ns,
                latency_ns=latency_ns, on_response=self._control.append,
            )  # fmt: skip
            self.adapters[symbol] = paper
            risk.on_cancel_all(paper.cancel_all)
            gate = RiskGate(
                risk, paper, strategy=name, symbol=symbol, tick=spec.tick_f64,
                health=self.health, mid_ticks2=functools.partial(self._mid2, symbol),
            )  # fmt: skip
            self.gates[symbol] = gate
            features = LiveFeatures(service, symbol) if service.engine is not None else None
            peers[symbol] = StrategyContext(
                symbol, LiveMarket(self, service, symbol), gate, features, peers, spec
            )
        self.contexts = peers
        self.ctx = peers[symbols[0]]
        service.listen(self)

    # ----- clock and health ---------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        return self.service.now_ns if self.clock == "event" else time.time_ns()

    def _mid2(self, symbol: str) -> int | None:
        l1 = self.service.book.get_l1_scaled(symbol)
        if not l1.bid_qty or not l1.ask_qty or l1.bid_px is None or l1.ask_px is None:
            return None
        return int(l1.bid_px) + int(l1.ask_px)

    def _health(self, symbol: str) -> str:
        sid = self.service.symbols.id_of(symbol)
        flags, ready = self.service.last_flags(sid)
        feed = self.service.feed
        live = getattr(feed, "by_id", {}).get(sid) if feed is not None else None
        syncing = live is not None and int(live.state) == 0
        stale = bool(feed is not None and hasattr(feed, "stale") and feed.stale(symbol))
        return frame_health(flags, ready, syncing, stale, self.service.gapped(sid))

    # ----- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Bind and start the strategy (before the first message)."""
        if self._started:
            return
        self._started = True
        self.strategy.bind(self.ctx)
        self._call("on_start", self.strategy.on_start)
        if self.clock == "wall":
            with contextlib.suppress(RuntimeError):
                self._wall_task = asyncio.get_running_loop().create_task(self._wall_clock())

    def stop(self) -> None:
        """Cancel the strategy's open orders, deliver the responses, call `on_end`."""
        if self._wall_task is not None:
            self._wall_task.cancel()
        for paper in self.adapters.values():
            paper.cancel_all()
        self._deliver_control()
        if self._started:
            self._call("on_end", self.strategy.on_end)

    async def _wall_clock(self) -> None:
        while True:
            await asyncio.sleep(self.interval / 1e9)
            self.service.post_control(self._maybe_decide)

    # ----- the listener -------------------------------------------------------------------

    def __call__(self, update: MarketUpdate) -> None:
        symbol = self._sids.get(update.symbol_id)
        if symbol is None:
            return
        if not self._started:
            self.start()
        self.stats.messages += 1
        self._deliver_control()
        self.adapters[symbol].on_update(update)
        self._deliver_control()
        strategy = self.strategy
        if self._push and update.frame is not None:
            self._call("on_features", strategy.on_features, update.frame)  # type: ignore[attr-defined]
            self.stats.frames_pushed += 1
        kinds = update.message["kind"]
        self.ctx.event_symbol = symbol  # the symbol of the market data hooks below
        if np.isin(kinds, _BOOK_KINDS).any():
            self._call("on_book", strategy.on_book)
            self.stats.book_calls += 1
        trades = update.message[kinds == TRADE]
        if len(trades):
            out = np.zeros(len(trades), dtype=TRADE_DTYPE)
            out["local_ts_ns"] = trades["local_ts_ns"]
            out["source_ts_ns"] = trades["source_ts_ns"]
            out["side"] = trades["side"]
            out["px"] = trades["px"]
            out["qty"] = trades["qty"]
            self._call("on_trade", strategy.on_trade, out)
            self.stats.trade_calls += 1
        if self.clock == "event":
            self._maybe_decide()

    def _maybe_decide(self) -> None:
        now = self.now_ns
        if self._next_decision is None:
            self._next_decision = now + self.interval
            return
        if now >= self._next_decision:
            self.stats.decisions += 1
            self._call("on_wakeup", self.strategy.on_wakeup)
            self._next_decision = now + self.interval

    def _deliver_control(self) -> None:
        while self._control:
            self._control.popleft()
            self.stats.order_responses += 1
            self._call("on_order_response", self.strategy.on_order_response)

    def _call(self, hook: str, fn: Any, *args: Any) -> None:
        t0 = time.perf_counter_ns()
        fn(*args)
        dt = time.perf_counter_ns() - t0
        self.stats.hook_calls += 1
        if dt > self.budget_ns:
            self.stats.overruns += 1
            worst = self.stats.worst_us
            worst.append((dt / 1e3, hook))
            worst.sort(reverse=True)
            del worst[5:]

    def report(self) -> dict[str, Any]:
        s = self.stats
        s.position = {sym: a.position() for sym, a in self.adapters.items()}
        s.fills = {sym: len(a.fills) for sym, a in self.adapters.items()}
        s.refused = sum(a.rejected for a in self.adapters.values())
        return dataclasses.asdict(s)


def build_runners(config: LiveConfig, registry: Any) -> None:
    """Risk, paper adapters and one runner per `[[strategies]]`, into the registry."""
    if not config.strategies:
        return
    service: MarketDataService = registry.get("service")
    table = service.symbols
    risk = RiskEngine(config.risk, lambda: service.now_ns, lambda s: table.spec(s).lot_f64)
    registry.register("risk", risk)
    for s in config.strategies:
        runner = LiveStrategyRunner(
            s.name,
            build_strategy(s),
            s.symbols,
            service,
            risk,
            decision_interval_ns=int(s.decision_interval_ms * 1e6),
            callback_budget_ns=int(s.callback_budget_us * 1e3),
            clock=config.runner.clock,
            latency_ns=int(config.paper.latency_ms * 1e6),
        )
        registry.register(f"runner:{s.name}", runner)


__all__ = ["LiveStrategyRunner", "Side", "build_runners", "build_strategy", "check_strategies"]


def check_strategies(config: LiveConfig) -> None:
    """Import every strategy class and build its parameters (what `--check` adds).

    Raises
    ------
    ConfigError
        Every class that does not import or take its parameters.
    """
    problems: list[str] = []
    for i, s in enumerate(config.strategies):
        try:
            build_strategy(s)
        except Exception as exc:  # reported, with the others, as a config problem
            problems.append(f"strategies[{i}] ({s.name}): {type(exc).__name__}: {exc}")
    if problems:
        raise ConfigError("strategies", problems)
