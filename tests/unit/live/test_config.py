"""The live config: typed, frozen, unknown keys refused, every error reported at once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from featureplane.cli import main
from featureplane.errors import ConfigError
from featureplane.live.config import LiveConfig, load_config, parse_config
from featureplane.live.runner import check_strategies
from featureplane.strategy.examples.imbalance_mm import FeatureImbalanceMM, ImbalanceMMParams

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "live" / "loopback.toml"


def test_example_config_loads_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(EXAMPLE)
    assert [s.symbol for s in config.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert config.strategies[0].cls.endswith(":FeatureImbalanceMM")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.feed.ws_url = "x"  # type: ignore[misc]
    check_strategies(config)
    assert main(["live", "--config", str(EXAMPLE), "--check"]) == 0
    out = capsys.readouterr().out
    assert "ok (2 symbols, 1 strategies" in out and "runner:imbalance-mm" in out
    assert len(config.config_hash) == 64


def test_every_error_is_reported_at_once() -> None:
    data = {
        "symbols": [{"symbol": "BTCUSDT", "market": "usdm", "tik": "0.1"}, {"symbol": "DOGE"}],
        "feed": {"ws_url": "http://x", "snapshot_limit": 7, "reconnect_max_s": "5"},
        "risk": {"max_position_lots": 0},
        "strategies": [{"name": "a", "class": "nomodule", "symbols": ["ETHUSDT"]}],
        "extra": 1,
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, "bad.toml")
    problems = info.value.problems
    expected = [
        "symbols[0].tik: unknown key",
        "symbols[1]: no built-in tick/lot for usdm DOGE",
        "feed.reconnect_max_s: expected float, got str",
        "risk.max_position_lots: must be positive",
        "extra: unknown key",
    ]
    for text in expected:
        assert any(p.startswith(text) for p in problems), (text, problems)
    assert len(problems) >= len(expected)
    assert str(info.value).startswith("bad.toml: ")


def test_cross_section_checks() -> None:
    data = {
        "symbols": [{"symbol": "BTCUSDT"}],
        "feed": {"ws_url": "ws://127.0.0.1:1", "snapshot_limit": 7},
        "strategies": [{"name": "a", "class": "nomodule", "symbols": ["ETHUSDT"]}],
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    problems = info.value.problems
    assert any("feed.snapshot_limit" in p for p in problems)
    assert any("strategies[0].class" in p for p in problems)
    assert any("ETHUSDT is not in [[symbols]]" in p for p in problems)


def test_strategy_import_errors_are_config_errors(tmp_path: Path) -> None:
    config = parse_config(
        {
            "symbols": [{"symbol": "BTCUSDT"}],
            "strategies": [
                {"name": "a", "class": "featureplane.nope:X", "symbols": ["BTCUSDT"]},
                {"name": "b", "class": "featureplane.strategy.examples.imbalance_mm:"
                 "FeatureImbalanceMM", "symbols": ["BTCUSDT"], "params": {"k_tiks": 1.0}},
            ],
        }
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        check_strategies(config)
    assert len(info.value.problems) == 2
    path = tmp_path / "bad.toml"
    path.write_text("[[symbols]]\nsymbol = 'BTCUSDT'\nbogus = 1\n")
    assert main(["live", "--config", str(path), "--check"]) == 1


def test_params_build_the_strategys_dataclass() -> None:
    from featureplane.live.runner import build_strategy

    config = load_config(EXAMPLE)
    strategy = build_strategy(config.strategies[0])
    assert isinstance(strategy, FeatureImbalanceMM)
    assert strategy.params == ImbalanceMMParams(2.0, 0.5, 0.05, 1, 10)
    assert isinstance(config, LiveConfig)


def test_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[[symbols]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_ring_section_is_checked() -> None:
    base = {"symbols": [{"symbol": "BTCUSDT", "tick": "0.1", "lot": "0.001"}]}
    assert parse_config(base).ring.name == ""  # no ring unless named
    ok = parse_config({**base, "ring": {"name": "fp.live-1", "capacity": 1024}})
    assert (ok.ring.name, ok.ring.capacity) == ("fp.live-1", 1024)
    bad = {**base, "ring": {"name": "a/b", "capacity": 1000, "heartbeat_s": 0}}
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    text = str(info.value)
    assert "ring.name" in text and "ring.capacity" in text and "ring.heartbeat_s" in text


def test_ring_placement_knobs_are_checked() -> None:
    base = {"symbols": [{"symbol": "BTCUSDT", "tick": "0.1", "lot": "0.001"}]}
    ok = parse_config({**base, "ring": {"name": "r", "cpus": [0], "fifo_priority": 5}})
    assert (ok.ring.cpus, ok.ring.fifo_priority, ok.ring.lock_memory) == ((0,), 5, False)
    bad = {**base, "ring": {"name": "r", "cpus": [-1], "fifo_priority": 100}}
    with pytest.raises(ConfigError) as info:
        parse_config(bad)
    text = str(info.value)
    assert "ring.cpus" in text and "ring.fifo_priority" in text
