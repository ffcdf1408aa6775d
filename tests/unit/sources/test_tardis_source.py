"""Unit tests of the tardis.dev CSV source on small hand-written files.

Book file (rank 0) and trades file (rank 1), two symbols; inferred instruments: BTCUSDT tick
0.1 (prices have 1 decimal), lot 0.01 (amounts up to 2); ETHUSDT tick 0.001 (10.015 in the
trades file), lot 1.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

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
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources.tardis.reader import TardisReader, iter_tardis, read_tardis

BOOK_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADES_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
EX = "binance-futures"
BOOK = [
    f"{EX},BTCUSDT,1000,1100,false,bid,100.1,1",  # 2: before the first snapshot: dropped
    f"{EX},BTCUSDT,2000,2100,true,ask,100.5,2",  # 3: snapshot run (two local timestamps)
    f"{EX},BTCUSDT,2000,2100,true,bid,100.4,3",  # 4
    f"{EX},BTCUSDT,2000,2150,true,bid,100.3,1.5",  # 5
    f"{EX},ETHUSDT,2050,2200,true,bid,10.01,20",  # 6: ETH snapshot
    f"{EX},ETHUSDT,2050,2200,true,ask,10.02,10",  # 7
    f"{EX},BTCUSDT,3000,3100,false,bid,100.4,0",  # 8: a diff message of two rows
    f"{EX},BTCUSDT,3000,3100,false,ask,100.6,0.25",  # 9
    f"{EX},BTCUSDT,3001,3200,false,ask,100.5,1",  # 10
    f"{EX},BTCUSDT,4000,4100,true,bid,100.2,7",  # 11: snapshot after diffs: a new one
    f"{EX},BTCUSDT,4000,4100,true,ask,100.3,8",  # 12
]
TRADES = [
    f"{EX},BTCUSDT,2990,3100,1,buy,100.5,0.5",  # 2: same local time as book line 8-9
    f"{EX},BTCUSDT,2991,3100,2,sell,100.4,0.25",  # 3: same message (same local time)
    f"{EX},ETHUSDT,3150,3150,abc,unknown,10.015,1",  # 4
]
US = 1000

Msg = tuple[int, int, int, list[tuple[int, int, int, int]]]


def write(path: Path, header: str, rows: list[str], gz: bool = False) -> Path:
    text = "".join(f"{line}\n" for line in [header, *rows])
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def pair(tmp_path: Path, book: list[str] = BOOK, trades: list[str] = TRADES) -> list[Path]:
    return [
        write(tmp_path / "book.csv", BOOK_HEADER, book),
        write(tmp_path / "trades.csv", TRADES_HEADER, trades),
    ]


def messages_of(events: NDArray[np.void]) -> list[Msg]:
    """(symbol id, source ts, local ts, rows) per message; checks the message-level fields."""
    out = []
    for m in iter_messages(events):
        last = m[-1]
        for name in ("symbol_id", "source_ts_ns", "local_ts_ns", "seq"):
            assert (m[name] == last[name]).all()
        assert int(last["seq"]) == int(last["first_seq"]) == int(last["prev_seq"]) == NO_SEQ
        rows = [(int(r["kind"]), int(r["side"]), int(r["px"]), int(r["qty"])) for r in m]
        out.append(
            (int(last["symbol_id"]), int(last["source_ts_ns"]), int(last["local_ts_ns"]), rows)
        )
    return out


def test_book_and_trades_merged_hand_checked(tmp_path: Path) -> None:
    replay = read_tardis(pair(tmp_path))
    validate(replay.events, len(replay.symbols))
    btc, eth = replay.symbols.id_of("BTCUSDT"), replay.symbols.id_of("ETHUSDT")
    assert (btc, eth) == (0, 1)
    assert replay.symbols.spec("BTCUSDT") == InstrumentSpec("BTCUSDT", "0.1", "0.01", EX)
    assert replay.symbols.spec("ETHUSDT") == InstrumentSpec("ETHUSDT", "0.001", "1", EX)
    assert messages_of(replay.events) == [
        (btc, 2000 * US, 2150 * US, [
            (CLEAR, 0, 0, 0),
            (SNAPSHOT, ASK, 1005, 200), (SNAPSHOT, BID, 1004, 300), (SNAPSHOT, BID, 1003, 150),
        ]),
        (eth, 2050 * US, 2200 * US, [
            (CLEAR, 0, 0, 0), (SNAPSHOT, BID, 10010, 20), (SNAPSHOT, ASK, 10020, 10),
        ]),
        (btc, 3000 * US, 3100 * US, [(LEVEL, BID, 1004, 0), (LEVEL, ASK, 1006, 25)]),
        # the trades file at the same local time comes after the book file (caller's order)
        (btc, 2991 * US, 3100 * US, [(TRADE, BUY, 1005, 50), (TRADE, SELL, 1004, 25)]),
        (eth, 3150 * US, 3150 * US, [(TRADE, UNKNOWN_SIDE, 10015, 1)]),
        (btc, 3001 * US, 3200 * US, [(LEVEL, ASK, 1005, 100)]),
        (btc, 4000 * US, 4100 * US, [
            (CLEAR, 0, 0, 0), (SNAPSHOT, BID, 1002, 700), (SNAPSHOT, ASK, 1003, 800),
        ]),
    ]  # fmt: skip
    stats = replay.stats
    assert stats.rows == 14
    assert stats.messages == {"book": 2, "snapshot": 3, "trade": 2}
    assert (stats.trades, stats.level_rows, stats.rows_before_snapshot) == (3, 10, 1)
    assert stats.events == len(replay.events) == 16
    assert stats.skipped == {}
    assert [(f.kind, f.rows, f.messages, f.symbols) for f in stats.files] == [
        ("incremental_book_L2", 11, 5, ["BTCUSDT", "ETHUSDT"]),
        ("trades", 3, 2, ["BTCUSDT", "ETHUSDT"]),
    ]
    assert "inferred from 11 probed rows: tick 0.1" in stats.instruments["BTCUSDT"]
    assert "emitted: book 2, snapshot 3, trade 2" in stats.summary()


def test_trades_first_when_passed_first(tmp_path: Path) -> None:
    book, trades = pair(tmp_path)
    got = messages_of(read_tardis([trades, book]).events)
    assert [m[2] for m in got] == [m * US for m in (2150, 2200, 3100, 3100, 3150, 3200, 4100)]
    assert got[2][3][0][0] == TRADE and got[3][3][0][0] == LEVEL


def test_gzip_equals_plain_and_directories_expand(tmp_path: Path) -> None:
    plain = read_tardis(pair(tmp_path)).events
    gz_dir = tmp_path / "gz"
    gz_dir.mkdir()
    write(gz_dir / "a_book.csv.gz", BOOK_HEADER, BOOK, gz=True)
    write(gz_dir / "b_trades.csv.gz", TRADES_HEADER, TRADES, gz=True)
    (gz_dir / "notes.txt").write_text("ignored")
    assert (read_tardis(gz_dir).events == plain).all()


def test_engine_takes_the_stream(tmp_path: Path) -> None:
    replay = read_tardis(pair(tmp_path))
    batch = FeatureEngine(replay.symbols, backend="python").process_batch(replay.events)
    flags = batch.columns["quality_flags"]
    assert len(batch) == 7
    assert not (flags & QualityFlag.GAP_DETECTED).any()
    resets = np.flatnonzero(flags & QualityFlag.STATE_RESET).tolist()
    assert resets == [0, 1, 6]  # both first snapshots, then BTC's second snapshot
    # Without sequences the engine checks exchange time: the BTC trades (2991 us) arrive after
    # a BTC book message stamped 3000 us, so that frame is flagged (docs/sources/tardis.md).
    late = np.flatnonzero(flags & QualityFlag.OUT_OF_ORDER_INPUT).tolist()
    assert late == [3]


def test_caller_instruments_symbols_filter_and_chunks(tmp_path: Path) -> None:
    table = SymbolTable([InstrumentSpec("XRPUSDT", "0.0001", "0.1")])
    table.add(InstrumentSpec("ETHUSDT", "0.005", "0.5", EX))
    reader = iter_tardis(pair(tmp_path), instruments=table, symbols=["ETHUSDT"], chunk_messages=1)
    assert reader.symbols is table  # the caller's ids are kept; BTCUSDT is left out
    chunks = list(reader)
    assert [len(c) for c in chunks] == [3, 1]
    got = messages_of(np.concatenate(chunks))
    assert got[0][3][1:] == [(SNAPSHOT, BID, 2002, 40), (SNAPSHOT, ASK, 2004, 20)]
    assert got[1][3] == [(TRADE, UNKNOWN_SIDE, 2003, 2)]
    assert reader.stats.filtered_rows == 11  # BTCUSDT rows
    assert reader.stats.instruments["ETHUSDT"] == "caller: tick 0.005, lot 0.5"
    with pytest.raises(RuntimeError, match="once"):
        list(reader)


def test_mapping_of_instruments(tmp_path: Path) -> None:
    spec = InstrumentSpec("BTCUSDT", "0.05", "0.001")
    replay = read_tardis(pair(tmp_path), instruments={"BTCUSDT": spec})
    assert replay.symbols.specs[0] == spec
    assert replay.symbols.id_of("ETHUSDT") == 1
    assert messages_of(replay.events)[0][3][1] == (SNAPSHOT, ASK, 2010, 2000)


def test_rows_before_snapshot_kept_on_request(tmp_path: Path) -> None:
    replay = read_tardis(pair(tmp_path), skip_before_snapshot=False)
    first = messages_of(replay.events)[0]
    assert first == (0, 1000 * US, 1100 * US, [(LEVEL, BID, 1001, 100)])
    assert replay.stats.rows_before_snapshot == 0


def test_interleaved_snapshot_run_continues_as_levels(tmp_path: Path) -> None:
    book = [
        f"{EX},BTCUSDT,1,10,true,bid,100.1,1",
        f"{EX},ETHUSDT,1,10,true,bid,10.01,1",
        f"{EX},BTCUSDT,1,10,true,ask,100.2,1",  # BTC's snapshot resumes
        f"{EX},BTCUSDT,2,20,false,ask,100.2,2",
    ]
    replay = read_tardis([write(tmp_path / "b.csv", BOOK_HEADER, book)])
    got = messages_of(replay.events)
    assert [m[3] for m in got] == [
        [(CLEAR, 0, 0, 0), (SNAPSHOT, BID, 1001, 1)],
        [(CLEAR, 0, 0, 0), (SNAPSHOT, BID, 1001, 1)],
        [(LEVEL, ASK, 1002, 1)],
        [(LEVEL, ASK, 1002, 2)],
    ]
    assert replay.stats.snapshot_continuations == 1


def test_local_time_going_backwards_keeps_file_order(tmp_path: Path) -> None:
    trades = [
        f"{EX},BTCUSDT,1,300,1,buy,100.5,1",
        f"{EX},BTCUSDT,2,200,2,buy,100.5,1",  # earlier local time: stays after line 2
    ]
    book = [f"{EX},BTCUSDT,1,250,true,bid,100.1,1"]
    replay = read_tardis(pair(tmp_path, book=book, trades=trades))
    assert [m[2] for m in messages_of(replay.events)] == [250 * US, 300 * US, 200 * US]
    assert replay.stats.local_ts_backwards == 1


# ----- bad input --------------------------------------------------------------------------------

BAD_BOOK_ROWS = [
    ("columns", f"{EX},BTCUSDT,3000,3100,false,bid,100.4"),
    ("non_numeric", f"{EX},BTCUSDT,3000,31x0,false,bid,100.4,1"),
    ("non_numeric", f"{EX},BTCUSDT,3000,3100,false,bid,abc,1"),
    ("non_numeric", f"{EX},BTCUSDT,3000,3100,false,bid,100.4,"),
    ("negative_amount", f"{EX},BTCUSDT,3000,3100,false,bid,100.4,-1"),
    ("unknown_side", f"{EX},BTCUSDT,3000,3100,false,buy,100.4,1"),
    ("bad_flag", f"{EX},BTCUSDT,3000,3100,yes,bid,100.4,1"),
    ("off_grid", f"{EX},BTCUSDT,3000,3100,false,bid,100.45,1"),
    ("exchange_mismatch", "binance,BTCUSDT,3000,3100,false,bid,100.4,1"),
    ("out_of_range", f"{EX},BTCUSDT,3000,3100,false,bid,28147497671065.7,1"),
    ("out_of_range", f"{EX},BTCUSDT,3000,3100,false,bid,100.4,2814749767106.57"),
]
BAD_TRADE_ROWS = [
    ("bad_amount", f"{EX},BTCUSDT,2990,3100,1,buy,100.5,0"),
    ("negative_amount_trade", f"{EX},BTCUSDT,2990,3100,1,buy,100.5,-0.5"),
    ("unknown_side", f"{EX},BTCUSDT,2990,3100,1,buyer,100.5,0.5"),
    ("non_numeric", f"{EX},BTCUSDT,2990,3.1,1,buy,100.5,0.5"),
]
OFF_GRID = {"BTCUSDT": InstrumentSpec("BTCUSDT", "0.1", "0.01", EX)}


@pytest.mark.parametrize(("reason", "row"), BAD_BOOK_ROWS, ids=[r[0] for r in BAD_BOOK_ROWS])
def test_bad_book_row(tmp_path: Path, reason: str, row: str) -> None:
    book = [*BOOK[:6], row, *BOOK[7:]]  # replaces line 8
    paths = pair(tmp_path, book=book)
    with pytest.raises(SourceFormatError) as err:
        read_tardis(paths, instruments=OFF_GRID)
    assert (err.value.path, err.value.line) == (str(paths[0]), 8)
    assert err.value.reason.startswith(reason)
    replay = read_tardis(paths, instruments=OFF_GRID, errors="skip")
    assert replay.stats.skipped == {reason: 1}
    assert replay.stats.examples[reason][0].startswith(f"{paths[0]}:8: ")
    # The other row of that message stays.
    assert len(messages_of(replay.events)) == 7


@pytest.mark.parametrize(("reason", "row"), BAD_TRADE_ROWS, ids=[r[0] for r in BAD_TRADE_ROWS])
def test_bad_trade_row(tmp_path: Path, reason: str, row: str) -> None:
    paths = pair(tmp_path, trades=[row, *TRADES[1:]])
    want = "bad_amount" if reason == "negative_amount_trade" else reason
    with pytest.raises(SourceFormatError) as err:
        read_tardis(paths, instruments=OFF_GRID)
    assert (err.value.path, err.value.line) == (str(paths[1]), 2)
    assert err.value.reason.startswith(want)
    replay = read_tardis(paths, instruments=OFF_GRID, errors="skip")
    assert replay.stats.skipped == {want: 1}
    assert replay.stats.trades == 2


def test_values_at_the_bound_are_read_and_beyond_it_skipped(tmp_path: Path) -> None:
    # 2^48 ticks of 0.1 and 2^48 lots of 0.01 (events.MAX_ABS_UNITS), then one step more.
    at_px, over_px = "28147497671065.6", "28147497671065.7"
    at_qty, over_qty = "2814749767106.56", "2814749767106.57"
    extra = [
        f"{EX},BTCUSDT,5000,5100,false,ask,{at_px},{at_qty}",
        f"{EX},BTCUSDT,5000,5100,false,bid,-{at_px},1",
        f"{EX},BTCUSDT,5001,5200,false,ask,{over_px},1",
        f"{EX},BTCUSDT,5001,5200,false,ask,100.5,{over_qty}",
        f"{EX},BTCUSDT,5001,5200,false,bid,-{over_px},1",
        f"{EX},BTCUSDT,5001,5200,false,ask,{over_px},2",  # the same string again
    ]
    first_over = len(BOOK) + 2 + 2  # header, BOOK, two rows at the bound
    paths = pair(tmp_path, book=[*BOOK, *extra])
    with pytest.raises(SourceFormatError) as err:
        read_tardis(paths, instruments=OFF_GRID)
    assert (err.value.path, err.value.line) == (str(paths[0]), first_over)
    assert err.value.reason.startswith("out_of_range: price '28147497671065.7'")
    replay = read_tardis(paths, instruments=OFF_GRID, errors="skip")
    assert replay.stats.skipped == {"out_of_range": 4}
    assert [e.split(": ")[0] for e in replay.stats.examples["out_of_range"]] == [
        f"{paths[0]}:{first_over + i}" for i in range(4)
    ]
    assert "amount '2814749767106.57'" in replay.stats.examples["out_of_range"][1]
    validate(replay.events, len(replay.symbols))  # the rows at the bound pass
    last = messages_of(replay.events)[-1]
    assert last[3] == [(LEVEL, ASK, 1 << 48, 1 << 48), (LEVEL, BID, -(1 << 48), 100)]


@pytest.mark.parametrize(
    "header",
    [
        "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount",
        BOOK_HEADER.replace("amount", "size"),
        "",
    ],
    ids=["quotes", "renamed", "empty"],
)
def test_header_that_is_not_tardis(tmp_path: Path, header: str) -> None:
    bad = tmp_path / "quotes.csv"
    bad.write_text(f"{header}\n" if header else "")
    paths = [*pair(tmp_path), bad]
    with pytest.raises(SourceFormatError) as err:
        TardisReader(paths)
    assert (err.value.path, err.value.line) == (str(bad), 1)
    reader = TardisReader(paths, errors="skip")
    assert reader.stats.skipped == {"bad_header": 1}
    assert reader.stats.files[2].kind is None
    assert len(messages_of(reader.read().events)) == 7


def test_symbol_after_the_probe(tmp_path: Path) -> None:
    paths = pair(tmp_path)
    with pytest.raises(SourceFormatError) as err:
        read_tardis(paths, probe_rows=2)  # sees BTCUSDT only
    assert (err.value.path, err.value.line) == (str(paths[0]), 6)
    assert "unknown_symbol" in err.value.reason
    replay = read_tardis(paths, probe_rows=2, errors="skip")
    assert replay.stats.skipped == {"unknown_symbol": 3}
    assert list(replay.symbols.specs) == [InstrumentSpec("BTCUSDT", "0.1", "0.01", EX)]
    # None probes whole files: every symbol is found.
    assert len(read_tardis(paths, probe_rows=None).symbols) == 2


def test_truncated_gzip(tmp_path: Path) -> None:
    whole = gzip.compress(("\n".join([BOOK_HEADER, *BOOK * 200]) + "\n").encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceFormatError, match="damaged"):
        read_tardis([path])
    replay = read_tardis([path], errors="skip")
    assert replay.stats.skipped == {"damaged": 1}
    # Every complete line before the cut is read; the damage is reported at the next line.
    prefix = zlib.decompressobj(wbits=31).decompress(whole[: len(whole) // 2])
    complete = prefix.count(b"\n") - 1  # minus the header
    assert replay.stats.rows == complete > 0
    assert replay.stats.examples["damaged"][0].startswith(f"{path}:{complete + 2}: ")
    assert len(replay.events) > 0


def test_bad_arguments(tmp_path: Path) -> None:
    paths = pair(tmp_path)
    with pytest.raises(ValueError, match="errors"):
        TardisReader(paths, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_messages"):
        TardisReader(paths, chunk_messages=0)
    with pytest.raises(ValueError, match="probe_rows"):
        TardisReader(paths, probe_rows=0)
