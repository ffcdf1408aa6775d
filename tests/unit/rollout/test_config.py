"""The rollout sections of the live config: `[shadow]`, `[canary]`, `[[decision_parity]]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featureplane.errors import ConfigError
from featureplane.live.bootstrap import SystemBootstrapper
from featureplane.live.config import parse_config

ROOT = Path(__file__).resolve().parents[3]
MM = "featureplane.strategy.examples.imbalance_mm:"


def _data(**sections: Any) -> dict[str, Any]:
    return {
        "symbols": [{"symbol": "BTCUSDT"}],
        "feed": {"ws_url": "ws://127.0.0.1:1", "rest_url": "http://127.0.0.1:1"},
        "strategies": [
            {"name": "legacy", "class": MM + "LegacyImbalanceMM", "symbols": ["BTCUSDT"]},
            {"name": "feature", "class": MM + "FeatureImbalanceMM", "symbols": ["BTCUSDT"]},
        ],
        **sections,
    }


def test_sections_build_the_rollout_services() -> None:
    config = parse_config(_data(
        shadow={"enabled": True, "sample": 0.5, "window": 8, "slice_dir": ""},
        canary={"enabled": True, "criteria": str(ROOT / "deploy/canary/criteria.toml"),
                "on_rollback": "legacy", "interval_s": 1.0},
        decision_parity=[{"legacy": "legacy", "feature": "feature"}],
    ))  # fmt: skip
    reg = SystemBootstrapper(config).build()
    service = reg.get("service")
    shadow = reg.get("shadow")
    assert service.shadow is shadow and shadow.options.slice_dir is None
    assert shadow.options.sample == 0.5 and shadow.options.window == 8
    assert reg.get("canary").on_rollback == "legacy" and reg.get("canary").decision == -1
    assert "decision_parity:feature" in reg
    # Off by default: nothing is built, the hot path is untouched.
    reg = SystemBootstrapper(parse_config(_data())).build()
    assert reg.get("service").shadow is None
    assert "canary" not in reg and "shadow" not in reg


def test_every_rollout_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_data(
            feature_engine={"enabled": False},
            shadow={"enabled": True, "sample": 0.0, "window": 0, "max_slices": -1},
            canary={"enabled": True, "interval_s": 0},
            decision_parity=[{"legacy": "legacy", "feature": "missing"}],
        ))  # fmt: skip
    text = "\n".join(info.value.problems)
    for needle in ("shadow.sample", "shadow.window", "shadow.max_slices", "canary.interval_s",
                   "canary.criteria", "decision_parity[0].feature",
                   "need feature_engine.enabled"):  # fmt: skip
        assert needle in text, text
    with pytest.raises(ConfigError, match="on_rollback"):
        parse_config(_data(canary={"on_rollback": "nowhere"}))
    # A criteria file that does not check fails the build (`live --check`), not the run.
    bad = tmp_path / "criteria.toml"
    bad.write_text("[parity]\nmax_mismatched_frames = -1\n")
    config = parse_config(_data(canary={"enabled": True, "criteria": str(bad)}))
    with pytest.raises(ConfigError, match="max_mismatched_frames"):
        SystemBootstrapper(config).build()


def test_a_kernel_without_state_transfer_is_refused_at_build() -> None:
    """The shadow loads the serving engine's checkpoint and a fallback switches backends:
    the Rust kernel of a declared set keeps no checkpoint, so the build refuses it clearly
    (and builds it without the rollout sections)."""
    from tests.support.rust import require_rust

    require_rust("engine")
    fs = {"feature_set": str(ROOT / "examples/feature-sets/research_v1.toml"), "backend": "rust"}
    criteria = str(ROOT / "deploy/canary/criteria.toml")
    for sections in ({"shadow": {"enabled": True}}, {"canary": {"enabled": True,
                                                               "criteria": criteria}}):  # fmt: skip
        config = parse_config(_data(feature_engine=fs, **sections))
        with pytest.raises(ConfigError, match=r"\[shadow\]/\[canary\].*checkpoint"):
            SystemBootstrapper(config).build()
    reg = SystemBootstrapper(parse_config(_data(feature_engine=fs))).build()
    assert reg.get("service").engine.backend == "rust"
    # The built-in set on Rust transfers its state: the same sections build.
    builtin = parse_config(_data(feature_engine={"backend": "rust"}, shadow={"enabled": True}))
    assert "shadow" in SystemBootstrapper(builtin).build()
