"""The records of a backtest run, shared by the A/B runner and the report (a leaf)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.adapters.hftbacktest.session import AccountState
from featureplane.strategy.examples.imbalance_mm import CANCEL, SUBMIT
from featureplane.strategy.runner import RunStats


@dataclass
class StrategyOutcome:
    """One strategy's run: its decisions and hftbacktest's account at the end."""

    name: str
    decisions: np.ndarray
    account: AccountState
    final_mid_px: float
    wall_s: float

    @property
    def equity(self) -> float:
        """Balance plus position marked to the final mid, minus fees (quote currency)."""
        return self.account.equity(self.final_mid_px)

    @property
    def orders_sent(self) -> int:
        return int((self.decisions["action"] == SUBMIT).sum())

    @property
    def cancels(self) -> int:
        return int((self.decisions["action"] == CANCEL).sum())

    def summary(self) -> str:
        a = self.account
        return (
            f"{self.name}: {len(self.decisions):,} decision rows, {self.orders_sent:,} orders, "
            f"{self.cancels:,} cancels, {a.num_trades:,} fills, position {a.position} lots, "
            f"fees {a.fee:.4f}, equity {self.equity:.4f} (at mid {self.final_mid_px}), "
            f"{self.wall_s:.2f} s"
        )


@dataclass
class RunRecord:
    """What a report plots: state at each decision, and the fills."""

    ts: list[int] = field(default_factory=list)
    mid_px: list[float] = field(default_factory=list)
    position: list[int] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    fill_ts: list[int] = field(default_factory=list)
    fill_side: list[int] = field(default_factory=list)
    fill_px: list[float] = field(default_factory=list)
    fill_qty: list[int] = field(default_factory=list)


@dataclass
class BacktestRun:
    outcome: StrategyOutcome
    stats: RunStats
    record: RunRecord
    adapter: HftBacktestAdapter
    """The first symbol's adapter (the report plots its features)."""
    outcomes: list[StrategyOutcome] = field(default_factory=list)
    """Every symbol's outcome when the run quoted several (`featureplane.backtest.each`)."""

    def summary(self) -> str:
        s = self.stats
        others = [f"{o.summary()}\n" for o in self.outcomes if o is not self.outcome]
        return (
            f"{self.outcome.summary()}\n{''.join(others)}"
            f"  {s.decisions:,} decisions; wake-ups {s.wakeups}; "
            f"{len(self.record.fill_ts):,} fill wake-ups recorded"
            + (f" (of {self.adapter.symbol})" if others else "")
        )
