"""The FeatureEngine and its two kernels: the Python reference and the Rust core.

- `config`: `EngineConfig` and the `Kernel` protocol every backend implements;
- `facade`: `FeatureEngine`, the one API of both backends (process, pull, push, set_backend);
- `backends`: which backend runs, and the one rule for a missing Rust build;
- `python`: `ReferenceKernel`, the executable spec of the per-message path;
- `rust`: `RustKernel` over `featureplane._core`;
- `state`: `EngineState`, the backend-neutral state behind `set_backend` and checkpoints.

Imported on first use (`featureplane._lazy`): `engine.backends` is read by every command line
parser for its backend names, and must not bring both kernels with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy

if TYPE_CHECKING:
    from featureplane.engine.config import EngineConfig, Kernel
    from featureplane.engine.facade import FeatureEngine, Subscription
    from featureplane.engine.state import EngineState

_EXPORTS = {
    "EngineConfig": ".config",
    "EngineState": ".state",
    "FeatureEngine": ".facade",
    "Kernel": ".config",
    "Subscription": ".facade",
}

__all__ = ["EngineConfig", "EngineState", "FeatureEngine", "Kernel", "Subscription"]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
