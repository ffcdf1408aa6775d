"""Feature-set declarations: TOML loading, validation errors, the compiled plan and its hash."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from featureplane.errors import FeatureSetDeclarationError, SchemaMismatchError
from featureplane.features.builtin import BUILTIN_DECLARATION
from featureplane.features.catalogue import CATALOGUE
from featureplane.features.declare import FeatureSetDecl, load_declaration
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.plan import (
    MAX_OUTPUTS,
    FeaturePlan,
    builtin_plan,
    builtin_plan_text,
    compile_plan,
    feature_set_from_json,
    plan_of,
)
from featureplane.features.resolve import resolve_feature_set
from featureplane.schema import FeatureSet

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "feature-sets"


def _decl(*features: dict[str, Any], set_id: str = "my_set_v1") -> FeatureSetDecl:
    return FeatureSetDecl.from_dict(
        {"feature_set": {"id": set_id, "version": 1}, "features": list(features)}
    )


def _problems(*features: dict[str, Any]) -> list[str]:
    with pytest.raises(FeatureSetDeclarationError) as info:
        compile_plan(_decl(*features))
    return info.value.problems


def test_example_file_is_the_embedded_builtin() -> None:
    with (EXAMPLES / "lob_shared_v1.toml").open("rb") as f:
        assert tomllib.load(f) == BUILTIN_DECLARATION


def test_builtin_plan_reproduces_the_builtin_specs() -> None:
    plan = builtin_plan()
    assert plan.feature_specs() == LOB_SHARED_V1.features
    assert plan.depth == 5
    assert len(plan.nodes) == 24 and len(plan.outputs) == 22
    # Loaded from the file, the declaration is the registered set itself (same hash).
    fs = resolve_feature_set(str(EXAMPLES / "lob_shared_v1.toml"))
    assert fs is LOB_SHARED_V1 and fs.plan is None
    assert plan_of(LOB_SHARED_V1).canonical_json() == builtin_plan_text()


def test_canonical_text_shape() -> None:
    text = builtin_plan_text()
    obj = json.loads(text)
    assert text == json.dumps(obj, sort_keys=True, separators=(",", ":"))
    assert list(obj) == ["depth", "id", "nodes", "version"]
    assert obj["nodes"][0] == {
        "family": "bid_px", "id": "bid_px", "input": None, "output": True, "params": {},
    }  # fmt: skip
    ids = [n["id"] for n in obj["nodes"]]
    regime = obj["nodes"][ids.index("book_regime")]
    assert regime["params"] == {"wide_spread_factor": 4.0}
    assert '"wide_spread_factor":4.0' in text
    assert ids[regime["input"]] == "spread_ema8"
    for n in obj["nodes"]:
        assert n["input"] is None or n["input"] < ids.index(n["id"])


def test_plan_json_round_trip() -> None:
    text = builtin_plan_text()
    assert FeaturePlan.from_json(text).canonical_json() == text
    with pytest.raises(SchemaMismatchError):
        FeaturePlan.from_json(json.dumps(json.loads(text), indent=1))
    with pytest.raises(FeatureSetDeclarationError):
        FeaturePlan.from_json('{"nodes": 3}')


def test_declared_set_hash_covers_every_plan_field() -> None:
    base = dict(BUILTIN_DECLARATION)
    hashes = set()
    edits: list[tuple[str, Any]] = [
        ("id", "my_set_v1"),
        ("version", 2),
        ("span", 9),
        ("input", "ofi_l5"),
        ("family", "decayed_sum"),
    ]
    for what, value in edits:
        doc = json.loads(json.dumps(base))
        if what in ("id", "version"):
            doc["feature_set"][what] = value
        else:
            feat = next(f for f in doc["features"] if f["id"] == "ofi_l1_ema8")
            if what == "span":
                feat["params"]["span"] = value
            elif what == "input":
                feat["input"] = value
            else:
                feat["family"] = value
                feat["params"] = {"half_life_ns": 8}
        fs = compile_plan(FeatureSetDecl.from_dict(doc)).feature_set()
        assert fs.plan is not None and fs.schema_hash != LOB_SHARED_V1.schema_hash
        hashes.add(fs.schema_hash)
    assert len(hashes) == len(edits)


def test_declared_set_metadata_round_trip() -> None:
    fs = resolve_feature_set(_decl(
        {"id": "spread", "family": "spread"},
        {"id": "spread_z", "family": "zscore", "input": "spread", "params": {"window": 16}},
    ))  # fmt: skip
    assert fs.names == ("spread", "spread_z")
    assert fs.features[1].warmup_min_events == 16
    back = FeatureSet.from_json(json.loads(json.dumps(fs.to_json())))
    assert back == fs and back.schema_hash == fs.schema_hash
    tampered = fs.to_json()
    tampered["features"][1]["warmup_min_events"] = 3
    tampered.pop("schema_hash")
    with pytest.raises(SchemaMismatchError, match="does not follow from its plan"):
        feature_set_from_json(tampered)
    with pytest.raises(SchemaMismatchError):
        fs.check(schema_hash=LOB_SHARED_V1.schema_hash)


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        {"id": "a", "family": "no_such_family"},
        {"id": "b", "family": "ema", "input": "nowhere", "params": {"span": 8}},
        {"id": "c", "family": "ema", "input": "d", "params": {"span": 0}},
        {"id": "d", "family": "ofi", "params": {"levels": 1, "extra": 2}},
        {"id": "e", "family": "depth_imbalance"},
        {"id": "f", "family": "ema", "input": "d", "params": {"span": 2.5}},
        {"id": "g", "family": "spread", "input": "d"},
        {"id": "d", "family": "mid"},
    )
    text = "\n".join(problems)
    for needle in [
        "unknown family 'no_such_family'",
        "unknown input 'nowhere'",
        "'span' = 0 is out of range",
        "unknown parameter 'extra'",
        "missing parameter 'levels'",
        "'span' must be int",
        "takes no input",
        "duplicate feature id 'd'",
    ]:
        assert needle in text, needle


@pytest.mark.parametrize(
    ("features", "needle"),
    [
        ([{"id": "x", "family": "microprice"}, {"id": "c", "family": "cum", "input": "x"}],
         "cum takes an input of dtype i64"),
        ([{"id": "a", "family": "ema", "input": "b", "params": {"span": 2}},
          {"id": "b", "family": "ema", "input": "a", "params": {"span": 2}}], "form a cycle"),
        ([{"id": "a", "family": "spread", "output": False}], "no output feature"),
        ([{"id": "q", "family": "bid_qty"},
          {"id": "v", "family": "realized_vol", "input": "q", "params": {"window_ns": 10}}],
         "realized_vol takes a price input"),
        ([{"id": "m", "family": "mid"}, {"id": "e", "family": "ema", "input": "m",
                                         "params": {"span": 4}},
          {"id": "r", "family": "book_regime", "input": "e",
           "params": {"wide_spread_factor": 2.0}}], "EMA of a spread"),
        ([{"id": "s", "family": "spread"}, {"id": "r", "family": "book_regime", "input": "s",
                                            "params": {"wide_spread_factor": 2}}],
         "book_regime takes an input of dtype f64"),
        ([{"id": "w", "family": "weighted_depth_imbalance",
           "params": {"levels": 3, "decay": 0.0}}], "out of range (0.0"),
        ([{"id": "t", "family": "vwap", "params": {"window_ns": True}}], "must be int"),
    ],
)  # fmt: skip
def test_bad_declarations(features: list[dict[str, Any]], needle: str) -> None:
    assert any(needle in p for p in _problems(*features)), _problems(*features)


def test_too_many_outputs_and_empty_set() -> None:
    many = [{"id": f"l{i}", "family": "ofi", "params": {"levels": 1 + i % 8}}
            for i in range(MAX_OUTPUTS + 1)]  # fmt: skip
    assert any("at most 64" in p for p in _problems(*many))
    with pytest.raises(FeatureSetDeclarationError, match="declares no features"):
        FeatureSetDecl.from_dict({"feature_set": {"id": "x", "version": 1}, "features": []})


def test_shape_errors_from_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[feature_set]\nid = "Bad Id"\nversion = 0\nextra = 1\n'
                   '[[features]]\nid = "x"\nfamily = 3\noutput = "yes"\n')  # fmt: skip
    with pytest.raises(FeatureSetDeclarationError) as info:
        load_declaration(bad)
    assert len(info.value.problems) == 5 and str(bad) in str(info.value)
    bad.write_text("[feature_set\n")
    with pytest.raises(FeatureSetDeclarationError, match="not valid TOML"):
        load_declaration(bad)
    with pytest.raises(FeatureSetDeclarationError, match="cannot read"):
        load_declaration(tmp_path / "missing.toml")
    with pytest.raises(SchemaMismatchError, match="unknown feature set"):
        resolve_feature_set("no_such_set")


def test_float_params_accept_ints_and_are_canonical() -> None:
    plan = compile_plan(_decl(
        {"id": "s", "family": "spread"},
        {"id": "e", "family": "ema", "input": "s", "params": {"span": 8}},
        {"id": "r", "family": "book_regime", "input": "e", "params": {"wide_spread_factor": 4}},
    ))  # fmt: skip
    assert '"wide_spread_factor":4.0' in plan.canonical_json()


def test_declaration_order_is_kept_where_inputs_allow() -> None:
    plan = compile_plan(_decl(
        {"id": "e", "family": "ema", "input": "s", "params": {"span": 8}},
        {"id": "m", "family": "mid"},
        {"id": "s", "family": "spread"},
    ))  # fmt: skip
    assert [n.id for n in plan.nodes] == ["m", "s", "e"]
    assert plan.feature_set().names == ("m", "s", "e")
    assert plan.to_declaration().features[2].input == "s"


def test_catalogue_covers_the_contract_families() -> None:
    assert set(CATALOGUE) == {
        "bid_px", "ask_px", "bid_qty", "ask_qty", "spread", "spread_bps", "mid", "microprice",
        "depth_imbalance", "weighted_depth_imbalance", "weighted_mid", "book_slope", "ofi",
        "book_regime", "last_trade_px", "trade_signed_qty", "trade_flow_imbalance", "vwap",
        "cum", "diff", "ema", "decayed_sum", "rolling_std", "zscore", "rolling_mean_time",
        "rolling_std_time", "rolling_sum_time", "realized_vol",
    }  # fmt: skip
