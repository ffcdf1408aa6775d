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


def test_shadow_parity_runs_on_a_declared_set_on_rust() -> None:
    """The shadow loads the serving engine's checkpoint into the reference: a declared set on
    the Rust plan evaluator builds with [shadow] and [canary], and on a real capture every
    sampled frame of the Rust engine equals the reference's, window after window."""
    from tests.support.datapaths import shared_data
    from tests.support.rust import require_rust

    require_rust("plan")
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    fs = {"feature_set": str(ROOT / "examples/feature-sets/research_v1.toml"), "backend": "rust"}
    criteria = str(ROOT / "deploy/canary/criteria.toml")
    config = parse_config(_data(
        feature_engine=fs,
        shadow={"enabled": True, "sample": 0.25, "window": 40, "seed": 3},
        canary={"enabled": True, "criteria": criteria},
    ))  # fmt: skip
    reg = SystemBootstrapper(config).build()
    engine = reg.get("service").engine
    shadow = reg.get("shadow")
    assert engine.backend == "rust" and engine.feature_set.feature_set_id == "research_v1"
    assert shadow.options.reference == "python" and "canary" in reg

    from featureplane.events import iter_messages, message_bounds
    from featureplane.sources.binance.reader import read_binance

    replay = read_binance(capture)
    assert [s.symbol for s in replay.symbols.specs] == ["BTCUSDT"]
    events = replay.events[: int(message_bounds(replay.events)[3_000])]
    shadow.start()
    try:
        for message in iter_messages(events):
            shadow.process(engine, message)
    finally:
        shadow.close()
    c = shadow.counters
    assert c.windows >= 5 and c.frames_compared >= 200, c
    assert c.mismatched_frames == 0 and c.errors == 0 and c.queue_dropped == 0, c
