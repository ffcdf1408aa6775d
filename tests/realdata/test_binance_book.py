"""A book rebuilt from the Binance diffs agrees with Binance's own bookTicker stream.

The events of each capture go through `LOBEngine`; after each diff the L1 is recorded with the
diff's update-id range `[U, u]`. A bookTicker with update id `b` shows the book after every
update up to `b`: when `u_k <= b < U_{k+1}` (no diff update falls between), the book after diff
k must show exactly its best bid and ask, prices and sizes. Every such bookTicker is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from featureplane.events import CLEAR, LEVEL, SNAPSHOT, iter_messages, validate
from featureplane.sources import BinanceReplay, read_binance
from tests.support.datapaths import shared_data

book = pytest.importorskip("featureplane.book", reason="featureplane.book (LOBEngine) not built")

pytestmark = pytest.mark.realdata

L1Row = tuple[int | None, int | None, int | None, int | None]


def _usdm_paths() -> list[Path]:
    return [
        shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz",
        shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz",
    ]


def _spot_paths() -> list[Path]:
    folder = shared_data("binance-spot-btcusdt-20240808-09")
    return [folder / "btcusdt_20240808.gz", folder / "btcusdt_20240809.gz"]


class Rebuilt:
    """The replay applied through LOBEngine, with the L1 after every book message."""

    def __init__(self, replay: BinanceReplay) -> None:
        self.replay = replay
        self.lob = book.LOBEngine(replay.symbols)
        self.first: dict[str, list[int]] = {s.symbol: [] for s in replay.symbols}
        self.last: dict[str, list[int]] = {s.symbol: [] for s in replay.symbols}
        self.l1: dict[str, list[L1Row]] = {s.symbol: [] for s in replay.symbols}
        self.crossed = 0
        self.statuses: dict[str, int] = {}
        self.gaps = 0
        validate(replay.events, len(replay.symbols))
        for msg in iter_messages(replay.events):
            res = self.lob.apply(msg)
            self.statuses[res.status] = self.statuses.get(res.status, 0) + 1
            self.gaps += int(res.gap)
            kind = int(msg["kind"][-1])
            if kind not in (LEVEL, CLEAR, SNAPSHOT):
                continue
            symbol = replay.symbols.name_of(int(msg["symbol_id"][-1]))
            l1 = self.lob.get_l1_scaled(symbol)
            row = (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty)
            # A snapshot stands for update id lastUpdateId exactly: U = u = L.
            seq = int(msg["seq"][-1])
            self.first[symbol].append(seq if kind != LEVEL else int(msg["first_seq"][-1]))
            self.last[symbol].append(seq)
            self.l1[symbol].append(row)
            if l1.bid_px is not None and l1.ask_px is not None and l1.bid_px >= l1.ask_px:
                self.crossed += 1

    def check_book_tickers(self, symbol: str) -> tuple[NDArray[Any], list[str]]:
        """(local times of the comparable bookTickers, descriptions of the mismatches)."""
        sid = self.replay.symbols.id_of(symbol)
        bbo: NDArray[Any] = self.replay.book_tickers
        bbo = bbo[bbo["symbol_id"] == sid]
        first = np.array(self.first[symbol], dtype=np.int64)
        last = np.array(self.last[symbol], dtype=np.int64)
        ids = bbo["update_id"]
        k = np.searchsorted(last, ids, side="right") - 1
        ok = (k >= 0) & (k + 1 < len(last))
        ok[ok] &= first[k[ok] + 1] > ids[ok]
        mismatches = []
        for j in np.flatnonzero(ok):
            b = bbo[j]
            got = (int(b["bid_px"]), int(b["bid_qty"]), int(b["ask_px"]), int(b["ask_qty"]))
            want = self.l1[symbol][int(k[j])]
            if got != want:
                mismatches.append(f"bookTicker u={int(ids[j])}: {got} vs book {want}")
        compared: NDArray[Any] = bbo["local_ts_ns"][ok]
        return compared, mismatches


@pytest.fixture(scope="module")
def usdm() -> Rebuilt:
    return Rebuilt(read_binance(_usdm_paths()))


@pytest.fixture(scope="module")
def spot() -> Rebuilt:
    return Rebuilt(read_binance(_spot_paths()))


def test_usdm_books_apply_without_gaps(usdm: Rebuilt) -> None:
    assert usdm.statuses == {"applied": len(list(iter_messages(usdm.replay.events)))}
    assert usdm.gaps == 0
    assert usdm.crossed == 0


def _report_agreement(
    report: Callable[[str], None], label: str, symbol: str, replay: BinanceReplay, n: int, bad: int
) -> None:
    sid = replay.symbols.id_of(symbol)
    total = int((replay.book_tickers["symbol_id"] == sid).sum())
    report(
        f"{label} {symbol}: best bid/ask agree with bookTicker on {n - bad:,} of {n:,} "
        f"comparable update ids ({(n - bad) / n:.2%}); {total:,} bookTickers in all, "
        "the rest fall inside a diff"
    )


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_usdm_book_matches_book_ticker(
    usdm: Rebuilt, symbol: str, report: Callable[[str], None]
) -> None:
    compared, mismatches = usdm.check_book_tickers(symbol)
    assert len(compared) > 300, "too few bookTickers fall between two diffs to test anything"
    _report_agreement(report, "USD-M", symbol, usdm.replay, len(compared), len(mismatches))
    assert mismatches == []


def test_spot_book_across_files_matches_book_ticker(
    spot: Rebuilt, report: Callable[[str], None]
) -> None:
    assert spot.gaps == 0 and spot.crossed == 0
    compared, mismatches = spot.check_book_tickers("BTCUSDT")
    assert len(compared) > 500
    _report_agreement(
        report, "spot (2 files)", "BTCUSDT", spot.replay, len(compared), len(mismatches)
    )
    assert mismatches == []
    # Many checked bookTickers come from the second file: the carried book is right there too.
    second = next(f for f in spot.replay.stats.files if f.chain_pos == 1)
    assert second.first_local_ts_ns is not None
    assert int((compared >= second.first_local_ts_ns).sum()) > 100
