"""Backend selection: which kernel a FeatureEngine runs.

"rust" is the default where the extension is built; "python" (the reference) otherwise, or when
asked for by argument or by $FEATUREPLANE_BACKEND. A missing extension falls back to Python
with one warning per process.
"""

from __future__ import annotations

import os
import warnings
from typing import Protocol

import numpy as np

from featureplane.features.kernel import EngineConfig, ReferenceKernel
from featureplane.features.registry import FeatureSet
from featureplane.frames import FeatureUpdateFrameV1, FrameBatch
from featureplane.instruments import SymbolTable

BACKEND_ENV = "FEATUREPLANE_BACKEND"
BACKENDS = ("python", "rust")
_warned_missing = False


class RustBackendWarning(RuntimeWarning):
    """The Rust backend was asked for (or is the default) but is not available."""


class Kernel(Protocol):
    """What a backend implements; `ReferenceKernel` is the specification."""

    name: str

    def process(self, message: np.ndarray) -> FeatureUpdateFrameV1 | None: ...

    def process_batch(self, events: np.ndarray) -> FrameBatch: ...

    def symbol_values(self, sid: int) -> tuple[tuple[int | float, ...], int, int, int, int]: ...

    def reset_symbol(self, sid: int) -> None: ...

    @property
    def lob(self) -> object: ...

    @property
    def counters(self) -> dict[str, int]: ...


def rust_available() -> bool:
    try:
        from featureplane import rust_kernel  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str | None) -> str:
    """The argument, else $FEATUREPLANE_BACKEND, else "rust" where built, else "python"."""
    name = backend or os.environ.get(BACKEND_ENV) or ("rust" if rust_available() else "python")
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: use one of {BACKENDS}")
    if name == "rust" and not rust_available():
        global _warned_missing
        if not _warned_missing:
            warnings.warn(
                "featureplane's Rust extension is not built here; using the Python reference",
                RustBackendWarning,
                stacklevel=3,
            )
            _warned_missing = True
        return "python"
    return name


def make_kernel(
    backend: str, symbols: SymbolTable, feature_set: FeatureSet, config: EngineConfig
) -> Kernel:
    """A kernel object of the named (resolved) backend."""
    if backend == "rust":
        from featureplane.rust_kernel import RustKernel  # type: ignore[import-not-found,unused-ignore]

        kernel: Kernel = RustKernel(symbols, feature_set, config)
        return kernel
    return ReferenceKernel(symbols, feature_set, config)
