"""Scaling curves: cost per event as the work grows, and memory over a long session.

Curves (synthetic streams, `bench.synthetic`), each point timed on the steady stream after the
snapshots (applied first, not timed), median of repeated runs on a fresh engine:

- symbols 1 to 1,000 (diffs take turns over the symbols);
- book depth 10 to 10,000 levels a side;
- message size 1 to 1,000 level changes per depth message;
- the Rust kernel (book + features, and book only) at every point, and the Python reference
  at the small end, where it is affordable;
- one snapshot of 1,000 to 1,000,000 dense levels a side, best first (`snapshot_curve`):
  levels deeper than the book's window (65,536 ticks) live in an ordered map, and the cost per
  level must stay about flat (a sorted vector took them at its front: quadratic, 46 s for
  400,000 levels a side).

Session length: 100M events streamed in chunks through one Rust engine; cost per event and
the resident set are sampled after every chunk.

The run checks itself: on every curve the log-log slope of the Rust kernel's ns/event against
the parameter must stay below `SLOPE_LIMIT` (no super-linear growth of total cost: flat cost per
event has slope 0, cost per event growing like the parameter has slope 1), the session's last
tenth must cost at most `SESSION_COST_LIMIT` times its first tenth, and its resident set may
grow at most `RSS_GROWTH_LIMIT` bytes after the first tenth.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featureplane.bench.memory import rss_bytes
from featureplane.bench.synthetic import Shape, Stream, dense_snapshot, grids, symbol_table

SLOPE_LIMIT = 0.5
"""Largest log-log slope of ns/event against a curve's parameter that passes."""
SESSION_COST_LIMIT = 1.5
"""Largest ratio of the session's last-tenth ns/event to its first tenth that passes."""
RSS_GROWTH_LIMIT = 64 * 2**20
"""Largest RSS growth after the session's first tenth that passes, in bytes."""

RUST = "rust batch"
RUST_BOOKS = "rust book only"
PYTHON = "python reference"


@dataclass
class Point:
    x: int
    backend: str
    events: int
    times_s: list[float]

    @property
    def ns_per_event(self) -> float:
        return statistics.median(self.times_s) / self.events * 1e9

    def to_json(self) -> dict[str, Any]:
        return {"x": self.x, "backend": self.backend, "events": self.events,
                "times_s": self.times_s, "ns_per_event": self.ns_per_event}  # fmt: skip


@dataclass
class Curve:
    name: str
    param: str
    points: list[Point] = field(default_factory=list)

    def series(self, backend: str) -> list[Point]:
        return [p for p in self.points if p.backend == backend]

    def slope(self, backend: str = RUST) -> float:
        pts = self.series(backend)
        if len(pts) < 2:
            return 0.0
        xs = np.log([p.x for p in pts])
        ys = np.log([p.ns_per_event for p in pts])
        return float(np.polyfit(xs, ys, 1)[0])

    @property
    def ok(self) -> bool:
        return self.slope(RUST) < SLOPE_LIMIT

    def format(self) -> str:
        backends = list(dict.fromkeys(p.backend for p in self.points))
        xs = sorted({p.x for p in self.points})
        lines = [f"{self.name}: ns/event by {self.param}",
                 f"  {self.param:>14}" + "".join(f"{b:>20}" for b in backends)]  # fmt: skip
        for x in xs:
            cells = []
            for b in backends:
                pt = [p for p in self.series(b) if p.x == x]
                cells.append(f"{pt[0].ns_per_event:>20,.1f}" if pt else f"{'-':>20}")
            lines.append(f"  {x:>14,}" + "".join(cells))
        slopes = ", ".join(f"{b} {self.slope(b):+.2f}" for b in backends if len(self.series(b)) > 1)
        verdict = "ok" if self.ok else f"FAIL (rust slope >= {SLOPE_LIMIT})"
        lines.append(f"  log-log slope: {slopes}; {verdict}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "param": self.param, "ok": self.ok,
                "slopes": {b: self.slope(b) for b in {p.backend for p in self.points}},
                "points": [p.to_json() for p in self.points]}  # fmt: skip


@dataclass
class Session:
    """One long stream through one engine: cumulative events, ns/event and RSS per chunk."""

    events: list[int] = field(default_factory=list)
    ns_per_event: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    def _tenth(self, values: list[float], last: bool) -> list[float]:
        k = max(1, len(values) // 10)
        return values[-k:] if last else values[:k]

    @property
    def cost_ratio(self) -> float:
        first = statistics.median(self._tenth(self.ns_per_event, False))
        return statistics.median(self._tenth(self.ns_per_event, True)) / first

    @property
    def rss_growth(self) -> int:
        k = max(1, len(self.rss) // 10)
        return max(self.rss[k - 1 :]) - self.rss[k - 1]

    @property
    def ok(self) -> bool:
        return self.cost_ratio <= SESSION_COST_LIMIT and self.rss_growth <= RSS_GROWTH_LIMIT

    def format(self) -> str:
        total = self.events[-1]
        verdict = "ok" if self.ok else "FAIL"
        return (
            f"session: {total:,} events in {len(self.events)} chunks, {self.frames:,} frames, "
            f"{self.seconds:.0f} s\n"
            f"  ns/event first tenth {statistics.median(self._tenth(self.ns_per_event, False)):.1f}"
            f", last tenth {statistics.median(self._tenth(self.ns_per_event, True)):.1f} "
            f"(x{self.cost_ratio:.2f}, limit x{SESSION_COST_LIMIT})\n"
            f"  RSS {self.rss[0] / 2**20:.0f} MB after the first chunk, peak "
            f"{max(self.rss) / 2**20:.0f} MB, growth after the first tenth "
            f"{self.rss_growth / 2**20:.1f} MB (limit {RSS_GROWTH_LIMIT / 2**20:.0f} MB); {verdict}"
        )

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "ns_per_event": self.ns_per_event, "rss": self.rss,
                "frames": self.frames, "seconds": self.seconds, "cost_ratio": self.cost_ratio,
                "rss_growth": self.rss_growth, "ok": self.ok}  # fmt: skip


# ----- measuring -------------------------------------------------------------------------------


def _rust_point(shape: Shape, events: int, runs: int, book_only: bool) -> Point:
    from featureplane import _core

    stream = Stream(shape)
    snap = stream.snapshots().view(np.uint8)
    diffs = stream.diffs(shape.diffs_for(events))
    rows = diffs.view(np.uint8)
    times = []
    for _ in range(runs):
        engine = _core.Engine(grids(shape.symbols), book_only=book_only)
        process = engine.process_books if book_only else engine.process_batch
        process(snap)
        t0 = time.perf_counter()
        out = process(rows)
        times.append(time.perf_counter() - t0)
        if len(out[0]) == 0:
            raise AssertionError(f"no frames out of {len(diffs):,} synthetic rows")
    return Point(0, RUST_BOOKS if book_only else RUST, len(diffs), times)


def _python_point(shape: Shape, events: int) -> Point:
    from featureplane.engine.facade import FeatureEngine

    stream = Stream(shape)
    snap, diffs = stream.snapshots(), stream.diffs(shape.diffs_for(events))
    engine = FeatureEngine(symbol_table(shape.symbols), backend="python")
    engine.process_batch(snap)
    t0 = time.perf_counter()
    batch = engine.process_batch(diffs)
    elapsed = time.perf_counter() - t0
    if len(batch) == 0:
        raise AssertionError("no frames out of the synthetic rows")
    return Point(0, PYTHON, len(diffs), [elapsed])


@dataclass(frozen=True)
class CurveSpec:
    name: str
    param: str
    xs: tuple[int, ...]
    shape: Callable[[int], Shape]
    python_max: int
    """Largest x the Python reference runs at."""


CURVES = (
    CurveSpec("symbols", "symbols", (1, 10, 100, 1000),
              lambda x: Shape(symbols=x, depth=100, changes=20, trades=2), 10),
    CurveSpec("book depth", "levels a side", (10, 100, 1000, 10_000),
              lambda x: Shape(depth=x, changes=20, trades=2), 1000),
    CurveSpec("message size", "changes/message", (1, 10, 100, 1000),
              lambda x: Shape(depth=1000, changes=x, trades=0), 100),
)  # fmt: skip


SNAPSHOT_LEVELS = (1_000, 10_000, 100_000, 1_000_000)
"""Levels a side of the snapshot curve's points."""


def snapshot_curve(xs: tuple[int, ...], *, runs: int, python_max: int = 10_000) -> Curve:
    """ns per row of one dense snapshot, best first, `x` levels a side, on a fresh engine."""
    from featureplane import _core
    from featureplane.engine.facade import FeatureEngine

    out = Curve("snapshot depth", "levels a side")
    for x in xs:
        rows = dense_snapshot(x)
        for book_only in (False, True):
            times = []
            for _ in range(runs):
                engine = _core.Engine(grids(1), book_only=book_only)
                process = engine.process_books if book_only else engine.process_batch
                t0 = time.perf_counter()
                frames = process(rows.view(np.uint8))
                times.append(time.perf_counter() - t0)
                if len(frames[0]) != 1:
                    raise AssertionError("a snapshot message makes one frame")
            out.points.append(Point(x, RUST_BOOKS if book_only else RUST, len(rows), times))
        if x <= python_max:
            engine_py = FeatureEngine(symbol_table(1), backend="python")
            t0 = time.perf_counter()
            batch = engine_py.process_batch(rows)
            out.points.append(Point(x, PYTHON, len(rows), [time.perf_counter() - t0]))
            if len(batch) != 1:
                raise AssertionError("a snapshot message makes one frame")
    return out


def curve(spec: CurveSpec, *, events: int, python_events: int, runs: int) -> Curve:
    out = Curve(spec.name, spec.param)
    for x in spec.xs:
        shape = spec.shape(x)
        for book_only in (False, True):
            p = _rust_point(shape, events, runs, book_only)
            out.points.append(Point(x, p.backend, p.events, p.times_s))
        if x <= spec.python_max and python_events:
            p = _python_point(shape, python_events)
            out.points.append(Point(x, p.backend, p.events, p.times_s))
    return out


def session(
    total_events: int, chunk_events: int = 1_000_000, shape: Shape | None = None
) -> Session:
    """Stream `total_events` synthetic events through one Rust engine, chunk by chunk (`shape`:
    default `Shape()`, about the BTCUSDT capture's)."""
    from featureplane import _core

    shape = shape or Shape()
    stream = Stream(shape)
    engine = _core.Engine(grids(shape.symbols))
    engine.process_batch(stream.snapshots().view(np.uint8))
    out = Session()
    done = 0
    per_chunk = shape.diffs_for(chunk_events)
    t_start = time.perf_counter()
    while done < total_events:
        rows = stream.diffs(per_chunk).view(np.uint8)
        t0 = time.perf_counter()
        frames = engine.process_batch(rows)
        elapsed = time.perf_counter() - t0
        n = len(rows) // 64
        done += n
        out.frames += len(frames[0])
        out.events.append(done)
        out.ns_per_event.append(elapsed / n * 1e9)
        out.rss.append(rss_bytes() or 0)
        del rows, frames
    out.seconds = time.perf_counter() - t_start
    return out


@dataclass
class ScalingResult:
    curves: list[Curve]
    session: Session

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.curves) and self.session.ok

    def format(self) -> str:
        parts = [c.format() for c in self.curves] + [self.session.format()]
        verdict = (
            "no super-linear growth of cost per event, no memory growth: ok"
            if self.ok
            else "SCALING CHECK FAILED (see FAIL above)"
        )
        return "\n\n".join([*parts, verdict])

    def to_json(self) -> dict[str, Any]:
        return {
            "limits": {"slope": SLOPE_LIMIT, "session_cost": SESSION_COST_LIMIT,
                       "rss_growth_bytes": RSS_GROWTH_LIMIT},
            "curves": [c.to_json() for c in self.curves],
            "session": self.session.to_json(),
            "ok": self.ok,
        }  # fmt: skip


def run(*, quick: bool = False, progress: Callable[[str], None] | None = None) -> ScalingResult:
    """Every curve and the session (100M events; `quick`: smaller points, 10M events)."""
    from featureplane.bench.timing import require_release_build

    require_release_build()
    events, python_events, runs = (300_000, 10_000, 3) if quick else (2_000_000, 40_000, 5)
    curves = []
    for spec in CURVES:
        c = curve(spec, events=events, python_events=python_events, runs=runs)
        curves.append(c)
        if progress is not None:
            progress(c.format())
    c = snapshot_curve(SNAPSHOT_LEVELS[:-1] if quick else SNAPSHOT_LEVELS, runs=runs)
    curves.append(c)
    if progress is not None:
        progress(c.format())
    s = session(10_000_000 if quick else 100_000_000)
    if progress is not None:
        progress(s.format())
    return ScalingResult(curves, s)
