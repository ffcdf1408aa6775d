"""The FeatureEngine and its two kernels: the Python reference and the Rust core.

- `config`: `EngineConfig` and the `Kernel` protocol every backend implements;
- `facade`: `FeatureEngine`, the one API of both backends (process, pull, push, set_backend);
- `backends`: which backend runs, and the one rule for a missing Rust build;
- `python`: `ReferenceKernel`, the executable spec of the per-message path;
- `rust`: `RustKernel` over `featureplane._core`;
- `state`: `EngineState`, the backend-neutral state behind `set_backend` and checkpoints.
"""

from featureplane.engine.config import EngineConfig, Kernel
from featureplane.engine.facade import FeatureEngine, Subscription
from featureplane.engine.state import EngineState

__all__ = ["EngineConfig", "EngineState", "FeatureEngine", "Kernel", "Subscription"]
