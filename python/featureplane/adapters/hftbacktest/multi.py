"""`MultiAssetAdapter`: several symbols' feeds in one hftbacktest backtest.

hftbacktest runs several assets in one backtest: one `BacktestAsset` each, one clock, and an
`asset_no` on every depth, order and account call. The adapter puts one `HftBacktestAdapter`
per symbol (its array, grid, execution model and feature feed) into one backtest; asset `i` is
the `i`-th symbol. Every symbol's features are computed from its own array and visible to the
strategy as of the one clock; orders go to any asset. A one-symbol `MultiAssetAdapter` runs
what the `HftBacktestAdapter` alone runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from featureplane.adapters.hftbacktest.adapter import (
    ExecutionModel,
    FeatureFeed,
    FeatureMode,
    HftBacktestAdapter,
    build_backtest,
)
from featureplane.adapters.hftbacktest.features import FeatureArrays
from featureplane.adapters.hftbacktest.limits import MAX_SPAN_TICKS
from featureplane.adapters.hftbacktest.session import BacktestSession
from featureplane.errors import UnknownSymbolError
from featureplane.frames.frame import FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet


class MultiAssetAdapter:
    """One hftbacktest backtest over several symbols, with every symbol's features.

    Parameters
    ----------
    adapters
        One `HftBacktestAdapter` per symbol, in asset order (the first is the strategy's
        `ctx`); symbols unique. Either all have a range of interest (`roi`: hftbacktest's
        `ROIVectorMarketDepthBacktest`) or none (`HashMapMarketDepthBacktest`): one backtest
        has one book type.

    Raises
    ------
    ValueError
        No adapter, a symbol twice, or `roi` on some adapters only.
    """

    def __init__(self, adapters: Sequence[HftBacktestAdapter]) -> None:
        if not adapters:
            raise ValueError("a multi-asset backtest needs at least one symbol")
        symbols = [a.symbol for a in adapters]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"each symbol is one asset, got {symbols}")
        with_roi = {a.roi is not None for a in adapters}
        if len(with_roi) > 1:
            raise ValueError(
                "one backtest has one book type: give every symbol a roi, or none "
                f"({', '.join(a.symbol for a in adapters if a.roi is None)} without)"
            )
        self.adapters = tuple(adapters)
        self.symbols = tuple(symbols)
        self.roi = with_roi.pop()
        """The backtest uses ROIVector books."""

    @classmethod
    def from_events(
        cls,
        events: np.ndarray,
        symbols: SymbolTable,
        trade_symbols: Sequence[str] | None = None,
        *,
        feature_mode: FeatureMode = "lob_feature",
        feature_feed: FeatureFeed = "streaming",
        backend: str | None = None,
        execution: ExecutionModel | Mapping[str, ExecutionModel] | None = None,
        roi: Mapping[str, tuple[float, float]] | None = None,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        max_span_ticks: int = MAX_SPAN_TICKS,
    ) -> MultiAssetAdapter:
        """Assets from one event stream of several symbols (`read_binance` of several
        captures, an `open_source` of any venue): one per symbol of `trade_symbols` (default:
        every symbol with messages in `events`, in id order). `execution` and `roi` may be
        per symbol."""
        if trade_symbols is not None:
            names = list(trade_symbols)
        else:
            present = set(np.unique(events["symbol_id"]).tolist())
            names = [symbols.name_of(i) for i in sorted(present)]
        adapters = []
        for name in names:
            ex = execution.get(name) if isinstance(execution, Mapping) else execution
            adapters.append(
                HftBacktestAdapter(
                    events,
                    symbols,
                    name,
                    feature_mode=feature_mode,
                    feature_feed=feature_feed,
                    backend=backend,
                    execution=ex,
                    roi=roi.get(name) if roi is not None else None,
                    feature_set=feature_set,
                    max_span_ticks=max_span_ticks,
                )
            )
        return cls(adapters)

    def adapter(self, symbol: str) -> HftBacktestAdapter:
        """The adapter of one symbol; `UnknownSymbolError` for a symbol not in the backtest."""
        for a in self.adapters:
            if a.symbol == symbol:
                return a
        raise UnknownSymbolError(f"this backtest trades {self.symbols}, not {symbol!r}")

    def asset_no(self, symbol: str) -> int:
        """hftbacktest's asset number of `symbol` (its position)."""
        return self.symbols.index(self.adapter(symbol).symbol)

    def frames(self, symbol: str) -> FrameBatch:
        """All frames of one symbol's feed, from one `process_batch` (cached)."""
        return self.adapter(symbol).frames()

    def feature_arrays(self, symbol: str) -> FeatureArrays:
        """One symbol's precomputed frames as plain arrays for a numba loop."""
        return self.adapter(symbol).feature_arrays()

    def new_backtest(self) -> Any:
        """A fresh hftbacktest backtest over every asset. Prefer `session()`: a bare backtest
        holds raw pointers into the adapters' arrays, so keep this adapter referenced."""
        return build_backtest([a.backtest_asset() for a in self.adapters], roi=self.roi)

    def session(self) -> BacktestSession:
        """A fresh backtest run over every asset: the venue a `StrategyRunner` steps."""
        return BacktestSession(
            [a.market() for a in self.adapters],
            self.new_backtest(),
            [a.new_feed() for a in self.adapters],
        )

    @property
    def final_local_ts_ns(self) -> int:
        """Local time of the last message of any feed."""
        return max(a.final_local_ts_ns for a in self.adapters)
