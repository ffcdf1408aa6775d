"""Rolling a backend out: shadow parity against the Python reference, decision parity of a
legacy and a feature strategy, replayable mismatch slices, and the canary gate (docs/rollout.md).

Imported on first use (`featureplane._lazy`): the command line reads `rollout.cli` for its
options, which must not bring the shadow's reference kernel with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy

if TYPE_CHECKING:
    from featureplane.rollout.canary import Criteria, Decision, Verdict, evaluate, load_criteria
    from featureplane.rollout.shadow import ShadowOptions, ShadowParity
    from featureplane.rollout.slice import ParitySlice, check_slice, is_slice, load_slice

_EXPORTS = {
    "Criteria": ".canary",
    "Decision": ".canary",
    "ParitySlice": ".slice",
    "ShadowOptions": ".shadow",
    "ShadowParity": ".shadow",
    "Verdict": ".canary",
    "check_slice": ".slice",
    "evaluate": ".canary",
    "is_slice": ".slice",
    "load_criteria": ".canary",
    "load_slice": ".slice",
}

__all__ = [
    "Criteria",
    "Decision",
    "ParitySlice",
    "ShadowOptions",
    "ShadowParity",
    "Verdict",
    "check_slice",
    "evaluate",
    "is_slice",
    "load_criteria",
    "load_slice",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
