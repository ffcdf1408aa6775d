"""The inputs of the benchmark matrix: the real captures beside the repository and a session of
the built-in simulator, each normalized once (not timed) and described by what it counts.

Every row of a dataset's section counts the same events (the normalized rows: level changes,
trades, snapshot levels), so ratios between its rows are time ratios; messages and level
changes are reported beside them for per-message and per-level-change costs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from featureplane.events import LEVEL, SNAPSHOT, message_bounds
from featureplane.instruments import SymbolTable

DATA_ENV = "FEATUREPLANE_DATA"


def data_root() -> Path:
    """The one place the tools (bench, backtest) look for real captures: `$FEATUREPLANE_DATA`,
    else `../shared/data` beside a source checkout this package runs from. An installed
    package has no checkout around it: the folder then does not exist, and the tools say so."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]  # python/featureplane/bench/ -> the checkout
    return repo.parent / "shared" / "data"


SHARED_DATA = data_root()
"""`data_root()` when the package was imported."""


@dataclass
class Dataset:
    """Normalized events of one input and what they count.

    `usdm_capture` is set for a Binance USD-M capture: hftbacktest's converter reads those, so
    its numba replay can run beside our rows as an anchor.
    """

    name: str
    symbols: SymbolTable
    events: np.ndarray
    usdm_capture: Path | None = None

    @property
    def n_events(self) -> int:
        return len(self.events)

    @property
    def n_messages(self) -> int:
        return len(message_bounds(self.events))

    @property
    def n_level_changes(self) -> int:
        """Book rows: incremental level changes and snapshot levels."""
        kinds = self.events["kind"]
        return int(np.count_nonzero((kinds == LEVEL) | (kinds == SNAPSHOT)))


def _binance(name: str, paths: list[Path], usdm: bool) -> Dataset:
    from featureplane.sources import read_binance

    replay = read_binance(paths)
    return Dataset(name, replay.symbols, replay.events, paths[0] if usdm else None)


def _opened(name: str, fmt: str, paths: list[Path]) -> Dataset:
    from featureplane.sources.registry import open_source

    source = open_source(fmt, paths)
    events = np.concatenate(list(source))
    return Dataset(name, source.symbols, events)


def simulated(n_messages: int = 100_000, seed: int = 7) -> Dataset:
    """A multi-symbol session of the built-in simulator (no injected faults)."""
    from featureplane.sources.sim import SimConfig, simulate

    session = simulate(SimConfig(seed=seed, n_messages=n_messages))
    n = len(session.symbols)
    return Dataset(f"simulator, {n} symbols", session.symbols, session.events)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset by name: the folder it needs under `../shared/data` and how to load it."""

    name: str
    folder: str | None
    load: Callable[[Path], Dataset]

    def available(self, root: Path = SHARED_DATA) -> bool:
        return self.folder is None or (root / self.folder).is_dir()


def _glob(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


REAL = (
    DatasetSpec(
        "binance usdm BTCUSDT",
        "binance-usdm-btcusdt-20240808",
        lambda d: _binance("binance usdm BTCUSDT", _glob(d, "*.gz"), usdm=True),
    ),
    DatasetSpec(
        "binance usdm ETHUSDT",
        "binance-usdm-ethusdt-20240808",
        lambda d: _binance("binance usdm ETHUSDT", _glob(d, "*.gz"), usdm=True),
    ),
    DatasetSpec(
        "binance spot BTCUSDT, 2 days",
        "binance-spot-btcusdt-20240808-09",
        lambda d: _binance("binance spot BTCUSDT, 2 days", _glob(d, "*.gz"), usdm=False),
    ),
    DatasetSpec(
        "LOBSTER GOOG L10",
        "lobster-goog-2012-06-21-l10",
        lambda d: _opened("LOBSTER GOOG L10", "lobster", _glob(d, "*.zip")),
    ),
    DatasetSpec(
        "databento ESH4 MBO",
        "databento-glbx-esh4-mbo-20231225",
        lambda d: _opened("databento ESH4 MBO", "databento", _glob(d, "*.dbn.zst")),
    ),
)


def load(spec: DatasetSpec, root: Path = SHARED_DATA) -> Dataset:
    return spec.load(root / spec.folder if spec.folder else root)


def load_capture(path: Path) -> Dataset:
    """One Binance USD-M capture file given on the command line."""
    return _binance(f"binance usdm {path.name}", [path], usdm=True)
