"""Arrow arrays made from buffers equal `pa.array`'s, and asking for them imports no pandas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from featureplane.frames import arrow

TYPES = [(np.int32, pa.int32()), (np.int64, pa.int64()), (np.uint32, pa.uint32()),
         (np.uint64, pa.uint64()), (np.float64, pa.float64())]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(data=st.data(), which=st.sampled_from(TYPES), n=st.integers(0, 70))
def test_numeric_equals_pa_array(data: st.DataObject, which: tuple, n: int) -> None:
    dtype, typ = which
    values = data.draw(hnp.arrays(dtype, n))
    mask = data.draw(st.none() | hnp.arrays(np.bool_, n))
    got = arrow.numeric(values, typ, mask)
    want = pa.array(values, type=typ, mask=mask)
    got.validate(full=True)
    assert got.type == want.type and got.null_count == want.null_count
    # Nulls in the same places, equal values elsewhere. `Array.equals` holds NaN unequal to
    # itself; numpy's array check takes NaNs in the same places as equal.
    assert got.is_null().equals(want.is_null())
    np.testing.assert_array_equal(got.fill_null(0).to_numpy(), want.fill_null(0).to_numpy())


def test_a_strided_or_other_dtype_input_is_still_right() -> None:
    values = np.arange(10, dtype=np.int64)[::2]
    assert arrow.numeric(values, pa.int64()).to_pylist() == [0, 2, 4, 6, 8]
    assert arrow.numeric(values.astype(np.int32), pa.int64()).to_pylist() == [0, 2, 4, 6, 8]
    with pytest.raises(pa.ArrowInvalid):  # the cast keeps pa.array's overflow check
        arrow.numeric(np.array([-1], dtype=np.int64), pa.uint32())


def test_strings_and_dictionary() -> None:
    names = arrow.strings(["BTCUSDT", "", "ÉTH"])
    names.validate(full=True)
    assert names.equals(pa.array(["BTCUSDT", "", "ÉTH"], type=pa.string()))
    d = arrow.dictionary(np.array([2, 0, 0], dtype=np.uint32), names)
    assert d.to_pylist() == ["ÉTH", "BTCUSDT", "BTCUSDT"]


def test_building_arrays_and_a_table_imports_no_pandas() -> None:
    code = """
import sys
import numpy as np
from featureplane.frames import arrow
import pyarrow as pa
names = arrow.strings(["A"])
cols = [arrow.dictionary(np.zeros(3, np.int64), names),
        arrow.numeric(np.arange(3.0), pa.float64(), np.array([True, False, False]))]
pa.Table.from_arrays(cols, names=["symbol", "x"])
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    assert done.stdout.strip() == "False"
