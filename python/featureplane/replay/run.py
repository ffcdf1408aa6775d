"""Replay: recorded data -> FeatureEngine -> feature files, with a progress bar and a summary.

`replay_events` drives any source that yields event-array chunks; `replay_binance` wires the
Binance recorder source. The file format is in `featureplane.frames.parquet`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.events import END_OF_MESSAGE
from featureplane.frames import DEFAULT_UNITS
from featureplane.frames.frame import QualityFlag
from featureplane.frames.parquet import FeatureFileWriter, jsonable
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.sources._read_ahead import ReadAhead

# ----- replay ---------------------------------------------------------------------------------


@dataclass
class ReplaySummary:
    """What a replay did."""

    out: Path
    units: str
    backend: str
    messages: int
    """Messages fed to the engine."""
    events: int
    """Event rows fed to the engine."""
    frames: int
    flag_counts: dict[str, int]
    """Frames carrying each quality flag."""
    counters: dict[str, int]
    """The engine's counters (duplicates, out_of_order, gaps, resets, ...)."""
    seconds: float
    source_summary: str = ""
    notes: list[str] = field(default_factory=list)
    """The source's skips and warnings, one line per reason (`source_notes`)."""

    @property
    def events_per_s(self) -> float:
        """Event rows per wall-clock second of the whole replay (NaN for a zero time)."""
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def messages_per_s(self) -> float:
        """Messages per wall-clock second of the whole replay (NaN for a zero time)."""
        return self.messages / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON values, rates included."""
        out: dict[str, Any] = jsonable(self)
        out["events_per_s"] = self.events_per_s
        out["messages_per_s"] = self.messages_per_s
        return out

    def __repr__(self) -> str:
        # The dataclass repr would print the source's whole summary and every counter.
        flags = ", ".join(f"{k} {v:,}" for k, v in self.flag_counts.items() if v) or "none"
        return (
            f"<ReplaySummary {self.out}: {self.frames:,} frames from {self.messages:,} messages "
            f"({self.events:,} events), backend {self.backend}, {self.seconds:.2f} s, "
            f"flags: {flags}>"
        )

    def format(self) -> str:
        """A few human-readable lines (what the CLI prints)."""
        flags = ", ".join(f"{k} {v}" for k, v in self.flag_counts.items())
        counters = ", ".join(f"{k} {v}" for k, v in sorted(self.counters.items()))
        lines = [
            f"wrote {self.frames} frames to {self.out} (units {self.units}, "
            f"backend {self.backend})",
            f"{self.messages} messages, {self.events} event rows in {self.seconds:.2f} s "
            f"({self.events_per_s:,.0f} events/s, {self.messages_per_s:,.0f} messages/s)",
            f"frames flagged: {flags}",
            f"engine: {counters}",
        ]
        if self.source_summary:
            lines.append(self.source_summary)
        return "\n".join(lines)


def replay_events(
    chunks: Iterable[np.ndarray],
    symbols: SymbolTable,
    out: str | PathLike[str],
    *,
    units: str = DEFAULT_UNITS,
    backend: str | None = None,
    progress: bool = True,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
    config: EngineConfig | None = None,
    sources: Iterable[str | PathLike[str]] = (),
    source_stats: Any | None = None,
    total_messages: int | None = None,
    on_messages: Callable[[int], None] | None = None,
    read_ahead: bool = True,
) -> ReplaySummary:
    """Run event chunks through a `FeatureEngine` into a feature file.

    Each chunk is an `EVENT_DTYPE` array of whole messages; one `process_batch` per chunk, so
    memory stays bounded by the chunk size and the writer's row group.

    `units` is "real" by default (prices and sizes as float64, `mid` a price, null where not
    ready), "scaled" for the kernel's exact ints (`featureplane.frames.parquet`).

    `source_stats` may be a zero-argument callable, called once the chunks are exhausted (a
    streaming source's stats are final only then). `on_messages(n)` is told of every chunk's
    messages as they are written (a many-chain replay's progress bar).

    With `read_ahead` (the default) the next chunk is drawn from `chunks` in a background
    thread while this one goes through the engine and the writer, so a source that parses with
    the GIL released (the Rust line parser) works on the second core. `chunks` is then advanced
    in that one thread: pass `read_ahead=False` for an iterator bound to the calling thread.
    At most two chunks are held beyond the one being written.
    """
    start = time.perf_counter()
    # Started before the engine and the writer (which hashes the input files), so the first
    # chunk is being read while they are set up.
    feed: AbstractContextManager[Iterator[np.ndarray]] = (
        ReadAhead(iter(chunks), name="replay-source") if read_ahead else nullcontext(iter(chunks))
    )
    counts = dict.fromkeys((f.name or str(int(f)) for f in QualityFlag), 0)
    messages = events = frames = 0
    out_path = Path(out)
    with feed as ahead:
        engine = FeatureEngine(symbols, feature_set, backend=backend, config=config)
        with (
            FeatureFileWriter(
                out_path, engine.feature_set, symbols, units=units, sources=sources
            ) as writer,
            _progress(progress, total_messages) as bar,
        ):
            for chunk in ahead:
                n_msg = int(np.count_nonzero(chunk["flags"] & END_OF_MESSAGE))
                batch = engine.process_batch(chunk)
                writer.write(batch)
                for k, v in batch.flag_counts().items():
                    counts[k] += v
                messages += n_msg
                events += len(chunk)
                frames += len(batch)
                bar.update(n_msg)
                if on_messages is not None:
                    on_messages(n_msg)
            stats = source_stats() if callable(source_stats) else source_stats
            if stats is not None:
                writer.set_source_stats(stats)
            writer.set_replay_info(
                {
                    "backend": engine.backend,
                    "messages": messages,
                    "events": events,
                    "frames": frames,
                    "quality_flag_counts": counts,
                    "engine_counters": engine.counters,
                }
            )
    seconds = time.perf_counter() - start
    summary_fn = getattr(stats, "summary", None)
    return ReplaySummary(
        out=out_path,
        units=units,
        backend=engine.backend,
        messages=messages,
        events=events,
        frames=frames,
        flag_counts=counts,
        counters=engine.counters,
        seconds=seconds,
        source_summary=summary_fn() if callable(summary_fn) else "",
    )


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _progress(enabled: bool, total: int | None) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=" msg", unit_scale=True, file=sys.stderr, desc="replay")


def portable(obj: Any, paths: Sequence[str]) -> Any:
    """`obj` as JSON values (dates and decimals as strings) with every input path reduced to
    its base name, so the stored stats (and so the file's bytes) do not depend on the directory
    the inputs were read from."""
    text = json.dumps(jsonable(obj), sort_keys=True, default=str)
    for p in sorted(set(paths), key=len, reverse=True):
        text = text.replace(json.dumps(p)[1:-1], json.dumps(Path(p).name)[1:-1])
    return json.loads(text)
