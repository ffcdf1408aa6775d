"""Databento MBO (DBN) files, market by order aggregated to L2; docs/sources/databento.md.

Reading needs `databento_dbn`; importing this package does not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.sources.databento.format import FORMAT

if TYPE_CHECKING:
    from featureplane.sources.databento.reader import (
        BUILTIN_TICKS,
        DEFAULT_CHUNK_MESSAGES,
        SEQ_SHIFT,
        DatabentoReader,
        DatabentoReplay,
        DatabentoStats,
        builtin_spec,
        iter_databento,
        read_databento,
        venue_sequence,
    )
    from featureplane.sources.databento.stats import (
        SKIP_REASONS,
        WARNING_REASONS,
    )

_EXPORTS = {
    "BUILTIN_TICKS": ".reader",
    "DEFAULT_CHUNK_MESSAGES": ".reader",
    "DatabentoReader": ".reader",
    "DatabentoReplay": ".reader",
    "DatabentoStats": ".reader",
    "SEQ_SHIFT": ".reader",
    "SKIP_REASONS": ".stats",
    "WARNING_REASONS": ".stats",
    "builtin_spec": ".reader",
    "iter_databento": ".reader",
    "read_databento": ".reader",
    "venue_sequence": ".reader",
}

__all__ = [
    "BUILTIN_TICKS",
    "DEFAULT_CHUNK_MESSAGES",
    "FORMAT",
    "SEQ_SHIFT",
    "SKIP_REASONS",
    "WARNING_REASONS",
    "DatabentoReader",
    "DatabentoReplay",
    "DatabentoStats",
    "builtin_spec",
    "iter_databento",
    "read_databento",
    "venue_sequence",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
