"""tardis.dev CSV files as a venue of the registry: sniff, plan, open."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from featureplane.errors import SourceFormatError
from featureplane.sources.format import (
    Chain,
    OpenedSource,
    Peek,
    SourceFormat,
    SourceOptions,
    file_stem,
)

if TYPE_CHECKING:
    from featureplane.sources.tardis.parse import SymbolProbe

# The parser (and numpy with it) is imported by the functions that use it: the registry imports
# every venue's format to sniff a file, and a file of another venue never needs this one's.


def sniff(peek: Peek) -> bool:
    """An `incremental_book_L2` or `trades` CSV header (gzip or plain)."""
    from featureplane.sources.tardis.parse import HEADERS

    return peek.csv_row() in HEADERS.values()


def plan(files: Sequence[str], options: SourceOptions) -> list[Chain]:
    """Files sharing a symbol form one chain (book and trades files of a symbol merge)."""
    from featureplane.sources.tardis.parse import probe
    from featureplane.sources.tardis.reader import DEFAULT_PROBE_ROWS

    owner: dict[str, int] = {}
    parent = list(range(len(files)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    symbols: list[set[str]] = []
    for i, f in enumerate(files):
        found: dict[str, SymbolProbe] = {}
        # A bad header: a chain of its own, the reader reports it.
        with contextlib.suppress(SourceFormatError):
            probe(f, DEFAULT_PROBE_ROWS, found)
        symbols.append(set(found))
        for s in found:
            j = owner.setdefault(s, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(files)):
        groups.setdefault(root(i), []).append(i)
    return [
        Chain(
            "tardis",
            f"tardis-{file_stem(files[members[0]])}",
            tuple(files[i] for i in members),
            tuple(sorted(set().union(*(symbols[i] for i in members)))),
        )
        for members in groups.values()
    ]


def open_files(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    from featureplane.sources.tardis.reader import iter_tardis

    reader = iter_tardis(
        files,
        symbols=options.symbols,
        errors=FORMAT.errors(options),
        instruments=options.instruments,
    )
    return OpenedSource("tardis", reader, reader.symbols, reader.stats, list(files))


FORMAT = SourceFormat("tardis", sniff, open_files, plan, merges=True)
