"""`HftBacktestAdapter`: strategies and feature frames on hftbacktest's backtester.

hftbacktest keeps the execution simulation (order latency, queue position, fills, fees); the
adapter adds the feature plane and the strategy API on top:

- `feature_mode="stats_only"`: the strategy sees the top of book of hftbacktest's own depth, and
  no features (the compatibility mode).
- `feature_mode="lob_feature"`, `feature_feed="streaming"`: every message hftbacktest applies also
  goes through a `FeatureEngine` (full incremental depth, read back from the very array
  hftbacktest replays); at each wake-up the strategy sees the frames whose local timestamp is
  `<= now`.
- `feature_mode="lob_feature"`, `feature_feed="precomputed"`: the same frames from one
  `process_batch`, looked up as of `now`; `feature_arrays()` hands them to a numba loop.

hftbacktest's pitfalls are handled here (docs/backtest.md): the event array lives as long as any
session using it; no order before the first step; bounded timeouts; the last batch (end of data)
is read; trades are copied before the buffer is cleared; ROIVector's best-qty accessors are
never used.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from featureplane.adapters.hftbacktest.features import (
    FeatureArrays,
    MessageIndex,
    PrecomputedFeatures,
    StreamingFeatures,
)
from featureplane.adapters.hftbacktest.limits import MAX_SPAN_TICKS, check_feed
from featureplane.adapters.hftbacktest.session import BacktestSession, SessionMarket
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import HftbacktestMissingError, SourceFormatError
from featureplane.frames.frame import FrameBatch
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events, to_hftbacktest_events

FeatureMode = Literal["stats_only", "lob_feature"]
FeatureFeed = Literal["streaming", "precomputed"]
QueueModel = Literal["risk_adverse", "power_prob", "log_prob"]
FEATURE_MODES: tuple[FeatureMode, ...] = ("stats_only", "lob_feature")
FEATURE_FEEDS: tuple[FeatureFeed, ...] = ("streaming", "precomputed")

INSTALL_HINT = (
    "hftbacktest is not installed: `pip install 'featureplane[backtest]'` "
    "(or `pip install hftbacktest==2.4.4`)"
)


def require_hftbacktest() -> Any:
    """The hftbacktest module, or an ImportError that says how to install it."""
    try:
        import hftbacktest
    except ImportError as exc:
        raise HftbacktestMissingError(INSTALL_HINT) from exc
    return hftbacktest


@contextmanager
def quiet_numba() -> Iterator[None]:
    """hftbacktest's numba bindings raise DeprecationWarnings on every call; they are noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@dataclass(frozen=True)
class ExecutionModel:
    """hftbacktest's execution models (its `BacktestAsset` builder calls).

    Defaults: 1 ms order entry and 1 ms response latency, `PowerProbQueueModel(2)`, no partial
    fills, Binance USD-M's base fees (maker 0.02 %, taker 0.05 % of traded value).
    """

    entry_latency_ns: int = 1_000_000
    response_latency_ns: int = 1_000_000
    queue_model: QueueModel = "power_prob"
    queue_power: float = 2.0
    partial_fill: bool = False
    maker_fee: float = 0.0002
    taker_fee: float = 0.0005
    contract_size: float = 1.0
    """`linear_asset(contract_size)`: PnL in quote currency per unit of size."""

    def __post_init__(self) -> None:
        if self.entry_latency_ns < 0 or self.response_latency_ns < 0:
            raise ValueError("latencies are non-negative ns")
        if self.queue_model not in ("risk_adverse", "power_prob", "log_prob"):
            raise ValueError(f"unknown queue model {self.queue_model!r}")


class HftBacktestAdapter:
    """One symbol's feed on hftbacktest, with features and a strategy API.

    Parameters
    ----------
    events, symbols, symbol
        A featureplane event stream (any source) and the symbol to backtest; it is exported with
        `to_hftbacktest_events`. `from_hftbacktest` takes an hftbacktest array instead.
    feature_mode
        "stats_only" or "lob_feature".
    feature_feed
        With lob_feature: "streaming" (a `FeatureEngine` per session, fed as the clock advances)
        or "precomputed" (one `process_batch`, shared by every session).
    backend
        FeatureEngine backend ("python" or "rust"; None: the default).
    execution
        hftbacktest's latency, queue and fee models.
    roi
        (low, high) prices: use `ROIVectorMarketDepthBacktest` on that range (updates outside
        it are ignored by hftbacktest's book; features always see the full book). None: the
        unbounded `HashMapMarketDepthBacktest`.
    feature_set
        Feature set of the engine.
    max_span_ticks
        Widest price range a side may span on the HashMap book (`roi` None): hftbacktest walks
        it tick by tick for the next best price (`featureplane.adapters.hftbacktest.limits`).

    Raises
    ------
    SourceFormatError
        A feed hftbacktest would hang on: times past 2^62 ns, or a side spanning more than
        `max_span_ticks` without `roi` (see `limits.check_feed`); bad rows (also the
        exchange-only ones hftbacktest replays) as `read_hftbacktest_events` says.
    """

    def __init__(
        self,
        events: np.ndarray,
        symbols: SymbolTable,
        symbol: str,
        *,
        feature_mode: FeatureMode = "lob_feature",
        feature_feed: FeatureFeed = "streaming",
        backend: str | None = None,
        execution: ExecutionModel | None = None,
        roi: tuple[float, float] | None = None,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        max_span_ticks: int = MAX_SPAN_TICKS,
    ) -> None:
        require_hftbacktest()
        data = to_hftbacktest_events(events, symbols, symbol)
        self._init(
            data,
            symbols.spec(symbol),
            feature_mode,
            feature_feed,
            backend,
            execution,
            roi,
            feature_set,
            max_span_ticks,
        )

    @classmethod
    def from_hftbacktest(
        cls,
        data: np.ndarray,
        instrument: InstrumentSpec,
        *,
        feature_mode: FeatureMode = "lob_feature",
        feature_feed: FeatureFeed = "streaming",
        backend: str | None = None,
        execution: ExecutionModel | None = None,
        roi: tuple[float, float] | None = None,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        max_span_ticks: int = MAX_SPAN_TICKS,
    ) -> HftBacktestAdapter:
        """An adapter over an hftbacktest event array (after `correct_event_order`).

        Raises
        ------
        SourceFormatError
            `data` is not of hftbacktest's `event_dtype`: hftbacktest reads the rows through a
            raw pointer, so the same fields in another layout would replay garbage.
        """
        hbt = require_hftbacktest()
        event_dtype = hbt.types.event_dtype
        if not isinstance(data, np.ndarray) or data.dtype != event_dtype:
            got = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
            raise SourceFormatError(
                "<array>", None, f"expected hftbacktest's event_dtype {event_dtype}, got {got}"
            )
        self = cls.__new__(cls)
        self._init(
            np.ascontiguousarray(data),
            instrument,
            feature_mode,
            feature_feed,
            backend,
            execution,
            roi,
            feature_set,
            max_span_ticks,
        )
        return self

    def _init(
        self,
        data: np.ndarray,
        instrument: InstrumentSpec,
        feature_mode: FeatureMode,
        feature_feed: FeatureFeed,
        backend: str | None,
        execution: ExecutionModel | None,
        roi: tuple[float, float] | None,
        feature_set: str | FeatureSet,
        max_span_ticks: int,
    ) -> None:
        if feature_mode not in FEATURE_MODES:
            raise ValueError(f"feature_mode must be one of {FEATURE_MODES}, got {feature_mode!r}")
        if feature_feed not in FEATURE_FEEDS:
            raise ValueError(f"feature_feed must be one of {FEATURE_FEEDS}, got {feature_feed!r}")
        if roi is not None and not roi[0] < roi[1]:
            raise ValueError(f"roi must be (low, high) prices with low < high, got {roi}")
        check_feed(data, instrument.tick_f64, roi, max_span_ticks)
        self.data = data
        """The array hftbacktest replays; every session keeps it alive."""
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.tick = instrument.tick_f64
        self.lot = instrument.lot_f64
        self.feature_mode: FeatureMode = feature_mode
        self.feature_feed: FeatureFeed = feature_feed
        self.backend = backend
        self.execution = execution or ExecutionModel()
        self.roi = roi
        self.feature_set = feature_set
        replay = read_hftbacktest_events(data, instrument)
        self.replay = replay
        self.messages = MessageIndex.build(replay.events)
        trade_rows = np.diff(self.messages.trade_rows_cum)
        # hftbacktest keeps no trades with capacity 0; any other capacity only sizes its buffer
        # up front and does not cap it (it grows). Sized to the largest trade message, it
        # seldom needs to.
        self.trades_capacity = max(1, int(trade_rows.max()) if len(trade_rows) else 1)
        self._batch: FrameBatch | None = None

    # ----- features -----------------------------------------------------------------------

    def engine(self) -> FeatureEngine:
        """A fresh FeatureEngine over this feed's symbol table."""
        return FeatureEngine(self.replay.symbols, self.feature_set, backend=self.backend)

    def frames(self) -> FrameBatch:
        """All frames of the feed, from one `process_batch` (computed once, then cached)."""
        if self._batch is None:
            self._batch = self.engine().process_batch(self.replay.events)
        return self._batch

    def feature_arrays(self) -> FeatureArrays:
        """The precomputed frames as plain arrays for a numba loop."""
        return FeatureArrays.from_batch(self.frames())

    def new_feed(self) -> StreamingFeatures | PrecomputedFeatures | None:
        """A fresh feature feed for one session (None in stats_only)."""
        if self.feature_mode == "stats_only":
            return None
        if self.feature_feed == "precomputed":
            return PrecomputedFeatures(self.frames(), self.symbol)
        return StreamingFeatures(self.engine(), self.symbol, self.messages)

    # ----- hftbacktest --------------------------------------------------------------------

    def backtest_asset(self) -> Any:
        """hftbacktest's `BacktestAsset` of this feed: its data, grid and execution models
        (with the range of interest when `roi` is set). It holds a raw pointer into `data`."""
        hbt = require_hftbacktest()
        ex = self.execution
        asset = hbt.BacktestAsset().data(self.data).linear_asset(ex.contract_size)
        asset = asset.constant_order_latency(ex.entry_latency_ns, ex.response_latency_ns)
        if ex.queue_model == "risk_adverse":
            asset = asset.risk_adverse_queue_model()
        elif ex.queue_model == "power_prob":
            asset = asset.power_prob_queue_model(ex.queue_power)
        else:
            asset = asset.log_prob_queue_model()
        asset = (
            asset.partial_fill_exchange() if ex.partial_fill else asset.no_partial_fill_exchange()
        )
        asset = asset.trading_value_fee_model(ex.maker_fee, ex.taker_fee)
        asset = asset.tick_size(self.tick).lot_size(self.lot)
        asset = asset.last_trades_capacity(self.trades_capacity)
        if self.roi is not None:
            asset = asset.roi_lb(self.roi[0]).roi_ub(self.roi[1])
        return asset

    def new_backtest(self) -> Any:
        """A fresh hftbacktest backtest over `data`. Prefer `session()`: a bare backtest holds
        a raw pointer into `data`, so keep this adapter referenced while it is used."""
        return build_backtest([self.backtest_asset()], roi=self.roi is not None)

    def market(self) -> SessionMarket:
        """What a session needs of this feed (data, grid, messages, instrument)."""
        return SessionMarket(
            self.data,
            self.symbol,
            self.tick,
            self.lot,
            self.messages,
            self.final_local_ts_ns,
            self.execution.contract_size,
            self.instrument,
        )

    def session(self) -> BacktestSession:
        """A fresh backtest run: the venue a `StrategyRunner` steps."""
        return BacktestSession([self.market()], self.new_backtest(), [self.new_feed()])

    @property
    def final_local_ts_ns(self) -> int:
        """Local time of the feed's last message (the clock after the end of data)."""
        ts = self.messages.local_ts_ns
        return int(ts[-1]) if len(ts) else 0


def build_backtest(assets: list[Any], *, roi: bool) -> Any:
    """hftbacktest's backtest over `assets` (asset_no = position): `ROIVectorMarketDepthBacktest`
    when they have ranges of interest, else `HashMapMarketDepthBacktest`."""
    hbt = require_hftbacktest()
    with quiet_numba():
        if roi:
            return hbt.ROIVectorMarketDepthBacktest(assets)
        return hbt.HashMapMarketDepthBacktest(assets)
