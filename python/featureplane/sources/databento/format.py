"""Databento MBO (DBN) files as a venue of the registry: sniff, plan, open.

The reader needs `databento_dbn`; sniffing does not, so the reader is imported on open only.
"""

from __future__ import annotations

from collections.abc import Sequence

from featureplane.sources.format import (
    OpenedSource,
    Peek,
    SourceFormat,
    SourceOptions,
    each_file,
    one_file,
    reader_module,
)

DBN_MAGIC = b"DBN"


def sniff(peek: Peek) -> bool:
    """`DBN` magic, plain or zstd."""
    return peek.data.startswith(DBN_MAGIC)


def open_files(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    path = one_file("databento", files)
    mod = reader_module("databento", "featureplane.sources.databento.reader", path)
    reader = mod.iter_databento(
        path,
        symbols=options.symbols,
        instruments=options.instruments,
        errors=FORMAT.errors(options),
    )
    return OpenedSource("databento", reader, reader.symbols, reader.stats, [path])


# A lost MBO record corrupts the book for good: raise unless told to skip.
FORMAT = SourceFormat("databento", sniff, open_files, each_file("databento"))
