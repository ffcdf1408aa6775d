"""The Databento ESH4 MBO file (CME Globex, 2023-12-25 session open) end to end.

68,792 records: the 8,725-order start-of-day snapshot, the pre-open from 22:00 UTC, the holiday
reopen (the opening auction print at 23:00:00 UTC) and an hour of trading. Counts below are
from the file itself (SOURCE.md) and from `validate_databento`, which decodes it independently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from featureplane.checks.databento import validate_databento
from featureplane.engine.facade import FeatureEngine
from featureplane.events import CLEAR, SNAPSHOT, TRADE, UNKNOWN_SIDE, iter_messages
from featureplane.frames.frame import QualityFlag
from featureplane.sources.databento.reader import (
    DatabentoReplay,
    iter_databento,
    read_databento,
    venue_sequence,
)
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

RECORDS = 68_792
OPEN_NS = 1_703_545_200_000_000_000  # 2023-12-25T23:00:00Z, the 17:00 CT reopen
P_4800 = 4800 * 4  # ticks of 0.25


def _path() -> Path:
    folder = shared_data("databento-glbx-esh4-mbo-20231225")
    return folder / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


@pytest.fixture(scope="module")
def esh4() -> DatabentoReplay:
    return read_databento(_path())


def test_every_record_is_read_as_source_md_counts_them(esh4: DatabentoReplay) -> None:
    s = esh4.stats
    assert (s.records, s.other_records, s.filtered_records) == (RECORDS, 0, 0)
    assert (s.dbn_version, s.dataset, s.schema) == (1, "GLBX.MDP3", "mbo")
    assert s.instruments == {"ESH4": 17077}
    assert esh4.symbols.spec("ESH4").tick_size == 0.25
    # A: 8,725 snapshot adds + 20,491 live adds
    assert s.actions == {"A": 8725 + 20491, "C": 17999, "M": 12233, "T": 2973, "F": 6371}
    assert s.flags == {130: 47021, 0: 13045, 40: 8725, 128: 1}
    assert (s.snapshot_records, s.bad_ts_recv_records, s.maybe_bad_book_records) == (8725, 8725, 0)
    assert s.fills == {"A": 3231, "B": 3105, "N": 35}
    # 47,022 F_LAST events, every one of them changes a level; one snapshot message.
    assert s.messages == {"book": 47022, "snapshot": 1, "trade": 0}
    assert (s.empty_messages, s.trades, s.skipped, s.warnings) == (0, 2973, {}, {})
    assert (s.first_ts_ns, s.last_ts_ns) == (1_703_541_600_180_087_113, 1_703_548_799_446_724_905)


def test_snapshot_message(esh4: DatabentoReplay) -> None:
    snap = next(iter_messages(esh4.events))
    assert snap["kind"][0] == CLEAR and (snap["kind"][1:] == SNAPSHOT).all()
    bids = snap[1:][snap["side"][1:] == 1]
    asks = snap[1:][snap["side"][1:] == -1]
    assert (len(bids), len(asks)) == (892, 559)
    assert (int(bids["px"][0]), int(bids["qty"][0])) == (P_4800 - 4, 16)  # 4799.00 x 16
    assert (int(asks["px"][0]), int(asks["qty"][0])) == (P_4800 - 2, 23)  # 4799.50 x 23
    last = snap[-1]
    # source: the snapshot records' (common) ts_event; local: their ts_recv, 00:00 UTC.
    assert int(last["source_ts_ns"]) == 1_703_422_805_243_925_307
    assert int(last["local_ts_ns"]) == 1_703_462_400_000_000_000
    assert venue_sequence(int(last["seq"])) == 787  # the largest sequence of its records


def test_the_opening_auction_event(esh4: DatabentoReplay) -> None:
    # The 64-record event at 23:00:00.000: the auction print (T, side N, 44 @ 4800.25), 35
    # side-less fills and 28 cancels; its last record is the file's only flags-128 record.
    (message,) = [m for m in iter_messages(esh4.events) if int(m[-1]["source_ts_ns"]) == OPEN_NS]
    trades = message[message["kind"] == TRADE]
    assert [(int(t["side"]), int(t["px"]), int(t["qty"])) for t in trades] == [
        (UNKNOWN_SIDE, P_4800 + 1, 44)
    ]
    assert venue_sequence(int(message[-1]["seq"])) == 6003


def test_validation_uncrossed_after_the_open_and_trades_reconciled(
    report: Callable[[str], None],
) -> None:
    v = validate_databento(_path())
    assert v.trading_start_ns == OPEN_NS
    assert v.messages == 47023 and v.engine_counters["applied"] == 47023
    assert v.engine_counters["duplicates"] == v.engine_counters["gaps"] == 0
    # Never locked or crossed at an F_LAST boundary from the open on.
    assert (v.window_messages, v.window_locked, v.window_crossed) == (46097, 0, 0)
    # The pre-open (the snapshot and 925 events from 22:00): crossed from 22:39:55 on, as
    # orders rest through the coming opening price, until the auction uncrosses the book.
    assert (v.pre_open_messages, v.pre_open_crossed, v.pre_open_locked) == (926, 891, 0)
    f = v.file
    assert v.trade_rows == f.t_records == 2973 and f.t_size == 9892
    assert f.f_records == 6371
    assert (f.f_passive, f.f_aggressor, f.f_no_side) == (6229, 107, 35)
    assert (f.f_passive_size, f.f_aggressor_size, f.f_no_side_size) == (9848, 265, 88)
    assert f.reconciled  # 9,892 traded = 9,848 passive + 88 / 2 auction fills
    assert v.ok
    report(f"Databento ESH4: {v.summary()}")


def test_streaming_equals_the_whole_read(esh4: DatabentoReplay) -> None:
    reader = iter_databento(_path(), chunk_messages=4096)
    chunks = list(reader)
    assert len(chunks) == 12
    assert (np.concatenate(chunks) == esh4.events).all()
    assert reader.stats.events == len(esh4.events) == 61611


def test_feature_engine_takes_the_whole_file(
    esh4: DatabentoReplay, backend: str, report: Callable[[str], None]
) -> None:
    engine = FeatureEngine(esh4.symbols, backend=backend)
    batch = engine.process_batch(esh4.events)
    assert len(batch) == 47023
    flags = batch.columns["quality_flags"]
    counts = {q.name: int(((flags & q) != 0).sum()) for q in QualityFlag}
    assert counts == {
        "GAP_DETECTED": 0,
        "STATE_RESET": 1,
        "STALE_INPUT": 0,
        "OUT_OF_ORDER_INPUT": 0,
        "PARTIAL_FEATURES": 0,
        "VALUE_SATURATED": 0,
    }
    assert engine.counters["applied"] == 47023
    regime = batch.values["book_regime"]
    crossed = (regime & 1) != 0
    assert int(crossed.sum()) == 891
    assert not crossed[batch.columns["source_ts_ns"] >= OPEN_NS].any()
    wide = int(((regime & 4) != 0).sum())
    report(
        f"Databento ESH4 [{backend}]: {len(batch):,} frames, flags {counts}, "
        f"book_regime crossed {int(crossed.sum())} (all pre-open), wide spread {wide}"
    )


def test_throughput(report: Callable[[str], None]) -> None:
    best = min(_timed_read() for _ in range(3))
    report(f"Databento ESH4 read: {RECORDS / best:,.0f} records/s ({best * 1e3:.0f} ms)")


def _timed_read() -> float:
    t0 = time.perf_counter()
    read_databento(_path())
    return time.perf_counter() - t0
