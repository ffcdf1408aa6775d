"""The test-only fault hook: a serving backend made to disagree with the reference.

`disagreeing_backend(monkeypatch, "rust")` wraps every kernel of that backend made from then on
(engines built, `set_backend`, the kernels `featureplane parity` builds in this process) in a
`DisagreeingKernel` that perturbs one feature on the frames whose `seq` is a multiple of
`every`. The perturbation reads only the frame, so a replay of the same messages from the same
state disagrees on the same frames. It lives in the tests and is installed with pytest's
`monkeypatch` (undone after the test): no config, flag or environment variable reaches it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from featureplane.engine import facade
from featureplane.engine.backends import make_kernel
from featureplane.engine.config import EngineConfig, Kernel
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch
from featureplane.frames.wire import pack, record_buffer
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

FEATURE = "imbalance_l5"
DELTA = 0.5
"""Added to the feature: moves the example market maker's fair price by k x 0.5 ticks."""


class DisagreeingKernel:
    """A kernel that gives `feature + delta` on frames with `seq % every == 0`."""

    def __init__(self, inner: Kernel, feature_set: FeatureSet, feature: str, every: int,
                 delta: float) -> None:  # fmt: skip
        self._inner = inner
        self._feature_set = feature_set
        self.name = inner.name
        self._index = feature_set.index(feature)
        self._feature = feature
        self._every = every
        self._delta = delta
        self._perturbed: dict[int, tuple[Any, ...]] = {}
        """Symbol id -> the perturbed values of its last frame (what the pull API serves)."""
        self.perturbed_frames = 0

    def _hit(self, seq: int) -> bool:
        return seq % self._every == 0

    def process(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None:
        frame = self._inner.process(message)
        sid = int(message[-1]["symbol_id"])
        if frame is None:
            return None
        if not self._hit(frame.seq):
            self._perturbed.pop(sid, None)
            return frame
        values = list(frame.values)
        values[self._index] = values[self._index] + self._delta
        self.perturbed_frames += 1
        self._perturbed[sid] = tuple(values)
        return dataclasses.replace(frame, values=tuple(values))

    def process_into(self, message: np.ndarray, out: Any) -> bool:
        view = record_buffer(out, self._inner.frame_size)  # type: ignore[attr-defined]
        frame = self.process(message)
        if frame is None:
            return False
        view[:] = pack(frame, self._feature_set, int(message[-1]["symbol_id"]))
        return True

    def process_batch(self, events: np.ndarray) -> FrameBatch:
        batch = self._inner.process_batch(events)
        hit = batch.columns["seq"] % self._every == 0
        batch.values[self._feature] = np.where(
            hit, batch.values[self._feature] + self._delta, batch.values[self._feature]
        )
        self.perturbed_frames += int(hit.sum())
        return batch

    def symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]:
        values, ready, flags, seq, ts = self._inner.symbol_values(sid)
        return self._perturbed.get(sid, values), ready, flags, seq, ts

    def import_state(self, state: Any | Mapping[str, Any]) -> None:
        self._perturbed.clear()
        self._inner.import_state(state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def disagreeing_backend(
    monkeypatch: pytest.MonkeyPatch, backend: str = "rust", *, feature: str = FEATURE,
    every: int = 7, delta: float = DELTA,
) -> list[DisagreeingKernel]:  # fmt: skip
    """Install the hook for this test; returns the list of wrapped kernels as they are made."""
    made: list[DisagreeingKernel] = []

    def faulty(name: str, symbols: SymbolTable, fs: FeatureSet, config: EngineConfig) -> Kernel:
        kernel = make_kernel(name, symbols, fs, config)
        if name != backend:
            return kernel
        wrapped = DisagreeingKernel(kernel, fs, feature, every, delta)
        made.append(wrapped)
        return wrapped  # type: ignore[return-value]

    monkeypatch.setattr(facade, "make_kernel", faulty)
    return made
