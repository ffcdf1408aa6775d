"""The metric contract: every name the live runtime and its rollout pieces export, its type
and its labels. Dashboards and alert rules name only these (tested); docs/metrics.md documents
each. Components build their families from their own counters (`collect_metrics`) and never
import this module; it is the reference the deploy files are checked against."""

from __future__ import annotations

CONTRACT: dict[str, tuple[str, tuple[str, ...]]] = {
    "featureplane_build_info": ("info", ("version", "feature_set", "schema_hash", "backend")),
    "featureplane_stage_latency_seconds": ("histogram", ("stage",)),
    "featureplane_frames_total": ("counter", ("symbol",)),
    "featureplane_updates_total": ("counter", ("symbol",)),
    "featureplane_quality_flags_total": ("counter", ("symbol", "flag")),
    "featureplane_resyncs_total": ("counter", ("symbol",)),
    "featureplane_reconnects_total": ("counter", ()),
    "featureplane_gaps_total": ("counter", ("symbol",)),
    "featureplane_symbol_last_frame_age_seconds": ("gauge", ("symbol",)),
    "featureplane_symbol_healthy": ("gauge", ("symbol",)),
    "featureplane_queue_depth": ("gauge", ()),
    "featureplane_lag_seconds": ("gauge", ()),
    "featureplane_dropped_events_total": ("counter", ("reason",)),
    "featureplane_backend_info": ("gauge", ("backend",)),
    "featureplane_kill_switch_engaged": ("gauge", ()),
    "featureplane_orders_total": ("counter", ("result",)),
    # shadow parity
    "featureplane_parity_frames_compared_total": ("counter", ()),
    "featureplane_parity_mismatched_frames_total": ("counter", ()),
    "featureplane_parity_mismatches_total": ("counter", ("feature",)),
    "featureplane_parity_slices_saved_total": ("counter", ()),
    "featureplane_parity_queue_dropped_total": ("counter", ()),
    # decision parity (legacy path vs feature path)
    "featureplane_decision_parity_compared_total": ("counter", ("strategy",)),
    "featureplane_decision_parity_mismatches_total": ("counter", ("strategy",)),
    # canary
    "featureplane_canary_decision": ("gauge", ()),
    "featureplane_canary_rollbacks_total": ("counter", ()),
    "featureplane_feature_path_enabled": ("gauge", ()),
    # the frame ring ([ring]: live/publish.py)
    "featureplane_ring_frames_published_total": ("counter", ("ring",)),
    "featureplane_ring_reader_lag_frames": ("gauge", ("ring", "reader", "pid")),
    "featureplane_ring_reader_lost_frames_total": ("counter", ("ring", "reader", "pid")),
    "featureplane_ring_readers": ("gauge", ("ring",)),
}

SUFFIXES = {"histogram": ("_bucket", "_sum", "_count")}
"""Series names a family of a type adds to its name (what a query may name)."""


def series_names() -> set[str]:
    """Every series name a PromQL query may use: the contract's names and their histogram
    series."""
    names = set()
    for name, (kind, _) in CONTRACT.items():
        names.add(name)
        names.update(name + s for s in SUFFIXES.get(kind, ()))
    return names
