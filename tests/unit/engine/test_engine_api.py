"""FeatureEngine API: batch vs per-message, pull, push, schema checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from featureplane import InstrumentSpec, InvalidMessageError, SchemaMismatchError
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import UnknownSymbolError
from featureplane.events import ASK, BID, BUY, EVENT_DTYPE, concat, iter_messages, make_message
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FeatureUpdateFrameV1, same_frame

SPECS = [InstrumentSpec("A", "0.1", "0.001"), InstrumentSpec("B", "1", "1")]


def stream() -> np.ndarray:
    return concat(
        [
            make_message(0, source_ts_ns=0, seq=1, snapshot=[(BID, 100, 5), (ASK, 101, 5)]),
            make_message(1, source_ts_ns=1, seq=1, snapshot=[(BID, 10, 1), (ASK, 11, 2)]),
            make_message(0, source_ts_ns=2, seq=2, prev_seq=1, levels=[(BID, 100, 7)]),
            make_message(0, source_ts_ns=3, seq=2, prev_seq=1, levels=[(BID, 100, 1)]),  # dup
            make_message(1, source_ts_ns=4, seq=9, trades=[(BUY, 11, 2)]),
            make_message(0, source_ts_ns=5, seq=3, prev_seq=2, levels=[(ASK, 102, 4)]),
        ]
    )


def test_batch_equals_per_message(backend: str) -> None:
    events = stream()
    batch = FeatureEngine(SPECS, backend=backend).process_batch(events)
    eng = FeatureEngine(SPECS, backend=backend)
    frames = []
    start = 0
    for end in np.flatnonzero(events["flags"] & 1) + 1:
        f = eng.process(events[start:end])
        if f is not None:
            frames.append(f)
        start = end
    assert len(batch) == len(frames) == 5
    assert all(same_frame(a, b) for a, b in zip(batch.frames(), frames, strict=True))
    # input_index names the last row of each applied message; the duplicate (rows 8-8) has none
    assert list(batch.input_index) == [2, 5, 6, 8, 9]
    assert batch.values["bid_qty"].dtype == np.int64
    assert batch.values["microprice"].dtype == np.float64
    assert batch.values["book_regime"].dtype == np.uint32


def test_pull_api(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    eng.process_batch(stream())
    assert eng.get_feature_set_id() == "lob_shared_v1"
    assert eng.get_feature("A", "bid_qty") == 7
    assert eng.get_feature("A", FS.index("ask_px")) == 101
    view = eng.get_feature_view("B")
    assert view.feature_set_id == "lob_shared_v1"
    assert view["last_trade_px"] == 11 and view.is_ready("last_trade_px")
    assert view.as_dict()["spread"] == 1
    assert view.seq == 9 and view.source_ts_ns == 4
    with pytest.raises(UnknownSymbolError):
        eng.get_feature("C", "bid_px")
    with pytest.raises(UnknownSymbolError):
        eng.get_feature("A", "no_such_feature")


def test_push_api_filters_and_cancels(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    seen_all: list[FeatureUpdateFrameV1] = []
    seen_b: list[FeatureUpdateFrameV1] = []
    sub = eng.on_features(seen_all.append)
    eng.on_features(seen_b.append, symbols=["B"], feature_set_id="lob_shared_v1",
                    schema_hash=FS.schema_hash)  # fmt: skip
    batch = eng.process_batch(stream())
    assert len(seen_all) == len(batch)
    assert all(same_frame(a, b) for a, b in zip(seen_all, batch.frames(), strict=True))
    assert [f.symbol for f in seen_b] == ["B", "B"]
    sub.cancel()
    eng.process(make_message(0, source_ts_ns=9, seq=4, prev_seq=3, levels=[(BID, 99, 1)]))
    assert len(seen_all) == len(batch)


def test_subscribers_added_and_cancelled_between_messages_see_exactly_their_frames(
    backend: str,
) -> None:
    """`process` skips the push step while nobody listens; a subscriber that arrives later, or
    one left after a backend switch, still gets every frame from then on."""
    messages = list(iter_messages(stream()))
    del messages[3]  # the duplicate: every message left gives a frame
    eng = FeatureEngine(SPECS, backend=backend)
    first = eng.process(messages[0])
    seen: list[FeatureUpdateFrameV1] = []
    sub = eng.on_features(seen.append)
    second = eng.process(messages[1])
    other = "python" if backend == "rust" else "rust"
    eng.set_backend(other)  # the subscriber stays
    third = eng.process(messages[2])
    assert first is not None and seen == [second, third]
    sub.cancel()
    assert eng.process(messages[3]) is not None and seen == [second, third]
    again = eng.on_features(seen.append)
    fifth = eng.process(messages[4])
    assert seen == [second, third, fifth]
    again.cancel()
    eng.set_backend(backend)
    assert eng.process(messages[4]) is None  # now a duplicate: dropped, and nothing pushed
    assert len(seen) == 3


def test_consumer_for_another_schema_gets_schema_mismatch(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    with pytest.raises(SchemaMismatchError, match="lob_shared_v2"):
        eng.on_features(print, feature_set_id="lob_shared_v2")
    with pytest.raises(SchemaMismatchError, match="schema hash"):
        eng.on_features(print, schema_hash="0" * 64)
    with pytest.raises(SchemaMismatchError):
        FeatureEngine(SPECS, "no_such_set", backend=backend)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda e: e.__setitem__("qty", np.where(np.arange(len(e)) == 3, -1, e["qty"])),
            "negative",
        ),
        (lambda e: e["kind"].__setitem__(2, 9), "unknown row kind"),
        (lambda e: e["px"].__setitem__(3, 2**62), "out of range"),
        (lambda e: e["px"].__setitem__(3, -(2**63)), "out of range"),
        (lambda e: e["qty"].__setitem__(4, 2**49), "out of range"),
        (lambda e: e["symbol_id"].__setitem__(4, 7), "unknown symbol id"),
        (lambda e: e["side"].__setitem__(1, 0), "bad book side"),
        (lambda e: e["flags"].__setitem__(len(e) - 1, 0), "not closed"),
        (lambda e: e["symbol_id"].__setitem__(0, 1), "mixes symbols"),
    ],
)
def test_bad_input_fails_whole_batch_without_state_change(backend: str, mutate, match) -> None:  # type: ignore[no-untyped-def]
    eng = FeatureEngine(SPECS, backend=backend)
    events = stream()
    mutate(events)
    with pytest.raises(InvalidMessageError, match=match):
        eng.process_batch(events)
    assert eng.counters["messages"] == 0
    assert eng.get_feature_view("A").warmup_ready_mask == 0


def test_negative_symbol_id_is_unknown(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    with pytest.raises(UnknownSymbolError):
        eng._kernel.symbol_values(-1)


def test_wrong_dtype_is_rejected(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    with pytest.raises(InvalidMessageError, match="EVENT_DTYPE"):
        eng.process_batch(np.zeros(3, dtype=np.int64))
    assert EVENT_DTYPE.itemsize == 64


def test_process_takes_one_message(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    with pytest.raises(InvalidMessageError, match="exactly one message"):
        eng.process(stream())


def test_lob_access(backend: str) -> None:
    eng = FeatureEngine(SPECS, backend=backend)
    eng.process_batch(stream())
    lob = eng.lob
    l1 = lob.get_l1_scaled("A")  # type: ignore[attr-defined]
    assert (l1.bid_px, l1.bid_qty, l1.ask_px, l1.ask_qty) == (100, 7, 101, 5)
    bids, asks = lob.top_n("A", 5)  # type: ignore[attr-defined]
    assert bids == [(100, 7)] and asks == [(101, 5), (102, 4)]
    assert lob.snapshot("A") == (bids, asks)  # type: ignore[attr-defined]
    stats = lob.book_stats("A")  # type: ignore[attr-defined]
    assert (stats.bid_levels, stats.ask_levels, stats.ask_depth_qty) == (1, 2, 9)
    assert stats.last_book_seq == 3 and not stats.untrusted and not stats.crossed
    assert eng.counters["duplicates"] == 1 and eng.counters["applied"] == 5
