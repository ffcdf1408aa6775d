"""LOBSTER (lobsterdata.com) files -> normalized messages, and their validation.

LOBSTER rebuilds a NASDAQ book from TotalView-ITCH and ships, per ticker and day, an
order-level message file and an orderbook file with the N best levels after every message.
`LobsterReader` turns the pair into `EVENT_DTYPE` messages: a start snapshot (seq 0), then one
message per message row (seq = row number) carrying the new absolute size of the level it
touched and, for executions, the trade. Levels that come into view from beyond the file's N
levels are taken from the orderbook file ("depth refill"); every other level is checked
against it. `featureplane.checks.lobster.validate_lobster` replays the stream through
`LOBEngine` and
compares the N levels after every row with the orderbook file. docs/sources/lobster.md has the
rules and findings.

Imported on first use like every venue's face: the format registry imports `FORMAT` (the
sniffer) only, not the reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.sources.lobster.format import FORMAT

if TYPE_CHECKING:
    from featureplane.sources.lobster.book import DepthCounts
    from featureplane.sources.lobster.files import (
        DEFAULT_TICK,
        DEFAULT_TZ,
        LobsterName,
        LobsterPath,
        ZipMember,
        lobster_zip_members,
        parse_lobster_name,
    )
    from featureplane.sources.lobster.reader import (
        DEFAULT_CHUNK_MESSAGES,
        LobsterReader,
        LobsterReplay,
        iter_lobster,
        read_lobster,
    )
    from featureplane.sources.lobster.stats import Halt, LobsterStats

_EXPORTS = {
    "DEFAULT_CHUNK_MESSAGES": ".reader",
    "DEFAULT_TICK": ".files",
    "DEFAULT_TZ": ".files",
    "DepthCounts": ".book",
    "Halt": ".stats",
    "LobsterName": ".files",
    "LobsterPath": ".files",
    "LobsterReader": ".reader",
    "LobsterReplay": ".reader",
    "LobsterStats": ".stats",
    "ZipMember": ".files",
    "iter_lobster": ".reader",
    "lobster_zip_members": ".files",
    "parse_lobster_name": ".files",
    "read_lobster": ".reader",
}

__all__ = [
    "DEFAULT_CHUNK_MESSAGES",
    "DEFAULT_TICK",
    "DEFAULT_TZ",
    "FORMAT",
    "DepthCounts",
    "Halt",
    "LobsterName",
    "LobsterPath",
    "LobsterReader",
    "LobsterReplay",
    "LobsterStats",
    "ZipMember",
    "iter_lobster",
    "lobster_zip_members",
    "parse_lobster_name",
    "read_lobster",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
