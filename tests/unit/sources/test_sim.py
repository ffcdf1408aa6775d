"""The built-in simulator: book invariants, determinism, message structure, injected faults.

The checks replay the generated events on an independent dict book, so they test what a
consumer sees, not the simulator's own state.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    message_bounds,
    validate,
)
from featureplane.sources.sim import (
    DEFAULT_INSTRUMENTS,
    GENERATOR,
    FaultSpec,
    SimConfig,
    SimModel,
    SimSession,
    simulate,
)

ALL_FAULTS = (
    FaultSpec("gap", "SIMBTC", at=0.4, missing=3, resync_after=40),
    FaultSpec("duplicate", "SIMETH", at=0.3),
    FaultSpec("out_of_order", "SIMSOL", at=0.6, lag=3),
    FaultSpec("duplicate", "SIMBTC", at=0.8),
    FaultSpec("out_of_order", "SIMBTC", at=0.2, lag=1),
)


@dataclass
class Book:
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)

    def side(self, side: int) -> dict[int, int]:
        return self.bids if side == BID else self.asks


@dataclass
class Replay:
    """What the checks saw, per symbol."""

    books: dict[int, Book]
    messages: int
    trades: int
    one_sided: int


def replay(session: SimSession, *, skip: frozenset[int] = frozenset()) -> Replay:
    """Apply every message (but those in `skip`) to dict books and assert the invariants.

    Invariants after every message: not crossed or locked, never both sides empty, no level of
    size 0. Per row: a removal names an existing level, a change changes something, snapshot
    sizes are positive, a trade hits the resting side's best levels and its size is what left
    the level.
    """
    books: dict[int, Book] = defaultdict(Book)
    trades = one_sided = 0
    ends = message_bounds(session.events)
    for i, msg in enumerate(iter_messages(session.events)):
        if i in skip:
            continue
        book = books[int(msg["symbol_id"][-1])]
        before = Book(dict(book.bids), dict(book.asks))
        msg_trades: list[tuple[int, int, int]] = []
        for row in msg.tolist():
            kind, side, _flags, _res, _sid, _seq, _fseq, _pseq, _src, _loc, px, qty = row
            if kind == CLEAR:
                book.bids.clear()
                book.asks.clear()
            elif kind == SNAPSHOT:
                assert qty > 0 and px not in book.side(side), f"message {i}: bad snapshot row"
                book.side(side)[px] = qty
            elif kind == LEVEL:
                levels = book.side(side)
                assert levels.get(px, 0) != qty, f"message {i}: no-op level change at {px}"
                if qty == 0:
                    del levels[px]
                else:
                    assert qty > 0
                    levels[px] = qty
            else:
                assert kind == TRADE and side in (BUY, SELL) and qty > 0, f"message {i}: trade"
                msg_trades.append((side, px, qty))
        for side, px, qty in msg_trades:
            resting_before = before.asks if side == BUY else before.bids
            resting_after = book.asks if side == BUY else book.bids
            assert resting_before[px] - qty == resting_after.get(px, 0), f"message {i}: fill"
        for aggressor in (BUY, SELL):
            hit = sorted(px for side, px, _ in msg_trades if side == aggressor)
            resting = before.asks if aggressor == BUY else before.bids
            best_first = sorted(resting, reverse=aggressor == SELL)[: len(hit)]
            assert sorted(best_first) == hit, f"message {i}: trades skip a better level"
        assert book.bids or book.asks, f"message {i} (row {ends[i]}): both sides empty"
        if book.bids and book.asks:
            assert max(book.bids) < min(book.asks), f"message {i}: crossed or locked book"
        else:
            one_sided += 1
        assert all(q > 0 for q in book.bids.values()) and all(q > 0 for q in book.asks.values())
        trades += len(msg_trades)
    return Replay(dict(books), len(ends), trades, one_sided)


def fault_skips(session: SimSession) -> frozenset[int]:
    """Messages whose rows do not apply to the consumer's book: copies (they repeat history)
    and the gap symbol's messages between the hole and the resync (they build on a stale book)."""
    symbol_of = session.events["symbol_id"][message_bounds(session.events) - 1]
    skip: set[int] = set()
    for f in session.faults:
        if f.kind == "gap":
            window = np.arange(f.message_index, f.resync_message_index)
            sid = session.symbols.id_of(f.symbol)
            skip |= set(window[symbol_of[window] == sid].tolist())
        else:
            skip.add(f.message_index)
    return frozenset(skip)


def message_table(session: SimSession) -> dict[str, npt.NDArray[Any]]:
    """Message-level fields read from the last row of each message."""
    last = session.events[message_bounds(session.events) - 1]
    starts = np.concatenate(([0], message_bounds(session.events)[:-1]))
    return {
        "symbol_id": last["symbol_id"],
        "seq": last["seq"],
        "first_seq": last["first_seq"],
        "prev_seq": last["prev_seq"],
        "source_ts_ns": last["source_ts_ns"],
        "local_ts_ns": last["local_ts_ns"],
        "snapshot": session.events["kind"][starts] == CLEAR,
    }


@pytest.fixture(scope="module")
def clean() -> SimSession:
    return simulate(SimConfig(seed=3, n_messages=20_000))


@pytest.fixture(scope="module")
def faulty() -> SimSession:
    return simulate(SimConfig(seed=3, n_messages=20_000, faults=ALL_FAULTS))


def test_default_instruments_and_info(clean: SimSession) -> None:
    assert [s.symbol for s in clean.symbols] == ["SIMBTC", "SIMETH", "SIMSOL"]
    grids = [(str(s.tick_size), str(s.lot_size)) for s in clean.symbols]
    assert grids == [("0.1", "0.001"), ("0.01", "0.001"), ("0.001", "0.1")]
    assert clean.events.dtype == EVENT_DTYPE
    validate(clean.events, len(clean.symbols))
    assert clean.info["generator"] == GENERATOR and clean.info["seed"] == 3
    per = clean.info["per_symbol"]
    assert sum(p["simulated"] for p in per.values()) == 20_000
    # 20,000 simulated messages plus one initial snapshot per symbol, nothing else
    assert clean.n_messages == 20_000 + 3
    assert sum(p["trades"] for p in per.values()) == int(np.sum(clean.events["kind"] == TRADE))


def test_book_invariants_hold_at_every_message(clean: SimSession) -> None:
    seen = replay(clean)
    assert seen.messages == clean.n_messages
    assert seen.trades > 100
    # Prices stay near where they started (ticks), the market is two-sided nearly always.
    for sid, inst in enumerate(DEFAULT_INSTRUMENTS):
        book = seen.books[sid]
        assert abs(max(book.bids) - inst.start_ticks) < 5_000
        assert len(book.bids) >= 1 and len(book.asks) >= 1
    assert seen.one_sided < clean.n_messages // 100


def test_market_like_activity(clean: SimSession) -> None:
    kinds = clean.events["kind"]
    per = clean.info["per_symbol"]
    for stats in per.values():
        # Limit orders and cancels balance in the stationary book; market orders are rarer.
        assert min(stats["limit"], stats["cancel"]) > 3 * stats["market"] > 0
        assert 0.02 < stats["trades"] / stats["simulated"] < 0.3
    # Trades come with the level changes they cause, in the same message.
    ends = message_bounds(clean.events)
    starts = np.concatenate(([0], ends[:-1]))
    for lo, hi in zip(starts, ends, strict=True):
        if TRADE in kinds[lo:hi]:
            assert LEVEL in kinds[lo:hi]


def test_same_config_gives_identical_bytes() -> None:
    config = SimConfig(seed=11, n_messages=3_000, faults=ALL_FAULTS)
    a, b = simulate(config), simulate(config)
    assert a.events.tobytes() == b.events.tobytes()
    assert a.faults == b.faults and a.info == b.info


def test_other_seed_gives_other_events() -> None:
    a = simulate(SimConfig(seed=1, n_messages=2_000))
    b = simulate(SimConfig(seed=2, n_messages=2_000))
    assert a.events.tobytes() != b.events.tobytes()


def test_message_structure(faulty: SimSession) -> None:
    ev = faulty.events
    ends = message_bounds(ev)
    # END_OF_MESSAGE on the last row of each message and nowhere else
    assert np.array_equal(np.flatnonzero(ev["flags"] & END_OF_MESSAGE), ends - 1)
    assert np.all(ev["seq"] == ev["first_seq"])
    msg_of_row = np.repeat(np.arange(len(ends)), np.diff(np.concatenate(([0], ends))))
    for name in ("symbol_id", "seq", "prev_seq", "source_ts_ns", "local_ts_ns"):
        assert np.array_equal(ev[name], ev[name][ends - 1][msg_of_row]), name
    # CLEAR only as the first row of a message, followed by SNAPSHOT rows only
    starts = np.concatenate(([0], ends[:-1]))
    clear_rows = np.flatnonzero(ev["kind"] == CLEAR)
    assert set(clear_rows) <= set(starts)
    snap_msgs = np.isin(starts, clear_rows)
    for lo, hi in zip(starts[snap_msgs], ends[snap_msgs], strict=True):
        assert np.all(ev["kind"][lo + 1 : hi] == SNAPSHOT)
        assert np.all(np.isin(ev["side"][lo + 1 : hi], (BID, ASK)))
    # Delivery in receive-time order, never before the source time
    t = message_table(faulty)
    assert np.all(np.diff(t["local_ts_ns"]) >= 0)
    assert np.all(t["local_ts_ns"] > t["source_ts_ns"])


def test_each_symbol_starts_with_a_snapshot_and_counts_up(clean: SimSession) -> None:
    t = message_table(clean)
    for sid in range(len(clean.symbols)):
        mine = t["symbol_id"] == sid
        seq, prev = t["seq"][mine], t["prev_seq"][mine]
        assert t["snapshot"][mine][0] and prev[0] == NO_SEQ and seq[0] == 1
        assert np.array_equal(prev[1:], seq[:-1])  # no gap without an injected one
        assert np.all(np.diff(t["source_ts_ns"][mine]) >= 0)
        assert np.count_nonzero(t["snapshot"][mine]) == 1


def test_injected_faults_where_reported(faulty: SimSession) -> None:
    t = message_table(faulty)
    ends = message_bounds(faulty.events)
    starts = np.concatenate(([0], ends[:-1]))

    def rows(i: int) -> list[tuple[int, ...]]:
        body = faulty.events[starts[i] : ends[i]]
        # Everything but the receive time, which a re-delivery does not share.
        return [r[:9] + r[10:] for r in body.tolist()]

    assert [f.kind for f in faulty.faults] == [f.kind for f in ALL_FAULTS]
    for fault in faulty.faults:
        sid = faulty.symbols.id_of(fault.symbol)
        i = fault.message_index
        assert t["symbol_id"][i] == sid
        mine = np.flatnonzero(t["symbol_id"] == sid)
        before = mine[mine < i]
        last_seq = int(t["seq"][before].max())
        if fault.kind == "gap":
            lost = set(range(fault.seq, fault.seq + fault.n_missing))
            assert not lost & set(t["seq"][mine].tolist())
            assert t["prev_seq"][i] == fault.seq + fault.n_missing - 1 != last_seq
            assert last_seq == fault.seq - 1
            r = fault.resync_message_index
            assert r > i and t["snapshot"][r] and t["symbol_id"][r] == sid
            assert t["prev_seq"][r] == t["seq"][mine[mine < r][-1]]  # continuous after it
        elif fault.kind == "duplicate":
            assert t["seq"][i] == last_seq == fault.seq
            assert rows(i) == rows(int(before[-1]))
        else:
            assert fault.seq == t["seq"][i] < last_seq
            original = int(before[t["seq"][before] == fault.seq][0])
            assert rows(i) == rows(original)
            assert t["source_ts_ns"][i] <= t["source_ts_ns"][before[-1]]
    # Away from the injected faults, sequence numbers continue message by message.
    marked = {f.message_index for f in faulty.faults}
    marked |= {f.resync_message_index for f in faulty.faults if f.kind == "gap"}
    for sid in range(len(faulty.symbols)):
        mine = np.flatnonzero(t["symbol_id"] == sid)
        # the message after a late copy legitimately follows the original stream again
        after_copy = {int(mine[k + 1]) for k in range(len(mine) - 1) if mine[k] in marked}
        for k in range(1, len(mine)):
            i = int(mine[k])
            if i in marked or i in after_copy:
                continue
            assert t["prev_seq"][i] == t["seq"][mine[k - 1]], (sid, i)


def test_faults_leave_the_true_stream_alone(clean: SimSession, faulty: SimSession) -> None:
    """A gap loses messages and adds a resync snapshot equal to the true book at that point."""
    copies = {f.message_index for f in faulty.faults if f.kind != "gap"}
    gap = next(f for f in faulty.faults if f.kind == "gap")
    sid = faulty.symbols.id_of(gap.symbol)
    # The true stream of the gap's symbol: replay the fault-free session message by message.
    books_after: list[tuple[dict[int, int], dict[int, int]]] = []
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    clean_msgs = [m for m in iter_messages(clean.events) if m["symbol_id"][-1] == sid]
    for msg in clean_msgs:
        for row in msg:
            side = bids if row["side"] == BID else asks
            if row["kind"] == CLEAR:
                bids.clear()
                asks.clear()
            elif row["kind"] in (LEVEL, SNAPSHOT):
                if row["qty"] == 0:
                    del side[int(row["px"])]
                else:
                    side[int(row["px"])] = int(row["qty"])
        books_after.append((dict(bids), dict(asks)))
    faulty_msgs = [
        (i, m)
        for i, m in enumerate(iter_messages(faulty.events))
        if m["symbol_id"][-1] == sid and i not in copies
    ]
    # Without the resync snapshot and the lost messages, the two streams carry the same rows.
    body = [m for i, m in faulty_msgs if i != gap.resync_message_index]
    lost = slice(gap.seq - 1, gap.seq - 1 + gap.n_missing)
    kept = clean_msgs[: lost.start] + clean_msgs[lost.stop :]
    assert len(body) == len(kept)
    fields = ("kind", "side", "px", "qty", "source_ts_ns")
    for a, b in zip(body, kept, strict=True):
        assert all(np.array_equal(a[name], b[name]) for name in fields)
    # The resync snapshot holds the true book after the message it follows.
    pos = next(k for k, (i, _) in enumerate(faulty_msgs) if i == gap.resync_message_index)
    snap = faulty_msgs[pos][1]
    true_bids, true_asks = books_after[pos - 1 + gap.n_missing]
    snap_levels = snap[snap["kind"] == SNAPSHOT]
    got_bids = {int(r["px"]): int(r["qty"]) for r in snap_levels if r["side"] == BID}
    got_asks = {int(r["px"]): int(r["qty"]) for r in snap_levels if r["side"] == ASK}
    assert (got_bids, got_asks) == (true_bids, true_asks)
    # Snapshot levels are listed best first on each side.
    assert list(got_bids) == sorted(got_bids, reverse=True)
    assert list(got_asks) == sorted(got_asks)


def test_faulty_session_invariants_outside_the_gap(faulty: SimSession) -> None:
    seen = replay(faulty, skip=fault_skips(faulty))
    assert seen.messages == faulty.n_messages


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultSpec("reorder", "SIMBTC", at=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        FaultSpec("gap", "SIMBTC", at=1.0)
    with pytest.raises(ValueError, match="unknown symbol"):
        SimConfig(faults=(FaultSpec("gap", "NOPE", at=0.5),))
    with pytest.raises(ValueError, match="does not fit"):
        simulate(SimConfig(n_messages=40, faults=(FaultSpec("gap", "SIMSOL", at=0.9),)))
    with pytest.raises(ValueError, match="inside a gap"):
        simulate(
            SimConfig(
                n_messages=3_000,
                faults=(
                    FaultSpec("gap", "SIMBTC", at=0.5, missing=10),
                    FaultSpec("duplicate", "SIMBTC", at=0.501),
                ),
            )
        )
    with pytest.raises(ValueError, match="overlaps the hole"):
        simulate(
            SimConfig(
                n_messages=3_000,
                faults=(
                    FaultSpec("gap", "SIMBTC", at=0.5, missing=10),
                    FaultSpec("gap", "SIMBTC", at=0.4995, missing=1),
                ),
            )
        )
    with pytest.raises(ValueError, match="probabilities"):
        SimModel(marketable_prob=0.8, far_prob=0.5)
    assert sum(SimConfig(n_messages=1_001).messages_per_symbol()) == 1_001


def test_empty_session_is_just_snapshots() -> None:
    session = simulate(SimConfig(n_messages=0))
    assert session.n_messages == 3
    assert np.count_nonzero(session.events["kind"] == CLEAR) == 3
    replay(session)


def test_engine_sees_exactly_the_injected_faults() -> None:
    engine_mod = pytest.importorskip("featureplane.engine.facade")
    faulty = simulate(SimConfig(seed=4, n_messages=5_000, faults=ALL_FAULTS))
    engine = engine_mod.FeatureEngine(faulty.symbols, backend="python")
    batch = engine.process_batch(faulty.events)
    kinds = [f.kind for f in faulty.faults]
    counters = engine.counters
    assert counters["duplicates"] == kinds.count("duplicate")
    assert counters["out_of_order"] == kinds.count("out_of_order")
    assert counters["gaps"] == kinds.count("gap")
    assert counters["resets"] == len(faulty.symbols) + kinds.count("gap")
    assert len(batch) == faulty.n_messages - kinds.count("duplicate") - kinds.count("out_of_order")


models = st.builds(
    SimModel,
    limit_rate_hz=st.floats(5.0, 100.0),
    market_rate_hz=st.floats(0.0, 40.0),
    cancel_rate_hz=st.floats(0.5, 10.0),
    market_size_factor=st.floats(0.5, 6.0),
    marketable_prob=st.floats(0.0, 0.5),
    far_prob=st.floats(0.0, 0.5),
    max_sweep_levels=st.integers(1, 8),
    pull_rate_hz=st.floats(0.0, 20.0),
    wipe_rate_hz=st.floats(0.0, 5.0),
    refill_prob=st.floats(0.0, 1.0),
    refill_offset_ticks=st.integers(0, 10),
    snapshot_levels=st.integers(1, 8),
)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    n_messages=st.integers(200, 800),
    model=models,
    distance=st.floats(1.0, 12.0),
    order_lots=st.integers(1, 500),
    with_faults=st.booleans(),
)
def test_random_configs_keep_the_invariants(
    seed: int, n_messages: int, model: SimModel, distance: float, order_lots: int, with_faults: bool
) -> None:
    instruments = tuple(
        replace(inst, distance_mean_ticks=distance, order_lots=order_lots)
        for inst in DEFAULT_INSTRUMENTS
    )
    faults: tuple[FaultSpec, ...] = ALL_FAULTS[:3] if with_faults else ()
    faults = tuple(replace(f, resync_after=5) if f.kind == "gap" else f for f in faults)
    config = SimConfig(
        seed=seed, n_messages=n_messages, instruments=instruments, model=model, faults=faults
    )
    session = simulate(config)
    validate(session.events, len(session.symbols))
    seen = replay(session, skip=fault_skips(session))
    assert seen.messages == session.n_messages
    assert session.events.tobytes() == simulate(config).events.tobytes()


@pytest.mark.benchmark
def test_generation_speed() -> None:
    """About 200k messages in a few seconds (a budget, not a tight bound: shared machines)."""
    t0 = time.perf_counter()
    session = simulate(SimConfig(n_messages=200_000, faults=ALL_FAULTS))
    elapsed = time.perf_counter() - t0
    print(f"simulate: {session.n_messages:,} messages in {elapsed:.2f} s")
    assert elapsed < 10.0
