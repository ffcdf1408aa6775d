"""Unit tests of hftbacktest event arrays <-> normalized messages, on hand-built arrays."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("hftbacktest")

from hftbacktest import types as hbt
from hftbacktest.data import validate_event_order

from featureplane.book.lob import LOBEngine
from featureplane.errors import OffGridError, SourceFormatError
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
    concat,
    iter_messages,
    make_message,
    message_bounds,
    validate,
)
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources.hftbacktest.reader import (
    _hbt_constants,
    read_hftbacktest_events,
    to_hftbacktest_events,
)

SPEC = InstrumentSpec("BTCUSDT", "0.1", "0.001")
BOTH = hbt.EXCH_EVENT | hbt.LOCAL_EVENT


def hbt_rows(*rows: tuple[int, int, int, float, float]) -> np.ndarray:
    """(ev, exch_ts, local_ts, px, qty) rows of hftbacktest's event_dtype."""
    out = np.zeros(len(rows), dtype=hbt.event_dtype)
    for i, (ev, exch, local, px, qty) in enumerate(rows):
        out[i] = (ev, exch, local, px, qty, 0, 0, 0.0)
    return out


def rows_of(events: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    return [
        [(int(r["kind"]), int(r["side"]), int(r["px"]), int(r["qty"])) for r in m]
        for m in iter_messages(events)
    ]


def test_format_numbers_match_the_installed_hftbacktest() -> None:
    _hbt_constants()  # raises if hftbacktest.types disagrees with the reader's copy


def test_local_view_grouped_by_local_time_and_kind() -> None:
    bid, ask = hbt.BUY_EVENT, hbt.SELL_EVENT
    data = hbt_rows(
        # A snapshot as hftbacktest's Binance converter writes it: per-side clears.
        (hbt.DEPTH_CLEAR_EVENT | bid | BOTH, 10, 100, 99.0, 0),
        (hbt.DEPTH_SNAPSHOT_EVENT | bid | BOTH, 10, 100, 100.0, 1.5),
        (hbt.DEPTH_CLEAR_EVENT | ask | BOTH, 10, 100, 102.0, 0),
        (hbt.DEPTH_SNAPSHOT_EVENT | ask | BOTH, 10, 100, 100.5, 2),
        # A depth message of two rows, then a trade at the same local time.
        (hbt.DEPTH_EVENT | bid | BOTH, 20, 200, 100.1, 0.25),
        (hbt.DEPTH_EVENT | ask | BOTH, 20, 200, 100.5, 0),
        (hbt.TRADE_EVENT | bid | BOTH, 19, 200, 100.5, 0.002),
        # Exchange-only copy of the next row (split by correct_event_order): skipped.
        (hbt.TRADE_EVENT | ask | hbt.EXCH_EVENT, 21, 300, 100.1, 0.001),
        (hbt.TRADE_EVENT | ask | hbt.LOCAL_EVENT, 18, 300, 100.1, 0.001),
        (hbt.TRADE_EVENT | hbt.LOCAL_EVENT, 18, 300, 100.1, 0.001),  # no initiator
        (hbt.DEPTH_BBO_EVENT | bid | BOTH, 22, 310, 100.1, 1),  # not read
        (hbt.DEPTH_EVENT | ask | BOTH, 23, 320, 100.6, 1),
    )
    replay = read_hftbacktest_events(data, SPEC)
    ev = replay.events
    validate(ev, len(replay.symbols))
    assert rows_of(ev) == [
        [(CLEAR, 0, 0, 0), (SNAPSHOT, BID, 1000, 1500), (SNAPSHOT, ASK, 1005, 2000)],
        [(LEVEL, BID, 1001, 250), (LEVEL, ASK, 1005, 0)],
        [(TRADE, BUY, 1005, 2)],
        [(TRADE, SELL, 1001, 1), (TRADE, UNKNOWN_SIDE, 1001, 1)],
        [(LEVEL, ASK, 1006, 1000)],
    ]
    ends = message_bounds(ev) - 1
    assert ev["local_ts_ns"][ends].tolist() == [100, 200, 200, 300, 320]
    assert ev["source_ts_ns"][ends].tolist() == [10, 20, 19, 18, 23]
    assert (ev["seq"] == NO_SEQ).all()
    s = replay.stats
    assert (s.rows, s.local_rows, s.exch_only_rows, s.unflagged_rows) == (12, 11, 1, 0)
    assert s.skipped_kinds == {hbt.DEPTH_BBO_EVENT: 1}
    assert s.messages == {"book": 2, "snapshot": 1, "trade": 2}
    assert (s.clear_rows, s.partial_clears, s.snapshot_rows_as_levels) == (2, 2, 0)
    assert s.exch_ts_backwards == 2


def test_snapshot_rows_without_a_clear_are_level_changes() -> None:
    data = hbt_rows(
        (hbt.DEPTH_SNAPSHOT_EVENT | hbt.BUY_EVENT | BOTH, 1, 5, 100.0, 1),
        (hbt.DEPTH_SNAPSHOT_EVENT | hbt.BUY_EVENT | BOTH, 1, 5, 100.1, 0),
        (hbt.DEPTH_CLEAR_EVENT | BOTH, 2, 6, 0.0, 0),  # side-less: the whole book
    )
    replay = read_hftbacktest_events(data, SPEC)
    assert rows_of(replay.events) == [
        [(LEVEL, BID, 1000, 1000), (LEVEL, BID, 1001, 0)],
        [(CLEAR, 0, 0, 0)],
    ]
    assert replay.stats.snapshot_rows_as_levels == 2
    assert replay.stats.partial_clears == 0


def test_npz_file_and_symbol_table(tmp_path: Path) -> None:
    data = hbt_rows((hbt.DEPTH_EVENT | hbt.SELL_EVENT | BOTH, 1, 2, 100.2, 3))
    path = tmp_path / "x.npz"
    np.savez_compressed(path, data=data)
    table = SymbolTable([InstrumentSpec("ETHUSDT", "0.01", "0.001")])
    replay = read_hftbacktest_events(path, SPEC, symbols=table)
    assert replay.symbols is table and table.id_of("BTCUSDT") == 1
    assert replay.events["symbol_id"].tolist() == [1]
    assert replay.stats.source == str(path)
    bad = tmp_path / "bad.npz"
    np.savez(bad, other=data)
    with pytest.raises(SourceFormatError, match="key 'data'"):
        read_hftbacktest_events(bad, SPEC)


@pytest.mark.parametrize(
    ("row", "error", "match"),
    [
        ((hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, 100.05, 1), OffGridError, "px 100.05"),
        ((hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, 100.1, 0.0005), OffGridError, "qty"),
        ((hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, np.nan, 1), SourceFormatError, "finite"),
        ((hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, 100.1, -1), SourceFormatError, "negative"),
        ((hbt.DEPTH_EVENT | BOTH, 1, 2, 100.1, 1), SourceFormatError, "exactly one of BUY/SELL"),
        (
            (hbt.TRADE_EVENT | hbt.BUY_EVENT | hbt.SELL_EVENT | BOTH, 1, 2, 100.1, 1),
            SourceFormatError,
            "both BUY and SELL",
        ),
        (
            (hbt.DEPTH_EVENT | hbt.BUY_EVENT, 1, 2, 100.1, 1),
            SourceFormatError,
            "correct_event_order",
        ),
    ],
)
def test_bad_rows_are_refused_with_their_row(
    row: tuple[int, int, int, float, float], error: type[Exception], match: str
) -> None:
    good = (hbt.DEPTH_EVENT | hbt.SELL_EVENT | BOTH, 1, 1, 100.2, 3)
    data = hbt_rows(good, row) if row[0] & hbt.LOCAL_EVENT else hbt_rows(row)
    with pytest.raises(error, match=match) as info:
        read_hftbacktest_events(data, SPEC)
    if row[0] & hbt.LOCAL_EVENT:
        assert "<array>:1" in str(info.value)


def test_values_beyond_the_bound_are_refused_with_their_row() -> None:
    # Tick and lot 1: 2^48 (events.MAX_ABS_UNITS) and 2^48 + 1 are exact f64 values.
    unit = InstrumentSpec("X", "1", "1")
    top = float(1 << 48)
    depth = hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH
    at = hbt_rows((depth, 1, 2, top, top), (depth, 1, 2, -top, 1))
    assert rows_of(read_hftbacktest_events(at, unit).events) == [
        [(LEVEL, BID, 1 << 48, 1 << 48), (LEVEL, BID, -(1 << 48), 1)]
    ]
    for px, qty, what in ((top + 1, 1, "px"), (-top - 1, 1, "px"), (5, top + 1, "qty")):
        data = hbt_rows((depth, 1, 2, 5, 1), (depth, 1, 3, px, qty))
        with pytest.raises(SourceFormatError, match=f"{what} beyond 281474976710656") as info:
            read_hftbacktest_events(data, unit)
        assert (info.value.path, info.value.line) == ("<array>", 1)
        assert "(row 1; 1 such row(s))" in str(info.value)


@pytest.mark.parametrize("what", ["px", "qty"])
def test_a_value_whose_steps_overflow_f64_is_beyond_the_bound(what: str) -> None:
    # 1.7e308 / 0.1 is inf: refused as beyond 2^48, not a numpy overflow warning (found by the
    # Python fuzz run; the suite turns warnings into errors).
    depth = hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH
    px, qty = (-1.7e308, 1.0) if what == "px" else (100.0, 1.7e308)
    data = hbt_rows((depth, 1, 2, 100.0, 1.0), (depth, 1, 3, px, qty))
    with pytest.raises(SourceFormatError, match=f"{what} beyond 281474976710656") as info:
        read_hftbacktest_events(data, SPEC)
    assert (info.value.path, info.value.line) == ("<array>", 1)


def test_rounding_is_hftbacktests_and_tolerates_f64_noise() -> None:
    # 0.3 / 0.1 = 2.9999999999999996 in f64: one tick off a truncation, 3 with round().
    data = hbt_rows(
        (hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, 0.3, 0.003),
        (hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 2, -0.3, 0.001 + 1e-13),
    )
    assert rows_of(read_hftbacktest_events(data, SPEC).events) == [
        [(LEVEL, BID, 3, 3), (LEVEL, BID, -3, 1)]
    ]


def test_local_time_going_backwards_is_refused() -> None:
    data = hbt_rows(
        (hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 1, 5, 100.0, 1),
        (hbt.DEPTH_EVENT | hbt.BUY_EVENT | BOTH, 2, 4, 100.0, 2),
    )
    with pytest.raises(SourceFormatError, match="<array>:1: local time goes backwards"):
        read_hftbacktest_events(data, SPEC)


# ----- export ---------------------------------------------------------------------------------


def _stream() -> tuple[np.ndarray, SymbolTable]:
    table = SymbolTable([SPEC, InstrumentSpec("ETHUSDT", "0.01", "0.001")])
    events = concat(
        [
            make_message(
                0,
                source_ts_ns=10,
                local_ts_ns=100,
                seq=5,
                snapshot=[(BID, 1000, 1500), (ASK, 1005, 2000)],
            ),
            make_message(1, source_ts_ns=11, local_ts_ns=101, levels=[(BID, 7, 1)]),  # other symbol
            make_message(
                0, source_ts_ns=20, local_ts_ns=200, levels=[(BID, 1001, 250), (ASK, 1005, 0)]
            ),
            make_message(
                0,
                source_ts_ns=15,
                local_ts_ns=210,
                trades=[(SELL, 1001, 2), (UNKNOWN_SIDE, 1001, 1)],
            ),
            make_message(
                0, source_ts_ns=30, local_ts_ns=205, levels=[(ASK, 1006, 1000)]
            ),  # local back
            make_message(0, source_ts_ns=31, local_ts_ns=300, trades=[(BUY, 1006, 5)]),
        ]
    )
    return events, table


def test_export_rows_flags_and_values() -> None:
    events, table = _stream()
    out = to_hftbacktest_events(events, table, "BTCUSDT")
    assert out.dtype == hbt.event_dtype
    validate_event_order(out)
    local = out[(out["ev"] & hbt.LOCAL_EVENT) != 0]
    assert len(local) == 9  # every row of BTCUSDT once in the local view, in message order
    assert (local["ev"] & 0xFF).tolist() == [3, 4, 4, 1, 1, 2, 2, 1, 2]
    sides = (local["ev"] & (hbt.BUY_EVENT | hbt.SELL_EVENT)).tolist()
    b, s = hbt.BUY_EVENT, hbt.SELL_EVENT
    assert sides == [0, b, s, b, s, s, 0, s, b]  # the clear is side-less: the whole book
    assert local["px"].tolist() == [0.0, 100.0, 100.5, 100.1, 100.5, 100.1, 100.1, 100.6, 100.6]
    assert local["qty"].tolist() == [0.0, 1.5, 2.0, 0.25, 0.0, 0.002, 0.001, 1.0, 0.005]
    # local time made non-decreasing (210 then 205 -> 210)
    assert local["local_ts"].tolist() == [100, 100, 100, 200, 200, 210, 210, 210, 300]
    assert local["exch_ts"].tolist() == [10, 10, 10, 20, 20, 15, 15, 30, 31]
    # the exchange time goes back (20 -> 15): hftbacktest's correct_event_order split rows
    assert len(out) > len(local)
    assert ((out["ev"] & hbt.EXCH_EVENT) != 0).sum() == len(local)


def test_export_then_read_gives_the_same_rows_and_books() -> None:
    events, table = _stream()
    out = to_hftbacktest_events(events, table, "BTCUSDT")
    back = read_hftbacktest_events(out, SPEC)
    mine = events[events["symbol_id"] == 0]
    theirs = back.events
    for name in ("kind", "side", "px", "qty"):
        assert theirs[name].tolist() == mine[name].tolist()
    # The message at local 205 (clamped to 210) shares the trades' local time but not their
    # kind group: it stays a message of its own, so every message comes back.
    assert set(message_bounds(theirs).tolist()) <= set(message_bounds(mine).tolist())
    assert len(message_bounds(theirs)) == len(message_bounds(mine))
    a, b = LOBEngine(table), LOBEngine(back.symbols)
    for m1, m2 in zip(iter_messages(mine), iter_messages(theirs), strict=True):
        a.apply(m1)
        b.apply(m2)
        assert a.snapshot(0) == b.snapshot(0)


def test_export_prices_are_the_f64_of_the_decimal() -> None:
    table = SymbolTable([InstrumentSpec("X", "0.1", "0.001")])
    ticks = [1, 3, 246709, 999_999_999_999, -7]
    events = make_message(0, source_ts_ns=1, levels=[(BID, t, t if t > 0 else 1) for t in ticks])
    out = to_hftbacktest_events(events, table, "X")
    assert out["px"].tolist() == [float(Decimal(t) * Decimal("0.1")) for t in ticks]


_stream_strategy = st.lists(
    st.tuples(
        st.sampled_from(("levels", "trades", "snapshot")),
        st.lists(
            st.tuples(st.sampled_from((BID, ASK)), st.integers(-50, 50), st.integers(0, 10**6)),
            min_size=1,
            max_size=4,
        ),
        st.integers(-5, 5),  # exchange-time step (negative: goes backwards)
        st.integers(0, 3),  # local-time step (0: same local time as the previous message)
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(_stream_strategy)
@example([("levels", [(BID, 1, 1)], 0, 0), ("levels", [(ASK, 2, 1)], -1, 0)])
# Two snapshots at one local time: the second CLEAR must start a message of its own.
@example([("levels", [(BID, 0, 0)], 0, 0), ("snapshot", [(BID, 0, 0)], 0, 0)] * 2)
def test_roundtrip_property(spec: list[tuple[str, list[tuple[int, int, int]], int, int]]) -> None:
    table = SymbolTable([SPEC])
    msgs = []
    src, local = 1_000, 1_000
    for what, items, d_src, d_local in spec:
        src += d_src
        local += d_local
        if what == "trades":
            trades = [(BUY if s == BID else SELL, px, max(q, 1)) for s, px, q in items]
            msgs.append(make_message(0, source_ts_ns=src, local_ts_ns=local, trades=trades))
        elif what == "snapshot":
            msgs.append(make_message(0, source_ts_ns=src, local_ts_ns=local, snapshot=items))
        else:
            msgs.append(make_message(0, source_ts_ns=src, local_ts_ns=local, levels=items))
    events = concat(msgs)
    out = to_hftbacktest_events(events, table, "BTCUSDT")
    validate_event_order(out)
    back = read_hftbacktest_events(out, SPEC).events
    for name in ("kind", "side", "px", "qty"):
        assert back[name].tolist() == events[name].tolist()
    # Messages only merge (same local time and kind group); the book agrees at every boundary.
    bounds = message_bounds(back).tolist()
    assert set(bounds) <= set(message_bounds(events).tolist())
    a, b = LOBEngine(table), LOBEngine(table)
    back_messages = iter_messages(back)
    pos = 0
    for m in iter_messages(events):
        a.apply(m)
        pos += len(m)
        if pos in bounds:
            b.apply(next(back_messages))
            assert a.snapshot(0) == b.snapshot(0)
    assert next(back_messages, None) is None
