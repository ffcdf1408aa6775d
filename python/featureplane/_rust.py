"""The compiled extension (`featureplane._core`): one probe, and one rule for its absence.

Two Python/Rust pairs live in the extension: the engine (book + features kernel) and the
Binance line parser. For both, the rule is the same:

- "auto" (or no choice): Rust where it is built, else the Python reference, with one
  `RustBackendWarning` per process and kind, so a slow fallback never goes unnoticed;
- "rust" asked for explicitly (argument or environment): `BackendUnavailableError` when it is
  not built, never a silent fallback;
- "python": the reference, always there.
"""

from __future__ import annotations

import warnings
from typing import Literal

from featureplane.errors import BackendUnavailableError, RustBackendWarning

Kind = Literal["engine", "parser", "plan"]
_ATTRIBUTE: dict[Kind, str] = {"engine": "Engine", "parser": "BinanceChain", "plan": "PlanEngine"}
"""The extension class of each kind; "plan" is the generic kernel of declared feature sets."""
_WHAT: dict[Kind, str] = {
    "engine": "Rust engine",
    "parser": "Rust Binance parser",
    "plan": "Rust plan kernel (declared feature sets)",
}
_warned: set[Kind] = set()


def rust_available(kind: Kind = "engine") -> bool:
    """Whether the extension is built here with the Rust `kind`."""
    try:
        from featureplane import _core
    except ImportError:
        return False
    return hasattr(_core, _ATTRIBUTE[kind])


def use_rust(choice: str, kind: Kind = "engine") -> bool:
    """Apply the rule above to a resolved choice ("auto", "rust" or "python").

    Raises
    ------
    BackendUnavailableError
        "rust" asked for and not built.
    """
    if choice == "python":
        return False
    if rust_available(kind):
        return True
    if choice == "rust":
        raise BackendUnavailableError(
            f"the {_WHAT[kind]} was asked for but featureplane._core is not built with it "
            "here (pip install -e . builds it; choose 'python' for the reference)"
        )
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(
            f"featureplane's {_WHAT[kind]} is not built here; using the Python reference",
            RustBackendWarning,
            stacklevel=3,
        )
    return False
