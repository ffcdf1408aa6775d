"""Arrow arrays made from numpy buffers, for the Parquet writer and the Arrow tables.

`pa.array` first asks whether its input is a pandas object, and that question imports pandas
when it is installed: about 300 ms of a fresh `featureplane replay`, more than the replay's own
work on a capture. An array made from its buffers (`pa.Array.from_buffers`) asks nothing and
copies nothing: the numpy array's memory becomes the Arrow data buffer.

These functions give exactly what `pa.array(values, type=..., mask=...)` gives for the types
the frames hold (the fixed-width numbers, strings); any other type, or values of another dtype
than the Arrow type's (where `pa.array` would cast, with its overflow checks), still go through
`pa.array`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

_NUMPY_OF: dict[pa.DataType, np.dtype] = {
    pa.int32(): np.dtype(np.int32),
    pa.int64(): np.dtype(np.int64),
    pa.uint32(): np.dtype(np.uint32),
    pa.uint64(): np.dtype(np.uint64),
    pa.float64(): np.dtype(np.float64),
}


def numeric(values: np.ndarray, type: pa.DataType, mask: np.ndarray | None = None) -> pa.Array:
    """`values` as an Arrow array of `type`, null where `mask` is True."""
    dtype = _NUMPY_OF.get(type)
    if dtype is None or values.dtype != dtype or values.ndim != 1:
        return pa.array(values, type=type, mask=mask)
    data = pa.py_buffer(np.ascontiguousarray(values))
    if mask is None or not mask.any():
        return pa.Array.from_buffers(type, len(values), [None, data], null_count=0)
    # Arrow's validity bitmap: one bit per value, 1 = valid, least significant bit first.
    valid = pa.py_buffer(np.packbits(~np.asarray(mask, dtype=bool), bitorder="little"))
    nulls = int(np.count_nonzero(mask))
    return pa.Array.from_buffers(type, len(values), [valid, data], null_count=nulls)


def strings(items: Sequence[str]) -> pa.Array:
    """`items` as an Arrow string array (no nulls)."""
    encoded = [s.encode() for s in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), data], null_count=0
    )


def dictionary(indices: np.ndarray, names: pa.Array) -> pa.DictionaryArray:
    """Names by int32 index (`indices` are checked to be in range by the caller)."""
    return pa.DictionaryArray.from_arrays(
        numeric(indices.astype(np.int32), pa.int32()), names, safe=False
    )
