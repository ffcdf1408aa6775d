"""hftbacktest event arrays (`.npz`) as a venue of the registry: sniff, plan, open."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from typing import Any

from featureplane.errors import SourceFormatError
from featureplane.sources.format import (
    OpenedSource,
    Peek,
    SourceFormat,
    SourceOptions,
    each_file,
    file_stem,
    one_file,
    reader_module,
)

HFTBACKTEST_FIELDS = ("ev", "exch_ts", "local_ts", "px", "qty", "order_id", "ival", "fval")
"""Field names of `hftbacktest.types.event_dtype` (2.4); checked without importing it."""


def sniff(peek: Peek) -> bool:
    """An `.npz` whose `data` array has hftbacktest's event dtype."""
    if peek.container != "zip":
        return False
    with zipfile.ZipFile(peek.path) as zf:
        if "data.npy" not in zf.namelist():
            return False
        # numpy is imported here, for an .npz: sniffing a file of another venue never needs it.
        import numpy as np

        with zf.open("data.npy") as f:
            # Only the .npy header: the dtype tells, the rows need not be read. (numpy's format
            # helpers are untyped, hence the Any.)
            npy: Any = np.lib.format
            version = npy.read_magic(f)
            reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            dtype: np.dtype = reader(f)[2]
    return tuple(dtype.names or ()) == HFTBACKTEST_FIELDS


def open_files(files: Sequence[str], options: SourceOptions) -> OpenedSource:
    path = one_file("hftbacktest", files)
    mod = reader_module("hftbacktest", "featureplane.sources.hftbacktest.reader", path)
    given = options.instruments or ()
    named = [s for s in given if s.symbol == file_stem(path)]
    if len(given) != 1 and len(named) != 1:
        raise SourceFormatError(
            path,
            None,
            "an hftbacktest array carries no tick and lot: give one instrument "
            "(--instrument SYMBOL:TICK:LOT), or one named like the file",
        )
    # The arrays are in memory already (np.load): one chunk, the source's own read.
    replay = mod.read_hftbacktest_events(path, given[0] if len(given) == 1 else named[0])
    chunks = [replay.events] if len(replay.events) else []
    return OpenedSource("hftbacktest", chunks, replay.symbols, replay.stats, [path])


FORMAT = SourceFormat("hftbacktest", sniff, open_files, each_file("hftbacktest"))
