"""The generic evaluator: one symbol's state for any compiled plan.

Per applied book message: every book-triggered node, then every transform whose input was
updated, in plan order (a topological order, so an input is always evaluated first). Per trade
row: the same with the trade-triggered nodes. `PlanState` has the interface of
`LobSharedV1State`, so the reference kernel drives either.
"""

from __future__ import annotations

import math
from typing import Any

from featureplane.features.catalogue import CATALOGUE
from featureplane.features.families import book, timewin, trade, transforms
from featureplane.features.families.base import BookTick, Grid, Node, Readiness, TradeTick, Value
from featureplane.features.l1 import Levels
from featureplane.features.plan import FeaturePlan

NODE_CLASSES: dict[str, type[Node]] = {
    "bid_px": book.BidPx,
    "ask_px": book.AskPx,
    "bid_qty": book.BidQty,
    "ask_qty": book.AskQty,
    "spread": book.Spread,
    "spread_bps": book.SpreadBps,
    "mid": book.Mid,
    "microprice": book.Microprice,
    "depth_imbalance": book.DepthImbalance,
    "weighted_depth_imbalance": book.WeightedDepthImbalance,
    "weighted_mid": book.WeightedMid,
    "book_slope": book.BookSlope,
    "ofi": book.Ofi,
    "book_regime": book.BookRegime,
    "last_trade_px": trade.LastTradePx,
    "trade_signed_qty": trade.TradeSignedQty,
    "trade_flow_imbalance": trade.TradeFlowImbalance,
    "vwap": trade.Vwap,
    "cum": transforms.Cum,
    "diff": transforms.Diff,
    "ema": transforms.EmaNode,
    "decayed_sum": transforms.DecayedSumNode,
    "rolling_std": transforms.RollingStd,
    "zscore": transforms.Zscore,
    "rolling_mean_time": timewin.RollingMeanTime,
    "rolling_std_time": timewin.RollingStdTime,
    "rolling_sum_time": timewin.RollingSumTime,
    "realized_vol": timewin.RealizedVol,
}
"""The reference class of every catalogue family."""


def build_nodes(plan: FeaturePlan, grid: Grid) -> list[Node]:
    """Fresh node states of a plan (the state after a reset)."""
    nodes: list[Node] = []
    for pn in plan.nodes:
        node = NODE_CLASSES[pn.family](pn.meta, dict(pn.params), grid)
        if pn.input is not None:
            inp = plan.nodes[pn.input].meta
            if isinstance(node, transforms.Transform | timewin.TimeWindow):
                node.input_dtype = inp.dtype
                node.factor = grid.factor(inp)
            if isinstance(node, book.BookRegime):
                node.input_node = nodes[pn.input]
        nodes.append(node)
    return nodes


class PlanState:
    """Feature state of one symbol since its last reset, for any plan."""

    def __init__(self, plan: FeaturePlan, tick: float, lot: float) -> None:
        self.plan = plan
        self.tick = tick
        self.lot = lot
        self.grid = Grid(tick, lot)
        self.nodes = build_nodes(plan, self.grid)
        self._outputs = plan.outputs
        self._inputs = [n.input for n in plan.nodes]
        self._triggers = [_TRIGGER[n.family] for n in plan.nodes]
        self.values: list[Value] = [self.nodes[i].value for i in self._outputs]
        self.n_book = 0
        self.n_trade = 0
        self.has_bid = False
        self.has_ask = False
        self.prev_bids: Levels = []
        self.prev_asks: Levels = []

    # ----- updates ------------------------------------------------------------------------

    def on_book(self, bids: Levels, asks: Levels, ts_ns: int) -> None:
        """One applied book message; `bids`, `asks`: the best `plan.depth` levels."""
        self.n_book += 1
        self.has_bid = bool(bids)
        self.has_ask = bool(asks)
        tick = BookTick(bids, asks, self.prev_bids, self.prev_asks, self.n_book, ts_ns)
        updated = [False] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            trig = self._triggers[i]
            if trig == "book":
                updated[i] = node.on_book(tick)
            elif trig == "input":
                inp = self._inputs[i]
                assert inp is not None
                if updated[inp]:
                    updated[i] = node.on_input(self.nodes[inp].value, ts_ns)
        self.prev_bids = bids
        self.prev_asks = asks
        self._publish()

    def on_trade(self, side: int, px: int, qty: int, ts_ns: int) -> None:
        """One trade row; `side` is the aggressor (+1 buy, -1 sell, 0 unknown)."""
        self.n_trade += 1
        tick = TradeTick(side, px, qty, ts_ns)
        updated = [False] * len(self.nodes)
        for i, node in enumerate(self.nodes):
            trig = self._triggers[i]
            if trig == "trade":
                updated[i] = node.on_trade(tick)
            elif trig == "input":
                inp = self._inputs[i]
                assert inp is not None
                if updated[inp]:
                    updated[i] = node.on_input(self.nodes[inp].value, ts_ns)
        self._publish()

    def _publish(self) -> None:
        self.values = [self.nodes[i].value for i in self._outputs]

    # ----- readiness ----------------------------------------------------------------------

    @property
    def two_sided(self) -> bool:
        return self.has_bid and self.has_ask

    @property
    def saturated(self) -> bool:
        """A node's exact integer left its bound since the reset (`VALUE_SATURATED`)."""
        return any(n.saturated for n in self.nodes)

    def node_ready(self) -> list[bool]:
        """Readiness of every node (warm-up and inputs; not the gap and depth rules)."""
        r = Readiness(self.n_book, self.n_trade, self.has_bid, self.has_ask)
        ready: list[bool] = []
        for i, node in enumerate(self.nodes):
            inp = self._inputs[i]
            ready.append(node.ready(r, inp is not None and ready[inp]))
        return ready

    def ready_mask(self) -> int:
        """Warm-up-ready bits of the outputs, in frame order."""
        ready = self.node_ready()
        mask = 0
        for bit, i in enumerate(self._outputs):
            if ready[i]:
                mask |= 1 << bit
        return mask

    # ----- checkpoints --------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The state as JSON-ready data (`restore` reads it back)."""
        return {
            "n_book": self.n_book,
            "n_trade": self.n_trade,
            "has_bid": self.has_bid,
            "has_ask": self.has_ask,
            "prev_bids": [list(x) for x in self.prev_bids],
            "prev_asks": [list(x) for x in self.prev_asks],
            "nodes": [n.export() for n in self.nodes],
        }

    def restore(self, saved: dict[str, Any]) -> None:
        """Take over an exported state (ValueError when it does not fit the plan)."""
        if len(saved["nodes"]) != len(self.nodes):
            raise ValueError("the state has another number of plan nodes")
        self.n_book = int(saved["n_book"])
        self.n_trade = int(saved["n_trade"])
        self.has_bid = bool(saved["has_bid"])
        self.has_ask = bool(saved["has_ask"])
        self.prev_bids = [(int(p), int(q)) for p, q in saved["prev_bids"]]
        self.prev_asks = [(int(p), int(q)) for p, q in saved["prev_asks"]]
        for node, data in zip(self.nodes, saved["nodes"], strict=True):
            node.restore(data)
        self._publish()


_TRIGGER = {name: fam.trigger for name, fam in CATALOGUE.items()}


def changed_bits(is_f64: list[bool], before: list[Value], after: list[Value]) -> int:
    """Bits of the values that differ (NaN equals NaN, -0.0 equals 0.0)."""
    mask = 0
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a != b and not (is_f64[i] and math.isnan(a) and math.isnan(b)):
            mask |= 1 << i
    return mask
