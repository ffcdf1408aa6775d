"""The report of a backtest run: equity, position, price with fills, and features over time.

A PNG (matplotlib, Agg backend: no display needed), or an HTML page with the PNG embedded and
the summary. Features are the lob_shared_v1 frames of the feed, taken as of each decision.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from featureplane import _lazy
from featureplane.backtest.results import BacktestRun

PLOTTED_FEATURES = ("imbalance_l5", "imbalance_l1_ema8", "ofi_l1_decay_1s")


def _figure_png(run: BacktestRun) -> bytes:
    matplotlib = _lazy.optional("matplotlib", "plot", "the backtest report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec = run.record
    if not rec.ts:
        raise ValueError("the run made no decision with a two-sided book: nothing to plot")
    t0 = rec.ts[0]
    secs = (np.asarray(rec.ts) - t0) / 1e9
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True, constrained_layout=True)
    price, equity, position, feats = axes

    price.plot(secs, rec.mid_px, lw=0.8, color="0.3", label="mid")
    fills = np.asarray(rec.fill_side)
    fill_s = (np.asarray(rec.fill_ts) - t0) / 1e9
    fill_px = np.asarray(rec.fill_px)
    for side, marker, color, label in (
        (1, "^", "tab:green", "buy fill"),
        (-1, "v", "tab:red", "sell fill"),
    ):
        keep = fills == side
        price.scatter(fill_s[keep], fill_px[keep], marker=marker, color=color, s=18, label=label)
    price.set_ylabel("price")
    price.legend(loc="upper left", fontsize=8)

    equity.plot(secs, rec.equity, lw=0.9, color="tab:blue")
    equity.set_ylabel("equity (quote, at mid)")
    position.step(secs, rec.position, where="post", lw=0.9, color="tab:purple")
    position.set_ylabel("position (lots)")

    batch = run.adapter.frames()
    at = np.searchsorted(batch.columns["local_ts_ns"], np.asarray(rec.ts), side="right") - 1
    at = np.clip(at, 0, None)
    for name in PLOTTED_FEATURES[:2]:
        feats.plot(secs, batch.values[name][at], lw=0.7, label=name)
    feats.set_ylabel("imbalance")
    twin = feats.twinx()
    name = PLOTTED_FEATURES[2]
    twin.plot(secs, batch.values[name][at], lw=0.6, color="tab:gray", alpha=0.7, label=name)
    twin.set_ylabel(name)
    feats.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    feats.set_xlabel("seconds since the first decision")
    fig.suptitle(f"{run.adapter.symbol}: {run.outcome.name} imbalance market maker")

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def write_report(run: BacktestRun, out: Path) -> Path:
    """Write `out` (.png, or .html with the figure embedded); returns the path written."""
    png = _figure_png(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() in (".html", ".htm"):
        img = base64.b64encode(png).decode("ascii")
        page = (
            "<!doctype html><meta charset='utf-8'><title>featureplane backtest</title>"
            f"<pre>{html.escape(run.summary())}</pre>"
            f"<img alt='backtest report' src='data:image/png;base64,{img}'>"
        )
        out.write_text(page, encoding="utf-8")
    else:
        out.write_bytes(png)
    return out
