"""lob_shared_v1 on the real Binance captures, through FeatureEngine, on every backend.

A frame for every diff and trade after the sync point, no gap, and features that agree with the
book they were computed from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.events import TRADE, iter_messages
from featureplane.frames.frame import QualityFlag
from featureplane.sources import BinanceReplay, read_binance
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def btcusdt() -> BinanceReplay:
    return read_binance([shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"])


@pytest.fixture(scope="module")
def usdm_pair() -> BinanceReplay:
    return read_binance(
        [
            shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz",
            shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz",
        ]
    )


def test_frame_for_every_diff_and_trade_after_sync(
    btcusdt: BinanceReplay, backend: str, report: Callable[[str], None]
) -> None:
    stats = btcusdt.stats
    sync = stats.sync["BTCUSDT"]
    assert sync.straddled and sync.stale_dropped == 4
    eng = FeatureEngine(btcusdt.symbols, backend=backend)
    batch = eng.process_batch(btcusdt.events)
    n_messages = sum(1 for _ in iter_messages(btcusdt.events))
    # every emitted message is applied: 1 snapshot + 6,547 diffs + 21,313 trades
    assert len(batch) == n_messages == 1 + (6551 - 4) + 21313
    assert stats.messages == {"diff": 6547, "trade": 21313, "snapshot": 1}
    flags = batch.columns["quality_flags"]
    assert not (flags & QualityFlag.GAP_DETECTED).any()
    assert eng.counters["gaps"] == eng.counters["duplicates"] == eng.counters["out_of_order"] == 0
    # Trades before the snapshot line are frames on an empty book (PARTIAL); after the
    # snapshot (a reset) the book is two-sided for the whole capture.
    snap = int(np.flatnonzero(flags & QualityFlag.STATE_RESET)[-1])
    assert not (flags[snap:] & QualityFlag.PARTIAL_FEATURES).any()
    # mid_zscore_64 is ready from the 64th book frame after the snapshot on, never before
    ready = (batch.columns["warmup_ready_mask"] & (1 << 17)) != 0
    book_rows = np.flatnonzero(btcusdt.events["kind"][batch.input_index] != TRADE)
    warm = int(book_rows[book_rows >= snap][63])
    assert ready[warm:].all() and not ready[:warm].any()
    report(
        f"USD-M BTCUSDT [{backend}]: {len(batch):,} frames for {n_messages:,} messages, "
        f"0 gaps, first frame after sync at {snap}"
    )


def test_features_agree_with_the_book(btcusdt: BinanceReplay, backend: str) -> None:
    eng = FeatureEngine(btcusdt.symbols, backend=backend)
    batch = eng.process_batch(btcusdt.events)
    v = batch.values
    last = len(batch) - 1
    l1 = eng.lob.get_l1_scaled("BTCUSDT")  # type: ignore[attr-defined]
    assert (v["bid_px"][last], v["bid_qty"][last]) == (l1.bid_px, l1.bid_qty)
    assert (v["ask_px"][last], v["ask_qty"][last]) == (l1.ask_px, l1.ask_qty)
    two_sided = (batch.columns["quality_flags"] & QualityFlag.PARTIAL_FEATURES) == 0
    assert (v["spread"][two_sided] == v["ask_px"][two_sided] - v["bid_px"][two_sided]).all()
    assert (v["mid"][two_sided] == v["ask_px"][two_sided] + v["bid_px"][two_sided]).all()
    tick = 0.1
    micro = v["microprice"][two_sided]
    assert ((micro >= v["bid_px"][two_sided] * tick - 1e-9)
            & (micro <= v["ask_px"][two_sided] * tick + 1e-9)).all()  # fmt: skip
    # ofi_l1_cum is the running sum of ofi_l1 over the book frames since the snapshot
    book = btcusdt.events["kind"][batch.input_index] != TRADE
    snap = int(np.flatnonzero(batch.columns["quality_flags"] & QualityFlag.STATE_RESET)[-1])
    book[:snap] = False
    assert v["ofi_l1_cum"][last] == v["ofi_l1"][book].sum()
    assert (np.cumsum(v["ofi_l1"][book]) == v["ofi_l1_cum"][book]).all()


def test_btcusdt_and_ethusdt_in_one_run(usdm_pair: BinanceReplay, backend: str) -> None:
    eng = FeatureEngine(usdm_pair.symbols, backend=backend)
    batch = eng.process_batch(usdm_pair.events)
    per_symbol = {s.symbol: len(batch.for_symbol(s.symbol)) for s in usdm_pair.symbols}
    sync = usdm_pair.stats.sync
    assert per_symbol == {s: 1 + sync[s].diffs + sync[s].trades for s in ("BTCUSDT", "ETHUSDT")}
    assert per_symbol["BTCUSDT"] == 1 + 6547 + 21313
    assert sync["ETHUSDT"].trades == 14076 and sync["ETHUSDT"].straddled
    assert not (batch.columns["quality_flags"] & QualityFlag.GAP_DETECTED).any()
    eth = eng.get_feature_view("ETHUSDT")
    btc = eng.get_feature_view("BTCUSDT")
    assert eth.is_ready("mid_zscore_64") and btc.is_ready("mid_zscore_64")
    assert 2_000 < eth["mid"] * 0.01 / 2 < 3_000 < 50_000 < btc["mid"] * 0.1 / 2 < 70_000
