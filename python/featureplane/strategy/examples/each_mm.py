"""The imbalance market maker on several symbols at once: one `ImbalanceMM` per symbol, each
quoting its own symbol through `ctx.for_symbol(symbol)` (its book or features, its orders, its
position), all on one clock.

At each wake-up the symbols decide in the order given, each as the one-symbol market maker
would; nothing is shared between them but the clock. Each symbol keeps its own decision log
(`decisions_of`), so the legacy and feature variants compare symbol by symbol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from featureplane.strategy.base import BaseStrategy
from featureplane.strategy.context import StrategyContext
from featureplane.strategy.examples.imbalance_mm import DECISION_DTYPE, ImbalanceMM


class EachSymbolMM(BaseStrategy):
    """One market maker per symbol, built by `make` (for example `FeatureImbalanceMM` with
    its parameters).

    Parameters
    ----------
    make
        Builds one symbol's market maker (called once per symbol).
    symbols
        The symbols to quote, in decision order; each must be one the context reaches.

    Raises
    ------
    ValueError
        No symbol, or a symbol twice.
    """

    def __init__(self, make: Callable[[], ImbalanceMM], symbols: Sequence[str]) -> None:
        if not symbols:
            raise ValueError("quote at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"each symbol once, got {list(symbols)}")
        self.by_symbol: dict[str, ImbalanceMM] = {s: make() for s in symbols}

    def bind(self, ctx: StrategyContext) -> None:
        """Bind each symbol's market maker to that symbol's context.

        Raises
        ------
        UnknownSymbolError
            A symbol the context does not reach.
        """
        super().bind(ctx)
        for symbol, mm in self.by_symbol.items():
            mm.bind(ctx.for_symbol(symbol))

    def on_start(self) -> None:
        """Each symbol's `on_start`, in symbol order."""
        for mm in self.by_symbol.values():
            mm.on_start()

    def on_wakeup(self) -> None:
        """Each symbol decides, in symbol order, as the one-symbol market maker would."""
        for mm in self.by_symbol.values():
            mm.on_wakeup()

    def on_end(self) -> None:
        """Each symbol's `on_end`, in symbol order."""
        for mm in self.by_symbol.values():
            mm.on_end()

    def decisions_of(self, symbol: str) -> np.ndarray:
        """One symbol's decision rows (`DECISION_DTYPE`, a copy)."""
        return self.by_symbol[symbol].decisions()

    def decisions(self) -> np.ndarray:
        """Every symbol's decision log, one after the other in symbol order (a copy)."""
        logs = [mm.decisions() for mm in self.by_symbol.values()]
        return np.concatenate(logs) if logs else np.empty(0, DECISION_DTYPE)
