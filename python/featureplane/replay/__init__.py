"""Research replay: recorded files -> feature files.

- `run`: one event stream through an engine into a feature file (`replay_events`);
- `chains`: which files one engine replays in order, and where their output goes;
- `parallel`: many chains at once, on local processes or a dask cluster.
"""

from featureplane.replay.chains import expand_inputs, output_paths, plan_chains
from featureplane.replay.parallel import ParallelSummary, ReplaySettings, replay_chain, replay_files
from featureplane.replay.run import ReplaySummary, replay_events
from featureplane.sources.format import Chain

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
