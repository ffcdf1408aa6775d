"""Runtime metrics: the stage ring, the histogram bucketed at scrape time (held against
prometheus_client's own Histogram), the collector's contract hook, the exporter's address and
the `[metrics]` config."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from featureplane.errors import ConfigError
from featureplane.live.bootstrap import SystemBootstrapper
from featureplane.live.config import InstrumentConfig, LiveConfig, MetricsConfig, parse_config
from featureplane.live.metrics import BUCKETS_S, STAGES, RuntimeMetrics, StageRing
from featureplane.live.metrics.contract import CONTRACT
from featureplane.live.metrics.stages import StageHistogram


def _rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # log-uniform from 100 ns to 5 s: every bucket, +Inf included
    logs = rng.uniform(np.log(100), np.log(5e9), size=(n, len(STAGES)))
    rows = np.exp(logs).astype(np.int64)
    rows[rng.random((n, len(STAGES))) < 0.2] = 0  # stages that did not run
    bounds = np.array([round(b * 1e9) for b in BUCKETS_S], dtype=np.int64)
    k = min(n, len(bounds))
    rows[:k, 0] = bounds[:k]  # exact bucket bounds: `le` includes them
    return rows


def test_ring_returns_rows_in_order_and_counts_what_it_overwrote() -> None:
    ring = StageRing(capacity=8)
    rows = _rows(13)
    for r in rows[:5]:
        ring.record(*map(int, r))
    assert np.array_equal(ring.drain(), rows[:5])
    assert len(ring.drain()) == 0
    for r in rows[5:]:  # 8 rows: exactly the capacity, wrapping
        ring.record(*map(int, r))
    assert np.array_equal(ring.drain(), rows[5:])
    assert ring.overwritten == 0
    for _ in range(3):
        for r in rows:
            ring.record(*map(int, r))
    got = ring.drain()
    assert np.array_equal(got, np.concatenate([rows, rows, rows])[-8:])
    assert ring.overwritten == 3 * 13 - 8
    with pytest.raises(ValueError):
        StageRing(0)


def _samples(text: str, family: str) -> dict[tuple[str, str], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name != family:
            continue
        for s in fam.samples:
            out[(s.name, s.labels.get("le", ""))] = s.value
    return out


def test_histogram_matches_prometheus_clients_own() -> None:
    """The same durations through `Histogram.observe` and through the ring give the same
    buckets, count and sum."""
    rows = _rows(5000, seed=1)
    ring = StageRing(capacity=4096)
    h = StageHistogram.empty()
    for i in range(0, len(rows), 1000):  # several scrapes
        for r in rows[i : i + 1000]:
            ring.record(*map(int, r))
        h.add(ring.drain())
    for stage in range(len(STAGES)):
        reg = CollectorRegistry()
        ref = Histogram("x_seconds", "x", buckets=BUCKETS_S, registry=reg)
        for d in rows[:, stage]:
            if d > 0:
                ref.observe(float(d) / 1e9)
        want = _samples(generate_latest(reg).decode(), "x_seconds")
        ours = {le: c for le, c in h.buckets(stage)}
        for (name, le), v in want.items():
            if name.endswith("_bucket"):
                assert ours[_le(le)] == v, (STAGES[stage], le)
        assert h.n[stage] == want[("x_seconds_count", "")]
        assert h.sum_ns[stage] / 1e9 == pytest.approx(want[("x_seconds_sum", "")], rel=1e-9)


def _le(text: str) -> str:
    return "+Inf" if text == "+Inf" else repr(float(text))


def _offline_config(**metrics: object) -> LiveConfig:
    return LiveConfig(
        symbols=(InstrumentConfig("BTCUSDT"), InstrumentConfig("ETHUSDT")),
        metrics=MetricsConfig(**metrics),  # type: ignore[arg-type]
    )


class _Shadow:
    """A service of the metric contract: it builds its families from its own counters."""

    def __init__(self) -> None:
        self.compared = 41

    def collect_metrics(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "featureplane_parity_frames_compared", "frames compared", value=self.compared
        )


def test_exporter_binds_loopback_and_serves_every_service() -> None:
    boot = SystemBootstrapper(_offline_config(), metrics=True)
    reg = boot.build()
    reg.register("shadow", _Shadow())
    m = boot.metrics
    assert isinstance(m, RuntimeMetrics)
    port = m.start()
    try:
        assert m._server.server_address[0] == "127.0.0.1"
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False).text
    finally:
        m.stop()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "featureplane_parity_frames_compared" in names  # the contract hook
    assert "featureplane_parity_frames_compared_total 41.0" in text
    exported = {f.name + ("_total" if f.type == "counter" else "") for f in
                text_string_to_metric_families(text)}  # fmt: skip
    exported = {n if n in CONTRACT else n + "_info" for n in exported}
    assert exported <= set(CONTRACT), exported - set(CONTRACT)
    with pytest.raises(httpx.HTTPError):  # stopped: nothing listens
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1, trust_env=False)


def test_a_taken_port_is_a_config_error() -> None:
    first = SystemBootstrapper(_offline_config(), metrics=True)
    first.build()
    port = first.metrics.start()
    try:
        second = SystemBootstrapper(_offline_config(), metrics=True)
        second.build()
        with pytest.raises(ConfigError, match="cannot serve"):
            second.metrics.start(port=port)
    finally:
        first.metrics.stop()


def test_metrics_config_is_checked() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"symbols": [{"symbol": "BTCUSDT"}],
                      "metrics": {"port": 70000, "host": "", "latency_samples": 0,
                                  "nonsense": 1}})  # fmt: skip
    text = "\n".join(err.value.problems)
    for key in ("metrics.port", "metrics.host", "metrics.latency_samples", "nonsense"):
        assert key in text
    cfg = parse_config({"symbols": [{"symbol": "BTCUSDT"}], "metrics": {"enabled": True}})
    assert cfg.metrics == MetricsConfig(enabled=True, host="127.0.0.1", port=0)


def test_metrics_off_records_nothing() -> None:
    boot = SystemBootstrapper(_offline_config())
    reg = boot.build()
    assert boot.metrics is None
    assert reg.get("service").stages is None
    on = SystemBootstrapper(dataclasses.replace(_offline_config(enabled=True)))
    on.build()
    assert on.metrics is not None and on.registry is not None
    assert on.registry.get("service").stages is on.metrics.ring


def test_before_any_frame_staleness_counts_and_lag_is_absent() -> None:
    from featureplane.live.config import FeatureEngineConfig

    config = dataclasses.replace(
        _offline_config(), feature_engine=FeatureEngineConfig(enabled=False)
    )
    boot = SystemBootstrapper(config, metrics=True)
    boot.build()
    text = boot.metrics.text()
    assert 'featureplane_backend_info{backend="legacy"} 1.0' in text
    assert "featureplane_lag_seconds" not in text
    ages = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("featureplane_symbol_last_frame_age_seconds{")
    ]
    assert len(ages) == 2 and all(a >= 0 for a in ages)
    assert 'featureplane_symbol_healthy{symbol="BTCUSDT"} 0.0' in text  # syncing: not healthy
