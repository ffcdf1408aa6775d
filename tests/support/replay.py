"""Replay Binance captures through the generic chain path, as `featureplane replay` does."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from featureplane.replay.parallel import ReplaySettings, replay_chain
from featureplane.replay.run import ReplaySummary
from featureplane.sources.format import Chain, SourceOptions


def replay_binance(
    files: Sequence[str | PathLike[str]],
    out: str | PathLike[str],
    *,
    units: str = "scaled",
    backend: str | None = None,
    progress: bool = False,
    **options: Any,
) -> ReplaySummary:
    """`files` as one Binance chain (the reader merges them) into the feature file `out`."""
    chain = Chain("binance", Path(out).stem, tuple(fspath(f) for f in files))
    settings = ReplaySettings(units=units, backend=backend, options=SourceOptions(**options))
    return replay_chain(chain, out, settings, progress=progress)
