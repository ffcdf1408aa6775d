"""Backend parity: the Rust kernel against the Python reference, frame by frame.

Hypothesis generates valid multi-symbol message streams with snapshots, level changes and
deletes (of present and absent levels), trades of every aggressor side, duplicates,
out-of-order and stale messages, gaps and resync snapshots, one-sided, empty and crossed
books, messages without sequence numbers whose timestamps go backwards, messages mixing
levels and trades, CLEAR rows in the middle of a message, and explicit resets. Each stream runs
through `FeatureEngine(backend="python")` and `FeatureEngine(backend="rust")`, by
`process_batch` and by per-message `process`, and every header, mask, flag and value must
match: integers exactly, f64 bit for bit (the contract allows 1e-9 relative / 1e-12 absolute;
both kernels perform the same operations in the same order, so they agree exactly).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from featureplane import InstrumentSpec, InvalidMessageError, SymbolTable
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import FeatureplaneError, UnknownSymbolError
from featureplane.events import (
    ASK,
    BID,
    CLEAR,
    END_OF_MESSAGE,
    EVENT_DTYPE,
    LEVEL,
    MAX_ABS_UNITS,
    NO_SEQ,
    SNAPSHOT,
    TRADE,
    concat,
    empty,
    make_message,
)
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch

EXAMPLES = int(os.environ.get("FEATUREPLANE_PARITY_EXAMPLES", "150"))
FEATURE_SETS = Path(__file__).resolve().parents[2] / "examples" / "feature-sets"
PARITY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SPECS = (
    InstrumentSpec("BTCUSDT", "0.1", "0.001"),
    InstrumentSpec("ETHUSDT", "0.01", "0.0001"),
    InstrumentSpec("ESH4", "0.25", "1"),
)

# ----- stream model ------------------------------------------------------------------------

Row = tuple[int, int, int, int]  # kind, side, px, qty


@dataclass
class Msg:
    """One message to build, or a `reset_symbol` call when `reset` is set."""

    symbol_id: int
    rows: list[Row]
    seq: int = NO_SEQ
    first_seq: int = NO_SEQ
    prev_seq: int = NO_SEQ
    source_ts_ns: int = 0
    local_ts_ns: int = 0
    reset: bool = False

    def build(self) -> np.ndarray:
        rows = empty(len(self.rows))
        rows["kind"] = [r[0] for r in self.rows]
        rows["side"] = [r[1] for r in self.rows]
        rows["px"] = [r[2] for r in self.rows]
        rows["qty"] = [r[3] for r in self.rows]
        rows["symbol_id"] = self.symbol_id
        rows["seq"] = self.seq
        rows["first_seq"] = self.first_seq
        rows["prev_seq"] = self.prev_seq
        rows["source_ts_ns"] = self.source_ts_ns
        rows["local_ts_ns"] = self.local_ts_ns
        rows["flags"][-1] = END_OF_MESSAGE
        return rows


@dataclass
class Stream:
    n_symbols: int
    stale_after_ns: int | None
    msgs: list[Msg] = field(default_factory=list)

    def specs(self) -> list[InstrumentSpec]:
        return list(SPECS[: self.n_symbols])

    def __repr__(self) -> str:  # short enough to read in a failure report
        lines = [f"Stream(n_symbols={self.n_symbols}, stale_after_ns={self.stale_after_ns})"]
        lines += [f"  {m}" for m in self.msgs]
        return "\n".join(lines)


@st.composite
def level_rows(
    draw: st.DrawFn, kind: int, mid: int, spread: int, n_max: int, big: bool = False
) -> list[Row]:
    """Level rows around `mid`; sizes 0 delete (present or absent levels alike). `big`: the
    sizes a row may carry at most (2^47 to 2^48 lots)."""
    n = draw(st.integers(0, n_max))
    rows = []
    for _ in range(n):
        side = draw(st.sampled_from((BID, ASK)))
        # Overlapping ranges: crossed and locked books happen now and then.
        off = draw(st.integers(-spread, 3))
        px = mid + off if side == BID else mid - off
        sizes = st.integers(2**47, MAX_ABS_UNITS) if big else st.integers(1, 40)
        qty = draw(st.one_of(st.just(0), sizes, st.integers(1, 2**40)))
        rows.append((kind, side, px, qty))
    return rows


@st.composite
def trade_rows(draw: st.DrawFn, mid: int, n_max: int, big: bool = False) -> list[Row]:
    n = draw(st.integers(1, n_max))
    sizes = st.integers(2**47, MAX_ABS_UNITS) if big else st.integers(0, 50)
    return [
        (TRADE, draw(st.sampled_from((1, -1, 0))), mid + draw(st.integers(-5, 5)), draw(sizes))
        for _ in range(n)
    ]


@st.composite
def streams(draw: st.DrawFn, max_messages: int = 60, huge_sizes: bool = False) -> Stream:
    """`huge_sizes`: sometimes sizes near `MAX_ABS_UNITS`, so that sums of them (a declared
    set's cumulative sums and the windows over them) reach the bounds of their integers."""
    n_symbols = draw(st.integers(1, 3))
    stream = Stream(n_symbols, draw(st.sampled_from((None, 0, 5_000_000))))
    huge = draw(st.booleans())  # prices around 2**45 ticks: exercises the wide integer paths
    big = huge_sizes and draw(st.booleans())
    mids = [draw(st.integers(900, 1100)) + (2**45 if huge else 0) for _ in range(n_symbols)]
    book_cursor = [draw(st.integers(0, 5)) for _ in range(n_symbols)]
    trade_cursor = [draw(st.integers(0, 5)) for _ in range(n_symbols)]
    ts = [draw(st.integers(0, 10**9)) for _ in range(n_symbols)]
    n = draw(st.integers(1, max_messages))
    for _ in range(n):
        sid = draw(st.integers(0, n_symbols - 1))
        action = draw(
            st.sampled_from(
                ("diff",) * 6 + ("trades",) * 3 + ("mixed",) * 2 + ("snapshot", "odd", "reset")
            )
        )
        if action == "reset":
            stream.msgs.append(Msg(sid, [], reset=True))
            continue
        mids[sid] += draw(st.integers(-2, 2))
        # Time mostly moves forward, sometimes not at all, sometimes backwards.
        ts[sid] += draw(st.one_of(st.integers(0, 3 * 10**9), st.integers(-(10**9), 0), st.just(0)))
        local = draw(st.one_of(st.just(0), st.integers(ts[sid] - 10**6, ts[sid] + 10**7)))
        msg = Msg(sid, [], source_ts_ns=ts[sid], local_ts_ns=max(local, 0))
        mid = mids[sid]
        if action in ("diff", "mixed", "odd"):
            msg.rows = draw(level_rows(LEVEL, mid, 12, 8, big))
            if action == "mixed":
                msg.rows += draw(trade_rows(mid, 3, big))
            if action == "odd":
                # A CLEAR in the middle, SNAPSHOT rows used as levels, trades before levels.
                msg.rows = draw(
                    st.permutations(
                        [
                            *msg.rows,
                            *draw(level_rows(SNAPSHOT, mid, 12, 3)),
                            *draw(trade_rows(mid, 2)),
                            *draw(st.lists(st.just((CLEAR, 0, 0, 0)), max_size=1)),
                        ]
                    )
                )
            if not msg.rows:
                msg.rows = [(LEVEL, BID, mid, draw(st.integers(0, 9)))]
            cur = book_cursor[sid]
            seq = draw(
                st.one_of(
                    st.integers(cur + 1, cur + 4),  # continues (or leaps)
                    st.just(cur),  # duplicate
                    st.integers(cur - 4, cur - 1),  # older: out of order or stale
                    st.just(NO_SEQ),
                )
            )
            msg.seq = seq
            if seq >= 0:
                msg.first_seq = draw(st.sampled_from((NO_SEQ, cur + 1, cur + 2, max(seq - 3, 0))))
                msg.prev_seq = draw(st.sampled_from((NO_SEQ, cur, cur - 1, cur + 1)))
                book_cursor[sid] = max(cur, seq)
        elif action == "trades":
            msg.rows = draw(trade_rows(mid, 4, big))
            cur = trade_cursor[sid]
            msg.seq = draw(
                st.one_of(st.integers(cur + 1, cur + 3), st.integers(cur - 2, cur), st.just(NO_SEQ))
            )
            trade_cursor[sid] = max(cur, msg.seq)
        else:  # snapshot, possibly one-sided, empty or crossed; sometimes with trades/levels
            snap = draw(level_rows(SNAPSHOT, mid, 10, 12))
            extra = draw(st.one_of(st.just([]), trade_rows(mid, 2), level_rows(LEVEL, mid, 10, 2)))
            msg.rows = [(CLEAR, 0, 0, 0), *snap, *extra]
            msg.seq = draw(
                st.one_of(st.just(NO_SEQ), st.integers(book_cursor[sid], book_cursor[sid] + 20))
            )
            book_cursor[sid] = max(book_cursor[sid], msg.seq)
        stream.msgs.append(msg)
    return stream


# ----- comparison --------------------------------------------------------------------------


def same_f64(a: float, b: float) -> bool:
    """Within the contract's tolerance, NaN where the other is NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= max(1e-12, 1e-9 * max(abs(a), abs(b)))


def bit_identical(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (np.float64(a).tobytes() == np.float64(b).tobytes())


def assert_frames_equal(py: FeatureUpdateFrameV1 | None, rs: FeatureUpdateFrameV1 | None) -> None:
    if py is None or rs is None:
        assert py is rs, f"python={py} rust={rs}"
        return
    for name in (
        "symbol",
        "seq",
        "source_ts_ns",
        "local_ts_ns",
        "feature_set_id",
        "changed_mask",
        "warmup_ready_mask",
        "quality_flags",
        "marker",
    ):
        assert getattr(py, name) == getattr(rs, name), (name, py, rs)
    assert_values_equal(py.values, rs.values)


def assert_values_equal(py: tuple[Any, ...], rs: tuple[Any, ...]) -> None:
    assert len(py) == len(rs)
    for i, (a, b) in enumerate(zip(py, rs, strict=True)):
        if isinstance(a, float):
            assert isinstance(b, float), (i, a, b)
            assert same_f64(a, b), (i, a, b)
            assert bit_identical(a, b), (i, a.hex(), b.hex())
        else:
            assert type(a) is type(b) is int and a == b, (i, a, b)


def assert_batches_equal(py: FrameBatch, rs: FrameBatch) -> None:
    assert len(py) == len(rs)
    for name, col in py.columns.items():
        assert rs.columns[name].dtype == col.dtype, name
        np.testing.assert_array_equal(rs.columns[name], col, err_msg=name)
    assert list(rs.values) == list(py.values)
    for name, col in py.values.items():
        got = rs.values[name]
        assert got.dtype == col.dtype, name
        if col.dtype.kind == "f":
            np.testing.assert_allclose(got, col, rtol=1e-9, atol=1e-12, err_msg=name)
            # Bit for bit, NaN payloads aside.
            both_nan = np.isnan(got) & np.isnan(col)
            assert np.array_equal(got.view(np.int64)[~both_nan], col.view(np.int64)[~both_nan])
        else:
            np.testing.assert_array_equal(got, col, err_msg=name)


def assert_state_equal(py: FeatureEngine, rs: FeatureEngine) -> None:
    assert py.counters == rs.counters
    for spec in py.symbols:
        sym = spec.symbol
        pv, rv = py.get_feature_view(sym), rs.get_feature_view(sym)
        assert (pv.warmup_ready_mask, pv.quality_flags, pv.seq, pv.source_ts_ns) == (
            rv.warmup_ready_mask,
            rv.quality_flags,
            rv.seq,
            rv.source_ts_ns,
        )
        assert_values_equal(pv.values, rv.values)
        plob: Any = py.lob
        rlob: Any = rs.lob
        assert plob.get_l1_scaled(sym) == rlob.get_l1_scaled(sym)
        assert plob.snapshot(sym) == rlob.snapshot(sym)
        assert plob.top_n(sym, 5) == rlob.top_n(sym, 5)
        assert plob.book_stats(sym) == rlob.book_stats(sym)


def engines(stream: Stream) -> tuple[FeatureEngine, FeatureEngine]:
    config = EngineConfig(stale_after_ns=stream.stale_after_ns)
    return (
        FeatureEngine(stream.specs(), backend="python", config=config),
        FeatureEngine(stream.specs(), backend="rust", config=config),
    )


def run_batches(engine: FeatureEngine, stream: Stream) -> list[FrameBatch]:
    """process_batch over the runs of messages between resets."""
    out: list[FrameBatch] = []
    run: list[np.ndarray] = []
    for msg in [*stream.msgs, Msg(0, [], reset=True)]:
        if msg.reset:
            out.append(engine.process_batch(concat(run)))
            run = []
            engine.reset_symbol(SPECS[msg.symbol_id].symbol)
        else:
            run.append(msg.build())
    return out


def check_stream(stream: Stream) -> None:
    py, rs = engines(stream)
    for pb, rb in zip(run_batches(py, stream), run_batches(rs, stream), strict=True):
        assert_batches_equal(pb, rb)
    assert_state_equal(py, rs)

    py, rs = engines(stream)
    for msg in stream.msgs:
        if msg.reset:
            py.reset_symbol(SPECS[msg.symbol_id].symbol)
            rs.reset_symbol(SPECS[msg.symbol_id].symbol)
            assert_state_equal(py, rs)
            continue
        rows = msg.build()
        assert_frames_equal(py.process(rows), rs.process(rows))
    assert_state_equal(py, rs)


# ----- property tests ----------------------------------------------------------------------

B, A = BID, ASK


@PARITY
@given(streams())
@example(  # a gap, frames while untrusted, then the resync snapshot
    Stream(
        1,
        None,
        [
            Msg(0, [(CLEAR, 0, 0, 0), (SNAPSHOT, B, 99, 5), (SNAPSHOT, A, 101, 3)], seq=10),
            Msg(0, [(LEVEL, B, 100, 1)], seq=12, first_seq=11, prev_seq=10, source_ts_ns=1),
            Msg(0, [(LEVEL, A, 102, 1)], seq=20, first_seq=15, prev_seq=14, source_ts_ns=2),
            Msg(0, [(LEVEL, A, 101, 0)], seq=21, first_seq=21, prev_seq=20, source_ts_ns=3),
            Msg(0, [(CLEAR, 0, 0, 0), (SNAPSHOT, B, 99, 5)], seq=30, source_ts_ns=4),
            Msg(0, [(LEVEL, A, 100, 2)], seq=29, source_ts_ns=5),
        ],
    )
)
@example(  # no sequence numbers, time going backwards, crossed and one-sided books
    Stream(
        2,
        0,
        [
            Msg(1, [(LEVEL, B, 101, 5), (LEVEL, A, 100, 3)], source_ts_ns=10, local_ts_ns=12),
            Msg(1, [(LEVEL, A, 100, 0)], source_ts_ns=5, local_ts_ns=5),
            Msg(1, [(TRADE, 0, 100, 7), (TRADE, -1, 99, 2)], source_ts_ns=4),
            Msg(0, [(TRADE, 1, 100, 7)], seq=3, source_ts_ns=4),
            Msg(0, [(TRADE, 1, 100, 7)], seq=3, source_ts_ns=4),
            Msg(0, [(TRADE, 1, 100, 7)], seq=2, source_ts_ns=4),
            Msg(0, [(LEVEL, B, 100, 7)], source_ts_ns=4),
        ],
    )
)
@example(  # out-of-order drop flags the next applied frame; a reset in between
    Stream(
        1,
        None,
        [
            Msg(0, [(LEVEL, B, 100, 1), (LEVEL, A, 103, 1)], seq=5),
            Msg(0, [(LEVEL, B, 100, 2)], seq=7),
            Msg(0, [(LEVEL, B, 100, 3)], seq=6),
            Msg(0, [], reset=True),
            Msg(0, [(LEVEL, B, 101, 3), (TRADE, 1, 101, 1)], seq=8),
        ],
    )
)
def test_backends_agree(stream: Stream) -> None:
    check_stream(stream)


@settings(max_examples=max(EXAMPLES // 10, 5), deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_long_streams_warm_every_feature(seed: int) -> None:
    """Hundreds of messages on one symbol: every rolling window fills and wraps."""
    rng = np.random.default_rng(seed)
    msgs = [
        Msg(
            0,
            [(CLEAR, 0, 0, 0)]
            + [(SNAPSHOT, B, 1000 - i, int(rng.integers(1, 50))) for i in range(30)]
            + [(SNAPSHOT, A, 1001 + i, int(rng.integers(1, 50))) for i in range(30)],
            seq=100,
        )
    ]
    seq, ts, mid = 100, 0, 1000
    for _ in range(400):
        ts += int(rng.integers(0, 4 * 10**8))
        mid += int(rng.integers(-1, 2))
        if rng.random() < 0.3:
            msgs.append(Msg(0, [(TRADE, int(rng.integers(-1, 2)), mid, 3)], source_ts_ns=ts))
            continue
        rows = [
            (
                LEVEL,
                int(rng.choice((B, A))),
                mid + int(rng.integers(-6, 7)),
                int(rng.integers(0, 60)),
            )
            for _ in range(int(rng.integers(1, 8)))
        ]
        msgs.append(Msg(0, rows, seq=seq + 3, first_seq=seq + 1, prev_seq=seq, source_ts_ns=ts))
        seq += 3
    check_stream(Stream(1, None, msgs))


# ----- bad input ---------------------------------------------------------------------------


def _good() -> np.ndarray:
    return concat(
        [
            make_message(0, source_ts_ns=1, seq=1, snapshot=[(B, 99, 5), (A, 101, 3)]),
            make_message(0, source_ts_ns=2, seq=2, levels=[(B, 100, 1)], trades=[(1, 101, 1)]),
            make_message(1, source_ts_ns=2, levels=[(A, 10, 1)]),
        ]
    )


def _bad_inputs() -> dict[str, np.ndarray]:
    cases: dict[str, np.ndarray] = {}
    ev = _good()
    ev["kind"][2] = 9
    cases["unknown kind"] = ev
    ev = _good()
    ev["side"][1] = 0
    cases["bad book side"] = ev
    ev = _good()
    ev["side"][4] = 2
    cases["bad trade side"] = ev
    ev = _good()
    ev["qty"][4] = -1
    cases["negative size"] = ev
    ev = _good()
    ev["symbol_id"][5] = 7
    cases["unknown symbol id"] = ev
    ev = _good()
    ev["symbol_id"][3] = 1
    cases["a message mixes symbols"] = ev
    ev = _good()
    ev["flags"][5] = 0
    cases["not closed"] = ev
    cases["wrong dtype"] = np.zeros(3, dtype=[("kind", "u1")])
    return cases


@pytest.mark.parametrize("case", sorted(_bad_inputs()))
def test_bad_input_same_error_and_no_partial_state(case: str) -> None:
    specs = list(SPECS[:2])
    bad = _bad_inputs()[case]
    errors: dict[str, str] = {}
    for backend in ("python", "rust"):
        eng = FeatureEngine(specs, backend=backend)
        eng.process_batch(_good()[:3])  # some state before the bad call
        before = eng.counters
        with pytest.raises(InvalidMessageError) as info:
            eng.process_batch(bad)
        errors[backend] = str(info.value)
        assert eng.counters == before
    assert errors["python"] == errors["rust"]

    # The Rust kernel validates by itself too (the reference kernel expects validated input):
    # called without the engine's check in front, it refuses with the same message.
    eng = FeatureEngine(specs, backend="rust")
    eng.process_batch(_good()[:3])
    before = eng.counters
    kernel: Any = eng._kernel
    with pytest.raises(InvalidMessageError) as direct:
        kernel.process_batch(bad)
    assert str(direct.value) == errors["python"]
    assert eng.counters == before

    # Nothing of the failed batch stuck: the next batch gives the frames of a fresh run.
    py, rs = (FeatureEngine(specs, backend=b) for b in ("python", "rust"))
    for eng in (py, rs):
        eng.process_batch(_good()[:3])
        with pytest.raises(InvalidMessageError):
            eng.process_batch(bad)
    assert_batches_equal(py.process_batch(_good()[3:]), rs.process_batch(_good()[3:]))
    assert_state_equal(py, rs)


@pytest.mark.parametrize(
    ("case", "rows"),
    [
        ("unknown kind", slice(0, 3)),
        ("bad book side", slice(0, 3)),
        ("bad trade side", slice(3, 5)),
        ("negative size", slice(3, 5)),
        ("a message mixes symbols", slice(3, 5)),
        ("unknown symbol id", slice(5, 6)),
    ],
)
def test_bad_message_per_message_path(case: str, rows: slice) -> None:
    bad = _bad_inputs()[case][rows]
    errors = []
    for backend in ("python", "rust"):
        eng = FeatureEngine(list(SPECS[:2]), backend=backend)
        with pytest.raises(InvalidMessageError) as info:
            eng.process(bad)
        errors.append(str(info.value))
        if backend == "rust":
            kernel: Any = eng._kernel
            with pytest.raises(InvalidMessageError) as direct:
                kernel.process(bad)
            errors.append(str(direct.value))
        assert eng.counters["messages"] == 0
    assert errors[0] == errors[1] == errors[2]


def test_process_refuses_several_messages() -> None:
    eng = FeatureEngine(list(SPECS[:2]), backend="rust")
    kernel: Any = eng._kernel
    with pytest.raises(InvalidMessageError, match="exactly one message"):
        kernel.process(_good())
    with pytest.raises(InvalidMessageError, match="exactly one message"):
        kernel.process(empty(0))


def test_unknown_symbols_in_pull_api() -> None:
    for backend in ("python", "rust"):
        eng = FeatureEngine(list(SPECS[:1]), backend=backend)
        kernel: Any = eng._kernel
        for sid in (1, 5):
            with pytest.raises(UnknownSymbolError):
                kernel.symbol_values(sid)
            with pytest.raises(UnknownSymbolError):
                kernel.reset_symbol(sid)
        with pytest.raises(UnknownSymbolError):
            eng.get_feature_view("NOPE")
        lob: Any = eng.lob
        with pytest.raises(UnknownSymbolError):
            lob.book_stats(3)


# ----- other paths -------------------------------------------------------------------------


def test_symbols_added_after_the_engine_was_built() -> None:
    table = SymbolTable([SPECS[0]])
    msgs = [
        make_message(0, source_ts_ns=1, levels=[(B, 99, 5), (A, 101, 3)]),
        make_message(1, source_ts_ns=2, levels=[(B, 10, 5), (A, 12, 3)], trades=[(1, 11, 2)]),
    ]
    results = []
    for backend in ("python", "rust"):
        symbols = SymbolTable(list(table.specs))
        eng = FeatureEngine(symbols, backend=backend)
        first = eng.process(msgs[0])
        symbols.add(SPECS[2])
        second = eng.process(msgs[1])
        kernel: Any = eng._kernel
        third = kernel.process_batch(concat(msgs)).frames()
        results.append((first, second, third, eng))
    (p1, p2, p3, pe), (r1, r2, r3, re_) = results
    assert_frames_equal(p1, r1)
    assert_frames_equal(p2, r2)
    for a, b in zip(p3, r3, strict=True):
        assert_frames_equal(a, b)
    assert_state_equal(pe, re_)


def test_lob_reset_symbol_matches_reference() -> None:
    """`lob.reset_symbol` resets the book only; features restart with the next frame."""
    msgs = [
        make_message(0, source_ts_ns=1, seq=4, levels=[(B, 99, 5), (A, 101, 3)]),
        make_message(0, source_ts_ns=2, seq=5, levels=[(B, 100, 5)]),
    ]
    py, rs = (FeatureEngine(list(SPECS[:1]), backend=b) for b in ("python", "rust"))
    for eng in (py, rs):
        eng.process(msgs[0])
        lob: Any = eng.lob
        lob.reset_symbol("BTCUSDT")
    assert_state_equal(py, rs)
    assert_frames_equal(py.process(msgs[1]), rs.process(msgs[1]))
    assert_state_equal(py, rs)
    plob: Any = py.lob
    rlob: Any = rs.lob
    assert plob.book("BTCUSDT").l1() == rlob.book("BTCUSDT").l1()
    assert plob.top_n("BTCUSDT", -1) == rlob.top_n("BTCUSDT", -1)
    assert plob.is_untrusted(0) == rlob.is_untrusted(0)


def test_strided_and_misaligned_input() -> None:
    ev = _good()
    wide = np.zeros(len(ev) * 2, dtype=EVENT_DTYPE)
    wide[::2] = ev  # a strided view of the same rows
    raw = np.zeros(len(ev) * 64 + 1, dtype=np.uint8)
    raw[1:] = ev.view(np.uint8)
    misaligned = raw[1:].view(EVENT_DTYPE)  # rows at an odd address
    py = FeatureEngine(list(SPECS[:2]), backend="python").process_batch(ev)
    for rows in (wide[::2], misaligned):
        assert_batches_equal(py, FeatureEngine(list(SPECS[:2]), backend="rust").process_batch(rows))


def test_empty_batch() -> None:
    batch = FeatureEngine(list(SPECS[:1]), backend="rust").process_batch(empty(0))
    assert len(batch) == 0
    assert set(batch.values) == set(
        FeatureEngine(list(SPECS[:1]), backend="python").feature_set.names
    )


# ----- panics ------------------------------------------------------------------------------


def test_internal_panic_becomes_an_exception_and_poisons_the_engine() -> None:
    eng = FeatureEngine(list(SPECS[:1]), backend="rust")
    kernel: Any = eng._kernel
    eng.process(make_message(0, source_ts_ns=1, levels=[(B, 99, 5)]))
    with pytest.raises(BaseException, match="forced panic") as info:
        kernel._engine._debug_panic()
    assert type(info.value).__name__ == "PanicException"
    # The engine's state is unknown after a panic: it refuses further work, loudly.
    with pytest.raises(FeatureplaneError, match="internal error"):
        eng.process(make_message(0, source_ts_ns=2, levels=[(B, 99, 6)]))
    with pytest.raises(FeatureplaneError, match="internal error"):
        eng.get_feature_view("BTCUSDT")
    # Other engines are unaffected.
    fresh = FeatureEngine(list(SPECS[:1]), backend="rust")
    assert fresh.process(make_message(0, source_ts_ns=1, levels=[(B, 99, 5)])) is not None


# ----- the allocation-free per-message path ------------------------------------------------


def test_process_into_writes_the_frame_record() -> None:
    from featureplane import _core
    from featureplane.engine.rust import FRAME_RECORD_DTYPE

    stream = [
        make_message(0, source_ts_ns=1, seq=4, snapshot=[(B, 99, 5), (A, 101, 3)]),
        make_message(0, source_ts_ns=2, seq=5, levels=[(B, 100, 5)], trades=[(-1, 99, 2)]),
        make_message(0, source_ts_ns=3, seq=5, levels=[(B, 100, 6)]),  # duplicate: dropped
        make_message(1, source_ts_ns=4, local_ts_ns=9, trades=[(1, 7, 1)]),
    ]
    py = FeatureEngine(list(SPECS[:2]), backend="python")
    spec0, spec1 = SPECS[0], SPECS[1]
    engine = _core.Engine([(spec0.tick_f64, spec0.lot_f64), (spec1.tick_f64, spec1.lot_f64)])
    out = bytearray(_core.FRAME_RECORD_SIZE)
    record = np.frombuffer(out, dtype=FRAME_RECORD_DTYPE)  # a view of `out`
    for msg in stream:
        want = py.process(msg)
        status = engine.process_into(msg.tobytes(), out)
        assert status == (want is not None)
        if want is None:
            continue
        got = record[0]
        assert SPECS[int(got["symbol_id"])].symbol == want.symbol
        for name in ("seq", "source_ts_ns", "local_ts_ns", "changed_mask", "warmup_ready_mask"):
            assert int(got[name]) == getattr(want, name), name
        assert int(got["quality_flags"]) == want.quality_flags
        assert_values_equal(want.values, tuple(got[list(py.feature_set.names)].item()))
    with pytest.raises(ValueError, match="exactly"):
        engine.process_into(stream[0].tobytes(), bytearray(10))
    with pytest.raises(ValueError, match="writable"):
        engine.process_into(stream[0].tobytes(), bytes(_core.FRAME_RECORD_SIZE))
    with pytest.raises(InvalidMessageError, match="64-byte rows"):
        engine.process_into(b"\x00" * 63, out)


_TWO_MESSAGES = (
    make_message(0, source_ts_ns=1, seq=1, snapshot=[(BID, 99, 5), (ASK, 101, 3)]),
    make_message(0, source_ts_ns=2, seq=2, levels=[(BID, 100, 1)], trades=[(1, 101, 1)]),
)


def test_frames_made_in_rust_equal_the_dataclass_constructor() -> None:
    """The extension fills the frame's slots itself; the object is the constructor's."""
    engine = FeatureEngine([InstrumentSpec("BTCUSDT", "0.1", "0.001")], backend="rust")
    assert engine._kernel.fills_frame_slots, "the fast path should be active"
    frames = [engine.process(m) for m in _TWO_MESSAGES]
    for fast in frames:
        assert fast is not None and type(fast) is FeatureUpdateFrameV1
        slow = FeatureUpdateFrameV1(*(getattr(fast, f.name) for f in dataclasses.fields(fast)))
        assert fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow)
        with pytest.raises(dataclasses.FrozenInstanceError):  # still frozen
            fast.seq = 8  # type: ignore[misc]


@dataclasses.dataclass(frozen=True)
class _PlainFrame:  # not slotted: the extension must call it, as any caller would
    symbol: str
    seq: int
    source_ts_ns: int
    local_ts_ns: int
    feature_set_id: str
    changed_mask: int
    warmup_ready_mask: int
    quality_flags: int
    values: tuple[int | float, ...]
    marker: str = "x"


@pytest.mark.parametrize("kind", ["engine", "plan"])
def test_a_frame_class_of_another_shape_is_called_not_filled(kind: str) -> None:
    fs = "lob_shared_v1" if kind == "engine" else FEATURE_SETS / "research_v1.toml"
    rust = FeatureEngine([InstrumentSpec("BTCUSDT", "0.1", "0.001")], fs, backend="rust")
    core = rust._kernel._engine
    assert core.frame_type(_PlainFrame, "lob_shared_v1", "m") is False
    core.frame_names(["BTCUSDT"])
    frame = core.process_frame(_TWO_MESSAGES[0].tobytes())
    assert type(frame) is _PlainFrame and frame.symbol == "BTCUSDT" and frame.marker == "m"
    want = FeatureEngine(rust.symbols, fs, backend="python").process(_TWO_MESSAGES[0])
    assert want is not None  # the kernel's values, in the other class
    assert_values_equal(want.values, frame.values)


def test_process_frame_needs_a_frame_type_first() -> None:
    from featureplane import _core

    core = _core.Engine([(0.1, 0.001)])
    with pytest.raises(TypeError, match="frame_type"):
        core.process_frame(_TWO_MESSAGES[0].tobytes())
