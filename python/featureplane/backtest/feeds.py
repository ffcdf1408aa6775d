"""Backtest feeds from recorded files of any venue the source registry opens.

`load_feeds(files)` detects each file's venue (`featureplane.sources.registry`), groups the
files into chains as research replay does (`plan_chains`), reads each chain whole, and returns
every symbol's event stream with its instrument: what `HftBacktestAdapter` and
`MultiAssetAdapter` take. Binance, LOBSTER, tardis, Databento and hftbacktest `.npz` files mix
freely; each chain keeps its own symbol table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike

import numpy as np

from featureplane.errors import FeatureplaneError, UnknownSymbolError
from featureplane.events import concat
from featureplane.instruments import SymbolTable
from featureplane.sources.format import SourceOptions


@dataclass(frozen=True)
class SymbolFeed:
    """One symbol's messages (within its chain's event stream) and the chain's symbols."""

    symbol: str
    events: np.ndarray
    """The chain's whole event stream (the adapter takes the symbol's rows)."""
    symbols: SymbolTable
    format: str


def load_feeds(
    files: Iterable[str | PathLike[str]],
    *,
    format: str = "auto",
    options: SourceOptions | None = None,
) -> dict[str, SymbolFeed]:
    """Every symbol of the files, in the order the chains are planned and their tables list
    them.

    Raises
    ------
    SourceFormatError
        A file of no known venue (or bad rows, as the venue's reader says).
    FeatureplaneError
        The files hold no messages, or two chains hold the same symbol.
    """
    from featureplane.replay.chains import plan_chains
    from featureplane.sources.registry import open_source

    options = options or SourceOptions()
    feeds: dict[str, SymbolFeed] = {}
    for chain in plan_chains(files, format=format, options=options):
        opened = open_source(chain.format, chain.files, options)
        events = concat(list(opened))  # read first: some readers fill the table as they go
        present = set(np.unique(events["symbol_id"]).tolist()) if len(events) else set()
        for spec in opened.symbols.specs:
            if opened.symbols.id_of(spec.symbol) not in present:
                continue
            if spec.symbol in feeds:
                raise FeatureplaneError(
                    f"{spec.symbol} is in two chains ({feeds[spec.symbol].format} and "
                    f"{chain.format} {chain.name}): give each symbol's files once"
                )
            feeds[spec.symbol] = SymbolFeed(spec.symbol, events, opened.symbols, chain.format)
    if not feeds:
        raise FeatureplaneError("the files hold no messages")
    return feeds


def pick(feeds: dict[str, SymbolFeed], wanted: Sequence[str | None]) -> list[SymbolFeed]:
    """The feeds of `wanted` symbols (None: the first symbol), in that order, each once.

    Raises
    ------
    UnknownSymbolError
        A symbol none of the files holds (naming those they hold).
    """
    out: list[SymbolFeed] = []
    for name in wanted:
        key = name if name is not None else next(iter(feeds))
        feed = feeds.get(key) or feeds.get(key.upper())
        if feed is None:
            raise UnknownSymbolError(f"no {key!r} in the files; they hold {sorted(feeds)}")
        if all(f.symbol != feed.symbol for f in out):
            out.append(feed)
    return out
