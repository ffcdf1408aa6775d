"""The demo driver: end to end into a temporary directory, on every built backend."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest

# The engine is built separately; until it imports, the demo cannot run and these tests skip.
pytest.importorskip("featureplane.engine.facade")

from featureplane.demo import (
    DEMO_ENGINE_CONFIG,
    PLOT_SYMBOL,
    SUMMARY_FEATURES,
    demo_config,
    run_demo,
)
from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import QualityFlag
from featureplane.sources.sim import simulate

N = 3_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    # The first chunk is IHDR: width and height of the image; the last is IEND.
    length, tag = struct.unpack(">I4s", data[8:16])
    width, height = struct.unpack(">II", data[16:24])
    assert (length, tag) == (13, b"IHDR") and width > 500 and height > 500
    assert data.endswith(b"IEND\xaeB`\x82")


def test_demo_end_to_end(tmp_path: Path, backend: str) -> None:
    """One small demo run: a valid PNG, and a summary equal to what the engine returns."""
    out = io.StringIO()
    summary = run_demo(
        tmp_path / "out", seed=5, n_messages=N, backend=backend, progress=False, stream=out
    )
    printed = out.getvalue()
    assert summary.png_path == tmp_path / "out" / f"{PLOT_SYMBOL}_features.png"
    check_png(summary.png_path)

    session = simulate(demo_config(5, N))
    engine = FeatureEngine(session.symbols, backend=backend, config=DEMO_ENGINE_CONFIG)
    batch = engine.process_batch(session.events)

    assert summary.backend == engine.backend == backend
    assert summary.messages == session.n_messages
    assert summary.event_rows == len(session.events)
    assert summary.frames == len(batch)
    assert summary.counters == engine.counters
    qf = batch.columns["quality_flags"]
    assert summary.quality_counts == {
        str(flag.name): int(np.count_nonzero(qf & int(flag))) for flag in QualityFlag
    }
    # The injected faults reach the engine: one gap and its untrusted stretch, the copies.
    assert summary.quality_counts["GAP_DETECTED"] > 0
    assert summary.counters["duplicates"] == 2 and summary.counters["out_of_order"] == 2
    sids = batch.columns["symbol_id"]
    assert summary.frames_per_symbol == {
        s.symbol: int(np.count_nonzero(sids == i)) for i, s in enumerate(session.symbols)
    }
    # Last values are in real units: the mid of the plotted symbol is near its start price.
    assert set(summary.last_values) == {"SIMBTC", "SIMETH", "SIMSOL"}
    for sym, values in summary.last_values.items():
        assert tuple(values) == SUMMARY_FEATURES
        start = float(next(i.start_px for i in session.config.instruments if i.spec.symbol == sym))
        assert abs(values["mid"] / start - 1.0) < 0.01
        assert values["spread"] > 0.0
        assert -1.0 <= values["imbalance_l1"] <= 1.0
    last_btc = int(np.flatnonzero(sids == 0)[-1])
    tick = float(session.symbols.spec("SIMBTC").tick_size)
    mid_scale = batch.feature_set.features[batch.feature_set.index("mid")].scale
    expected_mid = float(batch.values["mid"][last_btc]) * tick / mid_scale
    assert summary.last_values["SIMBTC"]["mid"] == pytest.approx(expected_mid, rel=1e-12)

    assert "SIMBTC" in printed and f"{summary.frames:,} frames" in printed
    saved = orjson.loads(summary.summary_path.read_bytes())
    assert saved["frames"] == summary.frames and saved["counters"] == summary.counters


def test_demo_config_needs_room_for_the_faults() -> None:
    with pytest.raises(ValueError, match="at least 300"):
        demo_config(1, 100)
    assert [f.kind for f in demo_config(1, 300).faults].count("gap") == 1
