"""The paper adapter's queue model on a hand-made book: every rule of the module doc."""

from __future__ import annotations

import numpy as np
import pytest

from featureplane.errors import OrderError
from featureplane.events import BID, BUY, SELL, make_message
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.live.feed.client import FeedData
from featureplane.live.feed.sync import Released
from featureplane.live.paper import PaperOrder, PaperOrderAdapter
from featureplane.live.service import MarketDataService
from featureplane.strategy.orders import OrderAdapter, OrderStatus, OrderType, TimeInForce

ASK = -1
MS = 1_000_000


class Market:
    """A service fed by hand, a paper adapter on it, and the responses it made."""

    def __init__(self, latency_ns: int = 0) -> None:
        self.service = MarketDataService(
            SymbolTable([InstrumentSpec("TEST", "0.1", "0.001")]), backend="python"
        )
        self.responses: list[tuple[int, OrderStatus]] = []
        self.paper = PaperOrderAdapter(
            "TEST", 0, self.service.book, lambda: self.service.now_ns,
            latency_ns=latency_ns, on_response=self._response,
        )  # fmt: skip
        self.service.listen(self.paper.on_update)
        self.t = 0
        self.seq = 10
        self.send(snapshot=[(BID, 1000, 5), (BID, 999, 3), (ASK, 1001, 4), (ASK, 1002, 6)])

    def _response(self, order: PaperOrder) -> None:
        self.responses.append((order.order_id, order.status))

    def send(self, **kw: object) -> None:
        self.t += MS
        if "trades" not in kw:
            self.seq += 1
            kw.setdefault("seq", self.seq)
        msg = make_message(0, source_ts_ns=self.t, local_ts_ns=self.t, **kw)  # type: ignore[arg-type]
        self.service.offer(FeedData(0, 0, Released(msg, []), 0, 0))
        self.service.step()

    def trade(self, aggressor: int, px: int, qty: int) -> None:
        self.send(trades=[(aggressor, px, qty)])


def test_is_an_order_adapter() -> None:
    assert isinstance(Market().paper, OrderAdapter)


def test_joins_the_back_of_its_level_and_fills_only_past_the_queue() -> None:
    m = Market()
    oid = m.paper.submit_buy(1000, 2)
    assert m.paper.open_orders()[0].pending  # not arrived before the next message
    m.trade(SELL, 1000, 1)  # arrives after this message's fills: 5 lots ahead of it
    order = m.paper.orders[oid]
    assert order.working and order.queue_ahead == 5
    m.trade(SELL, 1000, 3)
    assert order.queue_ahead == 2 and m.paper.position() == 0
    m.trade(SELL, 1000, 3)  # 2 ahead consumed, 1 fills us
    assert m.paper.position() == 1 and order.status == OrderStatus.PARTIALLY_FILLED
    m.trade(BUY, 1000, 10)  # an aggressive buy never meets our bid
    assert m.paper.position() == 1
    m.trade(SELL, 999, 1)  # traded through our price: the rest fills
    assert m.paper.position() == 2 and oid not in m.paper.orders
    assert (oid, OrderStatus.FILLED) in m.responses


def test_queue_ahead_shrinks_with_the_level() -> None:
    m = Market()
    oid = m.paper.submit_buy(1000, 1)
    m.send(levels=[(BID, 1000, 5)])
    assert m.paper.orders[oid].queue_ahead == 5
    m.send(levels=[(BID, 1000, 2)])  # 3 left: they were ahead of us
    assert m.paper.orders[oid].queue_ahead == 2
    m.send(levels=[(BID, 1000, 4)])  # new size joins behind us
    assert m.paper.orders[oid].queue_ahead == 2


def test_book_moving_through_without_trades_fills_nothing() -> None:
    m = Market()
    oid = m.paper.submit_buy(1000, 1)
    m.send(levels=[(BID, 990, 1)])
    m.send(levels=[(BID, 1000, 0), (BID, 999, 0), (ASK, 1000, 3)])
    assert m.paper.position() == 0 and m.paper.orders[oid].active


def test_post_only_that_would_take_is_rejected_and_marketable_limit_takes_the_top() -> None:
    m = Market()
    gtx = m.paper.submit_buy(1001, 1)
    ioc = m.paper.submit_buy(1002, 10, TimeInForce.IOC)
    m.send(levels=[(BID, 998, 1)])
    assert (gtx, OrderStatus.REJECTED) in m.responses
    # The IOC took the best ask's 4 lots at 1001, the rest expired.
    assert m.paper.position() == 4 and (ioc, OrderStatus.EXPIRED) in m.responses
    assert m.paper.fills[-1].px == 1001
    mkt = m.paper.submit_sell(1, 2, TimeInForce.GTC, OrderType.MARKET)
    m.send(levels=[(BID, 998, 2)])
    assert m.paper.position() == 2 and (mkt, OrderStatus.FILLED) in m.responses


def test_latency_and_cancel_take_event_time() -> None:
    m = Market(latency_ns=3 * MS)
    oid = m.paper.submit_sell(1001, 1)
    m.send(levels=[(BID, 998, 1)])
    m.send(levels=[(BID, 998, 2)])
    assert not m.paper.orders[oid].working
    m.send(levels=[(BID, 998, 3)])
    assert m.paper.orders[oid].working and m.paper.orders[oid].queue_ahead == 4
    m.paper.cancel(oid)
    with pytest.raises(OrderError):
        m.paper.cancel(oid)  # a cancel is already on its way
    m.send(levels=[(BID, 998, 4)])
    assert oid in m.paper.orders
    for qty in (5, 6):
        m.send(levels=[(BID, 998, qty)])
    assert oid not in m.paper.orders and (oid, OrderStatus.CANCELED) in m.responses


def test_same_input_same_fills() -> None:
    def run() -> np.ndarray:
        m = Market()
        for i in range(20):
            m.paper.submit_buy(1000 - i % 3, 1 + i % 2)
            m.trade(SELL, 1000 - i % 4, 1 + i % 5)
        return np.array([(f.order_id, f.px, f.qty, f.ts_ns) for f in m.paper.fills])

    first = run()
    assert len(first) > 5
    assert np.array_equal(first, run())
