"""The strategy API on a real hftbacktest backtest of a small hand-written feed: pull reads,
optional push, hook dispatch, the decision clock, and the errors a strategy can meet."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest import HftBacktestAdapter
from featureplane.adapters.hftbacktest_session import BacktestSession
from featureplane.backtest import compare_decisions
from featureplane.engine import FeatureEngine
from featureplane.errors import UnknownSymbolError
from featureplane.features import lob_shared_v1 as v1
from featureplane.frames import FeatureUpdateFrameV1, same_frame
from featureplane.strategy import (
    BaseStrategy,
    FeaturesUnavailableError,
    NotStartedError,
    OrderAdapter,
    StrategyRunner,
    wants_push,
)
from featureplane.strategy.examples.imbalance_mm import CANCEL, DECISION_DTYPE, QUOTE, SUBMIT
from tests.unit import hbt_synthetic as syn

MS = syn.MS


def _adapter(mode: str = "lob_feature", feed: str = "streaming", backend: str = "python"):  # type: ignore[no-untyped-def]
    return HftBacktestAdapter(
        syn.feed(),
        syn.symbols(),
        syn.SYMBOL,
        feature_mode=mode,  # type: ignore[arg-type]
        feature_feed=feed,
        backend=backend,
    )  # type: ignore[arg-type]


class Journal(BaseStrategy):
    """Records every hook call and what it pulled."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.pulled: list[tuple[int, float, int]] = []
        self.trades: list[np.ndarray] = []

    def on_start(self) -> None:
        self.calls.append(("start", -1))

    def on_book(self) -> None:
        self.calls.append(("book", self.ctx.now_ns))

    def on_trade(self, trades: np.ndarray) -> None:
        self.calls.append(("trade", self.ctx.now_ns))
        self.trades.append(trades)

    def on_wakeup(self) -> None:
        ctx = self.ctx
        self.calls.append(("wakeup", ctx.now_ns))
        if ctx.has_features:
            self.pulled.append(
                (
                    ctx.now_ns,
                    ctx.get_feature(syn.SYMBOL, "imbalance_l1"),
                    int(ctx.get_feature(syn.SYMBOL, v1.BID_PX)),
                )
            )

    def on_end(self) -> None:
        self.calls.append(("end", self.ctx.now_ns))


class PushJournal(Journal):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[tuple[int, FeatureUpdateFrameV1]] = []

    def on_features(self, frame: FeatureUpdateFrameV1) -> None:
        self.frames.append((len(self.calls), frame))


def test_pull_reads_the_frame_as_of_each_decision(backend: str) -> None:
    adapter = _adapter(backend=backend)
    strategy = Journal()
    StrategyRunner(adapter.session(), strategy, decision_interval_ns=2 * MS).run()
    batch = FeatureEngine(adapter.replay.symbols, backend=backend).process_batch(
        adapter.replay.events
    )
    local = batch.columns["local_ts_ns"]
    assert strategy.pulled, "no decision was made"
    for now, imbalance, bid_px in strategy.pulled:
        i = int(np.searchsorted(local, now, side="right")) - 1
        assert bid_px == int(batch.values["bid_px"][i])
        assert imbalance == float(batch.values["imbalance_l1"][i])


def test_hooks_and_decision_clock() -> None:
    strategy = Journal()
    stats = StrategyRunner(_adapter().session(), strategy, decision_interval_ns=4 * MS).run()
    kinds = [k for k, _ in strategy.calls]
    assert kinds[0] == "start" and kinds[-1] == "end"
    wakeups = [t for k, t in strategy.calls if k == "wakeup"]
    # First feed at 1 ms; then every 4 ms of backtest time while data lasts (data ends at 30 ms).
    assert wakeups == [syn.T0 + ms * MS for ms in (5, 9, 13, 17, 21, 25, 29)]
    assert stats.decisions == len(wakeups)
    # A trade hook per wake-up that brought trades: the messages at 2, 6, 9 and 21 ms.
    assert [t for k, t in strategy.calls if k == "trade"] == [
        syn.T0 + ms * MS for ms in (2, 6, 9, 21)
    ]
    assert sum(len(t) for t in strategy.trades) == 5
    assert strategy.calls[-1] == ("end", syn.T0 + 30 * MS)


def test_push_only_when_defined_and_before_the_hooks() -> None:
    plain, pushed = Journal(), PushJournal()
    assert not wants_push(plain) and wants_push(pushed)
    stats = StrategyRunner(_adapter().session(), plain).run()
    assert stats.frames_pushed == 0
    adapter = _adapter()
    stats = StrategyRunner(adapter.session(), pushed, decision_interval_ns=4 * MS).run()
    batch = adapter.frames()
    assert stats.frames_pushed == len(batch) == len(pushed.frames)
    for i, (_, frame) in enumerate(pushed.frames):
        assert same_frame(frame, batch.frame(i))
    # A frame is pushed before the book hook of the wake-up that made it visible.
    first_book = next(i for i, (k, _) in enumerate(pushed.calls) if k == "book")
    assert pushed.frames[0][0] == first_book


def test_stats_only_has_no_features_but_the_book() -> None:
    session = _adapter("stats_only").session()
    ctx = session.start()
    session.step(10**15)
    with pytest.raises(FeaturesUnavailableError, match="stats_only"):
        ctx.get_feature(syn.SYMBOL, "mid")
    with pytest.raises(FeaturesUnavailableError):
        ctx.get_feature_set_id()
    l1 = ctx.l1()
    assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == (1000, 5, 1001, 4)
    assert ctx.levels(1, 3) == [(1000, 5), (999, 3), (998, 2)]
    assert ctx.levels(-1, 10) == [(1001, 4), (1002, 6), (1003, 1), (1010, 9)]


def test_feature_reads_check_symbol_and_feature() -> None:
    session = _adapter().session()
    ctx = session.start()
    session.step(10**15)
    assert ctx.get_feature_set_id() == "lob_shared_v1"
    view = ctx.get_feature_view(syn.SYMBOL)
    assert view["bid_px"] == 1000 and view.is_ready("mid")
    assert ctx.get_feature(syn.SYMBOL, "mid") == ctx.get_feature(syn.SYMBOL, v1.MID) == 2001
    with pytest.raises(UnknownSymbolError, match="TESTUSDT"):
        ctx.get_feature("ETHUSDT", "mid")
    with pytest.raises(KeyError):
        ctx.get_feature(syn.SYMBOL, "no_such_feature")


def test_session_is_an_order_adapter_and_refuses_orders_before_start() -> None:
    session = _adapter().session()
    assert isinstance(session, OrderAdapter) and isinstance(session, BacktestSession)

    class Eager(BaseStrategy):
        def on_start(self) -> None:
            self.ctx.submit_buy(1000, 1)

    with pytest.raises(NotStartedError, match="first step"):
        StrategyRunner(session, Eager()).run()
    with pytest.raises(NotStartedError):
        _ = _adapter().session().ctx.now_ns


def test_runner_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        StrategyRunner(_adapter().session(), Journal(), decision_interval_ns=0)


def test_compare_decisions_names_the_first_mismatch() -> None:
    rows = [(10, QUOTE, 1, 1000, 1, 0), (10, SUBMIT, 1, 1000, 1, 1), (20, CANCEL, 1, 1000, 1, 1)]
    a = np.array(rows, dtype=DECISION_DTYPE)
    assert compare_decisions(a, a.copy()).match
    b = a.copy()
    b["px"][1] = 999
    diff = compare_decisions(a, b)
    assert not diff.match and diff.first_mismatch == 1 and diff.matching_rows == 1
    assert any(line.startswith(">> row 1") and "px=999" in line for line in diff.context)
    shorter = compare_decisions(a, a[:2])
    assert shorter.first_mismatch == 2 and "(none)" in shorter.context[-1]
