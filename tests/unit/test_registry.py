"""Feature-set metadata: the 22 features of the contract, JSON export, a stable hash."""

from __future__ import annotations

import json

import pytest

from featureplane.errors import SchemaMismatchError
from featureplane.schema import FeatureSet, get_feature_set, registered_feature_sets

CONTRACT_ORDER = [
    "bid_px", "ask_px", "bid_qty", "ask_qty", "spread", "mid", "microprice", "imbalance_l1",
    "imbalance_l5", "ofi_l1", "ofi_l1_cum", "ofi_l1_ema8", "ofi_l5", "ofi_l1_decay_1s",
    "spread_ema8", "imbalance_l1_ema8", "mid_ret_std_32", "mid_zscore_64", "last_trade_px",
    "trade_signed_qty_cum", "tfi_decay_1s", "book_regime",
]  # fmt: skip
CONTRACT_WARMUP = [1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 8, 2, 2, 8, 8, 33, 64, 1, 1, 1, 1]

# The schema hash of lob_shared_v1. A change here means the schema changed: that needs a new
# feature_schema_version (or a new feature set id), never a silent edit.
LOB_SHARED_V1_HASH_PREFIX = "5da5b3154d9be859"


def test_contract_order_dtypes_and_warmup() -> None:
    fs = get_feature_set()
    assert fs.feature_set_id == "lob_shared_v1" and fs.feature_schema_version == 1
    assert list(fs.names) == CONTRACT_ORDER
    assert [f.warmup_min_events for f in fs.features] == CONTRACT_WARMUP
    assert [f.feature_id for f in fs.features] == list(range(22))
    ints = {"bid_px", "ask_px", "bid_qty", "ask_qty", "spread", "mid", "ofi_l1", "ofi_l1_cum",
            "ofi_l5", "last_trade_px", "trade_signed_qty_cum"}  # fmt: skip
    for f in fs.features:
        expected = "i64" if f.name in ints else ("u32" if f.name == "book_regime" else "f64")
        assert f.dtype == expected, f.name
        assert (f.scale > 0) == (f.dtype == "i64"), f.name
    assert {f.source_kind for f in fs.features} == {"book", "trade"}


def test_json_round_trip_and_hash() -> None:
    fs = get_feature_set()
    text = json.dumps(fs.to_json())
    back = FeatureSet.from_json(json.loads(text))
    assert back == fs and back.schema_hash == fs.schema_hash
    assert len(fs.schema_hash) == 64 and fs.schema_hash64 == int(fs.schema_hash[:16], 16)


def test_hash_changes_with_any_metadata() -> None:
    fs = get_feature_set()
    obj = fs.to_json()
    obj.pop("schema_hash")
    obj["features"][5]["scale"] = 1
    changed = FeatureSet.from_json(obj)
    assert changed.schema_hash != fs.schema_hash
    tampered = fs.to_json()
    tampered["features"][0]["name"] = "best_bid"
    with pytest.raises(SchemaMismatchError):
        FeatureSet.from_json(tampered)


def test_schema_hash_is_pinned() -> None:
    assert get_feature_set().schema_hash[:16] == LOB_SHARED_V1_HASH_PREFIX


def test_registry_lookup() -> None:
    assert "lob_shared_v1" in registered_feature_sets()
    with pytest.raises(SchemaMismatchError, match="unknown feature set"):
        get_feature_set("nope")
