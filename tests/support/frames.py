"""Exact comparison of frames and frame batches: headers equal, floats bit for bit, NaN bits
(sign and payload) included, integers of the same type and value."""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch

HEADER = (
    "symbol",
    "seq",
    "source_ts_ns",
    "local_ts_ns",
    "feature_set_id",
    "changed_mask",
    "warmup_ready_mask",
    "quality_flags",
    "marker",
)


def identical(a: object, b: object) -> bool:
    """Floats by their bits (NaN sign and payload included), ints by type and value."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, float)
            and isinstance(b, float)
            and struct.pack("<d", a) == struct.pack("<d", b)
        )
    return type(a) is type(b) and a == b


def assert_frames_identical(
    got: Sequence[FeatureUpdateFrameV1 | None], want: Sequence[FeatureUpdateFrameV1 | None]
) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g is None or w is None:
            assert g is w, (i, g, w)
            continue
        for name in HEADER:
            assert getattr(g, name) == getattr(w, name), (i, name, g, w)
        bad = [k for k, (a, b) in enumerate(zip(g.values, w.values, strict=True))
               if not identical(a, b)]  # fmt: skip
        assert not bad, (i, bad, g.values, w.values)


def assert_batches_identical(got: FrameBatch, want: FrameBatch) -> None:
    assert len(got) == len(want)
    for name, col in want.columns.items():
        assert got.columns[name].dtype == col.dtype, name
        np.testing.assert_array_equal(got.columns[name], col, err_msg=name)
    assert list(got.values) == list(want.values)
    for name, col in want.values.items():
        mine = got.values[name]
        assert mine.dtype == col.dtype, name
        # Bytes, not values: NaN bits count, -0.0 differs from 0.0.
        assert mine.tobytes() == col.tobytes(), name
