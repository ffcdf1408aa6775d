"""One symbol's research parser, fed one message at a time: the live normalizer.

Live and research must see the same events, so the live plane does not parse Binance JSON
itself: it hands each message, as a recorder line `<local_ts_ns> <json>`, to the very chain
research replay reads files with (the Rust `BinanceChain` where built, else the reference
`SymbolChain`), and takes the messages the chain releases. The chain applies the book rules of
the research reader (stale diffs after a snapshot dropped, empty diffs folded, every value
checked on its grid); the live sync rule (`feed.sync`) decides what reaches it and when.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from featureplane.events import EVENT_DTYPE
from featureplane.instruments import InstrumentSpec
from featureplane.live.wire import Market
from featureplane.sources._common import Reporter
from featureplane.sources.binance.parse import GridCache
from featureplane.sources.binance.rust import _grid_args, use_rust
from featureplane.sources.binance.stats import BinanceStats, SymbolSync
from featureplane.sources.binance.sync import SymbolChain

LIVE_PATH = "<live>"
"""The file name the chains report for live lines."""
_CHUNK_ROWS = 1 << 30  # a chunk is taken after every line: never full before


class _Counts(Reporter):
    """Counts skips and warnings by reason (live lines have no file to point at)."""

    def __init__(self) -> None:
        super().__init__(BinanceStats(), "skip")
        self.skips: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()

    def skip(self, reason: str, path: str, line: int | None, detail: str) -> None:
        self.skips[reason] += 1

    def warn(self, reason: str, path: str, line: int | None, detail: str) -> None:
        self.warnings[reason] += 1


class LiveChain:
    """A symbol's research chain fed line by line.

    Parameters
    ----------
    spec, symbol_id, market
        The instrument, its id in the engine's table, and its market (the sync rules differ).
    parser
        "auto" (Rust where built), "rust" or "python", as for research replay.
    """

    def __init__(
        self, spec: InstrumentSpec, symbol_id: int, market: Market, parser: str = "auto"
    ) -> None:
        self.symbol = spec.symbol
        self.counts = _Counts()
        self.rust = use_rust(parser, spec)
        self.parser = "rust" if self.rust else "python"
        self._line_no = 0
        self._core: Any = None
        self._ref: SymbolChain | None = None
        if self.rust:
            from featureplane import _core

            px_grid, qty_grid = _grid_args(spec.price_grid), _grid_args(spec.size_grid)
            assert px_grid is not None and qty_grid is not None  # use_rust checked them
            self._core = _core.BinanceChain(
                symbol=spec.symbol,
                symbol_id=symbol_id,
                usdm=market == "usdm",
                px_grid=px_grid,
                qty_grid=qty_grid,
                chunk_rows=_CHUNK_ROWS,
                stop_on_skip=False,
                px_cache=GridCache(spec.price_grid, "price", positive=True),
                qty_cache=GridCache(spec.size_grid, "size", positive=False),
            )
            self._core.start_file(0)
        else:
            stats = BinanceStats()
            stats.sync[spec.symbol] = SymbolSync(spec.symbol, market, [LIVE_PATH])
            self._ref = SymbolChain(
                symbol=spec.symbol,
                symbol_id=symbol_id,
                spec=spec,
                usdm=market == "usdm",
                files=[],
                stats=stats,
                reporter=self.counts,
                on_missing_snapshot="skip",
                chunk_rows=_CHUNK_ROWS,
            )

    def feed(self, local_ts: int, raw: bytes) -> np.ndarray | None:
        """Parse one message received at `local_ts`; the events of the messages it releases
        (`EVENT_DTYPE`, whole messages), or None."""
        self._line_no += 1
        line = b"%d %b\n" % (local_ts, raw)
        if self._core is not None:
            self._core.feed(line, 0)
            notes = self._core.take_notes()
            for kind, reason, *_ in notes:
                (self.counts.skips if kind == "skip" else self.counts.warnings)[reason] += 1
            words, ends, _key, _bbo, _bkey = self._core.take_chunk()
            if not len(ends):
                return None
            events: np.ndarray = words.view(EVENT_DTYPE)
            return events
        assert self._ref is not None
        self._ref._line(line[:-1], LIVE_PATH, self._line_no)
        chunk = self._ref._builder.flush()
        if chunk is None or not len(chunk.ends):
            return None
        return chunk.events

    @property
    def skipped(self) -> int:
        return sum(self.counts.skips.values())
