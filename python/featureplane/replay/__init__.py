"""Research replay: recorded files -> feature files.

- `run`: one event stream through an engine into a feature file (`replay_events`);
- `chains`: which files one engine replays in order, and where their output goes;
- `parallel`: many chains at once, on local processes or a dask cluster.

Imported on first use (`featureplane._lazy`), so `featureplane replay` reads its inputs' heads
before the engine and the Parquet writer are loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featureplane import _lazy

if TYPE_CHECKING:
    from featureplane.replay.chains import expand_inputs, output_paths, plan_chains
    from featureplane.replay.parallel import (
        ParallelSummary,
        ReplaySettings,
        replay_chain,
        replay_files,
    )
    from featureplane.replay.run import ReplaySummary, replay_events
    from featureplane.sources.format import Chain

_EXPORTS = {
    "Chain": "featureplane.sources.format",
    "ParallelSummary": ".parallel",
    "ReplaySettings": ".parallel",
    "ReplaySummary": ".run",
    "expand_inputs": ".chains",
    "output_paths": ".chains",
    "plan_chains": ".chains",
    "replay_chain": ".parallel",
    "replay_events": ".run",
    "replay_files": ".parallel",
}

__all__ = [
    "Chain",
    "ParallelSummary",
    "ReplaySettings",
    "ReplaySummary",
    "expand_inputs",
    "output_paths",
    "plan_chains",
    "replay_chain",
    "replay_events",
    "replay_files",
]


def __getattr__(name: str) -> Any:
    return _lazy.attribute(__name__, _EXPORTS, name)
