"""Unit tests of the LOBSTER source on small hand-written file pairs (N = 2 levels).

The main scenario, prices in dollars (LOBSTER writes dollars x 10000; the default tick 0.005
makes 1 tick = 50 LOBSTER units, so $100.00 = 20000 ticks):

true book before message 1 (level 3 is beyond the file's 2 levels, so unknown to it):
  bids 100.00 x 100, 99.99 x 200, [99.98 x 300]      asks 100.02 x 150, 100.03 x 250, [100.04 x 50]

 1 new buy 50 @ 100.00               bid 100.00 -> 150 (the snapshot is row 1 minus this)
 2 visible execution 100 @ 100.02    ask 100.02 -> 50, trade BUY 100 (a resting sell executed)
 3 delete 50 @ 100.02                ask level gone; 100.04 x 50 comes into view: refill (unseen)
 4 hidden execution 30 @ 100.01      trade BUY 30 only
 5 new buy 10 @ 100.01               new best bid; 99.99 x 200 pushed out of view
 6 delete 10 @ 100.01                99.99 back into view with 120 (changed out of view): refill
 7 halt                              nothing emitted
 8 new buy 5 @ 100.01                99.99 x 120 pushed out again
 9 delete 5 @ 100.01                 99.99 was cancelled out of view: stale 0; 99.98 x 300 refill
10 partial cancel 50 @ 100.00        bid 100.00 -> 100
11 cross trade 500 @ 100.02          trade, aggressor unknown
"""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from featureplane.checks.lobster import validate_lobster
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import SourceFormatError
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
from featureplane.frames.frame import QualityFlag
from featureplane.instruments import InstrumentSpec
from featureplane.sources.lobster import (
    LobsterReader,
    ZipMember,
    iter_lobster,
    lobster_zip_members,
    parse_lobster_name,
    read_lobster,
)
from featureplane.sources.lobster.files import parse_seconds_ns, session_epoch_ns

MSG_NAME = "TEST_2024-01-02_34200000_57600000_message_2.csv"
OB_NAME = "TEST_2024-01-02_34200000_57600000_orderbook_2.csv"
# 2024-01-02 is EST (UTC-5): local midnight is 05:00 UTC.
MIDNIGHT_NS = (1_704_153_600 + 5 * 3600) * 1_000_000_000
DUMMY_ASK, DUMMY_BID = 9999999999, -9999999999

MESSAGES = [
    "34200.000000001,1,11,50,1000000,1",
    "34200.5,4,5,100,1000200,-1",
    "34201,3,7,50,1000200,-1",
    "34201.25,5,0,30,1000100,-1",
    "34202,1,12,10,1000100,1",
    "34202.5,3,12,10,1000100,1",
    "34203,7,0,0,-1,-1",
    "34204,1,13,5,1000100,1",
    "34205,3,13,5,1000100,1",
    "34206,2,11,50,1000000,1",
    "34207,6,0,500,1000200,-1",
]


def ob_row(asks: list[tuple[int, int]], bids: list[tuple[int, int]], n: int = 2) -> str:
    asks = asks + [(DUMMY_ASK, 0)] * (n - len(asks))
    bids = bids + [(DUMMY_BID, 0)] * (n - len(bids))
    return ",".join(f"{a[0]},{a[1]},{b[0]},{b[1]}" for a, b in zip(asks, bids, strict=True))


A_BOOK = [(1000200, 150), (1000300, 250)]
BOOK_ROWS = [
    ob_row(A_BOOK, [(1000000, 150), (999900, 200)]),  # 1
    ob_row([(1000200, 50), (1000300, 250)], [(1000000, 150), (999900, 200)]),  # 2
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999900, 200)]),  # 3
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999900, 200)]),  # 4
    ob_row([(1000300, 250), (1000400, 50)], [(1000100, 10), (1000000, 150)]),  # 5
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999900, 120)]),  # 6
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999900, 120)]),  # 7
    ob_row([(1000300, 250), (1000400, 50)], [(1000100, 5), (1000000, 150)]),  # 8
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999800, 300)]),  # 9
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 100), (999800, 300)]),  # 10
    ob_row([(1000300, 250), (1000400, 50)], [(1000000, 100), (999800, 300)]),  # 11
]


def write_pair(
    tmp_path: Path,
    messages: list[str] = MESSAGES,
    rows: list[str] = BOOK_ROWS,
    msg_name: str = MSG_NAME,
    ob_name: str = OB_NAME,
) -> tuple[Path, Path]:
    msg = tmp_path / msg_name
    ob = tmp_path / ob_name
    msg.write_text("".join(m + "\n" for m in messages))
    ob.write_text("".join(r + "\n" for r in rows))
    return msg, ob


def ts(seconds: str) -> int:
    whole, _, frac = seconds.partition(".")
    return MIDNIGHT_NS + int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


Msg = tuple[int, int, int, int, list[tuple[int, int, int, int]]]


def messages_of(events: NDArray[np.void]) -> list[Msg]:
    """(seq, first_seq, prev_seq, ts, [(kind, side, px, qty), ...]) per message."""
    out = []
    for m in iter_messages(events):
        last = m[-1]
        assert (m["source_ts_ns"] == last["source_ts_ns"]).all()
        assert (m["local_ts_ns"] == m["source_ts_ns"]).all()
        rows = [(int(r["kind"]), int(r["side"]), int(r["px"]), int(r["qty"])) for r in m]
        out.append(
            (int(last["seq"]), int(last["first_seq"]), int(last["prev_seq"]),
             int(last["source_ts_ns"]), rows)
        )  # fmt: skip
    return out


# ----- the scenario ---------------------------------------------------------------------------


def test_scenario_rows_hand_checked(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    replay = read_lobster(msg, ob)
    validate(replay.events, len(replay.symbols))
    t = [ts(m.split(",")[0]) for m in MESSAGES]
    assert messages_of(replay.events) == [
        (0, 0, NO_SEQ, t[0], [
            (CLEAR, 0, 0, 0),
            (SNAPSHOT, BID, 20000, 100), (SNAPSHOT, BID, 19998, 200),
            (SNAPSHOT, ASK, 20004, 150), (SNAPSHOT, ASK, 20006, 250),
        ]),
        (1, 1, 0, t[0], [(LEVEL, BID, 20000, 150)]),
        (2, 2, 1, t[1], [(LEVEL, ASK, 20004, 50), (TRADE, BUY, 20004, 100)]),
        (3, 3, 2, t[2], [(LEVEL, ASK, 20004, 0), (LEVEL, ASK, 20008, 50)]),
        (4, 4, NO_SEQ, t[3], [(TRADE, BUY, 20002, 30)]),
        (5, 4, 3, t[4], [(LEVEL, BID, 20002, 10)]),
        (6, 6, 5, t[5], [(LEVEL, BID, 20002, 0), (LEVEL, BID, 19998, 120)]),
        # row 7 is a halt: no message; message 8 covers rows 7..8
        (8, 7, 6, t[7], [(LEVEL, BID, 20002, 5)]),
        (9, 9, 8, t[8], [
            (LEVEL, BID, 20002, 0), (LEVEL, BID, 19996, 300), (LEVEL, BID, 19998, 0),
        ]),
        (10, 10, 9, t[9], [(LEVEL, BID, 20000, 100)]),
        (11, 11, NO_SEQ, t[10], [(TRADE, UNKNOWN_SIDE, 20004, 500)]),
    ]  # fmt: skip
    stats = replay.stats
    assert stats.rows == 11
    assert stats.by_type == {1: 3, 2: 1, 3: 3, 4: 1, 5: 1, 6: 1, 7: 1}
    assert (stats.messages, stats.book_messages, stats.trade_only_messages) == (11, 8, 2)
    assert stats.trades == 3
    assert stats.levels == 2
    assert stats.snapshot_levels == (2, 2)
    assert [(h.line, h.ts_ns, h.state) for h in stats.halts] == [(7, t[6], "halt")]
    d = stats.depth
    assert (d.refill_unseen, d.refill_changed, d.stale_removed, d.refill_messages) == (2, 1, 1, 3)
    assert (d.out_of_window, d.clamped) == (0, 0)
    assert stats.first_ts_ns == t[0] and stats.last_ts_ns == t[10]
    assert replay.symbols.spec("TEST") == InstrumentSpec("TEST", "0.005", "1", "NASDAQ", depth=2)
    assert "11 rows" in stats.summary()


def test_validate_scenario(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    report = validate_lobster(msg, ob)
    assert report.ok, report.examples
    assert (report.rows, report.rows_compared, report.mismatched_rows) == (11, 11, 0)
    assert report.trades == 3
    assert report.messages == 11
    assert report.engine_counters["gaps"] == 0
    assert "0 mismatched" in report.summary()


def test_validate_without_refill_shows_the_missing_depth(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    report = validate_lobster(msg, ob, depth_refill=False, max_examples=1)
    assert not report.ok
    # Rows 1-2 match; from row 3 the ask side lacks the level that came from depth.
    first = report.examples[0]
    assert (first.row, first.side) == (3, "ask")
    assert first.orderbook == ((1000300, 250), (1000400, 50))
    assert first.engine == ((1000300, 250),)
    assert report.mismatched_rows == 9
    assert len(report.examples) == 1


def test_feature_engine_sees_no_gap_and_a_dropped_message_is_one(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    events = read_lobster(msg, ob).events
    symbols = read_lobster(msg, ob).symbols
    batch = FeatureEngine(symbols, backend="python").process_batch(events)
    assert len(batch) == 11
    assert not (batch.columns["quality_flags"] & QualityFlag.GAP_DETECTED).any()
    # Drop book message 5: message 6 says its previous book message was 5, the engine saw 3.
    keep = events["seq"] != 5
    batch = FeatureEngine(symbols, backend="python").process_batch(events[keep])
    flags = batch.columns["quality_flags"]
    assert flags[-1] & QualityFlag.GAP_DETECTED


def test_chunks_are_whole_messages_and_concatenate_to_the_read(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    whole = read_lobster(msg, ob).events
    reader = iter_lobster(msg, ob, chunk_messages=2)
    chunks = list(reader)
    assert [len(list(iter_messages(c))) for c in chunks] == [2, 2, 2, 2, 2, 1]
    assert (np.concatenate(chunks) == whole).all()
    assert reader.stats.rows == 11
    with pytest.raises(RuntimeError, match="once"):
        list(reader)


def test_zip_archive_read_in_place(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    archive = tmp_path / "sample.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(msg, msg.name)
        zf.write(ob, ob.name)
        zf.writestr("ReadMe.txt", "not a LOBSTER file")
    assert lobster_zip_members(archive) == (
        ZipMember(str(archive), msg.name),
        ZipMember(str(archive), ob.name),
    )
    from_zip = read_lobster(archive)
    assert (from_zip.events == read_lobster(msg, ob).events).all()
    assert from_zip.stats.message_path == f"{archive}/{msg.name}"
    assert validate_lobster(archive).ok


def test_zip_member_errors_name_the_member(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path, messages=[*MESSAGES[:4], "34201.3,9,0,1,1000100,1"])
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(msg, msg.name)
        zf.write(ob, ob.name)
    with pytest.raises(SourceFormatError) as err:
        read_lobster(archive)
    assert (err.value.path, err.value.line) == (f"{archive}/{msg.name}", 5)
    assert "unknown message type 9" in str(err.value)


def test_zip_without_a_message_file(tmp_path: Path) -> None:
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ReadMe.txt", "x")
    with pytest.raises(SourceFormatError, match="one LOBSTER message file"):
        lobster_zip_members(archive)


# ----- variants ---------------------------------------------------------------------------------


def test_message_file_alone_is_refused_and_names_the_option(tmp_path: Path) -> None:
    msg, _ = write_pair(tmp_path)
    with pytest.raises(SourceFormatError, match=r"no orderbook file.*messages_only=True") as err:
        read_lobster(msg)
    assert err.value.path == str(msg)


def test_messages_only_starts_empty_and_clamps(tmp_path: Path) -> None:
    msg, _ = write_pair(tmp_path)
    replay = read_lobster(msg, messages_only=True)
    assert replay.symbols.spec("TEST").depth == 0  # no book feature is ever ready
    got = messages_of(replay.events)
    assert got[0][:3] == (1, 1, NO_SEQ)  # no snapshot: the first book message opens the stream
    assert got[0][4] == [(LEVEL, BID, 20000, 50)]
    # The execution of 100 at an ask the messages never built clamps to 0 (counted).
    assert got[1][4] == [(LEVEL, ASK, 20004, 0), (TRADE, BUY, 20004, 100)]
    assert replay.stats.depth.clamped >= 1
    assert replay.stats.levels is None
    assert not replay.stats.depth_refill
    validate(replay.events, 1)


def test_side_with_fewer_levels_is_fully_known(tmp_path: Path) -> None:
    # One ask level and padding: a new ask level is known without refill, and a level the
    # orderbook shows that the messages do not explain is an error, not a refill.
    messages = ["34200,1,1,10,1000200,-1", "34201,1,2,20,1000300,-1"]
    rows = [
        ob_row([(1000200, 10)], [(1000000, 100)]),
        ob_row([(1000200, 10), (1000300, 20)], [(1000000, 100)]),
    ]
    msg, ob = write_pair(tmp_path, messages, rows)
    replay = read_lobster(msg, ob)
    got = messages_of(replay.events)
    assert got[0][4][1:] == [(SNAPSHOT, BID, 20000, 100)]  # message 1 created the only ask
    assert got[2][4] == [(LEVEL, ASK, 20006, 20)]
    assert replay.stats.snapshot_levels == (1, 0)
    assert replay.stats.depth.refill_levels == 0
    assert validate_lobster(msg, ob).ok

    rows[1] = ob_row([(1000200, 10), (1000400, 5)], [(1000000, 100)])
    messages[1] = "34201,1,2,20,1000100,1"  # a bid, yet the ask side grows
    msg, ob = write_pair(tmp_path, messages, rows)
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(ob), 2)


def test_explicit_instrument_date_and_utc(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path, msg_name="plain_messages.csv", ob_name="plain_book.csv")
    with pytest.raises(SourceFormatError, match="trading_date"):
        LobsterReader(msg, ob)
    spec = InstrumentSpec("XYZ", "0.01", "1")
    replay = read_lobster(msg, ob, instrument=spec, trading_date=dt.date(2024, 1, 2), tz=None)
    first = replay.events[0]
    assert int(first["source_ts_ns"]) == (1_704_153_600 + 34200) * 10**9 + 1
    assert int(replay.events[1]["px"]) == 10000  # $100.00 in cents
    assert replay.symbols.spec("XYZ") == replace(spec, depth=2)  # the orderbook's N levels


def test_half_penny_price_off_a_cent_grid(tmp_path: Path) -> None:
    # A midpoint execution at $100.005 fits the default 0.005 grid, not a 0.01 one.
    messages = [*MESSAGES[:3], "34201.25,5,0,30,1000050,-1"]
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS[:4])
    assert read_lobster(msg, ob).events[-1]["px"] == 20001
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob, instrument=InstrumentSpec("TEST", "0.01", "1"))
    assert (err.value.path, err.value.line) == (str(msg), 4)
    assert "tick grid" in err.value.reason


def test_size_off_the_lot_grid(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob, instrument=InstrumentSpec("TEST", "0.005", "50"))
    assert (err.value.path, err.value.line) == (str(msg), 4)  # a hidden execution of 30
    assert "whole number of 50 lots" in err.value.reason
    rows = [*BOOK_ROWS]
    rows[0] = rows[0].replace(",200", ",220")  # 99.99 x 220 in row 1: the snapshot's size
    msg, ob = write_pair(tmp_path, rows=rows)
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob, instrument=InstrumentSpec("TEST", "0.005", "50"))
    assert (err.value.path, err.value.line) == (str(ob), 1)


def test_values_at_and_beyond_the_bound(tmp_path: Path) -> None:
    # Tick 0.0001 (LOBSTER's price unit) and lot 1: ticks and lots are the file's integers.
    unit = InstrumentSpec("TEST", "0.0001", "1")
    top = 2**48  # events.MAX_ABS_UNITS
    msg = tmp_path / MSG_NAME
    msg.write_text(f"34200,1,1,{top},{top},1\n34201,4,1,{top},{top},1\n")
    replay = read_lobster(msg, instrument=unit, messages_only=True)
    validate(replay.events, len(replay.symbols))
    assert [rows for *_, rows in messages_of(replay.events)] == [
        [(LEVEL, BID, top, top)],
        [(LEVEL, BID, top, 0), (TRADE, SELL, top, top)],  # the resting buy order's execution
    ]
    for second, reason in (
        (f"34201,1,2,1,{top + 1},-1", f"price {top + 1} is beyond"),
        (f"34201,1,2,{top + 1},5,-1", f"size {top + 1} is beyond"),
        # Each order within the bound, their level beyond it: named at the message that adds up.
        (f"34201,1,2,1,{top},1", f"size {top + 1} is beyond"),
    ):
        msg.write_text(f"34200,1,1,{top},{top},1\n{second}\n")
        with pytest.raises(SourceFormatError) as err:
            read_lobster(msg, instrument=unit, messages_only=True)
        assert (err.value.path, err.value.line) == (str(msg), 2)
        assert reason in err.value.reason


def test_name_and_time_parsing() -> None:
    name = parse_lobster_name("dir/GOOG_2012-06-21_34200000_57600000_orderbook_10.csv")
    assert name is not None
    assert (name.ticker, name.date, name.start_ms, name.end_ms, name.kind, name.levels) == (
        "GOOG",
        dt.date(2012, 6, 21),
        34200000,
        57600000,
        "orderbook",
        10,
    )
    assert parse_lobster_name("GOOG_2012-13-21_1_2_message_10.csv") is None
    assert parse_lobster_name("notes.csv") is None
    assert parse_seconds_ns(b"34200.05990197") == 34_200_059_901_970
    assert parse_seconds_ns(b"34200") == 34_200_000_000_000
    assert parse_seconds_ns(b"1.1234567890") == 1_123_456_789
    for bad in (b"1.1234567891", b"abc", b"-1.5", b"1.2.3", b""):
        with pytest.raises(ValueError):
            parse_seconds_ns(bad)
    # 2012-06-21 is EDT (UTC-4).
    assert session_epoch_ns(dt.date(2012, 6, 21), "America/New_York") == 1_340_251_200 * 10**9
    with pytest.raises(ValueError, match="time zone"):
        session_epoch_ns(dt.date(2012, 6, 21), "Mars/Olympus")


def test_halt_states(tmp_path: Path) -> None:
    messages = [MESSAGES[0], "34300,7,0,0,-1,-1", "34400,7,0,0,0,-1", "34500,7,0,0,1,-1"]
    msg, ob = write_pair(tmp_path, messages, [BOOK_ROWS[0]] * 4)
    replay = read_lobster(msg, ob)
    assert [h.state for h in replay.stats.halts] == ["halt", "quote", "resume"]
    assert replay.stats.messages == 2  # snapshot and message 1
    assert validate_lobster(msg, ob).ok


# ----- bad input: every case names the file and line ------------------------------------------


def _replace(items: list[str], index: int, value: str) -> list[str]:
    out = list(items)
    out[index] = value
    return out


MSG_CASES = [
    ("fields", 2, "34200.5,4,5,100,1000200", "expected 6"),
    ("non-numeric", 2, "34200.5,4,5,1x0,1000200,-1", "not a LOBSTER message row"),
    ("time", 2, "9:30,4,5,100,1000200,-1", "not a LOBSTER message row"),
    ("type", 2, "34200.5,8,5,100,1000200,-1", "unknown message type 8"),
    ("size", 2, "34200.5,4,5,0,1000200,-1", "size 0 is not positive"),
    ("price", 2, "34200.5,4,5,100,-5,-1", "price -5 is not positive"),
    ("direction", 2, "34200.5,4,5,100,1000200,0", "direction 0"),
    ("off grid", 2, "34200.5,4,5,100,1000210,-1", "tick grid"),
    ("no level", 4, "34201.25,3,0,30,1000250,-1", "has no level there"),
    ("negative", 3, "34201,3,7,60,1000200,-1", "negative size"),
    # 2^48 + 1 ticks of 0.005 (events.MAX_ABS_UNITS + 1), in LOBSTER's dollars x 10000.
    ("beyond the bound", 2, f"34200.5,4,5,100,{50 * (2**48 + 1)},-1", "beyond 281474976710656"),
]


@pytest.mark.parametrize(
    ("case", "line", "text", "reason"), MSG_CASES, ids=[c[0] for c in MSG_CASES]
)
def test_bad_message_rows(tmp_path: Path, case: str, line: int, text: str, reason: str) -> None:
    msg, ob = write_pair(tmp_path, _replace(MESSAGES, line - 1, text))
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(msg), line)
    assert reason in err.value.reason


OB_CASES = [
    ("size differs", 2, ob_row([(1000200, 60), (1000300, 250)], [(1000000, 150), (999900, 200)]),
     "the orderbook shows 60 shares"),
    ("level missing", 2, ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (999900, 200)]),
     "shows no level there"),
    ("fields", 2, "1,2,3", "3 fields"),
    ("non-integer", 3, BOOK_ROWS[2].replace("250", "2.5"), "not a row of integers"),
    ("order", 5, ob_row([(1000300, 250), (1000400, 50)], [(1000000, 150), (1000100, 10)]),
     "not in book order"),
    ("zero size", 3, ob_row([(1000300, 0), (1000400, 50)], [(1000000, 150), (999900, 200)]),
     "is not a level"),
    ("padding inside", 3, ob_row([(DUMMY_ASK, 0), (1000400, 50)], [(1000000, 150), (999900, 200)]),
     "is not a level"),
    ("refill off grid", 3, ob_row([(1000300, 250), (1000410, 50)], [(1000000, 150), (999900, 200)]),
     "tick grid"),
    ("refill beyond the bound", 3, ob_row([(1000300, 250), (50 * (2**48 + 1), 50)],
                                          [(1000000, 150), (999900, 200)]),
     "beyond 281474976710656"),
    ("row 1 vs message 1", 1, ob_row(A_BOOK, [(1000000, 40), (999900, 200)]),
     "do not belong together"),
    ("first row width", 1, "1,2,3,4,5", "4 per level"),
    ("unchanged side changed", 4, ob_row([(1000300, 250), (1000400, 50)],
                                         [(1000000, 150), (999900, 201)]),
     "the orderbook shows 201 shares"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "line", "row", "reason"), OB_CASES, ids=[c[0] for c in OB_CASES])
def test_bad_orderbook_rows(tmp_path: Path, case: str, line: int, row: str, reason: str) -> None:
    msg, ob = write_pair(tmp_path, rows=_replace(BOOK_ROWS, line - 1, row))
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(ob), line)
    assert reason in err.value.reason


def test_row_counts_must_agree(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path, rows=BOOK_ROWS[:-1])
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(ob), 11)
    assert "ends after 10 rows" in err.value.reason
    msg, ob = write_pair(tmp_path, rows=[*BOOK_ROWS, BOOK_ROWS[-1]])
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(ob), 12)
    assert "more rows" in err.value.reason


def test_levels_in_name_must_match_the_rows(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path, ob_name=OB_NAME.replace("_2.csv", "_5.csv"))
    with pytest.raises(SourceFormatError) as err:
        read_lobster(msg, ob)
    assert (err.value.path, err.value.line) == (str(ob), 1)
    assert "file name says 5" in err.value.reason


def test_bad_arguments(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    with pytest.raises(ValueError, match="chunk_messages"):
        LobsterReader(msg, ob, chunk_messages=0)
    with pytest.raises(ValueError, match="orderbook"):
        validate_lobster(msg)


def test_errors_option_is_taken_and_skip_is_refused(tmp_path: Path) -> None:
    msg, ob = write_pair(tmp_path)
    assert iter_lobster(msg, ob, errors="raise").symbols is not None
    with pytest.raises(ValueError, match="no skip mode"):
        iter_lobster(msg, ob, errors="skip")  # type: ignore[arg-type]
