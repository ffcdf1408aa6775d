"""Fault drills on the loopback venue: each fault injected into the real USD-M captures
(BTCUSDT + ETHUSDT, the first 30 s), the live path run on it, and the frames held against
research replay: equal where the fault left the stream whole, GAP-flagged while a symbol
resyncs, and equal again to research replay from the resync snapshot on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.live.bootstrap import ServiceRegistry, SystemBootstrapper
from featureplane.live.parity import compare_batches, live_config_for, research_batch
from featureplane.live.service import MarketUpdate
from featureplane.live.venue.server import LoopbackVenue, VenueThread
from featureplane.live.wire import combined_path
from tests.support.live import (
    USDM,
    LiveRun,
    captures,
    reference_after,
    run_live,
    slice_captures,
    tail_from_seq,
)

pytestmark = pytest.mark.realdata

AT = 2000
"""The capture line the drills inject at (about 9 s into the slice)."""
FAST_RECONNECT = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "reconnect_jitter_s": 0.02,
                  "max_reconnects": 10}  # fmt: skip


@pytest.fixture(scope="module")
def usdm(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return slice_captures(captures(USDM), tmp_path_factory.mktemp("usdm"), 30)


@pytest.fixture(scope="module")
def research(usdm: list[Path]) -> FrameBatch:
    return research_batch(usdm)


def _equal(name: str, live: FrameBatch, research: FrameBatch) -> None:
    report = compare_batches(name, live, research)
    assert report.ok, report.format()


def _equal_after_last_snapshot(
    run: LiveRun, paths: list[Path], symbol: str, tmp: Path, until_gap: bool = False
) -> int:
    """The symbol's live frames from its last resync snapshot equal research replay of that
    snapshot and the capture after it (up to the next lost input with `until_gap`); returns
    the frames compared."""
    applied = {orjson.loads(b)["lastUpdateId"] for b in _applied_bodies(run, symbol)}
    served = [
        s for s in run.venue.snapshot_log
        if s.symbol == symbol and s.kind != "recorded"
        and orjson.loads(s.body)["lastUpdateId"] in applied
    ]  # fmt: skip
    assert served, f"{symbol} never resynced"
    last = served[-1]
    lid = orjson.loads(last.body)["lastUpdateId"]
    reference = reference_after(paths, symbol, last.index, last.body, tmp)
    live = tail_from_seq(run.batch.for_symbol(symbol), lid)
    if until_gap:
        gaps = np.flatnonzero(live.columns["quality_flags"] & QualityFlag.GAP_DETECTED)
        if len(gaps):
            live, reference = live.truncate(int(gaps[0])), reference.truncate(int(gaps[0]))
    report = compare_batches(f"{symbol} after resync", live, reference)
    assert report.ok, report.format()
    assert int(live.columns["quality_flags"][0]) & QualityFlag.STATE_RESET
    return len(live)


def _applied_bodies(run: LiveRun, symbol: str) -> list[bytes]:
    """Snapshot bodies the live path applied: CLEAR frames' seqs name them."""
    frames = run.batch.for_symbol(symbol)
    resets = frames.columns["seq"][frames.columns["quality_flags"] & QualityFlag.STATE_RESET != 0]
    seqs = {int(x) for x in resets}
    return [s.body for s in run.venue.snapshot_log if s.symbol == symbol
            and orjson.loads(s.body)["lastUpdateId"] in seqs]  # fmt: skip


def _sync(run: LiveRun, symbol: str) -> dict[str, int]:
    counters: dict[str, int] = run.summary.symbols[symbol]
    return counters


def test_gap_resyncs_that_symbol_only(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    run = run_live(usdm, tmp_path, venue={"faults": f"drop@{AT}:BTCUSDT"})
    assert run.venue.stats.dropped == 1
    btc, eth = _sync(run, "BTCUSDT"), _sync(run, "ETHUSDT")
    assert btc["gaps"] == 1 and btc["resyncs"] == 2 and btc["snapshots_applied"] == 2
    assert eth["gaps"] == 0 and eth["resyncs"] == 1  # the other symbol never noticed
    _equal("ETHUSDT untouched", run.batch.for_symbol("ETHUSDT"), research.for_symbol("ETHUSDT"))
    frames = run.batch.for_symbol("BTCUSDT")
    flags = frames.columns["quality_flags"]
    gapped = np.flatnonzero(flags & QualityFlag.GAP_DETECTED)
    assert len(gapped) >= 1
    # Before the gap: research's frames less the dropped diff's; from the gap to the resync
    # snapshot: all GAP, not ready.
    first = int(gapped[0])
    ref = research.for_symbol("BTCUSDT")
    lost = int(np.flatnonzero(frames.columns["seq"][:first] != ref.columns["seq"][:first])[0])
    _equal("before the drop", frames.truncate(lost), ref.truncate(lost))
    # Between the drop and the next diff the same messages came (trades: their book values
    # lack the lost diff, which nobody can know before the next diff shows the gap).
    seq = frames.columns["seq"]
    assert np.array_equal(seq[lost:first], ref.columns["seq"][lost + 1 : first + 1])
    assert np.all(frames.columns["warmup_ready_mask"][gapped] == 0)
    resync = first + len(gapped)
    assert int(flags[resync]) & QualityFlag.STATE_RESET and not int(flags[resync]) & 1
    assert np.array_equal(gapped, np.arange(first, resync))
    assert _equal_after_last_snapshot(run, usdm, "BTCUSDT", tmp_path) > 500


def test_duplicate_is_dropped_and_counted(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    run = run_live(usdm, tmp_path, venue={"faults": f"dup@{AT}:BTCUSDT"})
    assert run.venue.stats.duplicated == 1
    assert _sync(run, "BTCUSDT")["duplicates"] == 1
    assert _sync(run, "BTCUSDT")["resyncs"] == 1
    _equal("duplicate", run.batch, research)


def test_reorder_is_a_gap_then_a_late_message(usdm: list[Path], tmp_path: Path) -> None:
    run = run_live(usdm, tmp_path, venue={"faults": f"reorder@{AT}:BTCUSDT"})
    assert run.venue.stats.reordered == 1
    btc = _sync(run, "BTCUSDT")
    assert btc["gaps"] == 1 and btc["late"] == 1 and btc["resyncs"] == 2
    _equal_after_last_snapshot(run, usdm, "BTCUSDT", tmp_path)


def test_disconnect_reconnects_and_resyncs_every_symbol(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    run = run_live(usdm, tmp_path, venue={"faults": f"disconnect@{AT}:40"}, feed=FAST_RECONNECT)
    assert run.venue.stats.disconnects == 1 and run.venue.stats.lost_lines == 40
    assert run.summary.feed["reconnects"] == 1
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert _sync(run, symbol)["resyncs"] == 2, symbol
        _equal_after_last_snapshot(run, usdm, symbol, tmp_path)


def test_stall_goes_stale_then_recovers(usdm: list[Path], tmp_path: Path) -> None:
    feed = {**FAST_RECONNECT, "symbol_stale_s": 0.3, "connection_stale_s": 0.8}
    run = run_live(usdm, tmp_path, venue={"faults": f"stall@{AT}:1.5"}, feed=feed)
    assert run.venue.stats.stalls == 1
    log = run.registry.get("feed").health_log
    for symbol in ("BTCUSDT", "ETHUSDT"):
        states = [state for _, sym, state in log if sym == symbol]
        assert states[:2] == ["stale", "fresh"], (symbol, states)
        _equal_after_last_snapshot(run, usdm, symbol, tmp_path)
    assert run.summary.feed["stale_connections"] >= 1
    assert run.summary.feed["reconnects"] >= 1


def test_server_shutdown_rotates_without_a_resync(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    run = run_live(
        usdm, tmp_path, venue={"faults": f"shutdown@{AT}"}, feed={"rotation_overlap_s": 0.2}
    )
    assert run.venue.stats.shutdowns == 1
    assert run.summary.feed["server_shutdowns"] == 1 and run.summary.feed["rotations"] == 1
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert _sync(run, symbol)["resyncs"] == 1  # make-before-break: continuity held
    _equal("server shutdown", run.batch, research)


def test_rotation_before_the_venue_cut(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    run = run_live(
        usdm, tmp_path, venue={"speed": 10.0, "max_connection_s": 1.5},
        feed={"rotate_after_s": 0.6, "rotation_overlap_s": 0.1},
    )  # fmt: skip
    assert run.summary.feed["rotations"] >= 2
    # The client always moved on before the cut: the venue never cut the connection in use
    # (it may cut one the client is retiring, on a slow machine), so no reconnect.
    assert run.summary.feed["reconnects"] == 0
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert _sync(run, symbol)["resyncs"] == 1
    _equal("rotation", run.batch, research)


def _slow_while(limit_ns: int, pause_s: float) -> Callable[[ServiceRegistry], None]:
    """A listener that takes `pause_s` per message until the event clock passes `limit_ns`."""

    def hook(registry: ServiceRegistry) -> None:
        service = registry.get("service")

        def slow(update: MarketUpdate) -> None:
            if update.now_ns < limit_ns:
                time.sleep(pause_s)

        service.listen(slow)

    return hook


def _first_src(research: FrameBatch) -> int:
    return int(research.columns["source_ts_ns"][0])


def test_slow_consumer_overflows_into_gaps_and_resyncs(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    bound = 256
    hook = _slow_while(_first_src(research) + 8_000_000_000, 0.002)
    run = run_live(
        usdm, tmp_path, venue={"speed": 10.0}, feed=FAST_RECONNECT,
        service={"queue_max_messages": bound, "batch_max": 32}, hook=hook,
    )  # fmt: skip
    s = run.summary.service
    assert s["overflow_messages"] > 0
    # Bounded memory, however slow the consumer: the bound, plus one release's held diffs.
    assert s["queue_high_water"] <= bound + run.config.feed.max_held_diffs
    gap_frames = run.summary.flag_counts["GAP_DETECTED"]
    assert gap_frames > 0
    for symbol, lost in s["overflow_by_symbol"].items():
        assert lost > 0 and _sync(run, symbol)["resyncs"] >= 2, symbol
        assert _equal_after_last_snapshot(run, usdm, symbol, tmp_path, until_gap=True) > 100
    # Every message was either applied or counted lost: received = applied + lost + dropped.
    assert (
        s["messages_in"]
        == s["messages_applied"] + s["overflow_messages"] + s["messages_dropped_by_engine"]
    )


def test_venue_drops_a_slow_consumer(
    usdm: list[Path], research: FrameBatch, tmp_path: Path
) -> None:
    hook = _slow_while(_first_src(research) + 10_000_000_000, 0.003)
    run = run_live(
        usdm, tmp_path, venue={"faults": "slow@0:65536"},
        feed={**FAST_RECONNECT, "receive_queue": 4, "receive_buffer_bytes": 65536}, hook=hook,
    )  # fmt: skip
    assert run.venue.stats.slow_disconnects >= 1
    assert run.summary.feed["reconnects"] >= 1
    assert run.summary.feed["close_codes"].get("1008", 0) >= 1
    for symbol in ("BTCUSDT", "ETHUSDT"):
        _equal_after_last_snapshot(run, usdm, symbol, tmp_path)


def test_snapshot_older_than_the_stream_is_refused(usdm: list[Path], tmp_path: Path) -> None:
    faults = f"drop@{AT}:BTCUSDT,snapshot-old@{AT}:BTCUSDT"
    run = run_live(usdm, tmp_path, venue={"faults": faults})
    assert run.venue.stats.snapshots["old"] == 1
    btc = _sync(run, "BTCUSDT")
    assert btc["sync_failures"] == 1 and btc["resyncs"] == 3
    _equal_after_last_snapshot(run, usdm, "BTCUSDT", tmp_path)


def test_snapshot_newer_than_the_stream(usdm: list[Path], tmp_path: Path) -> None:
    faults = f"drop@{AT}:BTCUSDT,snapshot-new@{AT}:BTCUSDT:5"
    run = run_live(usdm, tmp_path, venue={"faults": faults})
    assert run.venue.stats.snapshots["new"] == 1
    btc = _sync(run, "BTCUSDT")
    assert btc["sync_failures"] == 0 and btc["resyncs"] == 2
    _equal_after_last_snapshot(run, usdm, "BTCUSDT", tmp_path)


def test_max_speed_stays_within_its_lead_of_a_slow_reader(usdm: list[Path]) -> None:
    """At max speed the pump runs ahead of its client by at most `max_lead` messages plus the
    client's read queue and one socket read, however large the socket buffers: without the
    bound it would push the whole slice into them while the client parsed its first lines."""
    lead, queue, read = 64, 16, 200
    venue = LoopbackVenue(usdm, max_lead=lead)

    async def reader() -> tuple[int, int]:
        streams = ["btcusdt@depth@0ms", "btcusdt@trade", "ethusdt@depth@0ms", "ethusdt@trade"]
        url = f"ws://127.0.0.1:{venue.port}{combined_path(streams)}"
        async with connect(url, max_queue=queue, compression=None) as ws:
            for _ in range(read):
                await asyncio.wait_for(ws.recv(), 10.0)
            await asyncio.sleep(0.5)  # the pump runs on as far as it is let
            ahead = venue.stats.messages_sent
            got = read
            while True:  # then read to the end: the pump goes on as the reader does
                try:
                    await asyncio.wait_for(ws.recv(), 10.0)
                except Exception:
                    break
                got += 1
        return ahead, got

    with VenueThread(venue):
        ahead, got = asyncio.run(reader())
    assert got > 10 * (lead + queue + read)  # the slice is far longer than the bound
    assert ahead <= read + 4 * (lead + queue), (ahead, read)
    assert venue.stats.lead_waits >= got // lead - 1
    assert venue.stats.lead_timeouts == 0


def test_a_connection_refused_after_the_end_is_the_end(usdm: list[Path], tmp_path: Path) -> None:
    """A client that opens a connection (a rotation) after the loopback venue ended its stream
    is answered 410 `end of stream`: with `exit_on_end_of_stream` that is the end of the run,
    not a reconnect loop that fails after `max_reconnects`."""
    venue = LoopbackVenue(usdm[:1])

    async def drain() -> int:
        url = f"ws://127.0.0.1:{venue.port}{combined_path(['btcusdt@depth@0ms'])}"
        got = 0
        async with connect(url, compression=None) as ws:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await asyncio.wait_for(ws.recv(), 10.0)
                    got += 1
        return got

    with VenueThread(venue):
        assert asyncio.run(drain()) > 100
        assert venue.stats.finished
        config = live_config_for(venue)
        summary = asyncio.run(SystemBootstrapper(config).run(duration_s=60.0))
    assert summary.ended_by == "end of stream", summary.format()
    assert summary.feed["connections"] == 0 and summary.feed["connect_failures"] == 1
    assert summary.feed["end_of_stream"]
