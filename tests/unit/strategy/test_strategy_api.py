"""The strategy API on a real hftbacktest backtest of a small hand-written feed: pull reads,
optional push, hook dispatch, the decision clock, and the errors a strategy can meet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.adapters.hftbacktest.session import BacktestSession
from featureplane.backtest.ab import compare_decisions
from featureplane.cli import main as cli_main
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import FeaturesUnavailableError, NotStartedError, UnknownSymbolError
from featureplane.features import lob_shared_v1 as v1
from featureplane.frames.frame import FeatureUpdateFrameV1, same_frame
from featureplane.strategy import BaseStrategy, OrderAdapter, StrategyRunner, wants_push
from featureplane.strategy.examples.imbalance_mm import (
    CANCEL,
    DECISION_DTYPE,
    QUOTE,
    SUBMIT,
    ImbalanceMMParams,
    LegacyImbalanceMM,
)
from tests.support import hbt_synthetic as syn

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


class Quoter(Journal):
    """Sends an order from every book and trade hook, as a reactive strategy does."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[int] = []
        self.final: tuple[int, int] | None = None

    def on_book(self) -> None:
        super().on_book()
        self.sent.append(self.ctx.submit_buy(990, 1))

    def on_trade(self, trades: np.ndarray) -> None:
        super().on_trade(trades)
        self.sent.append(self.ctx.submit_sell(1010, 1))

    def on_end(self) -> None:
        super().on_end()
        l1 = self.ctx.l1()
        self.final = (l1.bid_px, l1.ask_px)


def test_order_calls_from_book_and_trade_hooks_until_the_end() -> None:
    # The last batch arrives with the end of data, when the backtest takes no more orders: the
    # runner leaves it to on_end instead of calling on_book / on_trade with it.
    strategy = Quoter()
    stats = StrategyRunner(_adapter().session(), strategy, decision_interval_ns=4 * MS).run()
    books = [t - syn.T0 for k, t in strategy.calls if k == "book"]
    assert books == [int(ms * MS) for ms in (1, 2, 3.5, 5, 8, 12, 20)]
    assert stats.book_calls == 7 and stats.trade_calls == 4
    assert strategy.sent == list(range(1, 12))
    assert strategy.final == (1002, 1003)  # the final message (30 ms), seen by on_end


@pytest.mark.parametrize("name", ["k_ticks", "half_spread_ticks", "skew_ticks_per_lot"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_imbalance_params_refuse_non_finite_numbers(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be finite"):
        ImbalanceMMParams(**{name: value})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval-ms", "inf"], "--interval-ms must be in"),
        (["--interval-ms", "nan"], "--interval-ms must be in"),
        (["--interval-ms", "0"], "--interval-ms must be in"),
        (["--latency-ms", "inf"], "--latency-ms must be in"),
        (["--latency-ms", "1e300"], "--latency-ms must be in"),
        (["--latency-ms", "-1"], "--latency-ms must be in"),
        (["--k-ticks", "nan"], "k_ticks must be finite"),
    ],
)
def test_cli_backtest_refuses_bad_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text("")
    assert cli_main(["backtest", "ab", "--capture", str(capture), *args]) == 1
    assert f"featureplane: error: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "not a capture\n{}\n"])
def test_cli_backtest_refuses_a_capture_without_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    capture = tmp_path / "capture.txt"
    capture.write_text(text)
    for command in ("ab", "run"):
        # Of no venue the registry knows; named Binance, it holds no Binance stream.
        assert cli_main(["backtest", command, "--capture", str(capture)]) == 1
        assert f"{capture}: unknown format (tried binance, lobster" in capsys.readouterr().err
        args = ["backtest", command, "--capture", str(capture), "--format", "binance"]
        assert cli_main(args) == 1
        assert f"{capture}: no Binance stream found" in capsys.readouterr().err


@pytest.mark.slow
def test_compile_loops_compiles_before_a_run() -> None:
    from featureplane.strategy.examples import imbalance_mm_numba as nb

    nb.compile_loops()
    loops = nb._compile()
    compiled = {name: len(loop.signatures) for name, loop in loops.items()}
    assert compiled == {"legacy": 1, "feature": 1}
    # A run afterwards (an int parameter included) reuses the compiled loops, and decides as
    # the Python runner does.
    params = ImbalanceMMParams(k_ticks=2)  # type: ignore[arg-type]
    adapter = _adapter(feed="precomputed")
    legacy = nb.run_legacy_numba(adapter.session(), params, 2 * MS)
    feature = nb.run_feature_numba(adapter.session(), adapter.feature_arrays(), params, 2 * MS)
    assert {name: len(loop.signatures) for name, loop in loops.items()} == compiled
    python = LegacyImbalanceMM(params)
    StrategyRunner(_adapter("stats_only").session(), python, decision_interval_ns=2 * MS).run()
    assert len(legacy) > 10 and (legacy["action"] == SUBMIT).any()
    assert compare_decisions(legacy, python.decisions()).match
    assert compare_decisions(legacy, feature).match
