"""Backend parity on sources of limited depth: the same ready masks (and frames) from the Rust
kernel and the Python reference when symbols carry 0, 1, 4, 5 or every level."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.features.lob_shared_v1 import IMBALANCE_L5, OFI_L5
from tests.parity.test_backend_parity import (
    EXAMPLES,
    PARITY,
    Stream,
    assert_batches_equal,
    assert_state_equal,
    run_batches,
    streams,
)

DEEP = (1 << IMBALANCE_L5) | (1 << OFI_L5)
DEPTHS = st.sampled_from([None, 0, 1, 4, 5, 10])


@settings(PARITY, max_examples=max(EXAMPLES // 3, 20))
@given(streams(), st.lists(DEPTHS, min_size=3, max_size=3))
def test_backends_agree_on_shallow_sources(stream: Stream, depths: list[int | None]) -> None:
    specs = [replace(s, depth=d) for s, d in zip(stream.specs(), depths, strict=False)]
    config = EngineConfig(stale_after_ns=stream.stale_after_ns)
    py = FeatureEngine(specs, backend="python", config=config)
    rs = FeatureEngine(specs, backend="rust", config=config)
    for pb, rb in zip(run_batches(py, stream), run_batches(rs, stream), strict=True):
        assert_batches_equal(pb, rb)
        for sid, depth in enumerate(depths[: stream.n_symbols]):
            mine = rb.columns["symbol_id"] == sid
            if depth is not None and depth < 5:
                assert not (rb.columns["warmup_ready_mask"][mine] & DEEP).any()
    assert_state_equal(py, rs)
