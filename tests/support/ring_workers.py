"""Processes of the ring tests: readers that save what they got, a writer that crashes, the
stress writer and readers. Run with the "spawn" start method (importable top-level functions).

Each reader saves, to `out` (an .npz), every read's (start, frames, lost) and the bytes of
every frame it received, so the test compares them with the frames that were published.
"""

from __future__ import annotations

import os
import random
import signal
import time
from multiprocessing.synchronize import Event

import numpy as np

from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.frames.ring import RingReader, RingWriter
from featureplane.frames.wire import frame_batch_dtype
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.strategy.base import BaseStrategy

DEADLINE_S = 120.0
"""No worker loop runs longer than this, whatever happens to the writer."""


def read_all(name: str, out: str, ready: Event, delay_s: float, max_frames: int) -> None:
    """Attach, signal ready, read until the ring closes (sleeping `delay_s` after each read
    of at most `max_frames`), save what was read."""
    reader = RingReader(name, batch=max(max_frames, 1))
    ready.set()
    reads: list[tuple[int, int, int]] = []
    chunks: list[bytes] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE_S:
        got = reader.read(max_frames, timeout=0.5)
        if len(got) or got.lost:
            reads.append((got.start, len(got), got.lost))
            chunks.append(got.records.tobytes())
        if got.closed:
            break
        if delay_s:
            time.sleep(delay_s)
    np.savez(
        out,
        reads=np.array(reads, dtype=np.int64).reshape(-1, 3),
        frames=np.frombuffer(b"".join(chunks), dtype=np.uint8),
        lost=np.int64(reader.lost),
        gaps=np.int64(reader.gaps),
    )


def crash_after_publishing(name: str, records: np.ndarray) -> None:
    """Create the ring, publish `records`, and die by SIGKILL (no close, no cleanup)."""
    symbols = SymbolTable([InstrumentSpec("BTCUSDT", "0.1", "0.001")])
    writer = RingWriter(name, symbols, capacity=64)
    writer.publish_records(records)
    os.kill(os.getpid(), signal.SIGKILL)


STRESS_SYMBOLS = SymbolTable(
    [InstrumentSpec(f"S{i}", "0.1", "0.001") for i in range(4)]  # ids 0..3
)


def stress_records(first: int, n: int) -> np.ndarray:
    """Frames `first..first + n`: every field a function of the position, so a torn frame
    (words of two frames) or a misplaced one cannot pass `check_stress_records`."""
    dt = frame_batch_dtype(LOB_SHARED_V1)
    p = np.arange(first, first + n, dtype=np.uint64)
    rec = np.zeros(n, dtype=dt)
    rec["magic"] = b"FPF1"
    rec["layout_version"] = 1
    rec["n_values"] = len(LOB_SHARED_V1)
    rec["schema_hash64"] = LOB_SHARED_V1.schema_hash64
    rec["symbol_id"] = (p % 4).astype(np.uint32)
    rec["seq"] = p.astype(np.int64)
    rec["source_ts_ns"] = p.astype(np.int64) * 3
    rec["local_ts_ns"] = p.astype(np.int64) * 5
    rec["changed_mask"] = p * np.uint64(0x9E3779B97F4A7C15)
    rec["warmup_ready_mask"] = ~p
    words = rec.view(np.uint64).reshape(n, -1) if n else rec.view(np.uint64)
    for i in range(8, words.shape[1]):
        words[:, i] = (p * np.uint64(2 * i + 1)) & np.uint64(0xFFFFFFFF)
    return rec


def check_stress_records(records: np.ndarray, start: int) -> bool:
    if not len(records):
        return True
    want = stress_records(start, len(records)).view(np.uint64).reshape(len(records), -1)
    got = records.view(np.uint64).reshape(len(records), -1).copy()
    # Word 2 is symbol_id | quality_flags << 32: it may carry the reader's GAP bit.
    got[:, 2] &= ~np.uint64(1 << 32)
    return bool(np.array_equal(got, want))


def stress_write(name: str, total: int, ready: Event, n_readers: int) -> None:
    """Publish `total` stress frames in random batch sizes as fast as possible, then close."""
    writer = RingWriter(name, STRESS_SYMBOLS, capacity=1024)
    ready.set()
    rng = random.Random(3)
    t0 = time.monotonic()
    while len(writer.readers()) < n_readers and time.monotonic() - t0 < 30:
        time.sleep(0.005)
    p = 0
    while p < total:
        k = min(rng.randint(1, 512), total - p)
        writer.publish_records(stress_records(p, k))
        p += k
    writer.close(unlink=False)


def stress_read(name: str, out: str, seed: int, ready: Event) -> None:
    """Read until the ring closes with random pauses; save (frames, lost, bad reads)."""
    ready.wait(30)
    reader = RingReader(name, batch=256, start="oldest")
    rng = random.Random(seed)
    frames = lost = bad = 0
    nxt = reader.position
    t0 = time.monotonic()
    while time.monotonic() - t0 < DEADLINE_S:
        got = reader.read(rng.randint(1, 256), timeout=0.5)
        if got.start != nxt + got.lost or not check_stress_records(got.records, got.start):
            bad += 1
        frames += len(got)
        lost += got.lost
        nxt = got.start + len(got)
        if got.closed:
            break
        if seed and rng.random() < 0.2:
            time.sleep(rng.random() * 0.002)
    np.savez(out, frames=frames, lost=lost, bad=bad, start=reader.position - frames - lost)


def publish_capture(
    name: str, records: np.ndarray, symbols: list[dict[str, str]], ready: Event
) -> None:
    """Create the ring (large enough for every frame), signal, wait for a reader, publish
    `records` in chunks, and close."""
    writer = RingWriter(name, SymbolTable.from_json(symbols), capacity=1 << 15)
    ready.set()
    t0 = time.monotonic()
    while not writer.readers() and time.monotonic() - t0 < 60:
        time.sleep(0.005)
    for i in range(0, len(records), 1024):
        writer.publish_records(records[i : i + 1024])
    writer.close(unlink=False)


class CountingStrategy(BaseStrategy):
    """A strategy for `featureplane strategy attach` tests: pushes and decisions counted."""

    def __init__(self) -> None:
        self.pushed = 0

    def on_features(self, frame: FeatureUpdateFrameV1) -> None:
        self.pushed += 1
