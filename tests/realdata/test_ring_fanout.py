"""Fan-out of a full capture through the shared-memory ring: one writer, three reader
processes, one of them deliberately slow.

The fast readers receive every frame, byte for byte what `process_batch` made; the slow one is
lapped, reports exactly the frames it lost, and resumes (every frame it did get is the
published one at its position, GAP aside); a strategy process runs the `BaseStrategy` API on
the ring (pull and push) and sees the frames `process_batch` made.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag, same_frame
from featureplane.frames.ring import RingWriter, probe, remove_stale
from featureplane.frames.wire import batch_to_records
from featureplane.instruments import InstrumentSpec
from featureplane.sources import BinanceReplay, read_binance
from featureplane.strategy.base import BaseStrategy
from featureplane.strategy.ring import run_on_ring
from tests.support import ring_workers
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

CAPACITY = 1 << 14
CHUNK = 128
"""The writer publishes the capture CHUNK frames a millisecond (about 128k frames/s): a fast
reader would have to stall 128 ms to be lapped; the slow one (64 frames per 20 ms) is lapped."""


@pytest.fixture(scope="module")
def capture() -> tuple[BinanceReplay, FrameBatch]:
    require_rust("engine")
    replay = read_binance([shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"])
    return replay, FeatureEngine(replay.symbols, backend="rust").process_batch(replay.events)


@pytest.fixture
def name() -> Iterator[str]:
    ring = f"fp-test-fanout-{os.getpid()}"
    yield ring
    if (found := probe(ring)) is not None and found.state != "live":
        remove_stale(ring)


def publish_paced(writer: RingWriter, records: np.ndarray) -> None:
    for i in range(0, len(records), CHUNK):
        writer.publish_records(records[i : i + CHUNK])
        time.sleep(0.001)


def test_one_writer_three_readers_one_slow(
    capture: tuple[BinanceReplay, FrameBatch],
    name: str,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    replay, batch = capture
    records = batch_to_records(batch)
    n = len(records)
    assert n > CAPACITY + 64 * 10, "the capture must be longer than the ring"
    ctx = mp.get_context("spawn")
    outs = [tmp_path / f"reader{i}.npz" for i in range(3)]
    plans = [(0.0, 4096), (0.0, 1000), (0.02, 64)]  # the third is slow
    with RingWriter(name, replay.symbols, capacity=CAPACITY) as writer:
        readies = [ctx.Event() for _ in plans]
        procs = [
            ctx.Process(
                target=ring_workers.read_all, args=(name, str(out), ready, delay, max_frames)
            )
            for out, ready, (delay, max_frames) in zip(outs, readies, plans, strict=True)
        ]
        for p in procs:
            p.start()
        assert all(ready.wait(60) for ready in readies)
        publish_paced(writer, records)
        slow_lag = next(r for r in writer.readers() if r.pid == procs[2].pid)
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    wire = records.tobytes()
    for out in outs[:2]:
        got = np.load(out)
        assert int(got["lost"]) == 0
        assert got["frames"].tobytes() == wire, "a fast reader gets every frame bit for bit"
        starts = got["reads"][:, 0]
        assert starts[0] == 0
    got = np.load(outs[2])
    reads = got["reads"]
    received = got["frames"].view(records.dtype)
    lost = int(got["lost"])
    # Exactly accounted: every frame was received or counted lost, and the loss is the one the
    # writer's reader table showed while the slow reader was attached (or more, later).
    assert lost > 0 and int(got["gaps"]) >= 1
    assert int(reads[:, 1].sum()) + lost == n == len(received) + lost
    assert int(reads[:, 2].sum()) == lost
    assert slow_lag.lost <= lost
    # Contiguous: each read starts where the last ended, plus what it reports lost.
    ends = np.concatenate([[0], (reads[:, 0] + reads[:, 1])[:-1]])
    assert (reads[:, 0] == ends + reads[:, 2]).all()
    # It resumed: frames after the first loss, each the published frame at its position.
    positions = np.concatenate([np.arange(s, s + k, dtype=np.int64) for s, k, _ in reads])
    assert positions.max() == n - 1
    want = records[positions].copy()
    gap = received["quality_flags"] ^ want["quality_flags"]
    assert set(np.unique(gap).tolist()) <= {0, int(QualityFlag.GAP_DETECTED)}
    # One symbol: the first frame of each read after a loss carries GAP.
    first_after_loss = np.concatenate([[0], np.cumsum(reads[:, 1])[:-1]])[reads[:, 2] > 0]
    assert (gap[first_after_loss] == QualityFlag.GAP_DETECTED).all()
    assert int((gap != 0).sum()) == len(first_after_loss)
    want["quality_flags"] = received["quality_flags"]
    assert received.tobytes() == want.tobytes()
    report(
        f"ring fan-out: {n:,} frames, 3 reader processes: 2 fast got all {n:,} bit for bit; "
        f"the slow one got {len(received):,} and reported {lost:,} lost in "
        f"{int(got['gaps'])} gap(s)"
    )


class Recorder(BaseStrategy):
    """Pushed frames, pulled views at each decision, and the final view."""

    def __init__(self) -> None:
        self.pushed: list[FeatureUpdateFrameV1] = []
        self.decisions = 0
        self.final_mid: int | float | None = None
        self.pulls: list[tuple[int, float | int]] = []
        self.instrument: InstrumentSpec | None = None

    def on_features(self, frame: FeatureUpdateFrameV1) -> None:
        self.pushed.append(frame)

    def on_wakeup(self) -> None:
        self.decisions += 1
        view = self.ctx.get_feature_view("BTCUSDT")
        self.pulls.append((view.seq, view["mid"]))

    def on_end(self) -> None:
        self.final_mid = self.ctx.get_feature("BTCUSDT", "mid")
        self.instrument = self.ctx.instrument()


def test_a_strategy_process_runs_pull_and_push_on_the_ring(
    capture: tuple[BinanceReplay, FrameBatch], name: str
) -> None:
    replay, batch = capture
    records = batch_to_records(batch)
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    writer = ctx.Process(
        target=ring_workers.publish_capture, args=(name, records, replay.symbols.to_json(), ready)
    )
    writer.start()
    try:
        assert ready.wait(60)
        strategy = Recorder()
        stats = run_on_ring(name, strategy, "BTCUSDT", start="oldest", idle_timeout=0.5)
    finally:
        writer.join(60)
    assert writer.exitcode == 0
    assert stats.lost == 0 and stats.frames_read == len(batch)
    frames = batch.frames()
    assert len(strategy.pushed) == len(frames) == stats.frames_pushed
    assert all(same_frame(a, b) for a, b in zip(strategy.pushed, frames, strict=True))
    assert stats.decisions == strategy.decisions > 100
    # Pull at a decision reads the newest frame seen: its seq and mid are a published frame's.
    by_seq = {f.seq: f.values[5] for f in frames}
    assert all(by_seq.get(seq) == mid for seq, mid in strategy.pulls)
    assert strategy.final_mid == frames[-1].values[5]
    # The ring's symbol table gives the context its instrument.
    assert strategy.instrument == replay.symbols.spec("BTCUSDT")
