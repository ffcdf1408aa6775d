"""The Binance source on the real captures in ../shared/data (facts from their SOURCE.md).

Each capture is read once per module: the USD-M pair (BTCUSDT + ETHUSDT, the same minutes)
through the streaming form, the spot pair (two files of one chain) through the whole-array form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from featureplane.events import (
    BID,
    BUY,
    CLEAR,
    END_OF_MESSAGE,
    LEVEL,
    SELL,
    SNAPSHOT,
    TRADE,
    message_bounds,
    validate,
)
from featureplane.instruments import SymbolTable
from featureplane.sources import BinanceReplay, BinanceStats, iter_binance, read_binance
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

CHUNK_ROWS = 1 << 15


@dataclass
class Streamed:
    events: NDArray[Any]
    book_tickers: NDArray[Any]
    symbols: SymbolTable
    stats: BinanceStats
    chunk_sizes: list[int]
    chunk_last_flags: list[int]


@pytest.fixture(scope="module")
def usdm() -> Streamed:
    btc = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    eth = shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz"
    reader = iter_binance([btc, eth], chunk_rows=CHUNK_ROWS)
    chunks = list(reader.chunks())
    events = np.concatenate([c.events for c in chunks])
    return Streamed(
        events,
        np.concatenate([c.book_tickers for c in chunks]),
        reader.symbols,
        reader.stats,
        [len(c.events) for c in chunks],
        [int(c.events["flags"][-1]) for c in chunks if len(c.events)],
    )


@pytest.fixture(scope="module")
def spot() -> BinanceReplay:
    folder = shared_data("binance-spot-btcusdt-20240808-09")
    # Given in the wrong order on purpose: the chain is ordered by first local timestamp.
    return read_binance([folder / "btcusdt_20240809.gz", folder / "btcusdt_20240808.gz"])


def last_rows(events: NDArray[Any]) -> NDArray[Any]:
    """One row per message: its last row (which carries the message-level fields)."""
    rows: NDArray[Any] = events[message_bounds(events) - 1]
    return rows


def diffs_of(events: NDArray[Any], symbol_id: int) -> NDArray[Any]:
    msgs = last_rows(events)
    diffs: NDArray[Any] = msgs[(msgs["symbol_id"] == symbol_id) & (msgs["kind"] == LEVEL)]
    return diffs


# ----- USD-M BTCUSDT --------------------------------------------------------------------------


def test_btcusdt_counts(usdm: Streamed) -> None:
    sync = usdm.stats.sync["BTCUSDT"]
    assert sync.diffs_read == 6551
    assert sync.stale_dropped == 4
    assert sync.diffs == 6551 - 4
    assert sync.trades == 21313
    assert sync.book_tickers == 66089
    assert sync.snapshots == 1
    assert usdm.stats.skipped == {} and usdm.stats.warnings == {}
    sid = usdm.symbols.id_of("BTCUSDT")
    msgs = last_rows(usdm.events)
    mine = msgs[msgs["symbol_id"] == sid]
    assert int((mine["kind"] == TRADE).sum()) == 21313
    assert int((mine["kind"] == LEVEL).sum()) == 6547
    assert int((usdm.book_tickers["symbol_id"] == sid).sum()) == 66089


def test_btcusdt_sync_facts(usdm: Streamed) -> None:
    sync = usdm.stats.sync["BTCUSDT"]
    assert sync.last_update_id == 5123107852948
    # The fifth diff before the snapshot line straddles it; the first four are stale.
    assert (sync.first_U, sync.first_u, sync.straddled) == (5123107850310, 5123107853551, True)
    assert sync.buffered_diffs == 6
    first = diffs_of(usdm.events, usdm.symbols.id_of("BTCUSDT"))[0]
    assert int(first["local_ts_ns"]) == 1723161255240214766
    assert int(first["source_ts_ns"]) == 1723161256505 * 1_000_000  # T, not E


def test_btcusdt_pu_continuity(usdm: Streamed) -> None:
    diffs = diffs_of(usdm.events, usdm.symbols.id_of("BTCUSDT"))
    assert np.array_equal(diffs["prev_seq"][1:], diffs["seq"][:-1])
    assert np.all(diffs["first_seq"] <= diffs["seq"])
    assert usdm.stats.sync["BTCUSDT"].seq_gaps == 0


def test_btcusdt_snapshot_and_trades(usdm: Streamed) -> None:
    sid = usdm.symbols.id_of("BTCUSDT")
    rows = usdm.events[usdm.events["symbol_id"] == sid]
    snap = rows[(rows["kind"] == SNAPSHOT) | (rows["kind"] == CLEAR)]
    assert int((snap["kind"] == CLEAR).sum()) == 1
    levels = snap[snap["kind"] == SNAPSHOT]
    bids, asks = levels[levels["side"] == BID], levels[levels["side"] != BID]
    assert (len(bids), len(asks)) == (1000, 1000)
    assert (int(bids["px"][0]), int(bids["qty"][0])) == (618002, 2909)  # 61800.20 x 2.909
    assert (int(asks["px"][0]), int(asks["qty"][0])) == (618003, 1072)  # 61800.30 x 1.072
    assert int(snap["seq"][0]) == 5123107852948
    trades = rows[rows["kind"] == TRADE]
    assert (int((trades["side"] == SELL).sum()), int((trades["side"] == BUY).sum())) == (
        11697,
        9616,
    )


# ----- USD-M pair, streamed and merged --------------------------------------------------------


def test_usdm_pair_symbols_and_ethusdt(usdm: Streamed) -> None:
    assert [spec.symbol for spec in usdm.symbols] == ["BTCUSDT", "ETHUSDT"]
    eth = usdm.stats.sync["ETHUSDT"]
    assert (eth.diffs_read, eth.trades, eth.book_tickers) == (6586, 14076, 53992)
    assert eth.last_update_id == 5123107856276 and eth.straddled is True
    diffs = diffs_of(usdm.events, usdm.symbols.id_of("ETHUSDT"))
    assert np.array_equal(diffs["prev_seq"][1:], diffs["seq"][:-1])
    assert str(usdm.symbols.spec("ETHUSDT").tick_size) == "0.01"


def test_usdm_pair_chunks(usdm: Streamed) -> None:
    validate(usdm.events, len(usdm.symbols))
    assert len(usdm.chunk_sizes) > 10
    # A chunk ends on a message boundary; the largest message is a 2001-row snapshot.
    assert max(usdm.chunk_sizes) <= 2 * CHUNK_ROWS + 2001
    assert all(flags & END_OF_MESSAGE for flags in usdm.chunk_last_flags)
    assert usdm.stats.events == len(usdm.events)


def test_usdm_pair_merged_in_local_time_order(usdm: Streamed) -> None:
    msgs = last_rows(usdm.events)
    local = msgs["local_ts_ns"].copy()
    # Diffs buffered before a snapshot follow it with their own (earlier) local times;
    # everything else is in local-time order.
    snapshot_ts: dict[int, int] = {}
    released = 0
    for i, msg in enumerate(msgs):
        sid = int(msg["symbol_id"])
        if msg["kind"] in (CLEAR, SNAPSHOT):
            snapshot_ts[sid] = int(msg["local_ts_ns"])
        elif msg["kind"] == LEVEL and local[i] < snapshot_ts.get(sid, -1):
            local[i] = snapshot_ts[sid]
            released += 1
    assert np.all(np.diff(local) >= 0)
    expected = sum(s.buffered_diffs - s.stale_dropped for s in usdm.stats.sync.values())
    assert released == expected >= 2  # BTCUSDT: the fifth and sixth pre-snapshot diffs
    bbo_local = usdm.book_tickers["local_ts_ns"]
    assert np.all(np.diff(bbo_local) >= 0)
    assert set(np.unique(msgs["symbol_id"]).tolist()) == {0, 1}


# ----- spot pair: one chain across two files --------------------------------------------------


def test_spot_chain(spot: BinanceReplay) -> None:
    stats = spot.stats
    assert stats.skipped == {} and stats.warnings == {}
    sync = stats.sync["BTCUSDT"]
    assert sync.market == "spot" and sync.files[0].endswith("btcusdt_20240808.gz")
    assert sync.chain_gaps == 0 and sync.seq_gaps == 0
    assert sync.last_update_id == 50093239218 and sync.straddled is True
    assert sync.diffs_read == 3451 + 3044
    assert sync.trades == 9757 + 10147
    assert sync.book_tickers == 28040 + 45134
    assert str(spot.symbols.spec("BTCUSDT").lot_size) in ("1E-8", "0.00000001")


def test_spot_second_file_continues_the_first(spot: BinanceReplay) -> None:
    second = next(f for f in spot.stats.files if f.path.endswith("btcusdt_20240809.gz"))
    assert second.chain_pos == 1 and second.first_local_ts_ns is not None
    diffs = diffs_of(spot.events, 0)
    assert np.array_equal(diffs["first_seq"][1:], diffs["seq"][:-1] + 1)
    boundary = int(np.argmax(diffs["local_ts_ns"] >= second.first_local_ts_ns))
    assert boundary > 0
    assert int(diffs["seq"][boundary - 1]) == 50093421584
    assert int(diffs["first_seq"][boundary]) == 50093421585 == 50093421584 + 1
    assert int(diffs["seq"][-1]) == 50093696318


def test_spot_deep_levels_are_exact(spot: BinanceReplay) -> None:
    # Deep resting levels carry 6-8 size decimals: a 1e-8 lot keeps every one of them exact.
    validate(spot.events, len(spot.symbols))
    assert int((spot.events["qty"] % 1000 != 0).sum()) > 0
