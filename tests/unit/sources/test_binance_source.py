"""Unit tests of the Binance recorder source on small hand-written captures."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pytest
from numpy.typing import NDArray

from featureplane.errors import SourceFormatError, SyncError, UnknownSymbolError
from featureplane.events import (
    ASK,
    BID,
    BUY,
    CLEAR,
    END_OF_MESSAGE,
    EVENT_DTYPE,
    LEVEL,
    NO_SEQ,
    SELL,
    SNAPSHOT,
    TRADE,
    iter_messages,
    validate,
)
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources import BOOK_TICKER_DTYPE, iter_binance, read_binance

MS = 1_000_000
T0 = 1_723_161_255_000_000_000  # a local timestamp (ns) of the captures' day


# ----- line builders ----------------------------------------------------------------------------


def line(local_ts: int, obj: dict[str, Any] | str) -> str:
    body = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    return f"{local_ts} {body}"


def wrap(stream: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"stream": stream, "data": data}


def um_diff(
    ts: int,
    first: int,
    last: int,
    prev: int,
    bids: list[list[str]] | None = None,
    asks: list[list[str]] | None = None,
    sym: str = "BTCUSDT",
    e_ms: int = 1000,
    t_ms: int | None = 999,
) -> str:
    data: dict[str, Any] = {"e": "depthUpdate", "E": e_ms, "s": sym, "U": first, "u": last}
    if t_ms is not None:
        data["T"] = t_ms
    data |= {"pu": prev, "b": bids or [], "a": asks or [["61800.30", "1.000"]]}
    return line(ts, wrap(f"{sym.lower()}@depth@0ms", data))


def um_snapshot(
    ts: int,
    lid: int,
    bids: list[list[str]] | None = None,
    asks: list[list[str]] | None = None,
) -> str:
    return line(
        ts,
        {
            "lastUpdateId": lid,
            "E": 2000,
            "T": 1990,
            "bids": [["61800.20", "2.909"], ["61800.10", "0.696"]] if bids is None else bids,
            "asks": [["61800.30", "1.072"]] if asks is None else asks,
        },
    )


def um_trade(ts: int, tid: int, m: bool, sym: str = "BTCUSDT", px: str = "61800.30") -> str:
    data = {"e": "trade", "E": 3001, "T": 3000, "s": sym, "t": tid, "p": px, "q": "0.006"}
    data |= {"X": "MARKET", "m": m}
    return line(ts, wrap(f"{sym.lower()}@trade", data))


def um_bbo(ts: int, u: int, sym: str = "BTCUSDT") -> str:
    data = {"e": "bookTicker", "u": u, "s": sym, "b": "61800.20", "B": "2.507"}
    data |= {"a": "61800.30", "A": "2.510", "T": 4000, "E": 4001}
    return line(ts, wrap(f"{sym.lower()}@bookTicker", data))


def spot_diff(ts: int, first: int, last: int, bids: list[list[str]] | None = None) -> str:
    data = {"e": "depthUpdate", "E": 5000, "s": "BTCUSDT", "U": first, "u": last}
    data |= {"b": bids or [["61837.63000000", "3.78826000"]], "a": []}
    return line(ts, wrap("btcusdt@depth@100ms", data))


def spot_snapshot(ts: int, lid: int) -> str:
    return line(
        ts,
        {
            "lastUpdateId": lid,
            "bids": [["61837.63000000", "3.78826000"]],
            "asks": [["61837.64000000", "1.54698000"], ["200000.00000000", "25.42618900"]],
        },
    )


def spot_trade(ts: int, tid: int, m: bool) -> str:
    data = {"e": "trade", "E": 6001, "s": "BTCUSDT", "t": tid, "p": "61837.63000000"}
    data |= {"q": "0.02000000", "T": 6000, "m": m, "M": True}
    return line(ts, wrap("btcusdt@trade", data))


def write(path: Path, lines: list[str], compress: bool = True) -> Path:
    text = "".join(f"{x}\n" for x in lines).encode()
    path.write_bytes(gzip.compress(text) if compress else text)
    return path


def messages(events: NDArray[Any]) -> list[NDArray[Any]]:
    validate(events, 8)
    return list(iter_messages(events))


def kinds_of(events: NDArray[Any]) -> list[str]:
    """One letter per message: s(napshot), d(iff), t(rade)."""
    out = []
    for msg in messages(events):
        kind = int(msg["kind"][-1])
        out.append({LEVEL: "d", TRADE: "t", SNAPSHOT: "s", CLEAR: "s"}[kind])
    return out


def basic_usdm(tmp_path: Path, name: str = "btc.gz") -> Path:
    return write(
        tmp_path / name,
        [
            um_snapshot(T0, 100),
            um_diff(T0 + 1, 95, 105, 94, bids=[["61800.20", "3.000"], ["61700.00", "0.000"]]),
            um_diff(T0 + 2, 106, 110, 105),
        ],
    )


# ----- parsing ----------------------------------------------------------------------------------


def test_usdm_diff_rows_exact_ticks_and_lots(tmp_path: Path) -> None:
    replay = read_binance(basic_usdm(tmp_path))
    _, diff, _ = messages(replay.events)
    assert replay.events.dtype == EVENT_DTYPE
    assert list(diff["kind"]) == [LEVEL] * 3
    assert list(diff["side"]) == [BID, BID, ASK]  # bids then asks, JSON order
    assert list(diff["px"]) == [618002, 617000, 618003]  # tick 0.1
    assert list(diff["qty"]) == [3000, 0, 1000]  # lot 0.001; "0.000" deletes the level
    assert set(diff["seq"]) == {105}
    assert set(diff["first_seq"]) == {95}
    assert set(diff["prev_seq"]) == {94}
    assert set(diff["source_ts_ns"]) == {999 * MS}  # T, not E
    assert set(diff["local_ts_ns"]) == {T0 + 1}
    assert list(diff["flags"]) == [0, 0, END_OF_MESSAGE]
    assert replay.symbols.name_of(int(diff["symbol_id"][0])) == "BTCUSDT"
    assert replay.stats.instruments["BTCUSDT"].startswith("built-in usdm table")


def test_snapshot_message(tmp_path: Path) -> None:
    snap = messages(read_binance(basic_usdm(tmp_path)).events)[0]
    assert list(snap["kind"]) == [CLEAR, SNAPSHOT, SNAPSHOT, SNAPSHOT]
    assert list(snap["side"][1:]) == [BID, BID, ASK]
    assert list(snap["px"][1:]) == [618002, 618001, 618003]
    assert list(snap["qty"][1:]) == [2909, 696, 1072]
    assert set(snap["seq"]) == {100}
    assert set(snap["first_seq"]) == {NO_SEQ}
    assert set(snap["source_ts_ns"]) == {1990 * MS}  # T of the REST response


def test_timestamp_is_t_else_e(tmp_path: Path) -> None:
    path = write(
        tmp_path / "btc.gz",
        [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 101, 98, e_ms=1234, t_ms=None)],
    )
    diff = messages(read_binance(path).events)[1]
    assert set(diff["source_ts_ns"]) == {1234 * MS}


def test_trade_sides_and_sequence(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_trade(T0, 7, m=False), um_trade(T0 + 1, 8, m=True)])
    buy, sell = messages(read_binance(path).events)
    assert buy["kind"][0] == TRADE and buy["side"][0] == BUY  # m false: buyer aggressor
    assert sell["side"][0] == SELL
    assert (buy["seq"][0], buy["first_seq"][0], buy["prev_seq"][0]) == (7, NO_SEQ, NO_SEQ)
    assert (buy["px"][0], buy["qty"][0], buy["source_ts_ns"][0]) == (618003, 6, 3000 * MS)


def test_spot_parsing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "spot.gz",
        [
            spot_snapshot(T0, 200),
            spot_diff(T0 + 1, 195, 205),
            spot_trade(T0 + 2, 9, m=True),
            line(T0 + 3, wrap("btcusdt@bookTicker", {"u": 206, "s": "BTCUSDT", "b": "61837.63"})),
        ],
    )
    replay = read_binance(path, errors="skip")
    snap, diff, trade = messages(replay.events)
    assert replay.stats.sync["BTCUSDT"].market == "spot"
    assert set(snap["source_ts_ns"]) == {T0}  # no T/E in the spot REST snapshot: local time
    assert list(snap["qty"][1:]) == [378826000, 154698000, 2542618900]  # lot 1e-8
    assert list(snap["px"][1:]) == [6183763, 6183764, 20000000]  # tick 0.01
    assert (diff["first_seq"][0], diff["prev_seq"][0], diff["seq"][0]) == (195, 194, 205)
    assert diff["source_ts_ns"][0] == 5000 * MS  # spot diffs: E only
    assert (trade["side"][0], trade["source_ts_ns"][0]) == (SELL, 6000 * MS)
    assert replay.stats.skipped == {"bad_message": 1}  # the bookTicker without B/a/A


def test_book_tickers(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_bbo(T0, 50), um_snapshot(T0 + 1, 100)])
    replay = read_binance(path)
    bbo = replay.book_tickers
    assert bbo.dtype == BOOK_TICKER_DTYPE and len(bbo) == 1
    row = bbo[0]
    assert (row["update_id"], row["bid_px"], row["bid_qty"]) == (50, 618002, 2507)
    assert (row["ask_px"], row["ask_qty"]) == (618003, 2510)
    assert (row["source_ts_ns"], row["local_ts_ns"]) == (4000 * MS, T0)
    assert replay.stats.read["book_ticker"] == 1 == replay.stats.book_tickers


# ----- the sync rule ----------------------------------------------------------------------------


def test_sync_buffers_drops_stale_and_keeps_trades_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "btc.gz",
        [
            um_diff(T0, 80, 90, 79),  # stale: u < lastUpdateId
            um_trade(T0 + 1, 1, m=False),  # before the snapshot: kept, in file order
            um_diff(T0 + 2, 91, 99, 90),  # stale
            um_diff(T0 + 3, 100, 104, 99),  # u == L == U: straddles (USD-M keeps u == L)
            um_snapshot(T0 + 4, 100),
            um_trade(T0 + 5, 2, m=True),
            um_diff(T0 + 6, 105, 110, 104),
        ],
    )
    replay = read_binance(path)
    assert kinds_of(replay.events) == ["t", "s", "d", "t", "d"]
    msgs = messages(replay.events)
    assert msgs[2]["seq"][0] == 104 and msgs[4]["seq"][0] == 110
    # The buffered diff keeps its own local time, earlier than the snapshot's.
    assert msgs[2]["local_ts_ns"][0] == T0 + 3
    sync = replay.stats.sync["BTCUSDT"]
    assert (sync.last_update_id, sync.first_U, sync.first_u) == (100, 100, 104)
    assert sync.straddled is True and sync.buffered_diffs == 3 and sync.stale_dropped == 2
    assert replay.stats.stale_diffs_dropped == 2
    assert replay.stats.read["diff"] == 4 and replay.stats.messages["diff"] == 2
    assert replay.stats.skipped == {} and replay.stats.warnings == {}


def test_stale_diffs_after_the_snapshot_line_are_dropped_too(tmp_path: Path) -> None:
    path = write(
        tmp_path / "btc.gz",
        [um_snapshot(T0, 100), um_diff(T0 + 1, 90, 95, 89), um_diff(T0 + 2, 96, 101, 95)],
    )
    replay = read_binance(path)
    assert kinds_of(replay.events) == ["s", "d"]
    assert replay.stats.sync["BTCUSDT"].straddled is True


def test_usdm_u_equal_to_last_update_id_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 95, 100, 94)])
    assert kinds_of(read_binance(path).events) == ["s", "d"]


def test_spot_rule_drops_u_equal_to_last_update_id(tmp_path: Path) -> None:
    path = write(
        tmp_path / "spot.gz",
        [spot_diff(T0, 190, 200), spot_snapshot(T0 + 1, 200), spot_diff(T0 + 2, 201, 210)],
    )
    replay = read_binance(path)
    assert kinds_of(replay.events) == ["s", "d"]
    sync = replay.stats.sync["BTCUSDT"]
    assert (sync.first_U, sync.first_u, sync.straddled, sync.stale_dropped) == (201, 210, True, 1)


def test_not_straddled_is_counted_and_emitted(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 120, 130, 119)])
    replay = read_binance(path)
    assert kinds_of(replay.events) == ["s", "d"]
    assert replay.stats.warnings == {"sync_not_straddled": 1}
    assert replay.stats.examples["sync_not_straddled"][0].startswith(f"{path}:2")
    assert replay.stats.sync["BTCUSDT"].straddled is False


def test_missing_snapshot_raises_sync_error(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_diff(T0, 1, 2, 0), um_trade(T0 + 1, 1, m=False)])
    errors: Literal["skip", "raise"]
    for errors in ("skip", "raise"):
        with pytest.raises(SyncError, match=r"BTCUSDT.*btc\.gz"):
            read_binance(path, errors=errors)


def test_missing_snapshot_skip_drops_diffs_keeps_trades(tmp_path: Path) -> None:
    path = write(
        tmp_path / "btc.gz",
        [um_diff(T0, 1, 2, 0), um_trade(T0 + 1, 1, m=False), um_diff(T0 + 2, 3, 4, 2)],
    )
    errors: Literal["skip", "raise"]
    for errors in ("skip", "raise"):
        replay = read_binance(path, errors=errors, on_missing_snapshot="skip")
        assert kinds_of(replay.events) == ["t"]
        assert replay.stats.skipped == {"no_snapshot_diffs": 2}
        assert replay.stats.examples["no_snapshot_diffs"][0].startswith(f"{path}:1")


def test_trades_only_file_needs_no_snapshot(tmp_path: Path) -> None:
    path = write(tmp_path / "btc.gz", [um_trade(T0, 1, m=False)])
    assert kinds_of(read_binance(path).events) == ["t"]


def test_empty_diff_is_folded_into_the_next(tmp_path: Path) -> None:
    empty_diff = line(
        T0 + 2,
        wrap(
            "btcusdt@depth@0ms",
            {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 106, "u": 108, "pu": 105}
            | {"b": [], "a": []},
        ),
    )
    path = write(
        tmp_path / "btc.gz",
        [
            um_snapshot(T0, 100),
            um_diff(T0 + 1, 99, 105, 98),
            empty_diff,
            um_diff(T0 + 3, 109, 112, 108),
        ],
    )
    replay = read_binance(path)
    last = messages(replay.events)[-1]
    assert (last["first_seq"][0], last["prev_seq"][0], last["seq"][0]) == (106, 105, 112)
    assert replay.stats.sync["BTCUSDT"].empty_diffs_folded == 1
    assert replay.stats.sync["BTCUSDT"].seq_gaps == 0


# ----- chains and merging -----------------------------------------------------------------------


def test_chain_of_two_files_carries_the_book(tmp_path: Path) -> None:
    first = write(tmp_path / "a.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    second = write(tmp_path / "b.gz", [um_diff(T0 + 10, 106, 110, 105)])
    replay = read_binance([second, first])  # chain order comes from the first local timestamps
    assert kinds_of(replay.events) == ["s", "d", "d"]
    assert [f.chain_pos for f in replay.stats.files] == [1, 0]
    sync = replay.stats.sync["BTCUSDT"]
    assert sync.files == [str(first), str(second)]
    assert sync.chain_gaps == 0 and replay.stats.warnings == {}


def test_chain_gap_resets_the_book_and_resyncs_at_the_files_own_snapshot(tmp_path: Path) -> None:
    first = write(tmp_path / "a.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    # A day is missing: the next file starts past a hole, with its own snapshot a line late.
    second = write(
        tmp_path / "b.gz",
        [
            um_diff(T0 + 10, 120, 130, 119),  # stale for the snapshot at 131
            um_diff(T0 + 11, 131, 135, 130),  # straddles it
            um_snapshot(T0 + 12, 131),
            um_diff(T0 + 13, 136, 140, 135),
        ],
    )
    replay = read_binance([first, second])
    msgs = messages(replay.events)
    # snapshot, diff | reset (a CLEAR alone, no sequence), snapshot, the straddling diff, diff
    assert kinds_of(replay.events) == ["s", "d", "s", "s", "d", "d"]
    reset = msgs[2]
    assert len(reset) == 1 and reset["kind"][0] == CLEAR and reset["seq"][0] == -1
    assert reset["local_ts_ns"][0] == T0 + 10  # at the first diff of the new file
    assert [int(m["seq"][-1]) for m in msgs[3:]] == [131, 135, 140]
    assert replay.stats.warnings == {"chain_gap": 1}
    assert replay.stats.examples["chain_gap"][0].startswith(f"{second}:1")
    sync = replay.stats.sync["BTCUSDT"]
    assert (sync.chain_gaps, sync.chain_resets, sync.stale_dropped) == (1, 1, 1)
    assert replay.stats.messages["snapshot"] == 2  # the reset is not a venue snapshot
    # The new file read alone gives the same messages from its snapshot on.
    alone = read_binance(second)
    assert len(alone.events) == sum(len(m) for m in msgs[3:])
    np.testing.assert_array_equal(alone.events, np.concatenate(msgs[3:]))


def test_chain_gap_without_a_later_snapshot_is_a_book_without_snapshot(tmp_path: Path) -> None:
    first = write(tmp_path / "a.gz", [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)])
    second = write(
        tmp_path / "b.gz", [um_diff(T0 + 10, 120, 130, 119), um_trade(T0 + 11, 7, m=False)]
    )
    with pytest.raises(SyncError, match=rf"after the chain gap at {second}:1.*'skip'"):
        read_binance([first, second])
    replay = read_binance([first, second], on_missing_snapshot="skip")
    assert kinds_of(replay.events) == ["s", "d", "s", "t"]  # the trade is kept, after the reset
    assert replay.stats.skipped == {"no_snapshot_diffs": 1}
    assert replay.stats.warnings == {"chain_gap": 1}


def test_spot_chain_continuity(tmp_path: Path) -> None:
    first = write(tmp_path / "a.gz", [spot_snapshot(T0, 200), spot_diff(T0 + 1, 195, 205)])
    good = write(tmp_path / "b.gz", [spot_diff(T0 + 10, 206, 210)])
    bad = write(tmp_path / "c.gz", [spot_diff(T0 + 10, 207, 210)])
    assert read_binance([first, good]).stats.warnings == {}
    gap = read_binance([first, bad], on_missing_snapshot="skip")
    assert gap.stats.warnings == {"chain_gap": 1}
    assert gap.stats.skipped == {"no_snapshot_diffs": 1}


def test_two_symbols_merge_by_local_time(tmp_path: Path) -> None:
    btc = write(
        tmp_path / "btc.gz",
        [um_snapshot(T0, 100), um_trade(T0 + 2, 1, m=False), um_trade(T0 + 4, 2, m=False)],
    )
    eth = write(
        tmp_path / "eth.gz",
        [
            line(T0 + 1, orjson.loads(um_snapshot(0, 500).split(" ", 1)[1])),
            um_trade(T0 + 2, 10, m=True, sym="ETHUSDT", px="2500.01"),
            um_trade(T0 + 3, 11, m=True, sym="ETHUSDT", px="2500.01"),
            um_bbo(T0 + 3, 600, sym="ETHUSDT"),
            um_bbo(T0 + 5, 601, sym="ETHUSDT"),
        ],
    )
    replay = read_binance([btc, eth])
    ids = {name: replay.symbols.id_of(name) for name in ("BTCUSDT", "ETHUSDT")}
    assert ids == {"BTCUSDT": 0, "ETHUSDT": 1}
    msgs = messages(replay.events)
    order = [(int(m["symbol_id"][0]), int(m["seq"][0])) for m in msgs]
    # T0+2 is a tie: BTCUSDT's file comes first in the caller's list, so it goes first.
    assert order == [(0, 100), (1, 500), (0, 1), (1, 10), (1, 11), (0, 2)]
    local = [int(m["local_ts_ns"][0]) for m in msgs]
    assert local == sorted(local)
    assert list(replay.book_tickers["update_id"]) == [600, 601]
    assert set(replay.book_tickers["symbol_id"]) == {1}
    # Swapping the files swaps the tie and the ids.
    swapped = read_binance([eth, btc])
    assert swapped.symbols.id_of("ETHUSDT") == 0
    assert [int(m["seq"][0]) for m in messages(swapped.events)][2:4] == [10, 1]


@pytest.mark.parametrize("chunk_rows", [1, 3, 65536])
def test_merge_matches_a_stable_sort(tmp_path: Path, chunk_rows: int) -> None:
    rng = np.random.default_rng(3)
    names = ["BTCUSDT", "ETHUSDT", "XRPUSDT"]
    paths, expected = [], []
    for rank, sym in enumerate(names):
        ts = np.sort(rng.integers(0, 40, size=60))  # many ties, within and across files
        lines = []
        for i, t in enumerate(ts):
            if i % 3 == 2:
                lines.append(um_bbo(T0 + int(t), i, sym=sym))
            else:
                lines.append(um_trade(T0 + int(t), i, m=True, sym=sym, px="1.0"))
                expected.append((int(t), rank, i))
        paths.append(write(tmp_path / f"{sym}.gz", lines))
    specs = [InstrumentSpec(sym, "0.1", "0.001") for sym in names]
    chunks = list(iter_binance(paths, instruments=specs, chunk_rows=chunk_rows).chunks())
    events = np.concatenate([c.events for c in chunks])
    got = [(int(r["local_ts_ns"] - T0), int(r["symbol_id"]), int(r["seq"])) for r in events]
    assert got == sorted(expected)  # (ts, file rank) ties keep file order
    bbo = np.concatenate([c.book_tickers for c in chunks])
    keys = list(zip(bbo["local_ts_ns"].tolist(), bbo["symbol_id"].tolist(), strict=True))
    assert keys == sorted(keys) and len(bbo) == 60


def test_symbol_filter(tmp_path: Path) -> None:
    btc = basic_usdm(tmp_path)
    eth = write(tmp_path / "eth.gz", [um_trade(T0, 10, m=True, sym="ETHUSDT", px="2500.01")])
    replay = read_binance([btc, eth], symbols=["ethusdt"])
    assert replay.symbols.specs[0].symbol == "ETHUSDT" and len(replay.symbols) == 1
    assert kinds_of(replay.events) == ["t"]
    with pytest.raises(UnknownSymbolError, match="SOLUSDT"):
        read_binance([btc, eth], symbols=["SOLUSDT"])


def test_directory_and_plain_text_and_multimember(tmp_path: Path) -> None:
    lines = [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98), um_trade(T0 + 2, 1, m=True)]
    plain = write(tmp_path / "plain.txt", lines, compress=False)
    members = tmp_path / "dir"
    members.mkdir()
    text = [f"{x}\n".encode() for x in lines]
    (members / "btc.gz").write_bytes(b"".join(gzip.compress(t) for t in text))
    expected = read_binance(plain).events
    assert np.array_equal(read_binance(members).events, expected)


# ----- streaming --------------------------------------------------------------------------------


def test_iter_binance_chunks_match_read(tmp_path: Path) -> None:
    lines = [um_snapshot(T0, 100)]
    lines += [um_diff(T0 + i, 100 + i, 100 + i, 99 + i) for i in range(1, 200)]
    lines += [um_trade(T0 + 1000 + i, i, m=bool(i % 2)) for i in range(100)]
    path = write(tmp_path / "btc.gz", lines)
    whole = read_binance(path).events
    reader = iter_binance(path, chunk_rows=16)
    chunks = list(reader)
    assert len(chunks) > 10
    for chunk in chunks:
        assert len(chunk) <= 16 + 3  # a chunk closes at the first message boundary past 16
        assert chunk["flags"][-1] & END_OF_MESSAGE
    assert np.array_equal(np.concatenate(chunks), whole)
    assert reader.stats.messages == {"diff": 199, "trade": 100, "snapshot": 1}
    with pytest.raises(RuntimeError):
        list(reader)


# ----- instruments ------------------------------------------------------------------------------


def test_unknown_symbol_precision_is_inferred(tmp_path: Path) -> None:
    data = {"e": "depthUpdate", "E": 1, "T": 1, "s": "XRPUSDT", "U": 5, "u": 6, "pu": 4}
    data |= {"b": [["0.5012", "12.3"]], "a": [["0.5013", "0.0"]]}
    snap = {"lastUpdateId": 5, "E": 1, "T": 1, "bids": [["0.5011", "1.5"]], "asks": []}
    path = write(
        tmp_path / "xrp.gz", [line(T0, wrap("xrpusdt@depth@0ms", data)), line(T0 + 1, snap)]
    )
    replay = read_binance(path)
    spec = replay.symbols.spec("XRPUSDT")
    assert (str(spec.tick_size), str(spec.lot_size)) == ("0.0001", "0.1")
    assert "inferred" in replay.stats.instruments["XRPUSDT"]
    diff = messages(replay.events)[1]
    assert list(diff["px"]) == [5012, 5013] and list(diff["qty"]) == [123, 0]


def test_caller_instruments_and_symbol_table(tmp_path: Path) -> None:
    path = basic_usdm(tmp_path)
    fine = InstrumentSpec("BTCUSDT", "0.01", "0.001")
    replay = read_binance(path, instruments=[fine])
    assert messages(replay.events)[1]["px"][0] == 6180020
    assert replay.stats.instruments["BTCUSDT"].startswith("caller")
    table = SymbolTable([InstrumentSpec("ETHUSDT", "0.01", "0.001"), fine])
    replay = read_binance(path, instruments=table)
    assert replay.symbols.id_of("BTCUSDT") == 1  # the caller's ids are kept
    assert set(replay.events["symbol_id"]) == {1}


def test_market_override(tmp_path: Path) -> None:
    # A USD-M-looking file read as spot: prev_seq follows the spot rule U - 1.
    path = basic_usdm(tmp_path)
    replay = read_binance(
        path, market="spot", instruments=[InstrumentSpec("BTCUSDT", "0.1", "0.001")]
    )
    assert messages(replay.events)[1]["prev_seq"][0] == 94
    assert replay.stats.sync["BTCUSDT"].market == "spot"


def test_bad_arguments(tmp_path: Path) -> None:
    path = basic_usdm(tmp_path)
    with pytest.raises(ValueError, match="errors"):
        read_binance(path, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="market"):
        read_binance(path, market="options")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_missing_snapshot"):
        read_binance(path, on_missing_snapshot="warn")  # type: ignore[arg-type]


# ----- bad input, both error modes --------------------------------------------------------------

GOOD_HEAD = [um_snapshot(T0, 100), um_diff(T0 + 1, 99, 105, 98)]
GOOD_TAIL = [um_trade(T0 + 20, 1, m=False)]


def _raw_diff(**fields: Any) -> dict[str, Any]:
    data = {"e": "depthUpdate", "T": 1, "s": "BTCUSDT", "U": 106, "u": 107, "pu": 105}
    return wrap("btcusdt@depth@0ms", data | {"b": [], "a": []} | fields)


# case -> (skip reason, the bad line); each sits between valid lines 2 and 4 of its file.
BAD_LINES: dict[str, tuple[str, str]] = {
    "no_shape": ("bad_line", "no-timestamp-here"),
    "bad_ts": ("bad_line", "17231612a5 {}"),
    "blank": ("bad_line", ""),
    "json": ("bad_json", line(T0 + 10, '{"stream": "btcusdt@trade", "data": {')),
    "json_array": ("bad_json", line(T0 + 10, "[1, 2]")),
    "kline": ("unknown_stream", line(T0 + 10, wrap("btcusdt@kline_1m", {"e": "kline"}))),
    "event": ("unknown_event", line(T0 + 10, {"e": "forceOrder", "E": 1})),
    "ack": ("unknown_event", line(T0 + 10, {"result": None, "id": 1})),
    "event_on_stream": (
        "unknown_event",
        line(T0 + 10, wrap("btcusdt@trade", {"e": "aggTrade", "t": 1, "m": True})),
    ),
    "other_symbol": ("symbol_mismatch", um_trade(T0 + 10, 5, m=True, sym="ETHUSDT")),
    "trade_id": ("bad_message", line(T0 + 10, wrap("btcusdt@trade", {"e": "trade", "t": "x"}))),
    "data_not_object": ("bad_message", line(T0 + 10, wrap("btcusdt@trade", [1]))),  # type: ignore[arg-type]
    "nan_qty": ("bad_value", um_diff(T0 + 10, 106, 107, 105, bids=[["61800.20", "NaN"]])),
    "text_qty": ("bad_value", um_diff(T0 + 10, 106, 107, 105, bids=[["61800.20", "abc"]])),
    "negative_qty": ("bad_value", um_diff(T0 + 10, 106, 107, 105, bids=[["61800.20", "-1.0"]])),
    "negative_px": ("bad_value", um_diff(T0 + 10, 106, 107, 105, bids=[["-61800.2", "1.0"]])),
    "off_grid_px": ("off_grid", um_diff(T0 + 10, 106, 107, 105, bids=[["61800.25", "1.000"]])),
    "off_grid_qty": ("off_grid", um_diff(T0 + 10, 106, 107, 105, bids=[["61800.2", "1.0005"]])),
    "short_level": ("bad_message", line(T0 + 10, _raw_diff(b=[["61800.20"]]))),
    "string_level": ("bad_message", line(T0 + 10, _raw_diff(b=["61800.20"]))),
    "number_px": ("bad_message", line(T0 + 10, _raw_diff(b=[[61800.2, "1.000"]]))),
    "no_pu": ("bad_message", line(T0 + 10, _raw_diff(pu=None))),
    "u_below_U": ("bad_message", line(T0 + 10, _raw_diff(U=110))),
    "bad_T": ("bad_message", line(T0 + 10, _raw_diff(T="soon"))),
    "u_beyond_int64": ("bad_message", line(T0 + 10, _raw_diff(u=(1 << 64) - 1))),
    "T_beyond_int64": ("bad_message", line(T0 + 10, _raw_diff(T=1 << 60))),
    "local_beyond_int64": ("bad_line", line(10**19, um_trade(0, 1, m=True).split(" ", 1)[1])),
    "qty_beyond_int64": ("bad_value", um_diff(T0 + 10, 106, 107, 105, bids=[["1.0", "1" * 20]])),
    # One step past events.MAX_ABS_UNITS (2^48 ticks of 0.1, 2^48 lots of 0.001).
    "px_beyond_bound": (
        "bad_value",
        um_diff(T0 + 10, 106, 107, 105, bids=[["28147497671065.7", "1.000"]]),
    ),
    "qty_beyond_bound": (
        "bad_value",
        um_diff(T0 + 10, 106, 107, 105, bids=[["61800.2", "281474976710.657"]]),
    ),
    "trade_px_beyond_bound": ("bad_value", um_trade(T0 + 10, 5, m=True, px="28147497671065.7")),
}


def _bad_file(tmp_path: Path, case: str) -> Path:
    return write(tmp_path / "btc.gz", [*GOOD_HEAD, BAD_LINES[case][1], *GOOD_TAIL])


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_skipped_and_counted(tmp_path: Path, case: str) -> None:
    path = _bad_file(tmp_path, case)
    reason = BAD_LINES[case][0]
    replay = read_binance(path)
    assert replay.stats.skipped == {reason: 1}
    assert replay.stats.examples[reason][0].startswith(f"{path}:3")
    assert kinds_of(replay.events) == ["s", "d", "t"]  # every valid message is kept


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_line_raises_source_format_error(tmp_path: Path, case: str) -> None:
    path = _bad_file(tmp_path, case)
    with pytest.raises(SourceFormatError, match=BAD_LINES[case][0]) as info:
        read_binance(path, errors="raise")
    assert (info.value.path, info.value.line) == (str(path), 3)


def test_values_at_the_bound_are_read(tmp_path: Path) -> None:
    # 2^48 ticks of 0.1 and 2^48 lots of 0.001: events.MAX_ABS_UNITS, the largest a row holds.
    at = um_diff(T0 + 10, 106, 107, 105, bids=[["28147497671065.6", "281474976710.656"]])
    trade = um_trade(T0 + 11, 5, m=True, px="28147497671065.6")
    path = write(tmp_path / "btc.gz", [*GOOD_HEAD, at, trade, *GOOD_TAIL])
    replay = read_binance(path, errors="raise")
    validate(replay.events, len(replay.symbols))
    diff, trades = messages(replay.events)[2:4]
    assert (int(diff["px"][0]), int(diff["qty"][0])) == (1 << 48, 1 << 48)
    assert int(trades["px"][0]) == 1 << 48
    assert replay.stats.skipped == {}


def test_diff_with_one_bad_level_is_skipped_whole(tmp_path: Path) -> None:
    bad = um_diff(T0 + 2, 106, 110, 105, bids=[["61800.20", "1.000"], ["61800.25", "1.000"]])
    path = write(tmp_path / "btc.gz", [*GOOD_HEAD, bad, um_diff(T0 + 3, 111, 115, 110)])
    replay = read_binance(path)
    msgs = messages(replay.events)
    assert kinds_of(replay.events) == ["s", "d", "d"]
    # No partial application: the next diff's pu (110) no longer matches the last applied u
    # (105), so the engine sees the gap.
    assert (msgs[1]["seq"][0], msgs[2]["prev_seq"][0]) == (105, 110)
    assert replay.stats.skipped == {"off_grid": 1}
    assert replay.stats.sync["BTCUSDT"].seq_gaps == 1


def _truncated(tmp_path: Path) -> tuple[Path, int]:
    rng = np.random.default_rng(7)
    lines = GOOD_HEAD + [
        um_trade(T0 + 10 + i, 1000 + i, m=bool(rng.integers(2)), px=f"{rng.integers(1, 900_000)}.0")
        for i in range(3000)
    ]
    blob = gzip.compress("".join(f"{x}\n" for x in lines).encode())
    cut = blob[: len(blob) * 2 // 3]
    path = tmp_path / "btc.gz"
    path.write_bytes(cut)
    complete = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    return path, complete


def test_truncated_gzip_keeps_complete_lines(tmp_path: Path) -> None:
    path, complete = _truncated(tmp_path)
    replay = read_binance(path)
    assert replay.stats.files[0].lines == complete and replay.stats.files[0].truncated
    assert replay.stats.skipped == {"truncated": 1}
    assert replay.stats.truncated_files == [str(path)]
    assert replay.stats.messages["trade"] == complete - 2
    assert replay.stats.examples["truncated"][0].startswith(f"{path}:{complete + 1}")


def test_truncated_gzip_raises(tmp_path: Path) -> None:
    path, complete = _truncated(tmp_path)
    with pytest.raises(SourceFormatError, match="truncated") as info:
        read_binance(path, errors="raise")
    assert info.value.line == complete + 1


def test_corrupt_gzip(tmp_path: Path) -> None:
    # A damaged CRC trailer: zlib reports it once every line has been decompressed.
    lines = [*GOOD_HEAD, *GOOD_TAIL]
    blob = bytearray(gzip.compress("".join(f"{x}\n" for x in lines).encode()))
    blob[-8:-4] = bytes(b ^ 0xFF for b in blob[-8:-4])
    path = tmp_path / "btc.gz"
    path.write_bytes(bytes(blob))
    replay = read_binance(path)
    assert replay.stats.skipped == {"gzip_error": 1}
    assert kinds_of(replay.events) == ["s", "d", "t"]
    with pytest.raises(SourceFormatError, match="gzip_error"):
        read_binance(path, errors="raise")


def test_file_without_symbol_and_empty_file(tmp_path: Path) -> None:
    good = basic_usdm(tmp_path)
    junk = write(tmp_path / "junk.gz", ["hello world", line(T0, {"result": None, "id": 1})])
    empty_file = write(tmp_path / "empty.gz", [])
    replay = read_binance([good, junk, empty_file])
    assert replay.stats.skipped == {"no_symbol": 1}
    assert replay.stats.warnings == {"empty_file": 1}
    assert kinds_of(replay.events) == ["s", "d", "d"]
    with pytest.raises(SourceFormatError, match="no_symbol"):
        read_binance([good, junk], errors="raise")


def test_market_cannot_be_told(tmp_path: Path) -> None:
    path = write(tmp_path / "k.gz", [line(T0, wrap("btcusdt@kline_1m", {"e": "kline"}))])
    with pytest.raises(SourceFormatError, match="market="):
        read_binance(path)
    replay = read_binance(path, market="usdm")
    assert replay.stats.skipped == {"unknown_stream": 1} and len(replay.events) == 0


# ----- the real-data path helper ----------------------------------------------------------------


def test_shared_data_skips_or_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import datapaths

    monkeypatch.setattr(datapaths, "SHARED_DATA", tmp_path)
    (tmp_path / "there").mkdir()
    assert datapaths.shared_data("there") == tmp_path / "there"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="absent"):
        datapaths.shared_data("missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        datapaths.shared_data("missing")


def test_a_symbol_the_rust_parser_cannot_take_is_a_source_error(tmp_path: Path) -> None:
    # A stream name cased beyond ASCII ("btcusdtʝ@depth", found by the Python fuzz run) makes a
    # symbol the Rust parser does not take: parser="rust" refuses the files with a
    # SourceFormatError naming them (it was a bare ValueError); "auto" reads them with the
    # reference.
    from tests.support.rust import require_rust

    require_rust("parser")
    diff = um_diff(T0 + 1, 99, 105, 98).replace("btcusdt@", "btcusdt\u029d@")
    path = write(tmp_path / "x.gz", [um_snapshot(T0, 100), diff])
    with pytest.raises(SourceFormatError, match="non-ASCII symbol") as info:
        read_binance(path, parser="rust")
    assert info.value.path == str(path)
    assert iter_binance(path).parsers == {"BTCUSDT\ua7b2": "python"}
