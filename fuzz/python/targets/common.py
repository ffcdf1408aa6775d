"""What every source harness checks, once the reader has returned or raised.

- Only `featureplane.errors` classes escape a reader: anything else is a finding.
- The rows a reader returns pass `events.validate` and the count in its stats.
- The engine takes them on both backends and the two give identical frame batches (headers
  equal, values bit for bit, NaN bits included), or both refuse them with the same error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import FeatureplaneError
from featureplane.events import EVENT_DTYPE, validate
from featureplane.frames.frame import FrameBatch
from featureplane.instruments import SymbolTable

Rows = npt.NDArray[Any]


class Finding(AssertionError):
    """An invariant broke: the harness raises it and libFuzzer keeps the input."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise Finding(what)


def check_events(events: Rows, n_symbols: int, stats_events: int | None) -> None:
    """The reader's rows are valid event rows, as many as its stats say."""
    if stats_events is not None:
        check(stats_events == len(events), f"stats.events {stats_events} != {len(events)} rows")
    if len(events):
        validate(events, n_symbols)


def _run(symbols: SymbolTable, events: Rows, backend: str) -> FrameBatch | Exception:
    try:
        return FeatureEngine(symbols, backend=backend).process_batch(events)
    except FeatureplaneError as exc:
        return exc


_SEEN: set[bytes] = set()
SEEN_LIMIT = 200_000
"""Reader outputs already run through both engines (digests): the engines are deterministic,
and most mutations of a file leave what the reader returns unchanged."""


def check_engine(symbols: SymbolTable, events: Rows) -> None:
    """Both backends on the reader's rows: the same frames, bit for bit, or the same error."""
    if not len(symbols) or not len(events):
        return
    key = hashlib.sha1(events.tobytes())
    for spec in symbols:
        key.update(repr(spec).encode())  # every field, in id order
    digest = key.digest()
    if digest in _SEEN:
        return
    if len(_SEEN) >= SEEN_LIMIT:
        _SEEN.clear()
    _SEEN.add(digest)
    py, rs = _run(symbols, events, "python"), _run(symbols, events, "rust")
    if isinstance(py, Exception) or isinstance(rs, Exception):
        check(type(py) is type(rs), f"backends differ: python {py!r}, rust {rs!r}")
        check(str(py) == str(rs), f"backend errors differ: {py} / {rs}")
        raise Finding(f"the engine refused a reader's valid rows: {py!r}")
    _same_batches(py, rs)


def _same_batches(py: FrameBatch, rs: FrameBatch) -> None:
    check(len(py) == len(rs), f"frame counts differ: python {len(py)}, rust {len(rs)}")
    check(list(py.columns) == list(rs.columns), "header columns differ")
    for name, col in py.columns.items():
        other = rs.columns[name]
        check(col.dtype == other.dtype and np.array_equal(col, other), f"column {name} differs")
    check(list(py.values) == list(rs.values), "feature columns differ")
    for name, col in py.values.items():
        other = rs.values[name]
        # Bytes, not values: NaN bits count, -0.0 differs from 0.0.
        same = col.dtype == other.dtype and col.tobytes() == other.tobytes()
        check(same, f"feature {name} differs between backends")


def same_arrays(a: Sequence[Rows], b: Sequence[Rows], what: str) -> None:
    check(len(a) == len(b), f"{what}: {len(a)} != {len(b)} arrays")
    for x, y in zip(a, b, strict=True):
        check(x.dtype == y.dtype and np.array_equal(x, y), f"{what}: arrays differ")


def concat(chunks: Sequence[Rows]) -> Rows:
    """The chunks as one event array (an empty one for none)."""
    return np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)


def split(data: bytes, sep: bytes, parts: int) -> list[bytes]:
    """`data` cut at `sep` into at most `parts` pieces (the last keeps any further `sep`)."""
    return data.split(sep, parts - 1)


def flags(data: bytes) -> tuple[int, bytes]:
    """The first byte (the harness's options) and the rest (the file)."""
    return (data[0], data[1:]) if data else (0, b"")
