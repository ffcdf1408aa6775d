"""The runtime's metrics on a live run (loopback venue, real USD-M captures, the example market
maker attached), on both backends: every count equals what the run did, every exported metric
is in the contract and documented in docs/metrics.md, and metrics leave the frames unchanged."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from featureplane.frames.frame import QualityFlag
from featureplane.frames.parquet import read_feature_file
from featureplane.live.bootstrap import SystemBootstrapper
from featureplane.live.config import LiveConfig, MetricsConfig, StrategyConfig
from featureplane.live.metrics.contract import CONTRACT
from featureplane.live.parity import compare_batches, live_config_for, research_batch
from featureplane.live.venue.server import LoopbackVenue, VenueThread
from tests.support.live import USDM, captures, slice_captures

pytestmark = pytest.mark.realdata

DOCS = Path(__file__).resolve().parents[2] / "docs"
MM = StrategyConfig(
    "mm", "featureplane.strategy.examples.imbalance_mm:FeatureImbalanceMM", ("BTCUSDT",)
)


@pytest.fixture(scope="module")
def usdm(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return slice_captures(captures(USDM), tmp_path_factory.mktemp("usdm"), 20)


def _run(paths: list[Path], tmp: Path, backend: str) -> tuple[SystemBootstrapper, Path]:
    venue = LoopbackVenue(paths, barrier_timeout_s=30.0)
    out = tmp / f"live-{backend}.parquet"
    with VenueThread(venue):
        config: LiveConfig = live_config_for(venue)
        config = dataclasses.replace(
            config,
            metrics=MetricsConfig(enabled=True),
            strategies=(MM,),
            feature_engine=dataclasses.replace(config.feature_engine, backend=backend),
        )
        lines: list[str] = []
        boot = SystemBootstrapper(config, out=out, announce=lines.append)
        boot.build()
        summary = asyncio.run(boot.run(duration_s=120))
    assert summary.ended_by == "end of stream", summary.format()
    assert lines and re.fullmatch(r"metrics on http://127\.0\.0\.1:\d+/metrics", lines[0])
    return boot, out


def _values(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_live_metrics_count_what_the_run_did(
    usdm: list[Path], tmp_path: Path, backend: str
) -> None:
    boot, out = _run(usdm, tmp_path, backend)
    reg = boot.registry
    assert reg is not None
    text = boot.metrics.text()
    v = _values(text)
    batch = read_feature_file(out).to_batch()
    # The frames are research replay's: recording metrics changes nothing.
    report = compare_batches("metrics on", batch, research_batch(usdm))
    assert report.ok, report.format()

    service = reg.get("service")
    feed = reg.get("feed")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        sym = batch.for_symbol(symbol)
        flags = sym.columns["quality_flags"]
        assert v["featureplane_frames_total"][(("symbol", symbol),)] == len(sym)
        assert v["featureplane_updates_total"][(("symbol", symbol),)] == (
            feed.symbols[symbol].counters.received
        )
        for flag in QualityFlag:
            key = (("flag", str(flag.name)), ("symbol", symbol))
            assert v["featureplane_quality_flags_total"][key] == np.count_nonzero(flags & flag)
        assert v["featureplane_resyncs_total"][(("symbol", symbol),)] == 1
        assert v["featureplane_gaps_total"][(("symbol", symbol),)] == 0
    stages = v["featureplane_stage_latency_seconds_count"]
    applied = service.counters.messages_applied
    assert stages[(("stage", "features"),)] == len(batch) == applied
    assert stages[(("stage", "receive"),)] == stages[(("stage", "strategy"),)] == applied
    assert stages[(("stage", "book"),)] == 0  # one kernel call applies book and features
    risk = reg.get("risk")
    assert stages[(("stage", "risk"),)] > 0  # the market maker sent orders
    assert v["featureplane_orders_total"][(("result", "accepted"),)] == risk.accepted > 0
    assert v["featureplane_orders_total"][(("result", "refused"),)] == sum(risk.refusals.values())
    assert v["featureplane_backend_info"] == {(("backend", backend),): 1.0}
    build = next(iter(v["featureplane_build_info"]))
    assert dict(build)["backend"] == backend
    assert dict(build)["schema_hash"] == service.engine.feature_set.schema_hash
    assert v["featureplane_dropped_events_total"][(("reason", "queue_overflow"),)] == 0
    assert v["featureplane_kill_switch_engaged"][()] == 0

    # Every metric the run exported is in the contract and in the docs page's table.
    page = (DOCS / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(featureplane_[a-z0-9_]+)`", page, flags=re.M))
    exported = set()
    for fam in text_string_to_metric_families(text):
        name = fam.name + {"counter": "_total", "info": "_info"}.get(fam.type, "")
        exported.add(name)
    assert exported <= set(CONTRACT), exported - set(CONTRACT)
    assert exported <= documented, exported - documented


def test_metrics_cost_bench_checks_its_output(usdm: list[Path]) -> None:
    """`featureplane bench --live --metrics` on a short slice: both ways give the same frames,
    the scrape counts every frame, and a broken comparison would say so."""
    from featureplane.bench import live_metrics

    cost = live_metrics.run(usdm, rounds=1, scrape_every=500)
    assert cost.correct
    assert cost.scrapes >= 2 and cost.messages > 1000
    assert cost.ratio > 0 and cost.record_ns > 0
    text = cost.format()
    assert "metrics on" in text and "correct = true" in text
