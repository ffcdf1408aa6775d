"""Runbook drills against a real Prometheus: each incident of docs/runbooks/ produced on the
loopback venue (real USD-M captures, BTCUSDT + ETHUSDT, the first 20 s at 8x real time), the
live runtime's `/metrics` scraped every 200 ms by `prometheus` with the deploy alert rules,
and the runbook's alert checked to fire during the run (and the others to stay quiet), then the
runbook's action checked to work.

One server serves the module; each drill adds its run as a target labelled `drill=<name>`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import InfoMetricFamily, Metric

from featureplane import __version__
from featureplane.live.bootstrap import LiveSummary, ServiceRegistry, SystemBootstrapper
from featureplane.live.config import MetricsConfig, RiskConfig, StrategyConfig
from featureplane.live.parity import live_config_for
from featureplane.live.risk import request_kill, request_reset
from featureplane.live.service import MarketUpdate
from featureplane.live.venue.server import LoopbackVenue, VenueThread
from featureplane.schema import get_feature_set
from tests.support.live import USDM, captures, slice_captures
from tests.support.prometheus import Prometheus, free_port, running_prometheus

pytestmark = pytest.mark.realdata

SPEED = 8.0
FAST_RECONNECT = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "reconnect_jitter_s": 0.02,
                  "max_reconnects": 10}  # fmt: skip
MM = StrategyConfig(
    "mm", "featureplane.strategy.examples.imbalance_mm:FeatureImbalanceMM", ("BTCUSDT",)
)
RUNTIME_ALERTS = ("FeatureplaneSymbolStale", "FeatureplaneGap", "FeatureplaneResyncStorm",
                  "FeatureplaneStateReset", "FeatureplaneKillSwitchEngaged")  # fmt: skip


@pytest.fixture(scope="module")
def usdm(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return slice_captures(captures(USDM), tmp_path_factory.mktemp("usdm"), 20)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus")) as server:
        yield server


@dataclass
class Drill:
    name: str
    summary: LiveSummary
    registry: ServiceRegistry
    boot: SystemBootstrapper
    start: float
    end: float
    port: int

    def fired(self, prom: Prometheus, alert: str, **labels: str) -> set[str]:
        """Symbols (or "" for unlabelled alerts) `alert` fired for during the run."""
        hits = prom.fired(alert, self.start, self.end, drill=self.name, **labels)
        return {h["metric"].get("symbol", "") for h in hits}

    def final(self, name: str) -> dict[str, float]:
        """Values of one metric in a scrape taken now (the run's end state), by label text."""
        text = self.boot.metrics.text()
        out = {}
        for line in text.splitlines():
            m = re.match(rf"^{name}(\{{[^}}]*\}})? (\S+)$", line)
            if m:
                out[m.group(1) or ""] = float(m.group(2))
        return out


def run_drill(
    prom: Prometheus,
    paths: list[Path],
    name: str,
    *,
    faults: str | None = None,
    feed: dict[str, Any] | None = None,
    strategies: tuple[StrategyConfig, ...] = (),
    risk: RiskConfig | None = None,
    hook: Callable[[ServiceRegistry], None] | None = None,
) -> Drill:
    """Serve `paths` with `faults`, run the live runtime with metrics on a free port scraped by
    `prom` (the run starts once Prometheus has scraped it, so every counter has a baseline)."""
    venue = LoopbackVenue(paths, speed=SPEED, faults=faults, barrier_timeout_s=30.0)
    seen: dict[str, float] = {}
    # The target goes in before the run (Prometheus applies discovered targets every 5 s): the
    # run then waits one scrape, not a discovery round, with no frames yet.
    port = free_port()
    prom.add_target(port, drill=name)
    assert prom.wait_for(f'up{{drill="{name}"}}', timeout_s=20), "target never discovered"

    def announce(line: str) -> None:
        if not line.startswith("metrics on "):
            return  # the run's other lines ("running ...")
        assert line.endswith(f":{port}/metrics"), line
        up = prom.wait_for(f'up{{drill="{name}"}} == 1', timeout_s=20)
        assert up, f"prometheus never scraped the {name} drill"
        seen["start"] = time.time()

    with VenueThread(venue):
        config = live_config_for(venue, **(feed or {}))
        config = dataclasses.replace(
            config, metrics=MetricsConfig(enabled=True, port=port), strategies=strategies,
            risk=risk or config.risk,
        )  # fmt: skip
        boot = SystemBootstrapper(config, announce=announce)
        registry = boot.build()
        if hook is not None:
            hook(registry)
        summary = asyncio.run(boot.run(duration_s=120))
    end = time.time()
    assert summary.ended_by == "end of stream", summary.format()
    time.sleep(0.6)  # the last evaluations see the last scrape
    prom.remove_target(port)
    return Drill(name, summary, registry, boot, seen["start"], end, port)


def _quiet(drill: Drill, prom: Prometheus, *, expected: str) -> None:
    """Every runtime alert but the drill's stayed quiet."""
    for alert in RUNTIME_ALERTS:
        if alert != expected:
            assert not drill.fired(prom, alert), f"{alert} fired in the {drill.name} drill"


def test_gap_drill(prometheus: Prometheus, usdm: list[Path]) -> None:
    """docs/runbooks/gap-resync-storm.md: one dropped diff -> FeatureplaneGap for that symbol
    alone; the action (none: the symbol resyncs by itself) leaves it healthy."""
    d = run_drill(prometheus, usdm, "gap", faults="drop@600:BTCUSDT")
    assert d.summary.symbols["BTCUSDT"]["gaps"] == 1
    assert d.fired(prometheus, "FeatureplaneGap") == {"BTCUSDT"}
    _quiet(d, prometheus, expected="FeatureplaneGap")
    # Metrics arrived through the server: the last scrape of the run saw most of the frames
    # (the run's end drains the rest after the exporter stops); the end state counts them all.
    frames = prometheus.query('max_over_time(featureplane_frames_total{drill="gap"}[1m])')
    got = {r["metric"]["symbol"]: float(r["value"][1]) for r in frames}
    final = {s: d.final("featureplane_frames_total")[f'{{symbol="{s}"}}'] for s in got}
    assert set(got) == {"BTCUSDT", "ETHUSDT"}
    assert all(0.5 * final[s] < got[s] <= final[s] for s in got), (got, final)
    assert sum(final.values()) == d.summary.frames
    # The action: the symbol resynced alone and is healthy again.
    assert d.summary.symbols["BTCUSDT"]["resyncs"] == 2
    assert d.summary.symbols["ETHUSDT"]["resyncs"] == 1
    assert d.final("featureplane_symbol_healthy") == {
        '{symbol="BTCUSDT"}': 1.0, '{symbol="ETHUSDT"}': 1.0,
    }  # fmt: skip


def test_resync_storm_drill(prometheus: Prometheus, usdm: list[Path]) -> None:
    """docs/runbooks/gap-resync-storm.md: seven gaps of one symbol in seconds ->
    FeatureplaneResyncStorm for it (and FeatureplaneGap); the symbol ends in sync."""
    faults = ",".join(f"drop@{n}:BTCUSDT" for n in range(400, 1800, 200))
    d = run_drill(prometheus, usdm, "storm", faults=faults)
    assert d.summary.symbols["BTCUSDT"]["resyncs"] >= 7
    assert d.fired(prometheus, "FeatureplaneResyncStorm") == {"BTCUSDT"}
    assert d.fired(prometheus, "FeatureplaneGap") == {"BTCUSDT"}
    assert not d.fired(prometheus, "FeatureplaneSymbolStale")
    assert d.final("featureplane_symbol_healthy")['{symbol="BTCUSDT"}'] == 1.0


def test_stale_feed_drill(prometheus: Prometheus, usdm: list[Path]) -> None:
    """docs/runbooks/stale-feed.md: the venue goes silent for 7 s with the connection open ->
    FeatureplaneSymbolStale for both symbols while it lasts; the feed resumes on its own and
    the age falls back below the threshold."""
    d = run_drill(prometheus, usdm, "stale", faults="stall@600:7", feed={"symbol_stale_s": 1.0})
    assert d.fired(prometheus, "FeatureplaneSymbolStale") == {"BTCUSDT", "ETHUSDT"}
    _quiet(d, prometheus, expected="FeatureplaneSymbolStale")
    # While stale, the dashboard's health panel said so (the feed's watchdog, 1 s).
    unhealthy = prometheus.query(
        f'min_over_time(featureplane_symbol_healthy{{drill="stale"}}[{int(d.end - d.start) + 2}s])',
        at=d.end,
    )
    assert {r["metric"]["symbol"]: r["value"][1] for r in unhealthy} == {
        "BTCUSDT": "0", "ETHUSDT": "0",
    }  # fmt: skip
    ages = d.final("featureplane_symbol_last_frame_age_seconds")
    assert all(a < 5 for a in ages.values()), ages
    # Metrics arrive through the server: the latency histogram, the build.
    count = prometheus.query(
        'max_over_time(featureplane_stage_latency_seconds_count{drill="stale",stage="features"}[1m])'
    )
    assert float(count[0]["value"][1]) > 0
    build = prometheus.query('last_over_time(featureplane_build_info{drill="stale"}[1m])')
    assert build[0]["metric"]["schema_hash"] == get_feature_set().schema_hash


def test_reset_drill(prometheus: Prometheus, usdm: list[Path]) -> None:
    """docs/runbooks/reset.md: the venue cuts the connection (40 lines lost) -> reconnect,
    every symbol reset -> FeatureplaneStateReset; both symbols end healthy."""
    d = run_drill(prometheus, usdm, "reset", faults="disconnect@600:40", feed=FAST_RECONNECT)
    assert d.summary.feed["reconnects"] == 1
    assert d.fired(prometheus, "FeatureplaneStateReset") == {""}
    assert not d.fired(prometheus, "FeatureplaneResyncStorm")
    assert all(c["resyncs"] == 2 for c in d.summary.symbols.values())
    assert set(d.final("featureplane_symbol_healthy").values()) == {1.0}
    flags = d.final("featureplane_quality_flags_total")
    assert flags['{flag="STATE_RESET",symbol="BTCUSDT"}'] > 2  # one more reset than at start


def test_kill_switch_drill(prometheus: Prometheus, usdm: list[Path], tmp_path: Path) -> None:
    """docs/runbooks/kill-switch.md: `featureplane live kill` mid-run ->
    FeatureplaneKillSwitchEngaged, every order refused while it holds; `--reset --by NAME`
    releases it and the gauge returns to 0."""
    kill_file = tmp_path / "kill"
    risk = dataclasses.replace(
        RiskConfig(), kill_switch_file=str(kill_file), audit_log=str(tmp_path / "audit.jsonl")
    )
    seen = {"n": 0}

    def hook(registry: ServiceRegistry) -> None:
        def listener(update: MarketUpdate) -> None:
            seen["n"] += 1
            if seen["n"] == 500:
                request_kill(kill_file, "drill", "runbook drill")
            elif seen["n"] == 1500:
                request_reset(kill_file, "drill")

        registry.get("service").listen(listener)

    d = run_drill(prometheus, usdm, "kill", strategies=(MM,), risk=risk, hook=hook)
    assert d.fired(prometheus, "FeatureplaneKillSwitchEngaged") == {""}
    _quiet(d, prometheus, expected="FeatureplaneKillSwitchEngaged")
    engine = d.registry.get("risk")
    events = [(r.event, r.by) for r in engine.audit if r.event in ("kill", "reset")]
    assert events == [("kill", "drill"), ("reset", "drill")]
    assert not engine.killed
    assert d.final("featureplane_kill_switch_engaged") == {"": 0.0}
    # While it held, the strategy's orders were refused (and counted as such).
    assert engine.refusals.get("KILL_SWITCH", 0) > 0
    orders = d.final("featureplane_orders_total")
    assert orders['{result="refused"}'] == sum(engine.refusals.values())
    assert orders['{result="accepted"}'] > 0


class _OtherBuild:
    """The `/metrics` of an instance running another build of the same feature set: its
    `featureplane_build_info` with the schema hash that build's `featureplane schema --json`
    prints (the next `feature_schema_version` of lob_shared_v1)."""

    def __init__(self, schema_hash: str) -> None:
        self.schema_hash = schema_hash

    def collect(self) -> list[Metric]:
        info = InfoMetricFamily("featureplane_build", "The running build.")
        info.add_metric([], {"version": f"{__version__}+next", "feature_set": "lob_shared_v1",
                             "schema_hash": self.schema_hash, "backend": "rust"})  # fmt: skip
        return [info]


def test_schema_mismatch_drill(prometheus: Prometheus, usdm: list[Path]) -> None:
    """docs/runbooks/schema-mismatch.md: an instance of another build joins the fleet while the
    runtime runs -> FeatureplaneSchemaMismatch; the action (take the odd instance out) clears
    it. One process runs one build, so the other instance's exporter stands in for it."""
    fs = get_feature_set()
    other = dataclasses.replace(fs, feature_schema_version=fs.feature_schema_version + 1)
    assert other.schema_hash != fs.schema_hash
    reg = CollectorRegistry()
    reg.register(_OtherBuild(other.schema_hash))
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)
    port = int(server.server_port)
    try:
        prometheus.add_target(port, drill="schema-other")
        assert prometheus.wait_for('up{drill="schema-other"} == 1', timeout_s=20)
        d = run_drill(prometheus, usdm, "schema")
        fired = prometheus.fired("FeatureplaneSchemaMismatch", d.start, d.end)
        assert [f["metric"]["feature_set"] for f in fired] == ["lob_shared_v1"]
        # The action: the odd instance leaves; the alert resolves.
        prometheus.remove_target(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    cleared = prometheus.wait_for(
        'ALERTS{alertname="FeatureplaneSchemaMismatch"}', timeout_s=20, ok=lambda r: not r
    )
    assert not cleared
