"""The live stack driven by research replay instead of a venue.

`drive_replay` reads captures with the research reader and hands their messages, one at a
time and in research order, to the same `MarketDataService`, runners, risk engine and paper
adapters a live run builds from the same config. Given the same capture and fill model, a
strategy decides here exactly as it decides live on the loopback venue: the decision-equality
test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

import numpy as np

from featureplane.engine.config import EngineConfig
from featureplane.events import END_OF_MESSAGE
from featureplane.instruments import SymbolTable
from featureplane.live.bootstrap import ServiceRegistry
from featureplane.live.config import LiveConfig
from featureplane.live.feed.client import FeedData
from featureplane.live.feed.sync import Released
from featureplane.live.runner import build_runners
from featureplane.live.service import MarketDataService
from featureplane.sources import read_binance


def drive_replay(captures: Sequence[str | PathLike[str]], config: LiveConfig) -> ServiceRegistry:
    """Run `config`'s strategies on research replay of `captures`; the registry after the end."""
    table = SymbolTable([s.spec() for s in config.symbols])
    replay = read_binance(list(captures), instruments=table)
    events = replay.events
    # The reader's ids follow its own table; the service's follow the config's.
    remap = np.array([table.id_of(s.symbol) for s in replay.symbols.specs], dtype=np.uint32)
    events["symbol_id"] = remap[events["symbol_id"]]
    fe = config.feature_engine
    stale = int(fe.stale_after_ms * 1e6) if fe.stale_after_ms > 0 else None
    service = MarketDataService(
        table,
        feature_set=fe.feature_set,
        backend=None if fe.backend == "auto" else fe.backend,
        engine_config=EngineConfig(stale_after_ns=stale),
        features=fe.enabled,
        queue_max_messages=1 << 30,
    )
    registry = ServiceRegistry()
    registry.register("config", config)
    registry.register("symbols", table)
    registry.register("service", service)
    build_runners(config, registry)
    for runner in registry.runners():
        runner.start()
    ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE) + 1
    start = 0
    for end in ends.tolist():
        message = events[start:end]
        start = end
        service.offer(FeedData(int(message["symbol_id"][0]), 0, Released(message, []), 0, 0))
        service.step()
    service.drain()
    for runner in registry.runners():
        runner.stop()
    return registry
