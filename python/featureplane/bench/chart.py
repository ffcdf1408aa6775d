"""PNG charts of the benchmark matrix and the scaling curves (matplotlib, Agg: no display)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featureplane import _lazy
from featureplane.bench.timing import Row

if TYPE_CHECKING:
    from featureplane.bench.matrix import MatrixResult
    from featureplane.bench.scaling import ScalingResult


def _pyplot() -> Any:
    matplotlib = _lazy.optional("matplotlib", "plot", "the benchmark chart")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PER_EVENT = "ns per event (median; bars: min-max of runs), log scale"
PER_DECISION = "ns per decision (median over decisions; bars: min-max of runs), log scale"
PER_MESSAGE = "ns per message (p50 over messages; bars: min-max of runs), log scale"


@dataclass
class Panel:
    """One panel of the matrix chart: a section's rows that share a unit."""

    title: str
    rows: list[Row]
    xlabel: str


def matrix_panels(result: MatrixResult) -> list[Panel]:
    """One panel per section with rows; the hftbacktest section's decision-latency rows (one
    "event" is one decision) get a panel of their own, after its throughput rows."""
    from featureplane.bench.backtest import LAT_FEATURE, LAT_LEGACY

    per_decision = {LAT_LEGACY, LAT_FEATURE}
    panels = []
    for section in result.sections:
        events = [r for r in section.rows if r.name not in per_decision]
        decisions = [r for r in section.rows if r.name in per_decision]
        if events:
            title = section.title.split(";")[0] if decisions else section.title
            unit = PER_MESSAGE if section.title.startswith("per message") else PER_EVENT
            panels.append(Panel(title, events, unit))
        if decisions:
            panels.append(Panel("hftbacktest: decision latency, ns per decision", decisions,
                                PER_DECISION))  # fmt: skip
    return panels


def matrix_chart(result: MatrixResult, path: Path) -> list[Panel]:
    """ns/event of every row, one panel per section (ns/decision for the latency rows), log
    scale (shorter is faster); returns the panels drawn, top to bottom."""
    plt = _pyplot()
    panels = matrix_panels(result)
    heights = [0.45 + 0.22 * len(p.rows) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights) + 0.3 * len(panels)),
                             squeeze=False, gridspec_kw={"height_ratios": heights})  # fmt: skip
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        rows = panel.rows
        names = [r.name for r in rows]
        ns = [r.ns_per_event for r in rows]
        lo = [r.ns_per_event - min(r.times_s) / r.events * 1e9 for r in rows]
        hi = [max(r.times_s) / r.events * 1e9 - r.ns_per_event for r in rows]
        colors = ["tab:orange" if "python" in n else "tab:gray" if "hftbacktest" in n
                  else "tab:blue" for n in names]  # fmt: skip
        ax.barh(names, ns, xerr=[lo, hi], color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title(panel.title, fontsize=9, loc="left")
        ax.tick_params(which="both", labelsize=7)
        ax.set_xlabel(panel.xlabel, fontsize=7)
    fig.tight_layout()
    # Long row names on the left: "tight" keeps them whole.
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return panels


def scaling_chart(result: ScalingResult, path: Path) -> None:
    """ns/event against each curve's parameter (log-log), and the session's cost and RSS."""
    plt = _pyplot()
    n_rows = (len(result.curves) + 2) // 2  # two panels a row: every curve, then the session
    fig, axes = plt.subplots(n_rows, 2, figsize=(11, 4 * n_rows))
    for ax, curve in zip(axes.flat, result.curves, strict=False):
        for backend in dict.fromkeys(p.backend for p in curve.points):
            pts = curve.series(backend)
            ax.plot([p.x for p in pts], [p.ns_per_event for p in pts], marker="o",
                     label=f"{backend} (slope {curve.slope(backend):+.2f})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(curve.param)
        ax.set_ylabel("ns per event")
        ax.set_title(curve.name)
        ax.legend(fontsize=7)
    s = result.session
    for spare in axes.flat[len(result.curves) + 1 :]:
        spare.set_visible(False)
    ax = axes.flat[len(result.curves)]
    millions = [e / 1e6 for e in s.events]
    ax.plot(millions, s.ns_per_event, color="tab:blue", lw=0.8)
    ax.set_xlabel("events processed (millions)")
    ax.set_ylabel("ns per event (per chunk)", color="tab:blue")
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    twin.plot(millions, [r / 2**20 for r in s.rss], color="tab:red")
    twin.set_ylabel("RSS (MB)", color="tab:red")
    # Room above the flat line, so it does not hide under the frame.
    twin.set_ylim(0, max(s.rss) / 2**20 * 1.3)
    ax.set_title(f"session: {s.events[-1] / 1e6:.0f}M events, one engine")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
