"""Package faces that import their modules on first use, and optional dependencies.

`import featureplane` and `featureplane.sources.<venue>` stay cheap (a CLI starts fast, and
sniffing a file never imports a decoder it does not need); the names still resolve on first
access, and `TYPE_CHECKING` imports in each face give type checkers the real types.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def attribute(package: str, exports: Mapping[str, str], name: str) -> Any:
    """The public `name` of `package`, imported from the module `exports[name]` names."""
    try:
        module = exports[name]
    except KeyError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(module, package), name)


def optional(module: str, extra: str, what: str) -> Any:
    """An optional dependency, or `BackendUnavailableError` (an ImportError) that says which
    extra installs it: the core install is the engine and Parquet only."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        from featureplane.errors import BackendUnavailableError

        raise BackendUnavailableError(
            f"{what} needs the {exc.name} package: pip install 'featureplane[{extra}]'"
        ) from None
