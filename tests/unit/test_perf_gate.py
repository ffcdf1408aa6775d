"""The perf gate's comparison, config and exit codes, decided without timing anything; one
real measurement against a slowed kernel and one against itself, far from any threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from featureplane._rust import rust_available
from featureplane.bench import gate
from featureplane.bench.gate import LOB_STATS, LOB_UPDATE, GateConfig, Measurement, MetricRule
from featureplane.bench.synthetic import Shape
from featureplane.checks.parity import METRIC as PARITY
from featureplane.cli import main
from featureplane.errors import FeatureplaneError

REPO = Path(__file__).resolve().parents[2]


def measurement(
    stats: float, update: float, anchor: float = 0.05, rate: float = 0.0
) -> Measurement:
    return Measurement({LOB_STATS: stats, LOB_UPDATE: update, PARITY: rate}, anchor)


def verdicts(base: Measurement, cur: Measurement) -> dict[str, bool]:
    return {v.rule.name: v.ok for v in gate.compare(base, cur, GateConfig())}


def test_same_costs_pass() -> None:
    assert all(verdicts(measurement(0.02, 0.04), measurement(0.02, 0.04)).values())


def test_a_slower_kernel_on_the_same_machine_fails_only_that_metric() -> None:
    got = verdicts(measurement(0.02, 0.04), measurement(0.02, 0.04 * 1.6))
    assert got == {LOB_STATS: True, LOB_UPDATE: False, PARITY: True}


def test_a_slower_machine_passes_because_the_anchor_slows_too() -> None:
    # Everything 3x slower, the calibration anchor included: the ratios are unchanged.
    assert all(verdicts(measurement(0.02, 0.04), measurement(0.06, 0.12, anchor=0.15)).values())


def test_a_faster_kernel_passes_and_any_parity_mismatch_fails() -> None:
    assert all(verdicts(measurement(0.02, 0.04), measurement(0.01, 0.02)).values())
    got = verdicts(measurement(0.02, 0.04), measurement(0.02, 0.04, rate=1e-6))
    assert got[PARITY] is False


def test_a_metric_missing_from_the_baseline_fails() -> None:
    base = Measurement({LOB_STATS: 0.02, PARITY: 0.0}, 0.05)
    assert verdicts(base, measurement(0.02, 0.04))[LOB_UPDATE] is False


def test_committed_config_and_baseline_load() -> None:
    config = gate.load_config(REPO / "perf" / "gate.toml")
    assert {r.name for r in config.rules} == {LOB_STATS, LOB_UPDATE, PARITY}
    assert config.shape == Shape(symbols=2, depth=1000, changes=68, trades=3)
    base = gate.load_baseline(REPO / "perf" / "baseline.json")
    assert set(base.values) == {LOB_STATS, LOB_UPDATE, PARITY}
    assert base.values[PARITY] == 0.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[gate\n", "not valid TOML"),
        ("[metrics.nonsense]\nmax_ratio = 2\n", "unknown metric"),
        (f"[metrics.{LOB_STATS}]\nmax_ratio = 2\nmax_value = 1\n", "exactly one"),
        ("[gate]\nruns = 'many'\n", "bad \\[gate\\] value"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    with pytest.raises(FeatureplaneError, match=match):
        gate.load_config(path)


@pytest.mark.parametrize(
    "content", ["not json", json.dumps({"version": 99}), json.dumps({"version": 1, "values": {}})]
)
def test_bad_baseline_exits_1_with_one_line(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    assert main(["perf-gate", "--baseline", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("featureplane: error:") and err.count("\n") == 1


def test_no_baseline_argument_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf-gate"]) == 1
    assert "--baseline" in capsys.readouterr().err


class Slowed:
    """A kernel doing its work `factor` times: every call is repeated on shadow engines."""

    def __init__(self, n_symbols: int, book_only: bool, factor: int) -> None:
        self.engines = [gate.rust_engine(n_symbols, book_only) for _ in range(factor)]

    def process_books(self, events: np.ndarray) -> Any:
        # Every engine does the work; the first one's output is returned.
        outs = [e.process_books(events) for e in self.engines]
        return outs[0]

    def process_batch(self, events: np.ndarray) -> Any:
        # Every engine does the work; the first one's output is returned.
        outs = [e.process_batch(events) for e in self.engines]
        return outs[0]


SMALL = GateConfig(events=300_000, runs=5, parity_events=5_000)


@pytest.mark.slow
def test_gate_fails_on_a_slowed_kernel_and_passes_on_the_real_one(tmp_path: Path) -> None:
    if not rust_available():
        pytest.skip("the perf gate measures the Rust kernel")
    baseline = gate.measure(SMALL)
    slowed = gate.measure(SMALL, engine=lambda n, book_only: Slowed(n, book_only, 4))
    # 4x the work against a 1.5x threshold: noise would have to hide a factor 2.7 to pass.
    got = {v.rule.name: v.ok for v in gate.compare(baseline, slowed, SMALL)}
    assert got == {LOB_STATS: False, LOB_UPDATE: False, PARITY: True}

    # The real kernel against itself, with a generous threshold that noise cannot reach.
    generous = GateConfig(
        events=SMALL.events, runs=SMALL.runs, parity_events=SMALL.parity_events,
        rules=(MetricRule(LOB_STATS, max_ratio=4.0), MetricRule(LOB_UPDATE, max_ratio=4.0),
               MetricRule(PARITY, max_value=0.0)),
    )  # fmt: skip
    again = gate.measure(generous)
    assert all(v.ok for v in gate.compare(baseline, again, generous))


@pytest.mark.slow
def test_cli_writes_a_baseline_and_passes_against_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not rust_available():
        pytest.skip("the perf gate measures the Rust kernel")
    config = tmp_path / "gate.toml"
    config.write_text(
        "[gate]\nevents = 200000\nruns = 3\nparity_events = 5000\n"
        f"[metrics.{LOB_STATS}]\nmax_ratio = 5.0\n[metrics.{LOB_UPDATE}]\nmax_ratio = 5.0\n"
        f"[metrics.{PARITY}]\nmax_value = 0.0\n"
    )
    base = tmp_path / "baseline.json"
    assert main(["perf-gate", "--config", str(config), "--write-baseline", str(base)]) == 0
    assert main(["perf-gate", "--config", str(config), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "perf gate: pass" in out
    for name in (LOB_STATS, LOB_UPDATE, PARITY):
        assert name in out
    # A baseline claiming the kernel used to be 10x faster: the gate must fail with exit 1.
    data = json.loads(base.read_text())
    data["values"][LOB_UPDATE] /= 10
    base.write_text(json.dumps(data))
    assert main(["perf-gate", "--config", str(config), "--baseline", str(base)]) == 1
    assert f"REGRESSION in {LOB_UPDATE}" in capsys.readouterr().out
