"""hftbacktest event arrays (`.npz`), read and exported; docs/sources/hftbacktest.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.sources.hftbacktest.format import FORMAT

if TYPE_CHECKING:
    from featureplane.sources.hftbacktest.reader import (
        GRID_TOLERANCE,
        HftbacktestReplay,
        HftbacktestStats,
        read_hftbacktest_events,
        to_hftbacktest_events,
    )

_EXPORTS = {
    "GRID_TOLERANCE": ".reader",
    "HftbacktestReplay": ".reader",
    "HftbacktestStats": ".reader",
    "read_hftbacktest_events": ".reader",
    "to_hftbacktest_events": ".reader",
}

__all__ = [
    "FORMAT",
    "GRID_TOLERANCE",
    "HftbacktestReplay",
    "HftbacktestStats",
    "read_hftbacktest_events",
    "to_hftbacktest_events",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
