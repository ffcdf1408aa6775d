"""Metric families of the runtime's own services, read from the counters they keep.

Each reader takes one registered service by duck typing (attributes, no import of the
service's module), so the metrics package and the services stay independent: a service that
implements `collect_metrics` itself (the shadow and canary pieces) is yielded as is by the
collector, and these readers cover the services that predate the contract (`service`, `feed`,
`risk`). Everything here runs at scrape time, on the exporter's thread: dicts are copied
(`list(d.items())`, atomic under the GIL) before they are walked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from featureplane.frames.frame import QualityFlag

FLAGS = tuple((str(f.name), int(f)) for f in QualityFlag)
"""(name, bit) of every quality flag, in the frame ABI's order."""

_SYNC_LIVE = 1
"""`SyncState.LIVE` of the feed's sync rule (its IntEnum value)."""


def service_families(service: Any, now_ns: int | None = None) -> Iterator[Metric]:
    """`MarketDataService`: frames, flags, staleness, queue depth, lag."""
    now = time.time_ns() if now_ns is None else now_ns
    table = service.symbols
    names = [table.name_of(i) for i in range(len(table))]
    sm = service.symbol_metrics
    frames = CounterMetricFamily(
        "featureplane_frames", "Feature frames produced, per symbol.", labels=["symbol"]
    )
    flags = CounterMetricFamily(
        "featureplane_quality_flags",
        "Frames carrying each quality flag, per symbol.",
        labels=["symbol", "flag"],
    )
    age = GaugeMetricFamily(
        "featureplane_symbol_last_frame_age_seconds",
        "Local now minus the local receive time of the symbol's last frame (since the start "
        "while it has none).",
        labels=["symbol"],
    )
    last_any = 0
    for sid, name in enumerate(names):
        frames.add_metric([name], sm.frames[sid])
        by_value = list(sm.flag_values[sid].items())
        for flag, bit in FLAGS:
            flags.add_metric([name, flag], sum(n for v, n in by_value if v & bit))
        last = sm.last_local_ns[sid]
        last_any = max(last_any, last)
        age.add_metric([name], max(0, now - (last or sm.start_ns)) / 1e9)
    yield frames
    yield flags
    yield age
    yield GaugeMetricFamily(
        "featureplane_queue_depth",
        "Messages waiting in the service's inbox.",
        value=service.queued,
    )
    if last_any:  # no frame yet: no lag to tell (staleness says it)
        yield GaugeMetricFamily(
            "featureplane_lag_seconds",
            "Local now minus the local receive time of the last frame applied (any symbol).",
            value=max(0, now - last_any) / 1e9,
        )


def dropped_families(service: Any, feed: Any, ring: Any) -> Iterator[Metric]:
    """Every event the runtime did not apply, by why (nothing is dropped uncounted)."""
    c = service.counters
    reasons: dict[str, int] = {
        "queue_overflow": c.overflow_messages,
        "engine_refused": c.messages_dropped_by_engine,
        "duplicate": 0,
        "late": 0,
        "held_overflow": 0,
        "latency_sample_overwritten": ring.overwritten if ring is not None else 0,
    }
    if feed is not None:
        for live in list(feed.symbols.values()):
            sc = live.counters
            reasons["duplicate"] += sc.duplicates
            reasons["late"] += sc.late
            reasons["held_overflow"] += sc.held_overflows
    fam = CounterMetricFamily(
        "featureplane_dropped_events",
        "Events not applied, by reason (queue overflow, duplicate, late, ...).",
        labels=["reason"],
    )
    for reason, n in reasons.items():
        fam.add_metric([reason], n)
    yield fam


def feed_families(feed: Any, service: Any) -> Iterator[Metric]:
    """`BinanceFeed`: messages in, resyncs, gaps, reconnects, per-symbol health."""
    updates = CounterMetricFamily(
        "featureplane_updates",
        "Market-data messages received from the venue (before dedup), per symbol.",
        labels=["symbol"],
    )
    resyncs = CounterMetricFamily(
        "featureplane_resyncs", "Snapshot resyncs started, per symbol.", labels=["symbol"]
    )
    gaps = CounterMetricFamily(
        "featureplane_gaps",
        "Continuity breaks (sequence gaps) seen in the stream, per symbol.",
        labels=["symbol"],
    )
    healthy = GaugeMetricFamily(
        "featureplane_symbol_healthy",
        "1 while the symbol is in sync, fresh and not gapped; else 0.",
        labels=["symbol"],
    )
    gap_bit = int(QualityFlag.GAP_DETECTED)
    for symbol, live in list(feed.symbols.items()):
        updates.add_metric([symbol], live.counters.received)
        resyncs.add_metric([symbol], live.counters.resyncs)
        gaps.add_metric([symbol], live.counters.gaps)
        sid = live.symbol_id
        ok = (
            int(live.state) == _SYNC_LIVE
            and not feed.stale(symbol)
            and not service.gapped(sid)
            and not service.last_flags(sid)[0] & gap_bit
        )
        healthy.add_metric([symbol], 1.0 if ok else 0.0)
    yield updates
    yield resyncs
    yield gaps
    yield healthy
    yield CounterMetricFamily(
        "featureplane_reconnects",
        "Websocket connections replaced after a loss (rotations excluded).",
        value=feed.counters.reconnects,
    )


def risk_families(risk: Any) -> Iterator[Metric]:
    """`RiskEngine`: the kill switch and orders by result (no engine: nothing trades)."""
    killed = bool(risk.killed) if risk is not None else False
    yield GaugeMetricFamily(
        "featureplane_kill_switch_engaged",
        "1 while the kill switch is on (trading halted until a person resets it).",
        value=1.0 if killed else 0.0,
    )
    orders = CounterMetricFamily(
        "featureplane_orders",
        "Order and modify requests through the risk gate, by result.",
        labels=["result"],
    )
    accepted = risk.accepted if risk is not None else 0
    refused = sum(list(risk.refusals.values())) if risk is not None else 0
    orders.add_metric(["accepted"], accepted)
    orders.add_metric(["refused"], refused)
    yield orders
