"""A two-asset backtest on the Binance USD-M BTCUSDT and ETHUSDT captures.

One hftbacktest backtest over both symbols: the cross-asset market maker trades BTCUSDT and
leans on ETHUSDT's imbalance; its legacy (both books) and feature (both symbols' features)
variants decide identically, in the Python runner and as numba loops. At every wake-up
`get_feature_view("ETHUSDT")` is research replay's ETHUSDT frame as of the clock, and push
delivers every frame of both symbols.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest import HftBacktestAdapter, MultiAssetAdapter
from featureplane.backtest.cross import run_cross_ab
from featureplane.backtest.feeds import SymbolFeed
from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.events import concat
from featureplane.frames.frame import FrameBatch
from featureplane.sources import BinanceReplay, iter_binance, read_binance
from featureplane.sources.hftbacktest import read_hftbacktest_events, to_hftbacktest_events
from featureplane.strategy.examples import ImbalanceMMParams
from featureplane.strategy.examples.imbalance_mm import SUBMIT
from tests.support.datapaths import shared_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

BTC = ("binance-usdm-btcusdt-20240808", "btcusdt_20240808.gz")
ETH = ("binance-usdm-ethusdt-20240808", "ethusdt_20240808.gz")


def _capture(where: tuple[str, str]) -> Path:
    return shared_data(where[0]) / where[1]


@pytest.fixture(scope="module")
def both() -> BinanceReplay:
    return read_binance([_capture(BTC), _capture(ETH)])


def _feed(replay: BinanceReplay, symbol: str) -> SymbolFeed:
    return SymbolFeed(symbol, replay.events, replay.symbols, "binance")


def test_cross_market_maker_decides_identically_on_two_assets(
    both: BinanceReplay, report: Callable[[str], None]
) -> None:
    params = ImbalanceMMParams()
    btc, eth = _feed(both, "BTCUSDT"), _feed(both, "ETHUSDT")
    python = run_cross_ab(btc, eth, loop="python", feed="streaming", params=params, backend="rust")
    numba = run_cross_ab(btc, eth, loop="numba", feed="precomputed", params=params)
    for ab in (python, numba):
        assert ab.diff.match, ab.format()
        assert ab.legacy.account == ab.feature.account
    # The Python runner and the compiled loops make the same decisions too.
    assert np.array_equal(python.feature.decisions, numba.feature.decisions)
    decisions = python.feature.decisions
    assert (decisions["action"] == SUBMIT).sum() > 1_000
    assert python.feature.account.num_trades > 10
    # The lead matters: without it (k_lead 0) the same feeds give other quotes.
    flat = run_cross_ab(btc, eth, loop="numba", k_lead_ticks=0.0, params=params)
    assert flat.diff.match
    assert not np.array_equal(flat.feature.decisions, decisions)
    f = python.feature
    report(
        f"A/B BTCUSDT on ETHUSDT (two assets): legacy and feature cross market makers made "
        f"identical decisions: {len(decisions):,} rows, {f.orders_sent:,} orders, "
        f"{f.cancels:,} cancels, {f.account.num_trades} fills (numba loops and Python runner)"
    )


def _research(adapter: HftBacktestAdapter) -> FrameBatch:
    """Research replay of the very array the backtest replays (docs/backtest.md: identical)."""
    back = read_hftbacktest_events(adapter.data, adapter.instrument)
    return FeatureEngine(back.symbols, backend="python").process_batch(back.events)


def test_lead_view_is_research_replay_at_every_wakeup(both: BinanceReplay) -> None:
    multi = MultiAssetAdapter.from_events(
        both.events, both.symbols, ["BTCUSDT", "ETHUSDT"], feature_feed="streaming", backend="rust"
    )
    research = {s: _research(multi.adapter(s)) for s in multi.symbols}
    session = multi.session()
    ctx = session.start(push=True)
    pushed: dict[str, list[int]] = {s: [] for s in multi.symbols}
    last_ts = -1
    wakeups = differs = 0
    eth = research["ETHUSDT"]
    eth_ts = eth.columns["local_ts_ns"]
    while not session.ended:
        wake = session.step(50_000_000)
        wakeups += 1
        for frame in wake.frames:
            assert frame.local_ts_ns >= last_ts  # one local-time order across the symbols
            last_ts = frame.local_ts_ns
            pushed[frame.symbol].append(frame.local_ts_ns)
        at = int(np.searchsorted(eth_ts, wake.now_ns, side="right")) - 1
        view = ctx.get_feature_view("ETHUSDT")
        if at < 0:
            assert view.warmup_ready_mask == 0
            continue
        expected = tuple(col[at].item() for col in eth.values.values())
        same = (
            np.array_equal(np.array(view.values, float), np.array(expected, float), equal_nan=True)
            and view.warmup_ready_mask == int(eth.columns["warmup_ready_mask"][at])
            and view.quality_flags == int(eth.columns["quality_flags"][at])
            and view.source_ts_ns == int(eth.columns["source_ts_ns"][at])
        )
        differs += not same
    # One wake-up at least per distinct local time of either feed (timeouts add more).
    times = {int(t) for a in multi.adapters for t in a.messages.local_ts_ns}
    assert wakeups >= len(times) > 40_000
    assert differs == 0
    for symbol, batch in research.items():
        assert np.array_equal(pushed[symbol], batch.columns["local_ts_ns"]), symbol
    # hftbacktest's ETHUSDT book is the ETHUSDT features' top of book at the end.
    l1 = ctx.l1("ETHUSDT")
    view = ctx.get_feature_view("ETHUSDT")
    assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == (
        view.values[0],
        view.values[2],
        view.values[1],
        view.values[3],
    )
    assert ctx.instrument("ETHUSDT").ticks_to_px(l1.bid_px) * 1 > 0


def test_cli_backtests_two_hftbacktest_arrays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`featureplane backtest ab` over files of another venue (hftbacktest .npz), two symbols."""
    args = ["backtest", "ab", "--loop", "python", "--lead", "ETHUSDT", "--symbol", "BTCUSDT"]
    for where, symbol, grid in ((BTC, "BTCUSDT", "0.1:0.001"), (ETH, "ETHUSDT", "0.01:0.001")):
        reader = iter_binance([_capture(where)], chunk_rows=100_000)
        events = concat([next(iter(reader))])  # the first 100k rows: a minute or two
        path = tmp_path / f"{symbol}.npz"
        np.savez(path, data=to_hftbacktest_events(events, reader.symbols, symbol))
        args += ["--capture", str(path), "--instrument", f"{symbol}:{grid}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "decisions identical" in out and "leaning on ETHUSDT" in out
    # The traded symbol must differ from the lead.
    assert main([*args[:6], "--symbol", "ETHUSDT", *args[8:]]) != 0
    assert "is the traded symbol" in capsys.readouterr().err


def _head(where: tuple[str, str], symbol: str, rows: int) -> SymbolFeed:
    reader = iter_binance([_capture(where)], chunk_rows=rows)
    return SymbolFeed(symbol, concat([next(iter(reader))]), reader.symbols, "binance")


def test_market_maker_quotes_each_symbol_and_decides_identically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], report: Callable[[str], None]
) -> None:
    """`--symbol BTCUSDT ETHUSDT`: the example market maker quotes both in one backtest, and
    its legacy and feature variants decide identically on each."""
    from featureplane.backtest.each import run_each_ab

    feeds = [_head(BTC, "BTCUSDT", 50_000), _head(ETH, "ETHUSDT", 50_000)]
    ab = run_each_ab(feeds, params=ImbalanceMMParams(), backend="rust")
    assert ab.match, ab.format()
    assert list(ab.feature) == ["BTCUSDT", "ETHUSDT"]
    for symbol, outcome in ab.feature.items():
        assert outcome.orders_sent > 10, symbol  # both symbols quoted, not just the first
        assert ab.legacy[symbol].account == outcome.account, symbol
    # Each symbol quotes on its own book: the two logs are not one log twice.
    btc, eth = (ab.feature[s].decisions for s in ("BTCUSDT", "ETHUSDT"))
    assert not np.array_equal(btc["px"][:50], eth["px"][:50])

    # The command: the same A/B, and a run with its report.
    args = []
    for where, symbol, grid in ((BTC, "BTCUSDT", "0.1:0.001"), (ETH, "ETHUSDT", "0.01:0.001")):
        feed = _head(where, symbol, 50_000)
        path = tmp_path / f"{symbol}.npz"
        np.savez(path, data=to_hftbacktest_events(feed.events, feed.symbols, symbol))
        args += ["--capture", str(path), "--instrument", f"{symbol}:{grid}"]
    both = ["--symbol", "BTCUSDT", "ETHUSDT", *args]
    assert main(["backtest", "ab", "--loop", "python", *both]) == 0
    out = capsys.readouterr().out
    assert out.count("decisions identical") == 2 and "2 symbols in one backtest" in out
    assert main(["backtest", "ab", *both]) == 1  # the compiled loops quote one symbol
    assert "--loop python" in capsys.readouterr().err
    png = tmp_path / "each.png"
    assert main(["backtest", "run", *both, "--out", str(png)]) == 0
    out = capsys.readouterr().out
    assert "feature BTCUSDT" in out and "feature ETHUSDT" in out and png.stat().st_size > 0
    report(
        "market maker quoting BTCUSDT and ETHUSDT in one backtest: "
        + ", ".join(f"{s} {o.orders_sent:,} orders" for s, o in ab.feature.items())
        + "; legacy and feature decisions identical on each"
    )
