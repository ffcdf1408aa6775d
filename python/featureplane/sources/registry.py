"""The venues: detect a recorded file's venue from its content, and open any of them.

`detect_format(path)` sniffs a file (magic bytes, then the first lines or archive members) and
names its venue; the file name is only a hint. `REGISTRY` maps each venue to its `SourceFormat`
(`featureplane.sources.format`), so replay code never names a venue. Adding a venue is one
folder with a `format.py` and one line in `VENUES` (docs/sources/README.md).
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Sequence
from os import PathLike, fspath
from pathlib import Path

from featureplane.errors import SourceFormatError
from featureplane.sources.format import OpenedSource, SourceFormat, SourceOptions, peek

VENUES: tuple[str, ...] = ("binance", "lobster", "tardis", "databento", "hftbacktest")
"""Every venue `detect_format` can name, in the order it tries them: one line per venue."""


def _load(venue: str) -> SourceFormat:
    fmt: SourceFormat = importlib.import_module(f"featureplane.sources.{venue}.format").FORMAT
    return fmt


REGISTRY: dict[str, SourceFormat] = {v: _load(v) for v in VENUES}
"""Venue name -> its reader contract (sniff, plan, open)."""

FORMATS: tuple[str, ...] = VENUES


def detect_format(path: str | PathLike[str]) -> str:
    """The venue of a recorded file, from its content.

    binance: `<int> <json>` lines (gzip or plain) with Binance stream or REST-snapshot keys;
    lobster: a zip with a `*_message_N.csv` member, or a CSV of 6 numeric columns (a message
    file; a `*_orderbook_N.csv` of 4N numeric columns too); tardis: an `incremental_book_L2` or
    `trades` CSV header (gzip or plain); databento: `DBN` magic, plain or zstd; hftbacktest: an
    `.npz` whose `data` array has hftbacktest's event dtype.

    Raises
    ------
    SourceFormatError
        None of the venues matches; names the file, the venues tried and what it looks like.
    FileNotFoundError
        No such file.
    """
    p = Path(fspath(path))
    start = peek(p)
    try:
        for name, fmt in REGISTRY.items():
            if fmt.sniff(start):
                return name
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SourceFormatError(
            str(p), None, f"unreadable {start.container} file ({exc})"
        ) from None
    seen = start.note or start.describe()
    tried = ", ".join(REGISTRY)
    raise SourceFormatError(str(p), None, f"unknown format (tried {tried}): {seen}")


def source_format(fmt: str) -> SourceFormat:
    """The registered venue `fmt`."""
    try:
        return REGISTRY[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(REGISTRY)}") from None


def open_source(
    fmt: str, files: Sequence[str | PathLike[str]], options: SourceOptions | None = None
) -> OpenedSource:
    """Open files of one venue (a chain, or several chains of a `merges` venue)."""
    return source_format(fmt).open([fspath(f) for f in files], options or SourceOptions())
