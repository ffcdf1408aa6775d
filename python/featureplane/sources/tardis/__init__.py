"""tardis.dev `incremental_book_L2` and `trades` CSV files; docs/sources/tardis.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.sources.tardis.format import FORMAT

if TYPE_CHECKING:
    from featureplane.sources.tardis.reader import (
        DEFAULT_CHUNK_MESSAGES,
        DEFAULT_PROBE_ROWS,
        TardisFile,
        TardisReader,
        TardisReplay,
        TardisStats,
        iter_tardis,
        read_tardis,
    )
    from featureplane.sources.tardis.stats import (
        SKIP_REASONS,
    )

_EXPORTS = {
    "DEFAULT_CHUNK_MESSAGES": ".reader",
    "DEFAULT_PROBE_ROWS": ".reader",
    "SKIP_REASONS": ".stats",
    "TardisFile": ".reader",
    "TardisReader": ".reader",
    "TardisReplay": ".reader",
    "TardisStats": ".reader",
    "iter_tardis": ".reader",
    "read_tardis": ".reader",
}

__all__ = [
    "DEFAULT_CHUNK_MESSAGES",
    "DEFAULT_PROBE_ROWS",
    "FORMAT",
    "SKIP_REASONS",
    "TardisFile",
    "TardisReader",
    "TardisReplay",
    "TardisStats",
    "iter_tardis",
    "read_tardis",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
