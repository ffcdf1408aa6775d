"""Running the live path on the loopback venue in tests, and the research references to hold it
against. Everything binds and connects to 127.0.0.1 only; every run is bounded in time."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featureplane.frames.frame import FrameBatch
from featureplane.frames.parquet import read_feature_file
from featureplane.live.bootstrap import LiveSummary, ServiceRegistry, SystemBootstrapper
from featureplane.live.config import LiveConfig
from featureplane.live.parity import live_config_for, research_batch
from featureplane.live.venue.capture import Capture
from featureplane.live.venue.server import LoopbackVenue, VenueThread
from featureplane.live.wire import Kind
from tests.support.datapaths import shared_data

USDM = [
    ("binance-usdm-btcusdt-20240808", "btcusdt_20240808.gz"),
    ("binance-usdm-ethusdt-20240808", "ethusdt_20240808.gz"),
]
SPOT = [
    ("binance-spot-btcusdt-20240808-09", "btcusdt_20240808.gz"),
    ("binance-spot-btcusdt-20240808-09", "btcusdt_20240809.gz"),
]
RUN_TIMEOUT_S = 300.0


def captures(which: list[tuple[str, str]]) -> list[Path]:
    return [shared_data(folder) / name for folder, name in which]


def slice_captures(paths: Sequence[Path], out: Path, seconds: float) -> list[Path]:
    """The first `seconds` of local time of each capture (the same start for all), as new gzip
    files: their merged stream is a prefix of the full captures' merged stream."""
    out.mkdir(parents=True, exist_ok=True)
    starts = []
    for p in paths:
        with gzip.open(p, "rb") as f:
            starts.append(int(f.readline().split(b" ", 1)[0]))
    cut = min(starts) + int(seconds * 1e9)
    sliced = []
    for i, p in enumerate(paths):
        dst = out / f"{i}-{p.name}"
        n = 0
        with gzip.open(p, "rb") as src, gzip.open(dst, "wb", compresslevel=1) as w:
            for line in src:
                if int(line.split(b" ", 1)[0]) >= cut:
                    break
                w.write(line)
                n += 1
        if n:  # a file that starts after the cut is left out
            sliced.append(dst)
        else:
            dst.unlink()
    return sliced


@dataclass
class LiveRun:
    summary: LiveSummary
    batch: FrameBatch
    venue: LoopbackVenue
    registry: ServiceRegistry
    config: LiveConfig


def run_live(
    paths: Sequence[Path],
    tmp: Path,
    *,
    venue: dict[str, Any] | None = None,
    feed: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    strategies: tuple[Any, ...] = (),
    risk: Any = None,
    record: bool = False,
    hook: Any = None,
    sections: dict[str, Any] | None = None,
) -> LiveRun:
    """Serve `paths` from a loopback venue, run the live path on them into a feature file.
    `sections` replaces config sections by name: a section object whole (`{"shadow":
    ShadowConfig(...)}`), or a dict of some of its fields (`{"ring": {"name": ...}}`)."""
    out = tmp / "live.parquet"
    # A long barrier: on a loaded machine the client's answer to a snapshot may take seconds,
    # and the venue must not move on (the snapshot would land elsewhere than the recorder's).
    v = LoopbackVenue(paths, **{"barrier_timeout_s": 30.0, **(venue or {})})
    with VenueThread(v):
        config = live_config_for(v, **(feed or {}))
        if service:
            config = dataclasses.replace(
                config, service=dataclasses.replace(config.service, **service)
            )
        for name, section in (sections or {}).items():
            if isinstance(section, dict):  # some fields of the section
                section = dataclasses.replace(getattr(config, name), **section)
            config = dataclasses.replace(config, **{name: section})
        if strategies:
            config = dataclasses.replace(config, strategies=strategies)
        if risk is not None:
            config = dataclasses.replace(config, risk=risk)
        boot = SystemBootstrapper(config, out=out, record_dir=tmp / "rec" if record else None)
        registry = boot.build()
        if hook is not None:
            hook(registry)
        summary = asyncio.run(boot.run(duration_s=RUN_TIMEOUT_S))
    assert summary.ended_by == "end of stream", summary.format()
    return LiveRun(summary, read_feature_file(out).to_batch(), v, registry, config)


def reference_after(
    paths: Sequence[Path], symbol: str, index: int, body: bytes, tmp: Path
) -> FrameBatch:
    """Research frames of `symbol` from a snapshot `body` served before capture line `index`:
    research replay of that snapshot followed by the symbol's lines from `index` on."""
    lines = [
        line
        for line in Capture(paths).lines()
        if line.symbol == symbol and line.index >= index and line.kind != Kind.SNAPSHOT
    ]
    path = tmp / f"ref-{symbol}-{index}.gz"
    with gzip.open(path, "wb", compresslevel=1) as w:
        w.write(b"%d %b\n" % (lines[0].local_ts - 1, body))
        for line in lines:
            w.write(b"%d %b\n" % (line.local_ts, line.raw))
    return research_batch([path]).for_symbol(symbol)


def tail_from_seq(batch: FrameBatch, seq: int, flag_reset: bool = True) -> FrameBatch:
    """`batch` from its last frame with `seq` (a snapshot's lastUpdateId) on."""
    import numpy as np

    hits = np.flatnonzero(batch.columns["seq"] == seq)
    assert len(hits), f"no frame with seq {seq}"
    i = int(hits[-1])
    return FrameBatch(
        batch.feature_set,
        batch.symbols,
        {k: v[i:] for k, v in batch.columns.items()},
        {k: v[i:] for k, v in batch.values.items()},
    )
