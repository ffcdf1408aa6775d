"""hftbacktest event arrays: given as an array, as an `.npz` file written from it, or as the
fuzzer's bytes taken as an `.npz` file (a damaged archive, a wrong dtype, an `.npy`).

Input: a flags byte, then the payload. Flags: bits 0-1 the mode (0 the payload as rows of
hftbacktest's `event_dtype`, 64 bytes each, passed as an array; 1 the same rows saved with
`np.savez`; 2 and 3 the payload as the file's bytes). The grid is Binance BTCUSDT's (0.1,
0.001). The reader has no skip mode: a bad row is a `SourceFormatError` (an `OffGridError`
off the grid).

No row vanishes without a reason: every row is a local row, an exchange-only copy or an
unflagged row; every local row is emitted, skipped as a kind featureplane has no row for, or
is a CLEAR folded into its message's first one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from featureplane.errors import FeatureplaneError
from featureplane.instruments import InstrumentSpec
from featureplane.sources.hftbacktest.reader import read_hftbacktest_events

from . import common

SOURCE = "hftbacktest"
MODULES = ("featureplane.sources.hftbacktest",)
SPEC = InstrumentSpec("BTCUSDT", "0.1", "0.001")
_dir = Path(".")
_dtype: Any = None


def setup(workdir: Path) -> None:
    global _dir, _dtype
    from hftbacktest.types import event_dtype

    _dir, _dtype = workdir, event_dtype


def one_input(data: bytes) -> None:
    opts, payload = common.flags(data)
    mode = opts & 3
    source: Any
    if mode < 2:
        n = len(payload) // _dtype.itemsize
        source = np.frombuffer(payload[: n * _dtype.itemsize], dtype=_dtype).copy()
        if mode == 1:
            np.savez(_dir / "rows.npz", data=source)
            source = _dir / "rows.npz"
    else:
        source = _dir / "bytes.npz"
        source.write_bytes(payload)
    try:
        replay = read_hftbacktest_events(source, SPEC)
    except FeatureplaneError:
        return
    stats = replay.stats
    common.check_events(replay.events, len(replay.symbols), stats.events)
    common.check(
        stats.rows == stats.local_rows + stats.exch_only_rows + stats.unflagged_rows,
        "rows neither local, exchange-only nor unflagged",
    )
    kept = stats.local_rows - sum(stats.skipped_kinds.values())
    common.check(
        stats.events == kept - stats.clear_rows + stats.messages["snapshot"],
        f"{stats.events} event rows from {kept} local rows of known kinds, "
        f"{stats.clear_rows} CLEAR rows, {stats.messages['snapshot']} snapshots",
    )
    common.check_engine(replay.symbols, replay.events)
