"""tardis.dev CSV: an `incremental_book_L2` file and a `trades` file, plain or gzip (maybe cut).

Input: a flags byte, then the book file's text, a form feed (0x0c), the trades file's. Flags:
bit 0 `errors="raise"` (else skip), bit 1 gzip, bit 2 small chunks (3 messages), bit 3 rows
before the first snapshot applied (`skip_before_snapshot=False`), bits 4-7 where a gzip
stream is cut (0: whole; k: its first k/16 of the bytes).

In skip mode, no row vanishes without a reason: every data row read is emitted (a level or a
trade row), dropped before the first snapshot, or skipped under a reason; and the event rows
are the level rows, the trade rows and one CLEAR per snapshot.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from featureplane.errors import FeatureplaneError
from featureplane.sources.tardis.reader import TardisReader

from . import common

SOURCE = "tardis"
MODULES = ("featureplane.sources.tardis", "featureplane.sources._lines")
FILE_REASONS = ("bad_header", "damaged")
"""Skip reasons counted once per file, not per row."""
_dir = Path(".")


def setup(workdir: Path) -> None:
    global _dir
    _dir = workdir


def one_input(data: bytes) -> None:
    opts, text = common.flags(data)
    book, _, trades = text.partition(b"\x0c")
    paths = []
    for name, blob in (("book", book), ("trades", trades)):
        if opts & 2:
            blob = gzip.compress(blob, compresslevel=1)
            if cut := opts >> 4:
                blob = blob[: len(blob) * cut // 16]
        path = _dir / f"{name}.csv{'.gz' if opts & 2 else ''}"
        path.write_bytes(blob)
        paths.append(path)
    raising = bool(opts & 1)
    try:
        reader = TardisReader(
            paths,
            errors="raise" if raising else "skip",
            skip_before_snapshot=not opts & 8,
            chunk_messages=3 if opts & 4 else 10_000,
        )
        events = common.concat(list(reader.chunks()))
    except FeatureplaneError:
        return
    stats = reader.stats
    common.check_events(events, len(reader.symbols), stats.events)
    row_skips = sum(n for r, n in stats.skipped.items() if r not in FILE_REASONS)
    accounted = stats.level_rows + stats.trades + stats.rows_before_snapshot + stats.filtered_rows
    common.check(
        stats.rows == accounted + row_skips,
        f"{stats.rows} rows read, {accounted} emitted or dropped, {row_skips} skipped",
    )
    common.check(
        stats.events == stats.level_rows + stats.trades + stats.messages["snapshot"],
        "event rows are not the level rows, trade rows and one CLEAR per snapshot",
    )
    common.check_engine(reader.symbols, events)
