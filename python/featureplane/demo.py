"""The demo: a simulated session through the FeatureEngine, a summary and a plot.

`run_demo` is what `featureplane demo --out DIR` runs. It needs no data and no network: the
built-in simulator (`featureplane.sources.sim`) makes a three-symbol L2 + trades session with one
sequence gap and resync, duplicates and late out-of-order copies; the engine turns it into
`lob_shared_v1` frames; the demo prints what came out and writes

- `<SYMBOL>_features.png`: mid and microprice, `imbalance_l1`, `ofi_l1_cum` and
  `mid_zscore_64` over time for the symbol with the gap, the untrusted stretch shaded;
- `summary.json`: the printed summary as data.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import orjson
from tqdm.auto import tqdm

from featureplane import _lazy
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.events import END_OF_MESSAGE, message_bounds
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.units import to_real_columns
from featureplane.sources.sim import FaultSpec, InjectedFault, SimConfig, SimSession, simulate

DEFAULT_DEMO_MESSAGES = 100_000
"""Default session size: about 10 s end to end on the Python reference backend, 2 s on Rust."""

PLOT_SYMBOL = "SIMBTC"
SUMMARY_FEATURES = (
    "mid",
    "spread",
    "microprice",
    "imbalance_l1",
    "ofi_l1_cum",
    "last_trade_px",
    "mid_zscore_64",
)
PLOT_FEATURES = (
    "mid",
    "microprice",
    "imbalance_l1",
    "imbalance_l1_ema8",
    "ofi_l1_cum",
    "mid_zscore_64",
)
DEMO_ENGINE_CONFIG = EngineConfig(stale_after_ns=1_500_000)
"""The demo turns the STALE_INPUT rule on (receive time more than 1.5 ms after source time), so
the simulator's latency tail shows up in the flag counts."""


def demo_config(seed: int = 7, n_messages: int = DEFAULT_DEMO_MESSAGES) -> SimConfig:
    """The simulated session of the demo: default instruments and one of each fault.

    The gap on the plotted symbol stays unhealed for about 4% of its messages, long enough to
    see in the plot.

    Raises
    ------
    ValueError
        If `n_messages` is too small to place the faults (fewer than 300).
    """
    if n_messages < 300:
        raise ValueError(f"the demo needs at least 300 messages, got {n_messages}")
    base = SimConfig(seed=seed, n_messages=n_messages)
    names = [inst.spec.symbol for inst in base.instruments]
    n_plot = dict(zip(names, base.messages_per_symbol(), strict=True))[PLOT_SYMBOL]
    faults = (
        FaultSpec("duplicate", PLOT_SYMBOL, at=0.25),
        FaultSpec("gap", PLOT_SYMBOL, at=0.5, missing=5, resync_after=max(10, n_plot // 25)),
        FaultSpec("out_of_order", PLOT_SYMBOL, at=0.75, lag=4),
        FaultSpec("duplicate", "SIMETH", at=0.4),
        FaultSpec("out_of_order", "SIMSOL", at=0.6, lag=2),
    )
    return SimConfig(seed=seed, n_messages=n_messages, faults=faults)


@dataclass(frozen=True)
class DemoSummary:
    """What a demo run produced.

    Attributes
    ----------
    messages, event_rows
        Input size: messages (including dropped duplicates and out-of-order copies) and rows.
    frames
        Frames the engine emitted (one per applied message).
    engine_elapsed_s, messages_per_s, rows_per_s
        Wall time of the feature engine alone and its throughput.
    quality_counts
        Frames carrying each quality flag, by flag name.
    counters
        The engine's counters after the run (messages, duplicates, out_of_order, gaps, ...).
    last_values
        Per symbol, the last frame's value of each of `SUMMARY_FEATURES` in real units; NaN
        where the feature was not ready in that frame.
    """

    out_dir: Path
    png_path: Path
    summary_path: Path
    seed: int
    backend: str
    symbols: tuple[str, ...]
    messages: int
    event_rows: int
    frames: int
    sim_elapsed_s: float
    engine_elapsed_s: float
    messages_per_s: float
    rows_per_s: float
    quality_counts: dict[str, int]
    counters: dict[str, int]
    frames_per_symbol: dict[str, int]
    last_values: dict[str, dict[str, float]]
    faults: tuple[InjectedFault, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data (paths as strings, NaN as null)."""
        return {
            "out_dir": str(self.out_dir),
            "png_path": str(self.png_path),
            "summary_path": str(self.summary_path),
            "seed": self.seed,
            "backend": self.backend,
            "symbols": list(self.symbols),
            "messages": self.messages,
            "event_rows": self.event_rows,
            "frames": self.frames,
            "sim_elapsed_s": self.sim_elapsed_s,
            "engine_elapsed_s": self.engine_elapsed_s,
            "messages_per_s": self.messages_per_s,
            "rows_per_s": self.rows_per_s,
            "quality_counts": self.quality_counts,
            "counters": self.counters,
            "frames_per_symbol": self.frames_per_symbol,
            "last_values": {
                sym: {k: (None if np.isnan(v) else v) for k, v in vals.items()}
                for sym, vals in self.last_values.items()
            },
            "faults": [
                {
                    "kind": f.kind,
                    "symbol": f.symbol,
                    "seq": f.seq,
                    "message_index": f.message_index,
                    "n_missing": f.n_missing,
                    "resync_message_index": f.resync_message_index,
                }
                for f in self.faults
            ],
        }

    def render(self) -> str:
        """The human-readable summary that `run_demo` prints."""
        lines = [
            f"featureplane demo: seed {self.seed}, backend {self.backend}",
            f"simulated {self.messages:,} messages ({self.event_rows:,} rows) for "
            f"{', '.join(self.symbols)} in {self.sim_elapsed_s:.2f} s",
            f"engine: {self.frames:,} frames in {self.engine_elapsed_s:.2f} s "
            f"({self.messages_per_s:,.0f} messages/s, {self.rows_per_s:,.0f} rows/s)",
            "frames per symbol: "
            + ", ".join(f"{s} {n:,}" for s, n in self.frames_per_symbol.items()),
            "quality flags (frames): "
            + ", ".join(f"{name} {n:,}" for name, n in self.quality_counts.items()),
            "engine counters: " + ", ".join(f"{k} {v:,}" for k, v in self.counters.items()),
            "injected faults: " + "; ".join(_describe_fault(f) for f in self.faults),
            "last values (real units):",
        ]
        width = max(12, *(len(name) for name in SUMMARY_FEATURES))
        lines.append(
            "  " + "symbol".ljust(8) + "".join(n.rjust(width + 2) for n in SUMMARY_FEATURES)
        )
        for sym, vals in self.last_values.items():
            cells = "".join(
                _fmt(vals.get(n, float("nan"))).rjust(width + 2) for n in SUMMARY_FEATURES
            )
            lines.append("  " + sym.ljust(8) + cells)
        lines.append(f"plot: {self.png_path}")
        lines.append(f"summary: {self.summary_path}")
        return "\n".join(lines)


def run_demo(
    out_dir: Path,
    *,
    seed: int = 7,
    n_messages: int = DEFAULT_DEMO_MESSAGES,
    backend: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> DemoSummary:
    """Simulate a session, compute `lob_shared_v1` frames, print a summary and write a plot.

    Parameters
    ----------
    out_dir
        Directory for the PNG and `summary.json` (created if missing).
    seed
        Simulator seed; the same seed gives the same session and the same frames.
    n_messages
        Simulated book messages over all symbols (see `SimConfig.n_messages`).
    backend
        Engine backend, "python" or "rust"; None picks the default (see `FeatureEngine`).
    progress
        Show a tqdm progress bar (on stderr) while the engine runs.
    stream
        Where the summary is printed; stdout when None.

    Returns
    -------
    DemoSummary
        Counts, timings, last values and the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    session = simulate(demo_config(seed, n_messages))
    engine = FeatureEngine(session.symbols, backend=backend, config=DEMO_ENGINE_CONFIG)
    t0 = time.perf_counter()
    batch = _process_with_progress(engine, session.events, progress)
    engine_s = time.perf_counter() - t0

    png_path = out_dir / f"{PLOT_SYMBOL}_features.png"
    plot_features(batch, PLOT_SYMBOL, png_path, title=f"seed {seed}, backend {engine.backend}")
    summary = _summarize(session, batch, engine, engine_s, png_path)
    summary.summary_path.write_bytes(
        orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    print(summary.render(), file=stream or sys.stdout)
    return summary


def _process_with_progress(
    engine: FeatureEngine, events: npt.NDArray[np.void], progress: bool
) -> FrameBatch:
    """`engine.process_batch` in chunks of whole messages, with a progress bar.

    The engine keeps its state between calls, so the chunks give the same frames as one call;
    only `input_index`, which each call counts from its own first row, is shifted back.
    """
    ends = message_bounds(events)
    n_chunks = min(50, max(1, len(ends) // 2_000))
    cuts = [0, *(int(ends[len(ends) * k // n_chunks - 1]) for k in range(1, n_chunks + 1))]
    parts: list[FrameBatch] = []
    with tqdm(
        total=len(ends), unit="msg", unit_scale=True, desc="features", disable=not progress
    ) as bar:
        for lo, hi in pairwise(cuts):
            part = engine.process_batch(events[lo:hi])
            part.columns["input_index"] += lo
            parts.append(part)
            bar.update(int(np.count_nonzero(events["flags"][lo:hi] & END_OF_MESSAGE)))
    return FrameBatch.concat(parts)


def last_values(
    batch: FrameBatch, names: tuple[str, ...] = SUMMARY_FEATURES
) -> dict[str, dict[str, float]]:
    """Per symbol, the last frame's values of `names` in real units (NaN where not ready)."""
    real = _real_columns(batch, names)
    ready = batch.columns["warmup_ready_mask"]
    sids = batch.columns["symbol_id"]
    out: dict[str, dict[str, float]] = {}
    for sid, spec in enumerate(batch.symbols.specs):
        rows = np.flatnonzero(sids == sid)
        if not len(rows):
            continue
        i = int(rows[-1])
        vals: dict[str, float] = {}
        for name in names:
            fid = batch.feature_set.index(name)
            ok = bool(int(ready[i]) >> fid & 1)
            vals[name] = float(real[name][i]) if ok else float("nan")
        out[spec.symbol] = vals
    return out


def _real_columns(batch: FrameBatch, names: tuple[str, ...]) -> dict[str, npt.NDArray[Any]]:
    """Feature columns in real units, read from each feature's `unit` and `scale` metadata.

    A scaled integer counts `1 / scale` of a tick ("price") or a lot ("size"), per symbol;
    f64 features are already real, unitless ones stay as they are.
    """
    return to_real_columns(batch, list(names))


def plot_features(
    batch: FrameBatch, symbol: str, path: Path, *, title: str = "", points: int = 2_000
) -> Path:
    """Write a PNG of one symbol's mid/microprice, imbalance_l1, ofi_l1_cum and mid_zscore_64.

    Lines are sampled as of a regular time grid of `points` instants (the last frame at or
    before each instant, what a strategy polling the engine would see): tens of thousands of
    frames drawn one by one would only fill the panels. Frames where a feature is not ready
    are NaN, so the untrusted stretch after a gap is a hole in every line; it is also shaded,
    resyncs are marked with a dashed line and out-of-order inputs with a triangle.
    """
    # An explicit Agg canvas instead of pyplot: no global backend switch in the caller's process.
    FigureCanvasAgg = _lazy.optional(
        "matplotlib.backends.backend_agg", "plot", "the demo's chart"
    ).FigureCanvasAgg
    from matplotlib.figure import Figure

    sub = batch.for_symbol(symbol)
    names = PLOT_FEATURES
    real = _real_columns(sub, names)
    ts = sub.columns["source_ts_ns"]
    ready = sub.columns["warmup_ready_mask"]
    qf = sub.columns["quality_flags"]
    t = (ts - ts[0]) / 1e9 if len(ts) else np.zeros(0)
    grid = np.linspace(0.0, float(t[-1]) if len(t) else 0.0, points)
    at = np.searchsorted(t, grid, side="right") - 1  # frame in force at each grid instant

    def series(name: str, frames: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        fid = sub.feature_set.index(name)
        y = real[name].astype(np.float64, copy=True)
        y[(ready >> np.uint64(fid)) & np.uint64(1) == 0] = np.nan
        out = np.full(len(frames), np.nan)
        ok = frames >= 0
        out[ok] = y[frames[ok]]
        return out

    fig = Figure(figsize=(11, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 1, sharex=True)
    axes[0].plot(grid, series("mid", at), lw=0.9, color="tab:blue", label="mid")
    axes[0].plot(
        grid, series("microprice", at), lw=0.7, color="tab:orange", alpha=0.8, label="microprice"
    )
    axes[0].ticklabel_format(axis="y", useOffset=False, style="plain")
    axes[0].set_ylabel("price")
    axes[1].plot(
        grid, series("imbalance_l1", at), lw=0.5, color="tab:green", alpha=0.5, label="imbalance_l1"
    )
    # imbalance_l1 flips sign message by message; its EMA shows the pressure that persists.
    axes[1].plot(
        grid, series("imbalance_l1_ema8", at), lw=0.8, color="darkgreen", label="imbalance_l1_ema8"
    )
    axes[1].set_ylim(-1.05, 1.05)
    axes[1].set_ylabel("imbalance")
    axes[2].plot(grid, series("ofi_l1_cum", at), lw=0.8, color="tab:purple", label="ofi_l1_cum")
    axes[2].set_ylabel("size")
    axes[3].plot(grid, series("mid_zscore_64", at), lw=0.6, color="tab:red", label="mid_zscore_64")
    axes[3].set_ylabel("z-score")
    axes[3].set_xlabel("seconds since session start (source time)")

    gap = (qf & int(QualityFlag.GAP_DETECTED)) != 0
    reset = (qf & int(QualityFlag.STATE_RESET)) != 0
    ooo = np.flatnonzero((qf & int(QualityFlag.OUT_OF_ORDER_INPUT)) != 0)
    for k, (lo, hi) in enumerate(_runs(gap)):
        # The untrusted stretch ends at the resync snapshot, the frame after the run.
        end = t[hi] if hi < len(t) else t[-1]
        label = "gap: book untrusted" if k == 0 else None
        for n, pax in enumerate(axes):
            pax.axvspan(
                t[lo], end, color="tab:red", alpha=0.15, lw=0, label=label if n == 0 else None
            )
    for k, i in enumerate(np.flatnonzero(reset)[1:]):  # the first reset is the session start
        label = "resync snapshot" if k == 0 else None
        for n, pax in enumerate(axes):
            pax.axvline(t[i], color="black", ls="--", lw=0.8, label=label if n == 0 else None)
    if len(ooo):
        axes[0].plot(
            t[ooo], series("mid", ooo), "v", color="black", ms=6, label="out-of-order input"
        )
    for pax in axes:
        pax.legend(loc="upper left", fontsize=8)
        pax.grid(True, lw=0.3, alpha=0.5)
    heading = f"{symbol}: lob_shared_v1 features, sampled as of {len(grid):,} instants"
    fig.suptitle(heading + (f" ({title})" if title else ""))
    fig.savefig(path, format="png")
    return path


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Half-open index ranges `[lo, hi)` of the True runs of a boolean array."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(lo), int(hi)) for lo, hi in zip(edges[::2], edges[1::2], strict=True)]


def _summarize(
    session: SimSession,
    batch: FrameBatch,
    engine: FeatureEngine,
    engine_s: float,
    png_path: Path,
) -> DemoSummary:
    messages = session.n_messages
    rows = len(session.events)
    sids = batch.columns["symbol_id"]
    return DemoSummary(
        out_dir=png_path.parent,
        png_path=png_path,
        summary_path=png_path.parent / "summary.json",
        seed=session.config.seed,
        backend=engine.backend,
        symbols=tuple(spec.symbol for spec in session.symbols.specs),
        messages=messages,
        event_rows=rows,
        frames=len(batch),
        sim_elapsed_s=session.elapsed_s,
        engine_elapsed_s=engine_s,
        messages_per_s=messages / engine_s if engine_s > 0 else float("inf"),
        rows_per_s=rows / engine_s if engine_s > 0 else float("inf"),
        quality_counts=batch.flag_counts(),
        counters=dict(engine.counters),
        frames_per_symbol={
            spec.symbol: int(np.count_nonzero(sids == sid))
            for sid, spec in enumerate(session.symbols.specs)
        },
        last_values=last_values(batch),
        faults=session.faults,
    )


def _describe_fault(f: InjectedFault) -> str:
    if f.kind == "gap":
        return (
            f"gap {f.symbol} seq {f.seq}..{f.seq + f.n_missing - 1} lost "
            f"(message {f.message_index:,}, resync at message {f.resync_message_index:,})"
        )
    return f"{f.kind} {f.symbol} seq {f.seq} (message {f.message_index:,})"


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "n/a"
    mag = abs(value)
    if mag >= 1000:
        return f"{value:,.3f}"
    if mag >= 1:
        return f"{value:.4f}"
    return f"{value:.5g}"
