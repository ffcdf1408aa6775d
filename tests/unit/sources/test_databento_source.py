"""Unit tests of the Databento MBO source on small DBN files built with databento-dbn.

Records are `databento_dbn.MBOMsg` objects encoded by the package itself (`bytes(record)`,
after `bytes(Metadata)`), so the files are real DBN; the zstd path is covered by the real file
(tests/realdata/test_databento_esh4.py). ESH4 (instrument 17077) has the built-in tick 0.25.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featureplane.book.lob import LOBEngine
from featureplane.checks.databento import validate_databento
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import SourceFormatError, UnknownSymbolError
from featureplane.events import (
    ASK,
    BID,
    BUY,
    CLEAR,
    LEVEL,
    NO_SEQ,
    SELL,
    SNAPSHOT,
    TRADE,
    UNKNOWN_SIDE,
    iter_messages,
    validate,
)
from featureplane.instruments import InstrumentSpec
from featureplane.sources.databento.book import MboBook
from featureplane.sources.databento.reader import (
    SEQ_SHIFT,
    DatabentoReader,
    builtin_spec,
    iter_databento,
    read_databento,
    venue_sequence,
)

ES = 17077
NQ = 9999
TICK = 250_000_000  # 0.25 in DBN's 1e-9 units
BASE = 4800 * 4 * TICK  # 4800.00
LAST = dbn.F_LAST
SNAP = dbn.F_SNAPSHOT | dbn.F_BAD_TS_RECV
T0 = 1_703_541_600_000_000_000  # 2023-12-25T22:00Z


@dataclass
class _Interval:
    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass
class _Mapping:
    raw_symbol: str
    intervals: list[_Interval]


def _metadata(symbols: dict[str, int], schema: dbn.Schema = dbn.Schema.MBO) -> bytes:
    day = dt.date(2023, 12, 25)
    mappings = [
        _Mapping(name, [_Interval(day, day + dt.timedelta(days=1), str(iid))])
        for name, iid in symbols.items()
    ]
    md = dbn.Metadata(
        dataset="GLBX.MDP3",
        start=T0,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=schema,
        symbols=list(symbols),
        mappings=mappings,
        end=T0 + 3_600_000_000_000,
        version=1,
    )
    return bytes(md)


def mbo(
    action: str,
    side: str,
    ticks: int,
    size: int,
    order_id: int,
    *,
    flags: int = LAST,
    seq: int = 1,
    ts: int = 0,
    recv: int | None = None,
    iid: int = ES,
    price: int | None = None,
) -> dbn.MBOMsg:
    """An MBO record at `ticks` ticks above 4800.00 (or a raw `price` in 1e-9 units)."""
    return dbn.MBOMsg(
        1,
        iid,
        T0 + ts,
        order_id,
        BASE + ticks * TICK if price is None else price,
        size,
        dbn.Action(action),
        dbn.Side(side),
        T0 + (ts + 100 if recv is None else recv),
        flags=flags,
        sequence=seq,
    )


def write_dbn(
    path: Path,
    records: Sequence[dbn.MBOMsg],
    symbols: dict[str, int] | None = None,
    schema: dbn.Schema = dbn.Schema.MBO,
) -> Path:
    body = b"".join(bytes(r) for r in records)
    path.write_bytes(_metadata(symbols or {"ESH4": ES}, schema) + body)
    return path


def rows(events: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [
        (int(k), int(s), int(p), int(q))
        for k, s, p, q in zip(
            events["kind"], events["side"], events["px"], events["qty"], strict=True
        )
    ]


def messages(events: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    return [rows(m) for m in iter_messages(events)]


P0 = 4800 * 4  # 4800.00 in ticks


# ----- MBO aggregation -----------------------------------------------------------------------


def test_actions_become_absolute_level_sizes(tmp_path: Path) -> None:
    recs = [
        mbo("A", "B", 0, 5, 1, seq=10, ts=1),
        mbo("A", "B", 0, 3, 2, seq=11, ts=2),
        mbo("A", "A", 1, 4, 3, seq=12, ts=3),
        mbo("C", "B", 0, 2, 1, seq=13, ts=4),  # partial cancel: 8 -> 6
        mbo("M", "B", -1, 3, 2, seq=14, ts=5),  # price change: order 2 moves down a tick
        # A trade: T (aggressor sell), F of the resting bid (no book effect), then the C
        # that takes the filled size off. One event: F_LAST on the last record only.
        mbo("T", "A", 0, 3, 9, flags=0, seq=15, ts=6),
        mbo("F", "B", 0, 3, 1, flags=0, seq=15, ts=6),
        mbo("C", "B", 0, 3, 1, seq=15, ts=6),
    ]
    replay = read_databento(write_dbn(tmp_path / "a.dbn", recs))
    assert messages(replay.events) == [
        [(LEVEL, BID, P0, 5)],
        [(LEVEL, BID, P0, 8)],
        [(LEVEL, ASK, P0 + 1, 4)],
        [(LEVEL, BID, P0, 6)],
        [(LEVEL, BID, P0, 3), (LEVEL, BID, P0 - 1, 3)],
        [(LEVEL, BID, P0, 0), (TRADE, SELL, P0, 3)],
    ]
    ev = replay.events
    validate(ev, len(replay.symbols))
    assert replay.symbols.name_of(0) == "ESH4"
    assert (ev["first_seq"] == NO_SEQ).all() and (ev["prev_seq"] == NO_SEQ).all()
    last = ev[np.flatnonzero(ev["flags"])]
    assert [venue_sequence(int(s)) for s in last["seq"]] == [10, 11, 12, 13, 14, 15]
    assert last["source_ts_ns"].tolist() == [T0 + t for t in (1, 2, 3, 4, 5, 6)]
    assert last["local_ts_ns"].tolist() == [T0 + t + 100 for t in (1, 2, 3, 4, 5, 6)]
    stats = replay.stats
    assert stats.dbn_version == 1 and stats.dataset == "GLBX.MDP3" and stats.schema == "mbo"
    assert stats.instruments == {"ESH4": ES}
    assert stats.actions == {"A": 3, "C": 2, "M": 1, "T": 1, "F": 1}
    assert stats.fills == {"B": 1}
    assert stats.messages == {"book": 6, "snapshot": 0, "trade": 0}
    assert (stats.trades, stats.records, stats.skipped) == (1, 8, {})


def test_an_event_touching_a_level_twice_emits_its_final_size_once(tmp_path: Path) -> None:
    recs = [
        mbo("A", "B", 0, 5, 1, flags=0),
        mbo("A", "A", 2, 1, 2, flags=0),
        mbo("A", "B", 0, 1, 3, flags=0),
        mbo("C", "B", 0, 5, 1, flags=0),
        mbo("M", "A", 2, 6, 2),  # size-only modify, F_LAST
    ]
    replay = read_databento(write_dbn(tmp_path / "a.dbn", recs))
    assert messages(replay.events) == [[(LEVEL, BID, P0, 1), (LEVEL, ASK, P0 + 2, 6)]]


def test_trade_side_is_the_aggressor(tmp_path: Path) -> None:
    recs = [
        mbo("T", "B", 1, 2, 7),
        mbo("T", "A", 0, 1, 8),
        mbo("T", "N", 0, 44, 0),  # an auction print has no aggressor
    ]
    replay = read_databento(write_dbn(tmp_path / "t.dbn", recs))
    assert messages(replay.events) == [
        [(TRADE, BUY, P0 + 1, 2)],
        [(TRADE, SELL, P0, 1)],
        [(TRADE, UNKNOWN_SIDE, P0, 44)],
    ]
    assert replay.stats.messages["trade"] == 3


def test_fills_and_none_actions_change_nothing(tmp_path: Path) -> None:
    recs = [mbo("A", "B", 0, 5, 1), mbo("F", "B", 0, 5, 1), mbo("N", "N", 0, 0, 0)]
    replay = read_databento(write_dbn(tmp_path / "f.dbn", recs))
    assert messages(replay.events) == [[(LEVEL, BID, P0, 5)]]
    assert replay.stats.empty_messages == 2


def test_snapshot_without_f_last_is_closed_by_the_first_live_record(tmp_path: Path) -> None:
    # Databento's start-of-day snapshot before 2024-02-10: F_SNAPSHOT | F_BAD_TS_RECV (40),
    # no R record and no F_LAST; ts_recv is the snapshot's generation time.
    gen = 2_000
    recs = [
        mbo("A", "B", 0, 2, 1, flags=SNAP, seq=500, ts=-900, recv=gen),
        mbo("A", "B", 0, 3, 2, flags=SNAP, seq=700, ts=-800, recv=gen),
        mbo("A", "A", 2, 4, 3, flags=SNAP, seq=600, ts=-850, recv=gen),
        mbo("A", "B", -1, 1, 4, seq=800, ts=5_000),
    ]
    replay = read_databento(write_dbn(tmp_path / "s.dbn", recs))
    assert messages(replay.events) == [
        [(CLEAR, 0, 0, 0), (SNAPSHOT, BID, P0, 5), (SNAPSHOT, ASK, P0 + 2, 4)],
        [(LEVEL, BID, P0 - 1, 1)],
    ]
    snap = replay.events[2]
    # source time: the latest exchange time among the snapshot's records; local: ts_recv.
    assert (int(snap["source_ts_ns"]), int(snap["local_ts_ns"])) == (T0 - 800, T0 + gen)
    assert venue_sequence(int(snap["seq"])) == 700
    stats = replay.stats
    assert (stats.snapshot_records, stats.bad_ts_recv_records) == (3, 3)
    assert stats.messages == {"book": 1, "snapshot": 1, "trade": 0}
    assert stats.level_rows == 3
    assert (stats.first_ts_ns, stats.last_ts_ns) == (T0 + 5_000, T0 + 5_000)


def test_a_snapshot_replaces_the_book_and_r_clears_it(tmp_path: Path) -> None:
    recs = [
        mbo("A", "B", 0, 5, 1, seq=1),
        mbo("A", "A", 3, 5, 2, seq=2),
        # Current format: R then adds, all F_SNAPSHOT, F_LAST on the last one.
        mbo("R", "N", 0, 0, 0, flags=SNAP, seq=0, price=dbn.UNDEF_PRICE),
        mbo("A", "A", 1, 2, 3, flags=SNAP | LAST, seq=3),
        mbo("A", "B", -2, 1, 4, seq=4),
        mbo("R", "N", 0, 0, 0, flags=0, seq=5, price=dbn.UNDEF_PRICE),  # a live clear ...
        mbo("A", "B", -3, 7, 5, seq=5),  # ... and an add in the same event
    ]
    replay = read_databento(write_dbn(tmp_path / "r.dbn", recs))
    assert messages(replay.events) == [
        [(LEVEL, BID, P0, 5)],
        [(LEVEL, ASK, P0 + 3, 5)],
        [(CLEAR, 0, 0, 0), (SNAPSHOT, ASK, P0 + 1, 2)],  # order 1 and 2 are gone
        [(LEVEL, BID, P0 - 2, 1)],
        [(CLEAR, 0, 0, 0), (SNAPSHOT, BID, P0 - 3, 7)],
    ]
    # Cancelling an order of the old book after the snapshot is an unknown order.
    lob = LOBEngine(replay.symbols)
    for message in iter_messages(replay.events):
        assert lob.apply(message).applied
    assert lob.snapshot(0) == ([(P0 - 3, 7)], [])


def test_messages_sharing_a_venue_sequence_are_all_applied(tmp_path: Path) -> None:
    # CME packs several events into one packet: Databento's `sequence` repeats across F_LAST
    # groups. seq = sequence << 16 | ordinal keeps it increasing; the engine drops none.
    recs = [
        mbo("A", "B", 0, 1, 1, seq=7),
        mbo("A", "B", -1, 1, 2, seq=7),
        mbo("A", "B", -2, 1, 3, seq=7),
        mbo("A", "B", -3, 1, 4, seq=9),
    ]
    replay = read_databento(write_dbn(tmp_path / "q.dbn", recs))
    seqs = replay.events["seq"].tolist()
    assert seqs == [7 << SEQ_SHIFT, 7 << SEQ_SHIFT | 1, 7 << SEQ_SHIFT | 2, 9 << SEQ_SHIFT]
    assert [venue_sequence(s) for s in seqs] == [7, 7, 7, 9]
    engine = FeatureEngine(replay.symbols, backend="python")
    batch = engine.process_batch(replay.events)
    assert len(batch) == 4 and engine.counters["duplicates"] == 0


def test_sequence_going_backwards_is_counted(tmp_path: Path) -> None:
    recs = [mbo("A", "B", 0, 1, 1, seq=9), mbo("A", "B", 0, 1, 2, seq=8)]
    replay = read_databento(write_dbn(tmp_path / "b.dbn", recs))
    assert replay.stats.warnings == {"sequence_backwards": 1}


def test_records_of_two_instruments_interleave_inside_an_event(tmp_path: Path) -> None:
    # F_LAST marks the last record *for an instrument* in an event.
    recs = [
        mbo("A", "B", 0, 1, 1, flags=0, seq=3),
        mbo("A", "A", 0, 2, 2, flags=LAST, seq=3, iid=NQ),
        mbo("A", "B", 0, 4, 3, flags=LAST, seq=3),
    ]
    path = write_dbn(tmp_path / "m.dbn", recs, {"ESH4": ES, "NQH4": NQ})
    replay = read_databento(path)
    assert [replay.symbols.name_of(i) for i in range(2)] == ["ESH4", "NQH4"]
    assert messages(replay.events) == [[(LEVEL, ASK, P0, 2)], [(LEVEL, BID, P0, 5)]]
    assert replay.events["symbol_id"].tolist() == [1, 0]
    only_es = read_databento(path, symbols=["ESH4"])
    assert messages(only_es.events) == [[(LEVEL, BID, P0, 5)]]
    assert only_es.stats.filtered_records == 1
    with pytest.raises(UnknownSymbolError, match="ESZ4"):
        read_databento(path, symbols=["ESZ4"])


def test_instrument_specs_come_from_the_caller_or_the_builtin_table(tmp_path: Path) -> None:
    assert builtin_spec("ESH4") == InstrumentSpec("ESH4", "0.25", "1", "GLBX")
    assert builtin_spec("M2KZ24") == InstrumentSpec("M2KZ24", "0.1", "1", "GLBX")
    assert builtin_spec("CLF4") is None and builtin_spec("ES.c.0") is None
    path = write_dbn(tmp_path / "x.dbn", [mbo("A", "B", 0, 3, 1)], {"XYZH4": ES})
    with pytest.raises(UnknownSymbolError, match="instruments="):
        DatabentoReader(path)
    fine = read_databento(path, instruments=[InstrumentSpec("XYZH4", "0.05", "1")])
    assert rows(fine.events) == [(LEVEL, BID, 4800 * 20, 3)]
    assert fine.stats.specs == {"XYZH4": "caller: tick 0.05, lot 1"}


def test_chunks_are_whole_messages_and_concatenate_to_the_read(tmp_path: Path) -> None:
    recs = [mbo("A", "B", -i, i + 1, i + 1, seq=i + 1, ts=i) for i in range(7)]
    path = write_dbn(tmp_path / "c.dbn", recs)
    reader = iter_databento(path, chunk_messages=3)
    chunks = list(reader)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert (np.concatenate(chunks) == read_databento(path).events).all()
    assert reader.stats.events == 7
    with pytest.raises(RuntimeError, match="once"):
        list(reader)


# ----- errors ---------------------------------------------------------------------------------


def test_off_grid_price_names_file_and_record(tmp_path: Path) -> None:
    recs = [mbo("A", "B", 0, 1, 1), mbo("A", "B", 0, 1, 2, price=BASE + 100_000_000)]
    path = write_dbn(tmp_path / "g.dbn", recs)
    with pytest.raises(SourceFormatError, match=r"g\.dbn:1: off_grid: .*4800\.1 ") as info:
        read_databento(path)
    assert info.value.line == 1 and info.value.path == str(path)
    skipped = read_databento(path, errors="skip")
    assert messages(skipped.events) == [[(LEVEL, BID, P0, 1)]]
    assert skipped.stats.skipped == {"off_grid": 1}
    assert skipped.stats.empty_messages == 1


@pytest.mark.parametrize(
    ("bad", "reason", "book_after"),
    [
        # cancel of an unknown order: ignored
        (mbo("C", "B", 0, 1, 99), "unknown_order", [(P0, 5)]),
        # cancel larger than the order: the order leaves the book
        (mbo("C", "B", 0, 9, 1), "negative_size", []),
        # modify of an unknown order: added with the record's state
        (mbo("M", "B", -1, 2, 99), "unknown_order", [(P0, 5), (P0 - 1, 2)]),
        # add of an id already resting: replaced
        (mbo("A", "B", -1, 2, 1), "duplicate_order", [(P0 - 1, 2)]),
        # add or modify without a side: dropped
        (mbo("A", "N", -1, 2, 7), "bad_side", [(P0, 5)]),
        # an action DBN does not define for MBO books here: dropped
        (mbo("A", "B", 0, 0, 7), "bad_size", [(P0, 5)]),
    ],
)
def test_records_that_break_the_book(
    tmp_path: Path, bad: dbn.MBOMsg, reason: str, book_after: list[tuple[int, int]]
) -> None:
    path = write_dbn(tmp_path / "e.dbn", [mbo("A", "B", 0, 5, 1), bad])
    with pytest.raises(SourceFormatError, match=rf"e\.dbn:1: {reason}"):
        read_databento(path)
    replay = read_databento(path, errors="skip")
    assert replay.stats.skipped == {reason: 1}
    lob = LOBEngine(replay.symbols)
    lob.apply_batch(replay.events)
    assert lob.snapshot(0)[0] == book_after


def test_cancel_at_another_price_than_the_order_is_a_warning(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "w.dbn", [mbo("A", "B", 0, 5, 1), mbo("C", "B", 3, 5, 1)])
    replay = read_databento(path)
    assert messages(replay.events)[-1] == [(LEVEL, BID, P0, 0)]
    assert replay.stats.warnings == {"cancel_price_mismatch": 1}


def test_a_file_ending_inside_an_event_emits_it_with_a_warning(tmp_path: Path) -> None:
    path = write_dbn(tmp_path / "u.dbn", [mbo("A", "B", 0, 5, 1, flags=0)])
    replay = read_databento(path)
    assert messages(replay.events) == [[(LEVEL, BID, P0, 5)]]
    assert replay.stats.warnings == {"unterminated_message": 1}


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    good = write_dbn(tmp_path / "t.dbn", [mbo("A", "B", 0, 5, 1), mbo("A", "B", 0, 1, 2)])
    cut = tmp_path / "cut.dbn"
    cut.write_bytes(good.read_bytes()[:-10])
    with pytest.raises(SourceFormatError, match="truncated: 46 bytes"):
        read_databento(cut)
    assert messages(read_databento(cut, errors="skip").events) == [[(LEVEL, BID, P0, 5)]]
    junk = tmp_path / "junk.dbn"
    junk.write_bytes(b"not a dbn file at all" * 10)
    with pytest.raises(SourceFormatError, match="not a DBN file"):
        read_databento(junk)
    empty = tmp_path / "empty.dbn"
    empty.write_bytes(b"")
    with pytest.raises(SourceFormatError, match="no DBN metadata"):
        read_databento(empty)
    trades = write_dbn(tmp_path / "trades.dbn", [], schema=dbn.Schema.TRADES)
    with pytest.raises(SourceFormatError, match="only MBO"):
        read_databento(trades)
    with pytest.raises(ValueError, match="errors"):
        DatabentoReader(good, errors="ignore")  # type: ignore[arg-type]


# ----- validation -----------------------------------------------------------------------------


def test_validation_counts_pre_open_crossings_and_checks_the_window(tmp_path: Path) -> None:
    recs = [
        mbo("A", "B", 2, 1, 1, ts=1),  # pre-open: a bid above ...
        mbo("A", "A", 0, 1, 2, ts=2),  # ... the ask: crossed
        # The opening print uncrosses: the first T starts the window.
        mbo("T", "N", 1, 1, 0, flags=0, ts=10),
        mbo("F", "N", 1, 1, 1, flags=0, ts=10),
        mbo("F", "N", 1, 1, 2, flags=0, ts=10),
        mbo("C", "B", 2, 1, 1, flags=0, ts=10),
        mbo("C", "A", 0, 1, 2, ts=10),
        mbo("A", "B", 0, 2, 3, ts=11),
        mbo("A", "A", 1, 2, 4, ts=12),
        mbo("T", "B", 1, 1, 5, flags=0, ts=13),
        mbo("F", "A", 1, 1, 4, flags=0, ts=13),
        mbo("M", "A", 1, 1, 4, ts=13),
        mbo("A", "B", 1, 1, 6, ts=14),  # locked inside the window
    ]
    report = validate_databento(write_dbn(tmp_path / "v.dbn", recs))
    assert report.trading_start_ns == T0 + 10
    assert (report.pre_open_messages, report.pre_open_crossed, report.pre_open_locked) == (2, 1, 0)
    assert (report.window_messages, report.window_crossed, report.window_locked) == (5, 0, 1)
    assert report.examples[0].bid_px == report.examples[0].ask_px == P0 + 1
    assert report.trade_rows == report.file.t_records == 2
    assert (report.file.f_passive, report.file.f_no_side, report.file.f_aggressor) == (1, 2, 0)
    assert report.file.reconciled
    assert not report.ok
    later = validate_databento(tmp_path / "v.dbn", trading_start_ns=T0 + 100)
    assert later.window_messages == 0 and not later.ok


# ----- the aggregation core -------------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.sampled_from("ACM"),
        st.integers(1, 6),  # order id
        st.sampled_from((BID, ASK)),
        st.integers(-3, 3),  # px
        st.integers(0, 9),  # size
    ),
    max_size=60,
)


@given(_ops)
def test_levels_are_the_sum_of_the_resting_orders(
    ops: list[tuple[str, int, int, int, int]],
) -> None:
    book = MboBook()
    for action, oid, side, px, size in ops:
        if action == "A":
            book.add(oid, side, px, size)
        elif action == "C":
            book.cancel(oid, size)
        else:
            book.modify(oid, side, px, size)
        totals: dict[tuple[int, int], int] = {}
        for o_side, o_px, o_size in book.orders.values():
            assert o_size > 0
            totals[(o_side, o_px)] = totals.get((o_side, o_px), 0) + o_size
        assert {(s, p): q for s, p, q in book.levels()} == totals
        touched = book.take_touched()
        assert all(q == totals.get((s, p), 0) for s, p, q in touched)
