"""featureplane: one feature kernel for research, backtests and live trading.

The common path is here by name (imported on first use, so `import featureplane` stays cheap)::

    import featureplane as fp

    capture = fp.read_binance(["btcusdt_20240808.gz"])
    engine = fp.FeatureEngine(capture.symbols)
    frames = engine.process_batch(capture.events)

The data path, one package each: `sources` -> `book` -> `features` -> `engine` -> `frames` ->
consumers (`replay`, `adapters.hftbacktest`, `strategy`); `schema` is the feature-set contract
and `errors` every exception class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.errors import (
    BackendUnavailableError,
    FeatureplaneError,
    InvalidMessageError,
    InvalidStateError,
    OffGridError,
    SchemaMismatchError,
    SourceFormatError,
    SyncError,
    UnknownSymbolError,
)

# Registers the default feature set, so every `get_feature_set()` finds it.
from featureplane.features import lob_shared_v1 as _lob_shared_v1  # noqa: F401

if TYPE_CHECKING:
    from featureplane.engine.config import EngineConfig
    from featureplane.engine.facade import FeatureEngine
    from featureplane.engine.state import EngineState
    from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
    from featureplane.frames.load import load_features
    from featureplane.frames.parquet import read_feature_file
    from featureplane.instruments import InstrumentSpec, SymbolTable
    from featureplane.replay.parallel import replay_files
    from featureplane.replay.run import replay_events
    from featureplane.schema import FeatureSet, FeatureSpec, get_feature_set
    from featureplane.sources.binance.reader import iter_binance, read_binance
    from featureplane.sources.databento.reader import iter_databento, read_databento
    from featureplane.sources.hftbacktest.reader import read_hftbacktest_events
    from featureplane.sources.lobster.reader import iter_lobster, read_lobster
    from featureplane.sources.registry import detect_format
    from featureplane.sources.tardis.reader import iter_tardis, read_tardis

_EXPORTS = {
    "EngineConfig": ".engine.config",
    "EngineState": ".engine.state",
    "FeatureEngine": ".engine.facade",
    "FeatureSet": ".schema",
    "FeatureSpec": ".schema",
    "FeatureUpdateFrameV1": ".frames.frame",
    "FrameBatch": ".frames.frame",
    "InstrumentSpec": ".instruments",
    "QualityFlag": ".frames.frame",
    "detect_format": ".sources.registry",
    "get_feature_set": ".schema",
    "iter_binance": ".sources.binance.reader",
    "iter_databento": ".sources.databento.reader",
    "iter_lobster": ".sources.lobster.reader",
    "iter_tardis": ".sources.tardis.reader",
    "load_features": ".frames.load",
    "read_binance": ".sources.binance.reader",
    "read_databento": ".sources.databento.reader",
    "read_feature_file": ".frames.parquet",
    "read_hftbacktest_events": ".sources.hftbacktest.reader",
    "read_lobster": ".sources.lobster.reader",
    "read_tardis": ".sources.tardis.reader",
    "replay_events": ".replay.run",
    "replay_files": ".replay.parallel",
    "SymbolTable": ".instruments",
}

__all__ = [
    "BackendUnavailableError",
    "EngineConfig",
    "EngineState",
    "FeatureEngine",
    "FeatureSet",
    "FeatureSpec",
    "FeatureUpdateFrameV1",
    "FeatureplaneError",
    "FrameBatch",
    "InstrumentSpec",
    "InvalidMessageError",
    "InvalidStateError",
    "OffGridError",
    "QualityFlag",
    "SchemaMismatchError",
    "SourceFormatError",
    "SymbolTable",
    "SyncError",
    "UnknownSymbolError",
    "__version__",
    "detect_format",
    "get_feature_set",
    "iter_binance",
    "iter_databento",
    "iter_lobster",
    "iter_tardis",
    "load_features",
    "read_binance",
    "read_databento",
    "read_feature_file",
    "read_hftbacktest_events",
    "read_lobster",
    "read_tardis",
    "replay_events",
    "replay_files",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
