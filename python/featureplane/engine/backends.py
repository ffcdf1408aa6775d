"""Backend selection: which kernel a FeatureEngine runs.

"rust" is the default where the extension is built; "python" (the reference) otherwise, or when
asked for by argument or by $FEATUREPLANE_BACKEND (rules in `featureplane._rust`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from featureplane._rust import use_rust

if TYPE_CHECKING:
    from featureplane.engine.config import EngineConfig, Kernel
    from featureplane.instruments import SymbolTable
    from featureplane.schema import FeatureSet

BACKEND_ENV = "FEATUREPLANE_BACKEND"
BACKENDS = ("python", "rust")


def resolve_backend(backend: str | None, feature_set: FeatureSet | None = None) -> str:
    """The argument, else $FEATUREPLANE_BACKEND, else "rust" where built, else "python".

    Follows the one rule for a missing Rust build (`featureplane._rust`): an explicit "rust"
    that is not built raises `BackendUnavailableError`; the default falls back with a warning.
    A declared `feature_set` other than the built-in needs the Rust plan kernel (kind "plan")
    under the same rule, so Rust never computes a set it has no kernel for.
    """
    name = backend or os.environ.get(BACKEND_ENV) or "auto"
    if name not in (*BACKENDS, "auto"):
        raise ValueError(f"unknown backend {name!r}: use one of {BACKENDS}")
    if not use_rust(name, "engine"):
        return "python"
    if feature_set is not None and feature_set.plan is not None:
        return "rust" if use_rust(name, "plan") else "python"
    return "rust"


def make_kernel(
    backend: str, symbols: SymbolTable, feature_set: FeatureSet, config: EngineConfig
) -> Kernel:
    """A kernel object of the named (resolved) backend."""
    if backend == "rust":
        from featureplane.engine.rust import RustKernel  # type: ignore[import-not-found,unused-ignore]

        kernel: Kernel = RustKernel(symbols, feature_set, config)
        return kernel
    # Imported here: a Rust run never loads the reference kernel (start-up time).
    from featureplane.engine.python import ReferenceKernel

    return ReferenceKernel(symbols, feature_set, config)
