"""What a kernel emits, and how it is stored and sent.

- `frame`: `FeatureUpdateFrameV1`, `FrameBatch`, `FeatureView`, `QualityFlag`, the header columns;
- `wire`: `TypedFeatureFrameV1`, the FPF1 binary layout the Rust core writes;
- `units`: real units of feature values;
- `parquet`: the feature file (writer and reader);
- `load`: feature files into polars, pandas or Arrow.
"""

from featureplane.frames.frame import (
    HEADER_COLUMNS,
    FeatureUpdateFrameV1,
    FeatureView,
    FrameBatch,
    QualityFlag,
    same_frame,
    same_value,
)

__all__ = [
    "HEADER_COLUMNS",
    "FeatureUpdateFrameV1",
    "FeatureView",
    "FrameBatch",
    "QualityFlag",
    "same_frame",
    "same_value",
]
