"""Rolling a backend out: shadow parity against the Python reference, decision parity of a
legacy and a feature strategy, replayable mismatch slices, and the canary gate (docs/rollout.md).
"""

from featureplane.rollout.canary import Criteria, Decision, Verdict, evaluate, load_criteria
from featureplane.rollout.shadow import ShadowOptions, ShadowParity
from featureplane.rollout.slice import ParitySlice, check_slice, is_slice, load_slice

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
