"""Rollout drills on the loopback venue (the first 30 s of the USD-M pair), each backing a
runbook (docs/runbooks/): the serving backend made to disagree by the test-only fault hook
(`tests.support.faults`), found by shadow parity or decision parity, the canary gate's
ROLLBACK (in the runtime, and by `featureplane canary evaluate` on the exported text), the
fallback, and the frames held against research replay."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from featureplane.cli import main
from featureplane.frames.frame import FrameBatch
from featureplane.live.config import (
    CanaryConfig,
    DecisionParityConfig,
    RiskConfig,
    ShadowConfig,
    StrategyConfig,
)
from featureplane.live.parity import compare_batches, research_batch
from featureplane.rollout.canary import Decision, Metrics
from featureplane.strategy.examples.imbalance_mm import QUOTE, SKIP
from tests.support.faults import FEATURE, disagreeing_backend
from tests.support.live import USDM, LiveRun, captures, run_live, slice_captures
from tests.support.rust import require_rust

pytestmark = pytest.mark.realdata

ROOT = Path(__file__).resolve().parents[2]
CRITERIA = ROOT / "deploy" / "canary" / "criteria.toml"
EVERY = 7
"""The fault hook perturbs imbalance_l5 on frames with seq % EVERY == 0."""
MM = "featureplane.strategy.examples.imbalance_mm:"


@pytest.fixture(scope="module")
def usdm(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return slice_captures(captures(USDM), tmp_path_factory.mktemp("usdm"), 30)


@pytest.fixture(scope="module")
def research(usdm: list[Path]) -> FrameBatch:
    return research_batch(usdm)


def _sections(slices: Path | None, on_rollback: str) -> dict[str, Any]:
    params = {"k_ticks": 2.0}
    strategies = (
        StrategyConfig("legacy", MM + "LegacyImbalanceMM", ("BTCUSDT",), params=params),
        StrategyConfig("feature", MM + "FeatureImbalanceMM", ("BTCUSDT",), params=params),
    )
    shadow = (
        ShadowConfig(
            enabled=True,
            sample=1.0,
            window=64,
            queue_max=100_000,
            slice_dir=str(slices),
            max_slices=3,
        )
        if slices is not None
        else ShadowConfig()
    )
    return {
        "strategies": strategies,
        # The two strategies share the symbol's order-rate budget; lift it, so neither's
        # refusals steer the other's decisions.
        "risk": RiskConfig(max_orders_per_s=1e6, max_open_orders=8),
        "shadow": shadow,
        "canary": CanaryConfig(
            enabled=True, criteria=str(CRITERIA), interval_s=0.05, on_rollback=on_rollback
        ),
        "decision_parity": (DecisionParityConfig("legacy", "feature"),),
    }


@dataclass
class Drill:
    run: LiveRun
    perturbed: int


def _drill(usdm: list[Path], tmp: Path, slices: Path | None, on_rollback: str) -> Drill:
    with pytest.MonkeyPatch.context() as mp:
        made = disagreeing_backend(mp, "rust", every=EVERY)
        run = run_live(usdm, tmp, sections=_sections(slices, on_rollback))
    return Drill(run, sum(k.perturbed_frames for k in made))


@pytest.fixture(scope="module")
def reference_drill(usdm: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Drill:
    require_rust()
    tmp = tmp_path_factory.mktemp("reference-drill")
    return _drill(usdm, tmp, tmp / "slices", "reference")


@pytest.fixture(scope="module")
def legacy_drill(usdm: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Drill:
    require_rust()
    return _drill(usdm, tmp_path_factory.mktemp("legacy-drill"), None, "legacy")


class _Adapter:
    """The runtime collector's shape: every registered service's `collect_metrics`."""

    def __init__(self, components: Iterable[Any]) -> None:
        self.components = [c for c in components if hasattr(c, "collect_metrics")]

    def collect(self) -> Iterator[Any]:
        for c in self.components:
            yield from c.collect_metrics()


def _exported(run: LiveRun, path: Path) -> Path:
    registry = CollectorRegistry()
    registry.register(_Adapter(run.registry.get(n) for n in run.registry))  # type: ignore[arg-type]
    path.write_bytes(generate_latest(registry))
    return path


def _tail(batch: FrameBatch, k: int) -> FrameBatch:
    return FrameBatch(
        batch.feature_set,
        batch.symbols,
        {name: col[k:] for name, col in batch.columns.items()},
        {name: col[k:] for name, col in batch.values.items()},
    )


def _before_fallback_only_the_fault(run: LiveRun, research: FrameBatch, k: int) -> None:
    """Up to the fallback (frame `k`) the frames are research's, but for the perturbed
    feature on exactly the frames the hook perturbs (both sides interleave the symbols alike,
    so frame i of one is frame i of the other)."""
    live = run.batch.truncate(k)
    ref = research.truncate(k)
    a, b = live.values[FEATURE], ref.values[FEATURE]
    differs = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    hit = live.columns["seq"] % EVERY == 0
    assert differs.any() and not np.any(differs & ~hit)
    assert np.array_equal(a[differs], b[differs] + 0.5)
    patched = FrameBatch(ref.feature_set, ref.symbols, ref.columns, {**ref.values, FEATURE: a})
    report = compare_batches("all but the fault", live, patched)
    assert report.ok and report.order_equal, report.format()


def test_parity_mismatch_drill(
    reference_drill: Drill, research: FrameBatch, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """docs/runbooks/parity-mismatch.md: found, rolled back to the reference, equal after."""
    run = reference_drill.run
    shadow = run.registry.get("shadow")
    c = shadow.counters
    assert reference_drill.perturbed > 0
    assert c.mismatched_frames > 0 and set(shadow.mismatches) == {FEATURE}
    assert c.slices_saved >= 1 and c.errors == 0
    canary = run.registry.get("canary")
    assert canary.decision == Decision.ROLLBACK and canary.rollbacks == 1
    assert run.registry.get("service").engine.backend == "python"
    k = canary.rolled_back_at_frame
    assert k is not None and 0 < k < len(run.batch)
    _before_fallback_only_the_fault(run, research, k)
    # From the fallback on: research replay's frames, every column, bit for bit.
    after = compare_batches("after the fallback", _tail(run.batch, k), _tail(research, k))
    assert after.ok, after.format()
    assert after.frames == len(run.batch) - k > 1000
    # The exported text: the gate rolls back (exit 20) on it, as the runtime did.
    text = _exported(run, tmp_path / "canary.prom")
    m = Metrics.from_text(text.read_text())
    assert m.total("featureplane_canary_decision") == 2
    assert m.total("featureplane_canary_rollbacks_total") == 1
    assert m.total("featureplane_parity_mismatches_total", feature=FEATURE) > 0
    assert main(["canary", "evaluate", "--metrics", str(text), "--criteria", str(CRITERIA)]) == 20
    assert "mismatched frames" in capsys.readouterr().out
    # The slice reproduces with `featureplane parity` on the disagreeing build, not on a sound one.
    slice_dir = str(shadow.slices[0])
    disagreeing_backend(monkeypatch, "rust", every=EVERY)
    assert main(["parity", slice_dir, "--generated", "0"]) == 1
    assert "reproduced" in capsys.readouterr().out
    monkeypatch.undo()
    assert main(["parity", slice_dir, "--generated", "0"]) == 0


def test_canary_rollback_drill(
    legacy_drill: Drill, reference_drill: Drill, research: FrameBatch, tmp_path: Path
) -> None:
    """docs/runbooks/canary-rollback.md: decision parity finds the disagreeing backend (no
    shadow running), the gate rolls back to the legacy path, and the legacy strategy decides
    on as it did where the feature path stayed on."""
    run = legacy_drill.run
    parity = run.registry.get("decision_parity:feature")
    assert parity.compared > 0 and parity.mismatches >= 1
    canary = run.registry.get("canary")
    assert canary.decision == Decision.ROLLBACK and canary.rollbacks == 1
    service = run.registry.get("service")
    assert service.engine is None and not service.features
    # No frames after the fallback; before it, research's but for the fault.
    assert len(run.batch) == canary.rolled_back_at_frame
    _before_fallback_only_the_fault(run, research, canary.rolled_back_at_frame)
    m = Metrics.from_text(_exported(run, tmp_path / "m.prom").read_text())
    assert m.total("featureplane_feature_path_enabled") == 0
    assert m.total("featureplane_decision_parity_mismatches_total", strategy="feature") >= 1
    # After the fallback the feature strategy has nothing ready (SKIP), the legacy one quotes,
    # and the legacy strategy's whole log equals the one of the run that kept the feature
    # path (on the reference): the books went on unchanged through the switch.
    last_ts = int(run.batch.columns["source_ts_ns"][-1])
    feature = run.registry.get("runner:feature").strategy.decisions()
    legacy = run.registry.get("runner:legacy").strategy.decisions()
    late_f, late_l = feature[feature["ts"] > last_ts], legacy[legacy["ts"] > last_ts]
    assert len(late_f) and np.all(late_f["action"] == SKIP)
    assert np.count_nonzero(late_l["action"] == QUOTE) > 10
    kept = reference_drill.run.registry.get("runner:legacy").strategy.decisions()
    assert np.array_equal(legacy, kept)
