"""Timing helpers shared by the benchmarks: repeated runs, medians, a table, a build check."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from featureplane.bench.memory import peak_growth
from featureplane.errors import DebugBuildError


def require_release_build() -> str:
    """The extension's build profile; raises for a debug build (a missing one is fine)."""
    try:
        from featureplane import _core
    except ImportError:
        return "not built"
    profile = str(_core.BUILD_PROFILE)
    if profile != "release":
        raise DebugBuildError(
            f"featureplane._core is a {profile} build; rebuild in release "
            "(`pip install -e .` builds release) before benchmarking"
        )
    return profile


@dataclass
class Row:
    """One benchmark row: what ran, how many events, the wall times of each run."""

    name: str
    events: int
    times_s: list[float] = field(default_factory=list)
    correct: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    messages: int | None = None
    """Messages in the input, where a per-message cost means something."""
    level_changes: int | None = None
    """Book rows (level changes, snapshot levels) in the input."""
    peak_rss_bytes: int | None = None
    """Peak resident-set growth during one run (see `bench.memory`); None if not measured."""

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def events_per_s(self) -> float:
        return self.events / self.median_s

    @property
    def ns_per_event(self) -> float:
        return self.median_s / self.events * 1e9

    @property
    def ns_per_message(self) -> float | None:
        return None if not self.messages else self.median_s / self.messages * 1e9

    @property
    def ns_per_level_change(self) -> float | None:
        return None if not self.level_changes else self.median_s / self.level_changes * 1e9

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "times_s": self.times_s,
            "median_s": self.median_s,
            "events_per_s": self.events_per_s,
            "ns_per_event": self.ns_per_event,
            "min_s": min(self.times_s),
            "max_s": max(self.times_s),
            "messages": self.messages,
            "level_changes": self.level_changes,
            "ns_per_message": self.ns_per_message,
            "ns_per_level_change": self.ns_per_level_change,
            "peak_rss_bytes": self.peak_rss_bytes,
            "correct": self.correct,
            "note": self.note,
            **self.extra,
        }


def repeat(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Wall time of each of `runs` calls, and the last call's result."""
    times = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def _opt(value: float | int | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


Anchor = str | tuple[str, ...]
"""A ratio column's anchor: one row by name, or the fastest of several rows."""


def anchor_row(rows: list[Row], anchor: Anchor) -> Row | None:
    """The row `anchor` names (the fastest of a tuple's rows present), or None."""
    names = (anchor,) if isinstance(anchor, str) else anchor
    present = [r for r in rows if r.name in names]
    return max(present, key=lambda r: r.events_per_s, default=None)


def format_table(rows: list[Row], anchors: Mapping[str, Anchor]) -> str:
    """Rows with events/s, ns/event, spread of runs, and a ratio column per anchor row
    (left blank where a row counts other events than its anchor). Columns for ns per message,
    ns per level change and peak memory appear when some row has them. A ratio above 1 means
    the row processes events faster than the anchor."""
    bases = [anchor_row(rows, anchor) for anchor in anchors.values()]
    per_message = any(r.messages for r in rows)
    per_change = any(r.level_changes for r in rows)
    memory = any(r.peak_rss_bytes is not None for r in rows)
    head = ["benchmark", "events/s", "ns/event", "median ms", "min-max ms", "runs"]
    head += ["ns/msg"] * per_message + ["ns/lvl chg"] * per_change + ["peak MB"] * memory
    head += ["correct"]
    head += [f"x {label}" for label in anchors]
    lines = []
    for r in rows:
        cells = [
            r.name,
            f"{r.events_per_s:,.0f}",
            f"{r.ns_per_event:,.1f}",
            f"{r.median_s * 1e3:,.1f}",
            f"{min(r.times_s) * 1e3:,.1f}-{max(r.times_s) * 1e3:,.1f}",
            str(len(r.times_s)),
        ]
        cells += [_opt(r.ns_per_message, ",.1f")] * per_message
        cells += [_opt(r.ns_per_level_change, ",.1f")] * per_change
        mb = None if r.peak_rss_bytes is None else r.peak_rss_bytes / 2**20
        cells += [_opt(mb, ",.1f")] * memory
        cells.append({True: "yes", False: "NO", None: "-"}[r.correct])
        for base in bases:
            # A ratio only means something between rows that count the same events.
            if base is not None and base.events == r.events:
                cells.append(f"{r.events_per_s / base.events_per_s:,.2f}")
            else:
                cells.append("-")
        lines.append(cells)
    widths = [max(len(c[i]) for c in [head, *lines]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [fmt(head), fmt(["-" * w for w in widths])]
    out += [fmt(c) for c in lines]
    notes = [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", *notes] if notes else []))


@dataclass
class Measured:
    """Timed runs of one workload, its result, and the peak memory its first run added."""

    times_s: list[float]
    result: Any
    peak_rss_bytes: int | None


def measure(fn: Callable[[], Any], runs: int) -> Measured:
    """One run for the peak memory (and a warm-up), then `runs` timed runs."""
    _, peak = peak_growth(fn)
    times, result = repeat(fn, runs)
    return Measured(times, result, peak)
