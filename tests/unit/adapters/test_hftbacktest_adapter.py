"""HftBacktestAdapter on a real hftbacktest backtest of a small hand-written feed: the
point-in-time rule, streaming = precomputed, order calls, and each hftbacktest pitfall the
adapter handles."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

pytest.importorskip("hftbacktest")

from featureplane.adapters.hftbacktest.adapter import ExecutionModel, HftBacktestAdapter
from featureplane.adapters.hftbacktest.features import as_of
from featureplane.adapters.hftbacktest.session import MAX_SCAN_TICKS
from featureplane.backtest.ab import Recorded
from featureplane.errors import BacktestError, NotStartedError, OrderError, SourceFormatError
from featureplane.frames.frame import FeatureUpdateFrameV1, same_frame, same_value
from featureplane.strategy import (
    MAX_TIMEOUT_NS,
    BaseStrategy,
    OrderStatus,
    OrderType,
    Side,
    StrategyRunner,
    TimeInForce,
    WakeKind,
)
from tests.support import hbt_synthetic as syn

MS = syn.MS


def _adapter(**kw):  # type: ignore[no-untyped-def]
    return HftBacktestAdapter(syn.feed(), syn.symbols(), syn.SYMBOL, **kw)


def _drain(session, timeout: int = MAX_TIMEOUT_NS):  # type: ignore[no-untyped-def]
    session.start(push=True)
    wakes = []
    while not session.ended:
        wakes.append(session.step(timeout))
    return wakes


@pytest.mark.parametrize("feed", ["streaming", "precomputed"])
def test_point_in_time_frames_at_every_wakeup(backend: str, feed: str) -> None:
    adapter = _adapter(feature_feed=feed, backend=backend)
    batch = adapter.frames()
    local = batch.columns["local_ts_ns"]
    session = adapter.session()
    session.start(push=True)
    seen: list[FeatureUpdateFrameV1] = []
    wakes = 0
    while not session.ended:
        wake = session.step(MS // 2)  # timeouts between feeds too
        wakes += 1
        # Exactly the frames with local time <= now, each once, in order.
        assert all(f.local_ts_ns <= wake.now_ns for f in wake.frames)
        seen += wake.frames
        assert len(seen) == as_of(local, wake.now_ns) + 1
        view = session.ctx.get_feature_view(syn.SYMBOL)
        assert all(same_value(a, b) for a, b in zip(view.values, seen[-1].values, strict=True))
        assert view.warmup_ready_mask == seen[-1].warmup_ready_mask
        # hftbacktest's own book agrees with the features at every wake-up.
        l1 = session.l1()
        if seen and view.is_ready("bid_px") and view.is_ready("ask_px"):
            assert (l1.bid_px, l1.bid_qty) == (view["bid_px"], view["bid_qty"])
            assert (l1.ask_px, l1.ask_qty) == (view["ask_px"], view["ask_qty"])
    assert len(seen) == len(batch) and wakes > 2 * len(batch)
    assert all(same_frame(a, batch.frame(i)) for i, a in enumerate(seen))


def test_streaming_and_precomputed_serve_identical_views(backend: str) -> None:
    views = {}
    for feed in ("streaming", "precomputed"):
        session = _adapter(feature_feed=feed, backend=backend).session()
        session.start()
        out = []
        while not session.ended:
            wake = session.step(MS)
            v = session.ctx.get_feature_view(syn.SYMBOL)
            out.append((wake.now_ns, v.warmup_ready_mask, v.quality_flags, repr(v.values)))
        views[feed] = out
    assert views["streaming"] == views["precomputed"]


def test_before_the_first_frame_nothing_is_ready() -> None:
    for feed in ("streaming", "precomputed"):
        session = _adapter(feature_feed=feed, backend="python").session()
        view = session.ctx.get_feature_view(syn.SYMBOL)
        assert view.warmup_ready_mask == 0


def test_the_event_array_lives_as_long_as_the_session() -> None:
    adapter = _adapter(feature_mode="stats_only")
    data = weakref.ref(adapter.data)
    expected = [w.now_ns for w in _drain(adapter.session())]
    session = adapter.session()
    del adapter
    gc.collect()
    # Reuse freed memory: a dangling pointer would now read these bytes.
    junk = [np.full(4096, 0xFF, dtype=np.uint8) for _ in range(64)]
    assert data() is not None
    wakes = _drain(session)
    assert [w.now_ns for w in wakes] == expected
    assert session.l1().bid_px == 1002
    del session, wakes, junk
    gc.collect()
    assert data() is None


def test_bounded_timeout_and_bad_timeouts() -> None:
    session = _adapter().session()
    session.step(MAX_TIMEOUT_NS)  # the first step waits for the first feed whatever the timeout
    # Clamped: unclamped, hftbacktest adds 2**63 - 1 to its clock, overflows and times out.
    wake = session.step(2**63 - 1)
    assert wake.kind == WakeKind.FEED and wake.now_ns == syn.T0 + 2 * MS
    with pytest.raises(ValueError, match="positive"):
        session.step(0)


def test_the_last_batch_is_read_after_the_end() -> None:
    session = _adapter().session()
    wakes = _drain(session)
    last = wakes[-1]
    assert last.kind == WakeKind.END and last.now_ns == syn.T0 + 30 * MS
    assert last.book and len(last.frames) == 1  # the final message arrives with rc=1
    l1 = session.l1()
    view = session.ctx.get_feature_view(syn.SYMBOL)
    assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == (1002, 1, 1003, 4)
    assert (view["bid_px"], view["ask_px"]) == (1002, 1003)
    with pytest.raises(BacktestError, match="end of its data"):
        session.step(MS)
    with pytest.raises(BacktestError):
        session.submit_buy(1000, 1)


def test_trades_are_copied_before_the_buffer_is_cleared() -> None:
    wakes = _drain(_adapter(feature_mode="stats_only").session())
    kept = [(w.now_ns, w.trades) for w in wakes if len(w.trades)]
    # Kept arrays still hold their own trades after every later step reused the buffer.
    got = [(ts - syn.T0, t["side"].tolist(), t["px"].tolist(), t["qty"].tolist()) for ts, t in kept]
    assert got == [
        (2 * MS, [1, 1], [1001, 1001], [2, 1]),
        (6 * MS, [-1], [1001], [1]),
        (9 * MS, [-1], [1000], [3]),
        (21 * MS, [1], [1002], [2]),
    ]


def test_roi_vector_book_reads_sizes_not_prices() -> None:
    session = _adapter(feature_mode="stats_only", roi=(90.0, 110.0)).session()
    session.step(MAX_TIMEOUT_NS)
    l1 = session.l1()
    # ROIVector's best_bid_qty would return the price (100.0 -> 100000 lots).
    assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == (1000, 5, 1001, 4)
    assert session.levels(1, 2) == [(1000, 5), (999, 3)]
    with pytest.raises(ValueError, match="low < high"):
        _adapter(roi=(110.0, 90.0))


def _expected_levels(
    rows: list[tuple[int, int, int]], side: int, n: int, ticks: tuple[int, int] | None
) -> list[tuple[int, int]]:
    """The best `n` levels of `side` after applying `rows` (absolute sizes, 0 deletes), within
    `ticks` (the ROI) and within MAX_SCAN_TICKS of the best."""
    book: dict[int, int] = {}
    for s, px, qty in rows:
        if s == side:
            if qty:
                book[px] = qty
            else:
                book.pop(px, None)
    if ticks is not None:
        book = {px: q for px, q in book.items() if ticks[0] <= px <= ticks[1]}
    if not book:
        return []
    best = max(book) if side == 1 else min(book)
    near = [px for px in book if abs(px - best) < MAX_SCAN_TICKS]
    return [(px, book[px]) for px in sorted(near, reverse=side == 1)[:n]]


@pytest.mark.parametrize("roi", [None, (14_000.0, 16_000.0)], ids=["hashmap", "roi_vector"])
def test_levels_of_a_thin_book_with_levels_far_apart(
    roi: tuple[float, float] | None,
) -> None:
    adapter = HftBacktestAdapter(
        syn.thin_feed(), syn.symbols(), syn.SYMBOL, feature_mode="stats_only", roi=roi
    )
    session = adapter.session()
    ticks = None if roi is None else (round(roi[0] / 0.1), round(roi[1] / 0.1))
    fed: list[tuple[int, int, int]] = []
    for rows in (syn.THIN_SNAPSHOT, syn.THIN_UPDATES):
        session.step(MAX_TIMEOUT_NS)
        fed += rows
        for side in (1, -1):
            for n in (1, 2, 5):
                want = _expected_levels(fed, side, n, ticks)
                assert session.levels(side, n) == want, (side, n)
    # Far apart and fewer than asked for: past the walk near the best, a bid 120,000 ticks
    # away left out; the ROI book holds only the levels inside its range.
    if roi is None:
        assert session.levels(1, 5) == [(150_000, 5), (145_000, 3), (140_500, 7)]
        assert session.levels(-1, 5) == [(150_900, 2), (165_000, 1), (240_000, 8)]
    else:
        assert session.levels(-1, 5) == [(150_900, 2)]
    assert session.levels(1, 0) == []
    with pytest.raises(ValueError, match="side"):
        session.levels(0, 5)


def test_order_calls_reach_hftbacktest() -> None:
    execution = ExecutionModel(entry_latency_ns=100_000, response_latency_ns=100_000)
    session = _adapter(execution=execution).session()
    session.start()
    with pytest.raises(NotStartedError):
        session.submit_buy(1000, 1)
    session.step(MAX_TIMEOUT_NS)
    resting = session.submit_buy(995, 2)  # far below the book: rests
    taker = session.submit_buy(1001, 3, TimeInForce.GTC, OrderType.LIMIT)  # crosses: fills
    assert (resting, taker) == (1, 2)
    wake = session.step(MAX_TIMEOUT_NS)
    assert wake.kind == WakeKind.ORDER_RESPONSE and wake.now_ns == syn.T0 + MS + 200_000
    assert session.position() == 3
    acct = session.account()
    assert acct.num_trades == 1 and acct.fee == pytest.approx(3 * 0.001 * 100.1 * 0.0005)
    (order,) = session.open_orders()
    assert (order.order_id, order.side, order.px, order.qty, order.status) == (
        1,
        Side.BUY,
        995,
        2,
        OrderStatus.NEW,
    )
    session.modify(1, 996, 4)
    session.step(MAX_TIMEOUT_NS)
    while session.open_orders()[0].pending:
        session.step(MAX_TIMEOUT_NS)
    (order,) = session.open_orders()
    assert (order.px, order.qty) == (996, 4)
    session.cancel(1)
    while session.open_orders():
        session.step(MAX_TIMEOUT_NS)
    with pytest.raises(OrderError, match="no order 1"):
        session.cancel(1)
    with pytest.raises(OrderError, match="at least one lot"):
        session.submit_sell(1001, 0)
    with pytest.raises(OrderError, match="integers"):
        session.submit_sell(100.1, 1)  # type: ignore[arg-type]


def test_order_sizes_are_integers_of_any_kind_and_prices_positive() -> None:
    session = _adapter().session()
    session.start()
    session.step(MAX_TIMEOUT_NS)
    oid = session.submit_buy(np.int64(995), np.int64(2))  # type: ignore[arg-type]
    assert oid == 1
    for px in (0, -995):
        with pytest.raises(OrderError, match="at least one tick"):
            session.submit_buy(px, 1)
        with pytest.raises(OrderError, match="at least one tick"):
            session.modify(oid, px, 1)
    with pytest.raises(OrderError, match="integers"):
        session.submit_buy(np.float64(995), 1)  # type: ignore[arg-type]
    session.step(MAX_TIMEOUT_NS)
    (order,) = session.open_orders()
    assert (order.order_id, order.px, order.qty) == (1, 995, 2)


def test_open_orders_come_in_order_id_order() -> None:
    session = _adapter(feature_mode="stats_only").session()
    session.start()
    session.step(MAX_TIMEOUT_NS)
    # Resting orders on both sides, at prices that do not follow their ids.
    sent = [session.submit_buy(990 - (i * 7) % 40, 1 + i % 3) for i in range(12)]
    sent += [session.submit_sell(1010 + (i * 11) % 40, 1) for i in range(12)]
    while any(o.pending for o in session.open_orders()) or not session.open_orders():
        session.step(MAX_TIMEOUT_NS)
    ids = [o.order_id for o in session.open_orders()]
    assert ids == sent == list(range(1, 25))


def test_equity_and_fill_prices_count_the_contract_size() -> None:
    execution = ExecutionModel(
        entry_latency_ns=100_000, response_latency_ns=100_000, contract_size=10.0
    )
    session = _adapter(execution=execution).session()

    class Taker(BaseStrategy):
        def on_wakeup(self) -> None:
            if not self.ctx.open_orders() and self.ctx.position == 0:
                self.ctx.submit_buy(1001, 3, TimeInForce.GTC)  # crosses the 100.1 ask: fills

    rec = Recorded(Taker(), session)
    StrategyRunner(session, rec, decision_interval_ns=MS).run()
    acct = session.account()
    assert acct.position == 3 and acct.contract_size == 10.0
    # Bought 0.003 at 100.1 with 10 quote currency per unit: marked at 100.1 only fees are lost.
    assert acct.balance == pytest.approx(-0.003 * 100.1 * 10)
    assert acct.equity(100.1) == pytest.approx(-acct.fee)
    assert acct.equity(100.2) == pytest.approx(0.003 * 0.1 * 10 - acct.fee)
    assert rec.record.fill_px == [pytest.approx(100.1)]
    assert rec.record.fill_side == [1] and rec.record.fill_qty == [3]


def test_from_hftbacktest_refuses_another_layout() -> None:
    adapter = _adapter(feature_mode="stats_only")
    data = adapter.data
    assert HftBacktestAdapter.from_hftbacktest(data, adapter.instrument).data is data
    # The same fields in another order: hftbacktest would read them through its own layout.
    names = list(data.dtype.names or ())
    other = np.zeros(len(data), dtype=[(n, data.dtype[n]) for n in reversed(names)])
    for name in names:
        other[name] = data[name]
    with pytest.raises(SourceFormatError, match="event_dtype"):
        HftBacktestAdapter.from_hftbacktest(other, adapter.instrument)
    narrow = np.zeros(len(data), dtype=[(n, "<i4" if n == "ev" else data.dtype[n]) for n in names])
    with pytest.raises(SourceFormatError, match="event_dtype"):
        HftBacktestAdapter.from_hftbacktest(narrow, adapter.instrument)


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="feature_mode"):
        _adapter(feature_mode="l1")
    with pytest.raises(ValueError, match="feature_feed"):
        _adapter(feature_feed="live")
    with pytest.raises(ValueError, match="queue model"):
        ExecutionModel(queue_model="fifo")  # type: ignore[arg-type]


def test_missing_hftbacktest_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hftbacktest", None)
    with pytest.raises(ImportError, match=r"pip install hftbacktest==2\.4\.4"):
        _adapter()


def test_the_first_step_waits_for_the_first_feed_whatever_the_timeout() -> None:
    # hftbacktest's clock is i64::MAX before its first feed: a short timeout there overflows
    # and would run the whole backtest in one step.
    session = _adapter().session()
    wake = session.step(1)
    assert wake.kind == WakeKind.FEED and wake.now_ns == syn.T0 + MS
    assert len(session.ctx.get_feature_view(syn.SYMBOL).values) == 22
    assert session.l1().bid_px == 1000
