"""Research-only features: user Python functions computed after the kernel.

Design section 4's placement policy made explicit: a feature starts in research as a Python (or
numba) function over the book view and the kernel's frame. It runs in research replay and
backtests, after the kernel, one call per frame; its metadata carries `FLAG_RESEARCH_ONLY`;
the live runtime refuses a set holding one (`ResearchOnlyError`) until the feature is promoted:
written as a catalogue family with a Python reference and a Rust kernel
(docs/features/adding-a-feature.md). Declared in a set's TOML::

    [[research]]
    id = "book_pressure"
    function = "mypkg.features:book_pressure"   # module:name, importable where it runs
    depth = 5                                    # levels per side it reads

The function is called as `fn(book, frame)`: `book` a `BookTop` (the best `depth` levels
of each side, tick and lot), `frame` the kernel's frame of the message (kernel features only).
It returns a float, or None when it has no value (the feature keeps its last value, not
ready). A value is ready when it is finite and the book is trusted (no gap since the last
snapshot), and after a reset the feature starts again from NaN.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from featureplane.features.l1 import Levels
from featureplane.schema import FLAG_RESEARCH_ONLY, FeatureSpec

if TYPE_CHECKING:
    from featureplane.frames.frame import FeatureUpdateFrameV1

__all__ = ["BookTop", "ResearchDecl", "ResearchFn", "load_function", "research_json"]


class BookTop(NamedTuple):
    """The best levels of each side (px ticks, qty lots; best first) and the grid."""

    bids: Levels
    asks: Levels
    tick: float
    lot: float


ResearchFn = Callable[[BookTop, "FeatureUpdateFrameV1"], float | None]


@dataclass(frozen=True)
class ResearchDecl:
    """One research-only feature: its id, its function (`module:name`) and the levels per side
    it reads."""

    id: str
    function: str
    depth: int = 1
    description: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "function": self.function, "id": self.id}

    def to_dict(self) -> dict[str, Any]:
        out = self.to_json()
        if self.description is not None:
            out["description"] = self.description
        return out

    def spec(self, feature_id: int) -> FeatureSpec:
        desc = self.description or f"research-only: {self.function}"
        return FeatureSpec(
            feature_id, self.id, "f64", 0, "research", 1, "book", FLAG_RESEARCH_ONLY, desc
        )


def research_json(decls: tuple[ResearchDecl, ...]) -> str:
    """The canonical text of a set's research features (covered by its schema hash)."""
    return json.dumps([d.to_json() for d in decls], sort_keys=True, separators=(",", ":"))


def load_function(spec: str) -> ResearchFn:
    """The callable `module:name` names.

    Raises
    ------
    ImportError, AttributeError
        No such module or name; TypeError: not callable.
    """
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"function must be 'module:name', got {spec!r}")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    fn: ResearchFn = obj
    return fn


def value_of(result: float | None) -> tuple[float, bool]:
    """(value, has a value) of a function's result (None or a float)."""
    if result is None:
        return math.nan, False
    x = float(result)
    return x, math.isfinite(x)
