"""Backtest parity on the Binance USD-M BTCUSDT capture.

lob_feature streaming, lob_feature precomputed and a research replay (`process_batch` on the
`read_binance` events) agree frame for frame except for the differences docs/backtest.md allows,
tested here exactly; hftbacktest's own book equals the features at every wake-up; the legacy
and feature market makers decide identically (numba loops and the Python runner).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest.adapter import HftBacktestAdapter
from featureplane.backtest.ab import compare_decisions, run_strategy
from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.events import TRADE
from featureplane.features import lob_shared_v1 as v1
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.parquet import read_feature_file
from featureplane.sources import BinanceReplay, read_binance
from featureplane.strategy.examples import ImbalanceMMParams
from tests.support.datapaths import shared_data

RESEARCH_V1 = Path(__file__).resolve().parents[2] / "examples" / "feature-sets" / "research_v1.toml"

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

WARMUP_BITS = sum(1 << f.feature_id for f in v1.LOB_SHARED_V1.features if f.warmup_min_events > 2)


@pytest.fixture(scope="module")
def btcusdt() -> BinanceReplay:
    return read_binance([shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"])


@pytest.fixture(scope="module")
def adapter(btcusdt: BinanceReplay) -> HftBacktestAdapter:
    return HftBacktestAdapter(
        btcusdt.events, btcusdt.symbols, "BTCUSDT", feature_feed="precomputed", backend="rust"
    )


def _streamed(adapter: HftBacktestAdapter) -> tuple[FrameBatch, int]:
    """Frames of a streaming session, collected as they become visible, and the wake-ups at
    which hftbacktest's book differed from the features' top of book."""
    stream = HftBacktestAdapter.from_hftbacktest(
        adapter.data, adapter.instrument, feature_feed="streaming", backend="rust"
    )
    session = stream.session()
    session.start(push=True)
    frames, differs = [], 0
    while not session.ended:
        wake = session.step(10**15)
        frames += wake.frames
        view = session.ctx.get_feature_view("BTCUSDT")
        l1 = session.l1()
        if (l1.bid_px, l1.ask_px, l1.bid_qty, l1.ask_qty) != tuple(view.values[:4]):
            differs += 1
    batch = FrameBatch.allocate(adapter.frames().feature_set, adapter.replay.symbols, len(frames))
    for i, f in enumerate(frames):
        for name, value in zip(
            HEADER,
            (
                f.seq,
                f.source_ts_ns,
                f.local_ts_ns,
                f.changed_mask,
                f.warmup_ready_mask,
                f.quality_flags,
            ),
            strict=True,
        ):
            batch.columns[name][i] = value
        for arr, value in zip(batch.values.values(), f.values, strict=True):
            arr[i] = value
    return batch, differs


HEADER = (
    "seq",
    "source_ts_ns",
    "local_ts_ns",
    "changed_mask",
    "warmup_ready_mask",
    "quality_flags",
)


def test_streaming_precomputed_and_research_frames(
    btcusdt: BinanceReplay, adapter: HftBacktestAdapter, report: Callable[[str], None]
) -> None:
    pre = adapter.frames()
    streamed, l1_differs = _streamed(adapter)
    # Streaming = precomputed, every header field and value (input_index aside: not streamed).
    assert len(streamed) == len(pre) == 27_860
    for name in HEADER:
        assert np.array_equal(streamed.columns[name], pre.columns[name]), name
    for name, col in pre.values.items():
        assert np.array_equal(streamed.values[name], col, equal_nan=col.dtype.kind == "f"), name
    # hftbacktest's book shows the features' top of book at every wake-up (point in time).
    assert l1_differs == 0

    research = FeatureEngine(btcusdt.symbols, backend="rust").process_batch(btcusdt.events)
    r_in, b_in = research.columns["input_index"], pre.columns["input_index"]
    # Allowed: messages that hftbacktest's array groups into one (one local time, one kind).
    # Here exactly one: a depth message whose local time is earlier than its predecessor's
    # is clamped to it and joins it.
    kept = np.isin(r_in, b_in)
    (merged,) = np.flatnonzero(~kept)
    r_local = research.columns["local_ts_ns"]
    assert r_local[merged] < r_local[merged - 1]
    assert np.array_equal(research.columns["input_index"][kept], b_in)
    at = int(np.searchsorted(b_in, r_in[merged]))  # the frame that took the merged message

    def r(name: str) -> np.ndarray:
        return research.columns[name][kept]

    # Allowed: no sequence numbers in hftbacktest arrays.
    assert (pre.columns["seq"] == -1).all() and (r("seq") >= 0).all()
    # Allowed: local times made non-decreasing (the running maximum).
    assert np.array_equal(pre.columns["local_ts_ns"], np.maximum.accumulate(r_local)[kept])
    assert np.array_equal(pre.columns["source_ts_ns"], r("source_ts_ns"))
    # Allowed: without sequence numbers an exchange time going backwards is flagged
    # OUT_OF_ORDER_INPUT (with Binance's sequence numbers it is not). Nothing else differs.
    src = pre.columns["source_ts_ns"]
    backwards = np.zeros(len(src), dtype=bool)
    backwards[1:] = src[1:] < src[:-1]
    backwards &= (pre.columns["quality_flags"] & QualityFlag.STATE_RESET) == 0  # a snapshot
    ooo = int(QualityFlag.OUT_OF_ORDER_INPUT)
    assert np.array_equal(
        pre.columns["quality_flags"], r("quality_flags") | np.where(backwards, ooo, 0)
    )
    assert (r("quality_flags") & ooo == 0).all() and backwards.sum() == 87

    # Values: identical everywhere, except the two mid windows, which count one mid fewer after
    # the merge until the merged mid leaves them (64 two-sided book frames later).
    book = btcusdt.events["kind"][b_in] != TRADE
    after = np.flatnonzero(book & (np.arange(len(book)) >= at))
    limit = int(after[v1.MID_Z_WINDOW + 1])
    for name, col in pre.values.items():
        other = research.values[name][kept]
        same = (
            (col == other) | (np.isnan(col) & np.isnan(other))
            if col.dtype.kind == "f"
            else (col == other)
        )
        bad = np.flatnonzero(~same)
        if name in ("mid_ret_std_32", "mid_zscore_64"):
            assert len(bad) and bad.min() >= at and bad.max() < limit, name
        else:
            assert len(bad) == 0, name
    ready_diff = np.flatnonzero(pre.columns["warmup_ready_mask"] != r("warmup_ready_mask"))
    # Ready bits of features that warm up over several book frames turn on one frame later
    # (one book frame fewer); nothing else about readiness differs.
    other_bits = np.uint64(((1 << 64) - 1) ^ WARMUP_BITS)
    assert ((pre.columns["warmup_ready_mask"] ^ r("warmup_ready_mask")) & other_bits == 0).all()
    assert ready_diff.max() < limit
    changed = np.flatnonzero(pre.columns["changed_mask"] != r("changed_mask"))
    assert set(changed.tolist()) <= {at} | set(range(at, limit))
    report(
        f"backtest parity BTCUSDT: streaming = precomputed on all {len(pre):,} frames; "
        f"research replay equal but for seq, 1 merged message, 87 OUT_OF_ORDER flags and the "
        f"mid windows within {limit - at} frames of the merge; hftbacktest L1 = features at "
        f"every wake-up"
    )


def test_legacy_and_feature_strategies_decide_identically(
    btcusdt: BinanceReplay, adapter: HftBacktestAdapter, report: Callable[[str], None]
) -> None:
    params = ImbalanceMMParams()
    legacy_adapter = HftBacktestAdapter.from_hftbacktest(
        adapter.data, adapter.instrument, feature_mode="stats_only"
    )
    legacy = run_strategy(legacy_adapter, "legacy", params, loop="numba")
    feature = run_strategy(adapter, "feature", params, loop="numba")
    diff = compare_decisions(legacy.decisions, feature.decisions)
    assert diff.match, "\n".join(diff.context)
    actions = np.bincount(legacy.decisions["action"], minlength=4)
    # The comparison means something: thousands of quotes, orders, cancels, and fills.
    assert actions[0] > 6000 and actions[1] > 2000 and actions[2] > 500
    assert legacy.account.num_trades == feature.account.num_trades > 50
    assert legacy.account == feature.account

    # The Python runner (streaming features) decides as the compiled loops do.
    stream = HftBacktestAdapter.from_hftbacktest(
        adapter.data, adapter.instrument, feature_feed="streaming", backend="rust"
    )
    python = run_strategy(stream, "feature", params, loop="python")
    assert compare_decisions(legacy.decisions, python.decisions).match
    assert python.account == legacy.account
    report(
        f"A/B BTCUSDT: legacy (hftbacktest depth) and feature (lob_shared_v1) market makers "
        f"made identical decisions: {len(legacy.decisions):,} rows, {int(actions[1]):,} "
        f"orders, {int(actions[2]):,} cancels, {legacy.account.num_trades} fills (numba loops "
        f"and Python runner)"
    )


def test_the_compiled_loop_reads_a_declared_set_by_name(
    adapter: HftBacktestAdapter, report: Callable[[str], None]
) -> None:
    """research_v1 holds bid_px, ask_px and imbalance_l5 at other positions than lob_shared_v1:
    the numba loop finds them (and their ready bits) by name and decides as it does on the
    built-in set."""
    params = ImbalanceMMParams()
    fs = resolve_feature_set(RESEARCH_V1)
    research = HftBacktestAdapter.from_hftbacktest(
        adapter.data, adapter.instrument, feature_feed="precomputed", backend="rust",
        feature_set=fs,
    )  # fmt: skip
    assert [fs.index(n) for n in ("bid_px", "ask_px", "imbalance_l5")] != [
        v1.BID_PX, v1.ASK_PX, v1.IMBALANCE_L5
    ]  # fmt: skip
    declared = run_strategy(research, "feature", params, loop="numba")
    builtin = run_strategy(adapter, "feature", params, loop="numba")
    assert compare_decisions(builtin.decisions, declared.decisions).match
    assert declared.account == builtin.account and declared.account.num_trades > 50
    report(
        f"numba feature loop on research_v1 ({len(fs.features)} features): "
        f"{len(declared.decisions):,} decision rows, identical to lob_shared_v1's"
    )


def test_cli_ab_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    assert main(["backtest", "ab", "--capture", str(capture), "--interval-ms", "500"]) == 0
    assert "decisions identical" in capsys.readouterr().out
    out = tmp_path / "report.html"
    code = main(["backtest", "run", "--capture", str(capture), "--interval-ms", "500",
                 "--feed", "precomputed", "--out", str(out)])  # fmt: skip
    assert code == 0
    page = out.read_text()
    assert "data:image/png;base64," in page and "fill" in page
    assert "report:" in capsys.readouterr().out


def test_research_replay_of_the_backtest_array_equals_its_frames(
    adapter: HftBacktestAdapter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A research replay of the very array the backtest replays (saved as hftbacktest's
    converters save theirs) writes exactly the frames the backtest serves: no allowed
    differences at all, every header column and every value."""
    npz = tmp_path / "btcusdt_backtest.npz"
    np.savez_compressed(npz, data=adapter.data)
    out = tmp_path / "btcusdt_backtest.parquet"
    spec = adapter.instrument
    instrument = f"{spec.symbol}:{spec.tick_size}:{spec.lot_size}"
    args = ["replay", str(npz), "--out", str(out), "--format", "hftbacktest", "--units", "scaled"]
    code = main([*args, "--instrument", instrument, "--no-progress"])
    assert code == 0, capsys.readouterr().err
    research = read_feature_file(out).to_batch()
    pre = adapter.frames()
    assert len(research) == len(pre) == 27_860
    for name in HEADER:  # input_index is not a column of feature files
        assert np.array_equal(research.columns[name], pre.columns[name]), name
    for name, col in pre.values.items():
        assert np.array_equal(research.values[name], col, equal_nan=col.dtype.kind == "f"), name
