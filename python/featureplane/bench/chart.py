"""PNG charts of the benchmark matrix and the scaling curves (matplotlib, Agg: no display)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featureplane.bench.matrix import MatrixResult
    from featureplane.bench.scaling import ScalingResult


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def matrix_chart(result: MatrixResult, path: Path) -> None:
    """ns/event of every kernel row, one panel per dataset, log scale (shorter is faster)."""
    plt = _pyplot()
    sections = [s for s in result.sections if s.rows and s.title.startswith("kernel")]
    fig, axes = plt.subplots(len(sections), 1, figsize=(10, 2.2 * len(sections) + 0.6),
                             squeeze=False)  # fmt: skip
    for ax, section in zip(axes[:, 0], sections, strict=True):
        names = [r.name for r in section.rows]
        ns = [r.ns_per_event for r in section.rows]
        lo = [r.ns_per_event - min(r.times_s) / r.events * 1e9 for r in section.rows]
        hi = [max(r.times_s) / r.events * 1e9 - r.ns_per_event for r in section.rows]
        colors = ["tab:orange" if "python" in n else "tab:gray" if "hftbacktest" in n
                  else "tab:blue" for n in names]  # fmt: skip
        ax.barh(names, ns, xerr=[lo, hi], color=colors)
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_title(section.title, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("ns per event (median; bars: min-max of runs), log scale")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def scaling_chart(result: ScalingResult, path: Path) -> None:
    """ns/event against each curve's parameter (log-log), and the session's cost and RSS."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
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
    ax = axes.flat[3]
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
