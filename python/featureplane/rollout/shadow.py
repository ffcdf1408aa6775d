"""Shadow parity: the serving backend's frames held against the Python reference, off the hot
path.

**Design: sampled windows from a checkpoint.** The reference must see every event of a
symbol to hold that symbol's state, and running the reference on every event costs the
process what the serving backend saves. So the shadow does not follow the stream: at a
sample point the hot path exports the serving engine's state (`EngineState`, the checkpoint
`set_backend` uses) and hands it, then the next `window` messages with the frames the serving
engine made of them, to a shadow thread through a bounded queue. The thread restores the
checkpoint into its own reference engine, applies the same messages and compares frame by
frame. Every comparison starts from the serving engine's own state, so it checks each step of
the serving kernel (book, features, flags, and the state the next step reads: a window spans
several frames) at a cost proportional to the sample.

- **Sampling**: windows open at random (a geometric countdown, seeded) so that about `sample`
  of the messages are compared; `sample >= 1` compares every message (back-to-back windows).
- **Always around a resync or reset**: a message that starts with a CLEAR (a snapshot: a
  resync, a reset) opens a window there, or stretches the open one, so the snapshot's frame and
  the `window` frames after it are compared; the first gap-flagged frame of a symbol opens a
  window at the next message (the frames up to the resync).
- **Queue policy**: `put_nowait` only; when the queue is full the item is dropped and counted
  (`parity_queue_dropped`, in messages) and the window ends there. The thread has compared a
  gap-free prefix of that window; the next window starts from a fresh checkpoint, so a drop
  never produces a false mismatch and never blocks the hot path.
- **A mismatch** is counted per frame and per column (header field or feature), and the first
  one of a window is saved as a replayable slice (`featureplane.rollout.slice`): the
  checkpoint, the window's messages up to it, both frames. At most `max_slices` are saved.

The thread shares the GIL with the hot path: the reference's work is at most `sample` of the
stream, done between the loop's switches (the interpreter's switch interval bounds a stall).
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.checks.parity import ABS_TOL, REL_TOL
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PlanEngineState
from featureplane.engine.state import EngineState
from featureplane.events import CLEAR
from featureplane.frames.frame import FeatureUpdateFrameV1, QualityFlag
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

log = logging.getLogger("featureplane.rollout")

HEADER_FIELDS = (
    "symbol", "seq", "source_ts_ns", "local_ts_ns", "changed_mask", "warmup_ready_mask",
    "quality_flags",
)  # fmt: skip
FRAME_PRESENCE = "frame"
"""The column a mismatch is counted on when one side made a frame and the other dropped the
message."""


@dataclass(frozen=True)
class ShadowOptions:
    """How the shadow samples and where it saves slices.

    sample
        Fraction of messages compared (0 < sample; 1 or more: every message).
    window
        Messages compared from each checkpoint.
    queue_max
        Bound of the queue to the shadow thread, in items (one per message, one per
        checkpoint).
    slice_dir
        Where mismatch slices go (None: not saved).
    max_slices
        Slices saved at most.
    reference
        The backend the serving frames are held against.
    seed
        Seed of the sampling countdown (a run samples the same messages every time).
    """

    sample: float = 0.01
    window: int = 1024
    queue_max: int = 4096
    slice_dir: str | PathLike[str] | None = None
    max_slices: int = 10
    reference: str = "python"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.sample > 0 or not self.window > 0 or not self.queue_max > 0:
            raise ValueError("sample, window and queue_max must be positive")
        if self.max_slices < 0:
            raise ValueError("max_slices must not be negative")


@dataclass
class ShadowCounters:
    frames_compared: int = 0
    mismatched_frames: int = 0
    slices_saved: int = 0
    queue_dropped: int = 0
    """Messages the shadow could not take (queue full)."""
    windows: int = 0
    errors: int = 0
    """Windows ended by an exception in the reference (logged; the thread goes on)."""


_STOP = object()


class ShadowParity:
    """Compares the serving engine's frames with the reference (see the module doc).

    Parameters
    ----------
    symbols, feature_set, config
        The serving engine's, so the reference engine is its twin.
    serving
        The serving backend's name (for the slices and the log).
    options
        Sampling, queue and slices.
    """

    def __init__(
        self,
        symbols: SymbolTable,
        feature_set: FeatureSet,
        config: EngineConfig,
        options: ShadowOptions | None = None,
    ) -> None:
        self.options = opts = options or ShadowOptions()
        self.symbols = symbols
        self.feature_set = feature_set
        self.config = config
        self.counters = ShadowCounters()
        self.mismatches: Counter[str] = Counter()
        """Mismatched values by column (feature name, header field, or `frame`)."""
        self.slices: list[Path] = []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=opts.queue_max)
        self._rng = random.Random(opts.seed)
        self._left = 0
        """Messages still to send in the open window (0: none open)."""
        self._window_id = 0
        self._countdown = self._draw()
        self._open_next = False
        self._gapped: set[str] = set()
        self._thread: threading.Thread | None = None
        self._ref = FeatureEngine(symbols, feature_set, backend=opts.reference, config=config)

    # ----- the hot path -------------------------------------------------------------------

    def process(self, engine: FeatureEngine, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        """`engine.process(message)`, with the message and its frame sampled for the shadow."""
        if self._left <= 0:
            self._countdown -= 1
            if self._countdown <= 0 or self._open_next or int(message["kind"][0]) == CLEAR:
                self._open(engine)
        elif int(message["kind"][0]) == CLEAR:
            self._left = max(self._left, self.options.window)
        frame = engine.process(message)
        if self._left > 0:
            self._left -= 1
            self._put(("msg", self._window_id, message, frame))
        if frame is not None and frame.quality_flags & QualityFlag.GAP_DETECTED:
            if frame.symbol not in self._gapped:
                self._gapped.add(frame.symbol)
                self._open_next = self._left <= 0
        elif frame is not None and self._gapped:
            self._gapped.discard(frame.symbol)
        return frame

    def _draw(self) -> int:
        """Messages until the next sampled window (geometric, mean `window / sample`)."""
        p = min(1.0, self.options.sample / self.options.window)
        if p >= 1.0 or self.options.sample >= 1.0:
            return 0
        u = self._rng.random()
        return 1 + int(math.log(1.0 - u) / math.log(1.0 - p))

    def _open(self, engine: FeatureEngine) -> None:
        self._open_next = False
        self._countdown = self._draw()
        if self._queue.full():
            # No checkpoint (it costs milliseconds) for a window the queue cannot take: the
            # message wanted for a comparison is a drop, counted.
            self.counters.queue_dropped += 1
            return
        self._window_id += 1
        self._left = self.options.window
        self._put(("state", self._window_id, engine.export_state(), engine.backend))

    def _put(self, item: tuple[Any, ...]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            # Never wait: count, end the window; the next one starts from a new checkpoint.
            if item[0] == "msg":
                self.counters.queue_dropped += 1
            self._left = 0

    # ----- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the shadow thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow-parity", daemon=True)
            self._thread.start()

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the thread has compared everything queued; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 30.0) -> None:
        """Compare what is queued, then stop the thread (bounded by `timeout_s`)."""
        if self._thread is None:
            return
        self.wait_idle(timeout_s)
        try:
            self._queue.put(_STOP, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)
        self._thread = None

    # ----- the shadow thread --------------------------------------------------------------

    def _run(self) -> None:
        window = -1
        checkpoint: EngineState | PlanEngineState | None = None
        serving = ""
        messages: list[np.ndarray] = []
        saved = True
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                kind, wid = item[0], item[1]
                if kind == "state":
                    window, checkpoint, serving = wid, item[2], item[3]
                    messages, saved = [], False
                    self._ref.import_state(checkpoint)
                    self.counters.windows += 1
                    continue
                if wid != window or checkpoint is None:
                    continue  # a window whose checkpoint was dropped
                message, frame = item[2], item[3]
                messages.append(message)
                ref = self._ref.process(message)
                bad = compare_frames(frame, ref, self.feature_set)
                self.counters.frames_compared += 1
                if not bad:
                    continue
                self.counters.mismatched_frames += 1
                self.mismatches.update(bad)
                if not saved:
                    saved = True
                    self._save(checkpoint, serving, messages, frame, ref, bad)
            except Exception:  # the reference refused what the serving engine took: a finding
                self.counters.errors += 1
                log.exception("shadow parity: window %d ended by an error", window)
                window, checkpoint = -1, None
            finally:
                self._queue.task_done()

    def _save(
        self,
        checkpoint: EngineState | PlanEngineState,
        serving: str,
        messages: list[np.ndarray],
        frame: FeatureUpdateFrameV1 | None,
        ref: FeatureUpdateFrameV1 | None,
        bad: list[str],
    ) -> None:
        from featureplane.rollout.slice import save_slice

        opts = self.options
        either = frame or ref
        log.warning(
            "shadow parity: %s differs from %s on %s (%s)",
            serving, opts.reference, either.symbol if either else "?", ", ".join(bad),
        )  # fmt: skip
        if opts.slice_dir is None or len(self.slices) >= opts.max_slices:
            return
        path = Path(opts.slice_dir) / f"slice-{self.counters.windows:06d}-{time.time_ns()}"
        try:
            save_slice(
                path, symbols=self.symbols, config=self.config, serving=serving,
                reference=opts.reference, state=checkpoint, events=np.concatenate(messages),
                serving_frame=frame, reference_frame=ref, mismatched=bad,
            )  # fmt: skip
        except OSError:
            log.exception("shadow parity: could not save a slice to %s", path)
            return
        self.slices.append(path)
        self.counters.slices_saved += 1

    # ----- metrics ------------------------------------------------------------------------

    def collect_metrics(self) -> Iterable[Any]:
        """The `featureplane_parity_*` families (docs/rollout.md)."""
        from prometheus_client.core import CounterMetricFamily

        c = self.counters
        yield CounterMetricFamily(
            "featureplane_parity_frames_compared", "Frames the shadow compared with the "
            "reference", value=c.frames_compared,
        )  # fmt: skip
        yield CounterMetricFamily(
            "featureplane_parity_mismatched_frames",
            "Frames that differ from the reference",
            value=c.mismatched_frames,
        )
        per = CounterMetricFamily(
            "featureplane_parity_mismatches", "Mismatched values by column", labels=["feature"]
        )
        for name, n in sorted(self.mismatches.items()):
            per.add_metric([name], n)
        yield per
        yield CounterMetricFamily(
            "featureplane_parity_slices_saved", "Mismatch slices saved", value=c.slices_saved
        )
        yield CounterMetricFamily(
            "featureplane_parity_queue_dropped", "Messages the shadow could not take (queue "
            "full; never blocks the hot path)", value=c.queue_dropped,
        )  # fmt: skip


def compare_frames(
    a: FeatureUpdateFrameV1 | None, b: FeatureUpdateFrameV1 | None, feature_set: FeatureSet
) -> list[str]:
    """The columns where two frames of one message differ (the parity gate's rule: headers and
    integers exact, f64 within 1e-9 relative or 1e-12 absolute, NaN where the other has NaN)."""
    if a is None or b is None:
        return [] if a is b else [FRAME_PRESENCE]
    bad = [f for f in HEADER_FIELDS if getattr(a, f) != getattr(b, f)]
    for name, x, y in zip(feature_set.names, a.values, b.values, strict=True):
        if isinstance(x, float) or isinstance(y, float):
            fx, fy = float(x), float(y)
            if fx != fx or fy != fy:
                if (fx != fx) != (fy != fy):
                    bad.append(name)
            elif abs(fx - fy) > max(ABS_TOL, REL_TOL * abs(fy)):
                bad.append(name)
        elif x != y:
            bad.append(name)
    return bad
