"""Research-only features: computed after the kernel on both backends, flagged in the
metadata, kept out of the kernel and its hash, refused by the live runtime."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.errors import ConfigError, FeatureSetDeclarationError, ResearchOnlyError
from featureplane.features.builtin import BUILTIN_DECLARATION
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.plan import kernel_feature_set
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.parquet import read_feature_file, write_feature_file
from featureplane.live.config import parse_config
from featureplane.live.service import MarketDataService
from featureplane.schema import FLAG_RESEARCH_ONLY, FeatureSet
from tests.support.sessions import SYMBOLS, session

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "feature-sets"
GAP = "featureplane.features.research_examples:top_qty_gap"


def builtin_plus_research() -> FeatureSet:
    doc = copy.deepcopy(BUILTIN_DECLARATION)
    doc["research"] = [{"id": "top_qty_gap", "function": GAP, "depth": 1}]
    return resolve_feature_set(FeatureSetDecl.from_dict(doc))


def test_metadata_and_kernel_part() -> None:
    fs = builtin_plus_research()
    assert len(fs) == 23 and fs.research_only == ("top_qty_gap",)
    assert fs.features[22].flags & FLAG_RESEARCH_ONLY and fs.features[22].dtype == "f64"
    assert kernel_feature_set(fs) is LOB_SHARED_V1  # the kernels specialise as before
    assert fs.schema_hash != LOB_SHARED_V1.schema_hash
    assert FeatureSet.from_json(fs.to_json()) == fs


def test_computed_after_the_kernel(backend: str) -> None:
    fs = builtin_plus_research()
    events = session(300)
    plain = FeatureEngine(SYMBOLS, backend=backend).process_batch(events)
    eng = FeatureEngine(SYMBOLS, fs, backend=backend)
    batch = eng.process_batch(events)
    for name, col in plain.values.items():  # the kernel's features are untouched
        assert col.tobytes() == batch.values[name].tobytes(), name
    gap = batch.values["top_qty_gap"]
    ready = (batch.columns["warmup_ready_mask"] >> np.uint64(22)) & np.uint64(1) == 1
    # where both sides are ready, the function saw the same book as the kernel
    both = ready & (plain.columns["warmup_ready_mask"] & np.uint64(0b1111) == 0b1111)
    lot = np.array([SYMBOLS.spec_of(int(s)).lot_f64 for s in batch.columns["symbol_id"]])
    expected = (plain.values["bid_qty"] - plain.values["ask_qty"]).astype(float) * lot
    assert both.sum() > 200
    assert np.array_equal(gap[both], expected[both])
    # the per-message path gives the same frames
    one = FeatureEngine(SYMBOLS, fs, backend=backend)
    frames = [f for m in _messages(events) if (f := one.process(m)) is not None]
    assert len(frames) == len(batch)
    assert all(f.values[22] == gap[i] or (np.isnan(gap[i]) and np.isnan(f.values[22]))
               for i, f in enumerate(frames))  # fmt: skip
    assert eng.get_feature_view(SYMBOLS.name_of(0)).values[22] == eng.get_feature(
        SYMBOLS.name_of(0), "top_qty_gap"
    )


def _messages(events: np.ndarray) -> list[np.ndarray]:
    from featureplane.events import iter_messages

    return list(iter_messages(events))


def test_example_set_and_parquet(tmp_path: Path) -> None:
    fs = resolve_feature_set(EXAMPLE / "research_only_v1.toml")
    assert fs.research_only == ("top_qty_gap", "depth_distance_l5")
    batch = FeatureEngine(SYMBOLS, fs, backend="python").process_batch(session(120))
    write_feature_file(batch, tmp_path / "r.parquet")
    back = read_feature_file(tmp_path / "r.parquet")
    assert back.feature_set == fs and back.feature_set.research_only == fs.research_only


def test_bad_research_declarations() -> None:
    doc = copy.deepcopy(BUILTIN_DECLARATION)
    doc["research"] = [
        {"id": "mid", "function": GAP},
        {"id": "x", "function": "no.such.module:f"},
        {"id": "y", "function": "nocolon"},
    ]
    with pytest.raises(FeatureSetDeclarationError, match="function must be 'module:name'"):
        FeatureSetDecl.from_dict(doc)
    doc["research"] = doc["research"][:2]
    with pytest.raises(FeatureSetDeclarationError) as info:
        resolve_feature_set(FeatureSetDecl.from_dict(doc))
    text = "\n".join(info.value.problems)
    assert "'mid': the id is taken" in text and "cannot load no.such.module:f" in text


def test_the_live_runtime_refuses_research_only() -> None:
    path = str(EXAMPLE / "research_only_v1.toml")
    base = {"symbols": [{"symbol": "BTCUSDT", "market": "usdm"}]}
    with pytest.raises(ConfigError, match="research-only features"):
        parse_config({**base, "feature_engine": {"feature_set": path}})
    with pytest.raises(ResearchOnlyError, match="adding-a-feature"):
        MarketDataService(SYMBOLS, feature_set=path)
    # the legacy path (no feature engine) does not compute it, so nothing to refuse
    assert MarketDataService(SYMBOLS, feature_set=path, features=False).engine is None
