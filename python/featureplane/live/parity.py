"""Live equals research: the frames of a live run against research replay's.

`live_parity` serves captures from a loopback venue at max speed, runs the live path on them
into a feature file, replays the same captures with research replay, and compares the two
frame by frame, every column. The documented differences (docs/live.md) are the columns
`DIFFERENT_BY_DESIGN` leaves out:

- `local_ts_ns`: live frames carry the time this process received the message; research
  frames carry the recorder's. Nothing else depends on it (the engine's `STALE_INPUT` rule,
  which does, is off for replayed captures: their exchange times are days old).
- `source_ts_ns` of a frame whose message carries no exchange time (the spot REST snapshot):
  the parser stands in the local receive time (docs/sources/binance.md), so it is that
  frame's `local_ts_ns` on both sides, and differs as `local_ts_ns` does. Such frames are
  recognized by `source_ts_ns == local_ts_ns` on both sides; every other frame's
  `source_ts_ns` is compared.

Frames are compared per symbol (a symbol's frames depend on its own messages only) and the
interleaving of symbols is compared on its own (`order_equal`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import FrameBatch
from featureplane.frames.parquet import read_feature_file
from featureplane.live import loop
from featureplane.live.bootstrap import LiveSummary, SystemBootstrapper
from featureplane.live.config import FeedConfig, InstrumentConfig, LiveConfig
from featureplane.live.venue.server import LoopbackVenue, VenueThread
from featureplane.sources import read_binance

DIFFERENT_BY_DESIGN = ("local_ts_ns", "input_index")
"""Columns live and research frames may differ in (see the module doc); `input_index` is not
stored in feature files at all."""


@dataclass
class SymbolParity:
    symbol: str
    frames_live: int
    frames_research: int
    mismatches: int
    columns: dict[str, int] = field(default_factory=dict)
    """Mismatching values per column."""
    first_mismatch: int | None = None
    stand_ins: int = 0
    """Frames whose `source_ts_ns` is the local time on both sides (not compared)."""


@dataclass
class ParityReport:
    name: str
    symbols: list[SymbolParity]
    order_equal: bool
    live: LiveSummary | None = None

    @property
    def frames(self) -> int:
        return sum(s.frames_research for s in self.symbols)

    @property
    def mismatches(self) -> int:
        return sum(s.mismatches for s in self.symbols)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and all(
            s.frames_live == s.frames_research for s in self.symbols
        )

    def format(self) -> str:
        lines = [
            f"{self.name}: {self.frames:,} frames compared, {self.mismatches} mismatches, "
            f"symbol order {'equal' if self.order_equal else 'DIFFERENT'}"
        ]
        for s in self.symbols:
            bad = ", ".join(f"{k} {v}" for k, v in s.columns.items() if v)
            lines.append(
                f"  {s.symbol}: live {s.frames_live:,} / research {s.frames_research:,} frames, "
                f"{s.mismatches} mismatches"
                + (f" ({bad}; first at frame {s.first_mismatch})" if bad else "")
                + (f"; {s.stand_ins} without exchange time" if s.stand_ins else "")
            )
        lines.append("  not compared (by design): " + ", ".join(DIFFERENT_BY_DESIGN))
        return "\n".join(lines)


def research_batch(paths: Sequence[str | PathLike[str]], backend: str | None = None) -> FrameBatch:
    """Research replay of captures, as one frame batch."""
    replay = read_binance(list(paths))
    engine = FeatureEngine(replay.symbols, backend=backend)
    return engine.process_batch(replay.events)


def compare_batches(
    name: str,
    live: FrameBatch,
    research: FrameBatch,
    ignore: Iterable[str] = DIFFERENT_BY_DESIGN,
    start: dict[str, int] | None = None,
) -> ParityReport:
    """Compare two frame batches per symbol, every column but `ignore`.

    `start` maps a symbol to the first research frame to compare from (a drill compares from
    a resync on); the live side is then taken from its frame of the same `seq` and `kind`.
    """
    skip = set(ignore)
    symbols = []
    for spec in research.symbols.specs:
        sym = spec.symbol
        r = research.for_symbol(sym)
        lv = live.for_symbol(sym) if sym in live.symbols else live.truncate(0)
        if start and sym in start:
            r = _from(r, start[sym])
        symbols.append(_compare_symbol(sym, lv, r, skip))
    order_equal = _names(live) == _names(research)
    return ParityReport(name, symbols, order_equal)


def _from(batch: FrameBatch, i: int) -> FrameBatch:
    return FrameBatch(
        batch.feature_set,
        batch.symbols,
        {k: v[i:] for k, v in batch.columns.items()},
        {k: v[i:] for k, v in batch.values.items()},
    )


def _names(batch: FrameBatch) -> list[str]:
    ids = batch.columns["symbol_id"]
    return [batch.symbols.name_of(int(i)) for i in ids]


def _compare_symbol(
    sym: str, live: FrameBatch, research: FrameBatch, skip: set[str]
) -> SymbolParity:
    n = min(len(live), len(research))
    out = SymbolParity(sym, len(live), len(research), 0)
    bad = np.zeros(n, dtype=bool)
    rc, lc = research.columns, live.columns
    # No exchange time in the message: both sides stand in their local time (module doc).
    stand_in = (rc["source_ts_ns"][:n] == rc["local_ts_ns"][:n]) & (
        lc["source_ts_ns"][:n] == lc["local_ts_ns"][:n]
    )
    out.stand_ins = int(stand_in.sum())
    for name, col in rc.items():
        if name in skip or name == "symbol_id":  # ids index each side's own table
            continue
        diff = lc[name][:n] != col[:n]
        if name == "source_ts_ns":
            diff &= ~stand_in
        out.columns[name] = int(diff.sum())
        bad |= diff
    for name, col in research.values.items():
        a, b = live.values[name][:n], col[:n]
        diff = ~((a == b) | (np.isnan(a) & np.isnan(b))) if col.dtype.kind == "f" else a != b
        out.columns[name] = int(diff.sum())
        bad |= diff
    out.mismatches = int(bad.sum()) + abs(len(live) - len(research))
    hits = np.flatnonzero(bad)
    out.first_mismatch = int(hits[0]) if len(hits) else (n if len(live) != len(research) else None)
    return out


def live_config_for(venue: LoopbackVenue, **feed: Any) -> LiveConfig:
    """A config that trades nothing and reads every symbol of a venue's captures."""
    symbols = tuple(InstrumentConfig(s, m) for s, m in venue.capture.markets.items())
    base: dict[str, Any] = {
        "ws_url": venue.ws_url,
        "rest_url": venue.rest_url,
        "exit_on_end_of_stream": True,
        "rotate_after_s": 0.0,
        "connection_stale_s": 30.0,
        "symbol_stale_s": 30.0,
        "max_reconnects": 5,
    }
    base.update(feed)
    return LiveConfig(symbols=symbols, feed=FeedConfig(**base))


async def run_live(
    config: LiveConfig,
    out: str | PathLike[str],
    *,
    record_dir: str | PathLike[str] | None = None,
    duration_s: float | None = 600.0,
) -> LiveSummary:
    boot = SystemBootstrapper(config, out=out, record_dir=record_dir)
    return await boot.run(duration_s=duration_s)


def live_parity(
    captures: Sequence[str | PathLike[str]],
    *,
    name: str | None = None,
    workdir: str | PathLike[str] | None = None,
    faults: str | None = None,
    duration_s: float = 600.0,
) -> ParityReport:
    """Serve `captures` on a loopback venue at max speed, run the live path, compare with
    research replay of the same captures (see the module doc)."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        out = Path(tmp) / "live.parquet"
        # The client always answers the snapshot barrier; a long bound keeps a loaded machine
        # from moving the snapshot (the comparison would then see a different sync point).
        venue = LoopbackVenue(captures, faults=faults, barrier_timeout_s=30.0)
        with VenueThread(venue):
            config = live_config_for(venue)
            summary = loop.run(run_live(config, out, duration_s=duration_s))
        live = read_feature_file(out).to_batch()
    research = research_batch(captures)
    report = compare_batches(name or ", ".join(Path(c).name for c in captures), live, research)
    report.live = summary
    return report
