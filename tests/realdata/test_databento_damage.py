"""The real ESH4 DBN file cut short inside its zstd frame, at a record boundary: every record
before the cut is read, and the read says it was cut (it used to look complete)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featureplane.errors import SourceFormatError
from featureplane.sources.databento import read_databento
from tests.support.datapaths import shared_data

pytestmark = pytest.mark.realdata

RECORD = 56  # bytes of an MBO record


def test_a_frame_cut_at_a_record_boundary_is_truncated(tmp_path: Path) -> None:
    real = shared_data("databento-glbx-esh4-mbo-20231225") / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
    with pa.CompressedInputStream(pa.OSFile(str(real)), "zstd") as stream:
        plain = stream.read()
    body = 8 + int.from_bytes(plain[4:8], "little")  # the metadata's length, then records
    keep = body + 20_000 * RECORD
    sink = pa.BufferOutputStream()
    out = pa.CompressedOutputStream(sink, "zstd")
    out.write(plain[:keep])
    out.flush()  # closes a block: the stream cut here decodes to exactly 20,000 records
    cut_at = sink.tell()
    out.write(plain[keep:])
    out.close()
    cut = tmp_path / "esh4-cut.mbo.dbn.zst"
    cut.write_bytes(sink.getvalue().to_pybytes()[:cut_at])
    with pytest.raises(SourceFormatError, match=r"esh4-cut\.mbo\.dbn\.zst:20000: truncated"):
        read_databento(cut)
    skipped = read_databento(cut, errors="skip")
    assert skipped.stats.records == 20_000 and skipped.stats.skipped == {"truncated": 1}
    whole = read_databento(real)
    n = len(skipped.events)
    assert 0 < n < len(whole.events)
    # The events before the cut are the whole file's, but for the event the cut split.
    np.testing.assert_array_equal(skipped.events[: n - 50], whole.events[: n - 50])
