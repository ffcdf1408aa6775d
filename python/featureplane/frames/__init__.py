"""What a kernel emits, and how it is stored and sent.

- `frame`: `FeatureUpdateFrameV1`, `FrameBatch`, `FeatureView`, `QualityFlag`, the header columns;
- `wire`: `TypedFeatureFrameV1`, the FPF1 binary layout the Rust core writes;
- `units`: real units of feature values;
- `parquet`: the feature file (writer and reader);
- `arrow`: Arrow arrays made from numpy buffers (no pandas import on the way);
- `load`: feature files into polars, pandas or Arrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy

if TYPE_CHECKING:
    from featureplane.frames.frame import (
        HEADER_COLUMNS,
        FeatureUpdateFrameV1,
        FeatureView,
        FrameBatch,
        QualityFlag,
        same_frame,
        same_value,
    )

UNITS: tuple[str, ...] = ("real", "scaled")
"""What feature files and tables hold: real units, or the kernel's scaled ints."""
DEFAULT_UNITS = "real"
"""What a file or table for people holds: real units, nulls where not ready
(`featureplane.frames.parquet`). Here, in the package face that imports nothing heavy, so the
replay drivers name it before numpy or pyarrow load (`featureplane replay`'s start-up)."""

_EXPORTS = {
    "HEADER_COLUMNS": ".frame",
    "FeatureUpdateFrameV1": ".frame",
    "FeatureView": ".frame",
    "FrameBatch": ".frame",
    "QualityFlag": ".frame",
    "same_frame": ".frame",
    "same_value": ".frame",
}

__all__ = [
    "DEFAULT_UNITS",
    "HEADER_COLUMNS",
    "UNITS",
    "FeatureUpdateFrameV1",
    "FeatureView",
    "FrameBatch",
    "QualityFlag",
    "same_frame",
    "same_value",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
