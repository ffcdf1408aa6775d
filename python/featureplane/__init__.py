"""featureplane: one lob_shared_v1 feature kernel for research, backtests and live trading."""

from __future__ import annotations

from featureplane.errors import (
    FeatureplaneError,
    InvalidMessageError,
    OffGridError,
    SchemaMismatchError,
    SourceFormatError,
    SyncError,
    UnknownSymbolError,
)
from featureplane.instruments import InstrumentSpec, SymbolTable

__all__ = [
    "FeatureplaneError",
    "InstrumentSpec",
    "InvalidMessageError",
    "OffGridError",
    "SchemaMismatchError",
    "SourceFormatError",
    "SymbolTable",
    "SyncError",
    "UnknownSymbolError",
    "__version__",
]

__version__ = "0.1.0"
