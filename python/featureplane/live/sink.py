"""Live frames to a feature file: the same Parquet layout research replay writes."""

from __future__ import annotations

from os import PathLike
from typing import Any

import numpy as np

from featureplane.frames.frame import HEADER_COLUMNS, FeatureUpdateFrameV1, FrameBatch
from featureplane.frames.parquet import FeatureFileWriter
from featureplane.instruments import SymbolTable
from featureplane.live.service import MarketUpdate
from featureplane.schema import FeatureSet

FLUSH_FRAMES = 1 << 15


def frames_to_batch(
    frames: list[FeatureUpdateFrameV1], feature_set: FeatureSet, symbols: SymbolTable
) -> FrameBatch:
    """Frame objects as one `FrameBatch` (`input_index` -1: a live frame has no input row)."""
    n = len(frames)
    columns: dict[str, np.ndarray] = {
        "input_index": np.full(n, -1, dtype=HEADER_COLUMNS["input_index"]),
        "symbol_id": np.fromiter(
            (symbols.id_of(f.symbol) for f in frames), HEADER_COLUMNS["symbol_id"], n
        ),
    }
    for name in ("seq", "source_ts_ns", "local_ts_ns", "changed_mask", "warmup_ready_mask",
                 "quality_flags"):  # fmt: skip
        columns[name] = np.fromiter((getattr(f, name) for f in frames), HEADER_COLUMNS[name], n)
    by_feature = list(zip(*(f.values for f in frames), strict=True)) if n else []
    values = {
        spec.name: np.array(by_feature[i] if n else [], dtype=spec.numpy_dtype)
        for i, spec in enumerate(feature_set.features)
    }
    return FrameBatch(feature_set, symbols, columns, values)


class FrameFileSink:
    """A listener writing every frame to a feature file (scaled units).

    Scaled, unlike a replay's default: a live recording must equal research replay bit for
    bit (`featureplane live parity`, the live tests compare frames exactly), and only the
    kernel's own integers, not-ready values included, can. The file says so in its metadata
    and its readers (`load_features`, `FeatureFile.to_polars`, ...) give real units and nulls.
    """

    def __init__(
        self, path: str | PathLike[str], feature_set: FeatureSet, symbols: SymbolTable
    ) -> None:
        self.feature_set = feature_set
        self.symbols = symbols
        self._writer = FeatureFileWriter(path, feature_set, symbols, units="scaled")
        self._frames: list[FeatureUpdateFrameV1] = []
        self.frames = 0

    def __call__(self, update: MarketUpdate) -> None:
        if update.frame is not None:
            self._frames.append(update.frame)
            if len(self._frames) >= FLUSH_FRAMES:
                self.flush()

    def flush(self) -> None:
        if self._frames:
            self._writer.write(frames_to_batch(self._frames, self.feature_set, self.symbols))
            self.frames += len(self._frames)
            self._frames = []

    def close(self, info: dict[str, Any] | None = None) -> None:
        self.flush()
        if info is not None:
            self._writer.set_replay_info(info)
        self._writer.close()
