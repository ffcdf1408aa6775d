"""Multi-asset backtests on a small hand-written feed of two symbols: one hftbacktest session,
every symbol's features, book and instrument in the strategy context, per-symbol hooks, orders
per asset; a one-symbol multi-asset backtest is the single-symbol one."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest import HftBacktestAdapter, MultiAssetAdapter
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import UnknownSymbolError
from featureplane.events import TRADE
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, same_frame
from featureplane.instruments import InstrumentSpec
from featureplane.sources.hftbacktest import read_hftbacktest_events
from featureplane.strategy import BaseStrategy, StrategyRunner
from featureplane.strategy.examples import FeatureImbalanceMM, ImbalanceMMParams
from featureplane.strategy.examples.cross_mm import (
    FeatureCrossImbalanceMM,
    LegacyCrossImbalanceMM,
)
from tests.support import hbt_synthetic as syn

MS = syn.MS
LEAD = syn.LEAD
two_symbols = syn.two_symbols


def _multi(feed: str = "streaming", mode: str = "lob_feature") -> MultiAssetAdapter:
    events, table = two_symbols()
    return MultiAssetAdapter.from_events(
        events,
        table,
        feature_mode=mode,
        feature_feed=feed,
        backend="python",  # type: ignore[arg-type]
    )


def _research(adapter: HftBacktestAdapter) -> FrameBatch:
    back = read_hftbacktest_events(adapter.data, adapter.instrument)
    return FeatureEngine(back.symbols, backend="python").process_batch(back.events)


class Reader(BaseStrategy):
    """Pulls both symbols at every hook; records per-symbol hooks and pushed frames."""

    def __init__(self) -> None:
        self.views: list[tuple[int, str, tuple[object, ...], int]] = []
        self.books: list[tuple[str, int]] = []
        self.trades: list[tuple[str, int, int]] = []
        self.pushed: list[FeatureUpdateFrameV1] = []

    def on_features(self, frame: FeatureUpdateFrameV1) -> None:
        self.pushed.append(frame)

    def _pull(self) -> None:
        for symbol in self.ctx.symbols:
            view = self.ctx.get_feature_view(symbol)
            self.views.append((self.ctx.now_ns, symbol, view.values, view.warmup_ready_mask))

    def on_book(self) -> None:
        self.books.append((self.ctx.event_symbol, self.ctx.now_ns))
        self._pull()

    def on_trade(self, trades: np.ndarray) -> None:
        self.trades.append((self.ctx.event_symbol, self.ctx.now_ns, len(trades)))

    def on_wakeup(self) -> None:
        self._pull()


@pytest.mark.parametrize("feed", ["streaming", "precomputed"])
def test_every_symbols_features_as_of_the_one_clock(feed: str) -> None:
    multi = _multi(feed)
    assert multi.symbols == (syn.SYMBOL, LEAD)
    research = {s: _research(multi.adapter(s)) for s in multi.symbols}
    strategy = Reader()
    StrategyRunner(multi.session(), strategy, decision_interval_ns=MS).run()
    assert {s for _, s, _, _ in strategy.views} == {syn.SYMBOL, LEAD}
    for now, symbol, values, ready in strategy.views:
        batch = research[symbol]
        at = int(np.searchsorted(batch.columns["local_ts_ns"], now, side="right")) - 1
        if at < 0:
            assert ready == 0
            continue
        want = tuple(col[at].item() for col in batch.values.values())
        assert np.array_equal(np.array(values, float), np.array(want, float), equal_nan=True)
        assert ready == int(batch.columns["warmup_ready_mask"][at])
    # Push: every frame of both symbols, once, in local-time order (ties: asset order).
    for symbol, batch in research.items():
        mine = [f for f in strategy.pushed if f.symbol == symbol]
        assert len(mine) == len(batch)
        assert all(same_frame(a, b) for a, b in zip(mine, batch.frames(), strict=True))
    ts = [f.local_ts_ns for f in strategy.pushed]
    assert ts == sorted(ts)


def test_book_and_trade_hooks_name_their_symbol() -> None:
    multi = _multi()
    strategy = Reader()
    StrategyRunner(multi.session(), strategy, decision_interval_ns=MS).run()
    for symbol in multi.symbols:
        index = multi.adapter(symbol).messages
        is_trade = index.events["kind"][index.ends - 1] == TRADE
        book_times = sorted(set(index.local_ts_ns[~is_trade].tolist()))
        trade_times = sorted(set(index.local_ts_ns[is_trade].tolist()))
        # The last wake-up (end of data) calls no market data hook.
        last = int(index.local_ts_ns[-1])
        got_books = [t for s, t in strategy.books if s == symbol]
        got_trades = [t for s, t, _ in strategy.trades if s == symbol]
        assert got_books == [t for t in book_times if t != last or symbol != LEAD]
        assert got_trades == [t for t in trade_times if t != last or symbol != LEAD]
    # The shifted lead wakes the backtest on its own: its hooks come at other times.
    lead_books = {t for s, t in strategy.books if s == LEAD}
    own_books = {t for s, t in strategy.books if s == syn.SYMBOL}
    assert lead_books and own_books and not lead_books & own_books


class Orders(BaseStrategy):
    """Sends one order on each asset at the first decision; reads books and instruments."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.seen: dict[str, object] = {}

    def on_wakeup(self) -> None:
        ctx = self.ctx
        if self.ids:
            self.seen["own"] = [o.order_id for o in ctx.open_orders()]
            self.seen["lead"] = [o.order_id for o in ctx.for_symbol(LEAD).open_orders()]
            return
        own, lead = ctx.l1(), ctx.l1(LEAD)
        self.ids.append(ctx.submit_buy(own.bid_px - 3, 1))
        self.ids.append(ctx.for_symbol(LEAD).submit_buy(lead.bid_px - 3, 2))
        self.seen["l1"] = (own, lead)
        self.seen["now"] = ctx.now_ns
        self.seen["levels"] = ctx.levels(1, 2, LEAD)
        self.seen["instruments"] = (ctx.instrument(), ctx.instrument(LEAD))


def test_orders_books_and_instruments_per_asset() -> None:
    multi = _multi(mode="stats_only")
    session = multi.session()
    strategy = Orders()
    StrategyRunner(session, strategy, decision_interval_ns=MS).run()
    # Order ids are the send order, unique across the assets; each asset holds its own.
    assert strategy.ids == [1, 2]
    assert strategy.seen["own"] == [1] and strategy.seen["lead"] == [2]
    own, lead = strategy.seen["l1"]  # type: ignore[misc]
    # Each book as of the one clock: the lead's copy of a message comes SHIFT_NS later, so at
    # the decision the traded symbol has applied one message more than the lead.
    now = strategy.seen["now"]
    for symbol, l1 in ((syn.SYMBOL, own), (LEAD, lead)):
        batch = _research(multi.adapter(symbol))
        at = int(np.searchsorted(batch.columns["local_ts_ns"], now, side="right")) - 1
        v = batch.values
        want = (v["bid_px"][at], v["bid_qty"][at], v["ask_px"][at], v["ask_qty"][at])
        assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == want, symbol
    assert own.bid_qty != lead.bid_qty
    assert strategy.seen["levels"] == [(lead.bid_px, lead.bid_qty), (999, 3)]
    spec, lead_spec = strategy.seen["instruments"]  # type: ignore[misc]
    assert (spec.tick_size, lead_spec.tick_size) == (Decimal("0.1"), Decimal("0.01"))
    assert lead_spec.ticks_to_px(lead.bid_px) == Decimal(lead.bid_px) / 100
    orders = {a.symbol: a.open_orders() for a in session.assets}
    assert [(o.order_id, o.qty) for o in orders[LEAD]] == [(2, 2)]
    assert [(o.order_id, o.qty) for o in orders[syn.SYMBOL]] == [(1, 1)]
    with pytest.raises(UnknownSymbolError):
        session.ctx.instrument("NOPE")
    with pytest.raises(UnknownSymbolError):
        session.ctx.l1("NOPE")
    with pytest.raises(UnknownSymbolError):
        session.asset("NOPE")


def test_one_symbol_is_the_single_symbol_backtest() -> None:
    params = ImbalanceMMParams(k_ticks=3.0)
    single = HftBacktestAdapter(syn.feed(), syn.symbols(), syn.SYMBOL, backend="python")
    multi = MultiAssetAdapter([single])
    decisions = []
    for session in (single.session(), multi.session()):
        mm = FeatureImbalanceMM(params)
        StrategyRunner(session, mm, decision_interval_ns=MS).run()
        decisions.append((mm.decisions(), session.account()))
    assert len(decisions[0][0]) > 10
    assert np.array_equal(decisions[0][0], decisions[1][0])
    assert decisions[0][1] == decisions[1][1]


def test_cross_strategies_decide_alike_on_two_assets() -> None:
    params = ImbalanceMMParams()
    logs = []
    for cls, mode in (
        (LegacyCrossImbalanceMM, "stats_only"),
        (FeatureCrossImbalanceMM, "lob_feature"),
    ):
        mm = cls(params, lead=LEAD, k_lead_ticks=4.0)
        StrategyRunner(_multi(mode=mode).session(), mm, decision_interval_ns=MS).run()
        logs.append(mm.decisions())
    assert len(logs[0]) > 10
    assert np.array_equal(logs[0], logs[1])
    with pytest.raises(ValueError, match="finite"):
        FeatureCrossImbalanceMM(params, k_lead_ticks=float("nan"))


def test_bad_multi_asset_backtests_are_refused() -> None:
    events, table = two_symbols()
    a = HftBacktestAdapter(events, table, syn.SYMBOL, backend="python")
    b = HftBacktestAdapter(events, table, LEAD, backend="python", roi=(9.0, 11.0))
    with pytest.raises(ValueError, match="at least one"):
        MultiAssetAdapter([])
    with pytest.raises(ValueError, match="each symbol"):
        MultiAssetAdapter([a, a])
    with pytest.raises(ValueError, match="book type"):
        MultiAssetAdapter([a, b])
    multi = MultiAssetAdapter([a])
    with pytest.raises(UnknownSymbolError):
        multi.adapter(LEAD)
    with pytest.raises(UnknownSymbolError):
        MultiAssetAdapter.from_events(events, table, [syn.SYMBOL, "NOPE"])


def test_default_assets_are_the_symbols_with_messages() -> None:
    events, table = two_symbols()
    table.add(InstrumentSpec("QUIETUSDT", "0.1", "0.001"))  # in the table, no message
    multi = MultiAssetAdapter.from_events(events, table, feature_mode="stats_only")
    assert multi.symbols == (syn.SYMBOL, LEAD)
    assert multi.asset_no(LEAD) == 1
