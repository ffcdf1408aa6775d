"""Replay: recorded data -> FeatureEngine -> feature files, with a progress bar and a summary.

`replay_events` drives any source that yields event-array chunks; `replay_binance` wires the
Binance recorder source. The file format is in `featureplane.featurefile`.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np

from featureplane.engine import FeatureEngine
from featureplane.errors import SourceFormatError
from featureplane.events import END_OF_MESSAGE
from featureplane.featurefile import FeatureFileWriter, jsonable
from featureplane.features.kernel import EngineConfig
from featureplane.features.registry import DEFAULT_FEATURE_SET_ID, FeatureSet
from featureplane.frames import FrameBatch, QualityFlag
from featureplane.instruments import SymbolTable

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

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = jsonable(self)
        out["events_per_s"] = self.events_per_s
        out["messages_per_s"] = self.messages_per_s
        return out

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


def flag_counts(batch: FrameBatch) -> dict[str, int]:
    """Frames of a batch carrying each quality flag, by flag name."""
    q = batch.columns["quality_flags"]
    return {flag.name or str(int(flag)): int(np.count_nonzero(q & flag)) for flag in QualityFlag}


def replay_events(
    chunks: Iterable[np.ndarray],
    symbols: SymbolTable,
    out: str | PathLike[str],
    *,
    units: str = "scaled",
    backend: str | None = None,
    progress: bool = True,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
    config: EngineConfig | None = None,
    sources: Iterable[str | PathLike[str]] = (),
    source_stats: Any | None = None,
    total_messages: int | None = None,
) -> ReplaySummary:
    """Run event chunks through a `FeatureEngine` into a feature file.

    Each chunk is an `EVENT_DTYPE` array of whole messages; one `process_batch` per chunk, so
    memory stays bounded by the chunk size and the writer's row group.

    `source_stats` may be a zero-argument callable, called once the chunks are exhausted (a
    streaming source's stats are final only then).
    """
    engine = FeatureEngine(symbols, feature_set, backend=backend, config=config)
    counts = dict.fromkeys((f.name or str(int(f)) for f in QualityFlag), 0)
    messages = events = frames = 0
    out_path = Path(out)
    start = time.perf_counter()
    with (
        FeatureFileWriter(
            out_path, engine.feature_set, symbols, units=units, sources=sources
        ) as writer,
        _progress(progress, total_messages) as bar,
    ):
        for chunk in chunks:
            n_msg = int(np.count_nonzero(chunk["flags"] & END_OF_MESSAGE))
            batch = engine.process_batch(chunk)
            writer.write(batch)
            for k, v in flag_counts(batch).items():
                counts[k] += v
            messages += n_msg
            events += len(chunk)
            frames += len(batch)
            bar.update(n_msg)
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
    from tqdm import tqdm

    return tqdm(total=total, unit=" msg", unit_scale=True, file=sys.stderr, desc="replay")


def replay_binance(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    out: str | PathLike[str],
    *,
    units: str = "scaled",
    backend: str | None = None,
    progress: bool = True,
    chunk_rows: int | None = None,
    symbols: Iterable[str] | None = None,
    market: Literal["usdm", "spot"] | None = None,
    errors: Literal["skip", "raise"] = "skip",
    on_missing_snapshot: Literal["raise", "skip"] = "raise",
    config: EngineConfig | None = None,
    parser: Literal["auto", "rust", "python"] = "auto",
) -> ReplaySummary:
    """Replay Binance recorder captures into a feature file.

    Streams the captures (`featureplane.sources.binance.iter_binance`) chunk by chunk through
    `FeatureEngine.process_batch` into a `FeatureFileWriter`: memory is bounded by one chunk
    and one row group, whatever the length of the capture.

    Parameters
    ----------
    paths
        Capture files or directories (their `*.gz`), see `BinanceReader`.
    out
        The feature file to write.
    units
        "scaled" or "real".
    backend
        "python" or "rust" (None: the default backend).
    progress
        Show a tqdm bar (messages) on stderr.
    chunk_rows
        Event rows per chunk (default the source's `DEFAULT_CHUNK_ROWS`).
    symbols, market, errors, on_missing_snapshot
        Passed to the reader (`BinanceReader`).
    config
        Engine options (the stale-input rule).
    parser
        The line parser: "rust", "python" (the reference) or "auto" (Rust where built); both
        write the same file.

    Raises
    ------
    SourceFormatError
        Bad input with `errors="raise"`, or no Binance data in any input file.
    SyncError
        A symbol with depth diffs and no snapshot (with `on_missing_snapshot="raise"`).
    """
    from featureplane.sources.binance import DEFAULT_CHUNK_ROWS, iter_binance

    reader = iter_binance(
        paths,
        symbols=symbols,
        market=market,
        errors=errors,
        on_missing_snapshot=on_missing_snapshot,
        chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
        parser=parser,
    )
    files = [info.path for info in reader.stats.files]
    if not len(reader.symbols):
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(reader.stats.skipped.items()))
        raise SourceFormatError(
            files[0] if len(files) == 1 else f"{len(files)} files",
            None,
            "no Binance stream found" + (f" (skipped: {skipped})" if skipped else ""),
        )
    summary = replay_events(
        reader,
        reader.symbols,
        out,
        units=units,
        backend=backend,
        progress=progress,
        config=config,
        sources=files,
        source_stats=lambda: _relative_paths(jsonable(reader.stats), files),
    )
    summary.source_summary = reader.stats.summary()
    return summary


def _relative_paths(obj: Any, paths: Sequence[str]) -> Any:
    """`obj` with every input path reduced to its base name, so the stored stats (and so the
    file's bytes) do not depend on the directory the captures were read from."""
    text = json.dumps(obj, sort_keys=True)
    for p in sorted(set(paths), key=len, reverse=True):
        text = text.replace(json.dumps(p)[1:-1], json.dumps(Path(p).name)[1:-1])
    return json.loads(text)
