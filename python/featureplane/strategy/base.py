"""`BaseStrategy`: the hooks a runner calls. Override what the strategy needs.

Pull first: a strategy reads features from its context when a hook runs (`on_wakeup` is the
decision hook, called on the runner's decision clock). Push is optional: a strategy that defines
`on_features(frame)` also receives every feature frame, in order, before the hooks of the
wake-up that made it visible; the runner does no per-frame work for strategies without it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.strategy.context import StrategyContext

TRADE_DTYPE = np.dtype(
    [("local_ts_ns", "<i8"), ("source_ts_ns", "<i8"), ("side", "i1"), ("px", "<i8"), ("qty", "<i8")]
)
"""Market trades handed to `on_trade`: aggressor side (1 buy, -1 sell, 0 unknown), ticks, lots."""


class BaseStrategy:
    """A strategy with every hook a no-op. The runner binds `ctx` before `on_start`."""

    _ctx: StrategyContext | None = None

    def bind(self, ctx: StrategyContext) -> None:
        """Attach the context the hooks read and trade through (the runner calls it)."""
        self._ctx = ctx

    @property
    def ctx(self) -> StrategyContext:
        """The bound context; `RuntimeError` before a runner has bound one."""
        if self._ctx is None:
            raise RuntimeError("the strategy is not bound to a context: run it with a runner")
        return self._ctx

    def on_start(self) -> None:
        """Before the first step: the context has no time and takes no orders yet."""

    def on_book(self) -> None:
        """The venue's book changed (one or more depth messages applied)."""

    def on_trade(self, trades: np.ndarray) -> None:
        """Market trades since the previous wake-up (`TRADE_DTYPE`, a copy the hook may keep)."""

    def on_order_response(self) -> None:
        """A response to one of the strategy's orders arrived (see `ctx.open_orders()`)."""

    def on_wakeup(self) -> None:
        """The decision hook: called every decision interval of the runner's clock."""

    def on_end(self) -> None:
        """After the last step: the final book and features are visible. The batch that came
        with the end of data calls no `on_book` / `on_trade` (the venue takes no more orders)."""


@runtime_checkable
class PushStrategy(Protocol):
    """A strategy that takes pushed frames."""

    def on_features(self, frame: FeatureUpdateFrameV1) -> None:
        """Called with every feature frame, in order, before the hooks of the wake-up that
        made it visible."""
        ...


def wants_push(strategy: object) -> bool:
    """True when the strategy defines `on_features` (push is opt-in)."""
    return callable(getattr(strategy, "on_features", None))
