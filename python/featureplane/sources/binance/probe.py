"""Probing Binance recorder files: symbol, market, first local time, instruments.

The start of every file is read before the real read, so that files can be grouped by symbol
and chained, the market's sync rule chosen and the symbol table built up front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from os import PathLike, fspath
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import orjson

from featureplane.errors import SourceFormatError, StreamDamageError
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources._common import Instruments, PathArg
from featureplane.sources._lines import iter_line_blocks
from featureplane.sources.binance.parse import local_ts
from featureplane.sources.binance.stats import BinanceStats

Market = Literal["usdm", "spot", "coinm"]
MARKETS: tuple[Market, ...] = ("usdm", "spot", "coinm")
FUTURES: tuple[Market, ...] = ("usdm", "coinm")
"""Markets whose diffs carry `pu` (the futures' continuity and sync rules)."""
_COINM_SYMBOL = re.compile(r"^[A-Z0-9]+_(PERP|\d{6})$")
"""COIN-M contract names: a pair, then `_PERP` or a delivery date (BTCUSD_PERP, ETHUSD_240927)."""

TS_UNITS: tuple[tuple[int, int, str], ...] = (
    (10**17, 1, "ns"),
    (10**14, 1_000, "us"),
    (10**11, 1_000_000, "ms"),
)
"""(smallest first local timestamp, factor to ns, unit): a local time read as ns before 10^17
would be before 1973-03-03, so a file whose first one is smaller but at least 10^14 holds
microseconds (an older recorder's), at least 10^11 milliseconds. Smaller values (synthetic
captures) are read as ns."""
PROBE_LINES = 20_000
"""Lines read at most from the start of each file to learn its symbol, market and precision."""
PROBE_BLOCK_BYTES = 1 << 16
"""Compressed bytes read at a time while probing: the first few lines usually suffice."""

BUILTIN_INSTRUMENTS: Mapping[tuple[str, str], InstrumentSpec] = MappingProxyType(
    {
        ("usdm", "BTCUSDT"): InstrumentSpec("BTCUSDT", "0.1", "0.001", "binance-usdm"),
        ("usdm", "ETHUSDT"): InstrumentSpec("ETHUSDT", "0.01", "0.001", "binance-usdm"),
        # Spot sizes: most sit on 0.00001, but deep resting levels carry 6-8 decimals, so the
        # strings' own precision is the only grid that loses nothing.
        ("spot", "BTCUSDT"): InstrumentSpec("BTCUSDT", "0.01", "0.00000001", "binance-spot"),
    }
)
"""Tick and lot of the captured instruments (they are not in the data), by (market, symbol)."""


COINM_SIZES = (
    "sizes are contracts, not coins: a COIN-M contract is worth a fixed amount of USD "
    "(100 for BTC pairs, 10 for the others), so size features count contracts"
)
"""The note a COIN-M symbol's `stats.instruments` entry carries."""


# ----- probing ------------------------------------------------------------------------------


@dataclass
class Probe:
    """What the first lines of a file tell."""

    path: str
    index: int
    lines: int = 0
    first_local_ts: int | None = None
    """The first local timestamp, in ns (scaled by `local_ts_scale`)."""
    local_ts_scale: int = 1
    """Factor from the file's local timestamps to ns (see `TS_UNITS`)."""
    local_ts_unit: str = "ns"
    raw_first_local_ts: int | None = None
    symbol: str | None = None
    market: Market | None = None
    market_rank: int = 0  # 0 none, 1 book ticker or trade hint, 2 a diff or snapshot
    px_samples: list[str] = field(default_factory=list)
    qty_samples: list[str] = field(default_factory=list)
    sample_rank: int = 0  # 0 none, 1 book ticker, 2 trade, 3 diff or snapshot
    sample_from: str = ""
    damage: StreamDamageError | None = None

    def hint(self, market: Market, rank: int) -> None:
        if rank > self.market_rank:
            self.market, self.market_rank = market, rank

    def sample(self, px: list[Any], qty: list[Any], rank: int, what: str) -> None:
        if rank > self.sample_rank:
            self.px_samples = [s for s in px if type(s) is str]
            self.qty_samples = [s for s in qty if type(s) is str]
            self.sample_rank, self.sample_from = rank, what

    @property
    def done(self) -> bool:
        return self.symbol is not None and self.market_rank == 2 and self.sample_rank == 3


def probe_file(path: str, index: int) -> Probe:
    probe = Probe(path, index)
    try:
        for block in iter_line_blocks(path, PROBE_BLOCK_BYTES):
            for raw in block:
                probe.lines += 1
                _probe_line(probe, raw)
                if probe.done or probe.lines >= PROBE_LINES:
                    return probe
    except StreamDamageError as damage:
        probe.damage = damage
    return probe


def _probe_line(probe: Probe, raw: bytes) -> None:
    sp = raw.find(b" ")
    if sp <= 0 or not raw[:sp].isdigit() or local_ts(raw[:sp]) >= 1 << 63:
        return
    if probe.first_local_ts is None:
        raw_ts = local_ts(raw[:sp])
        probe.local_ts_scale, probe.local_ts_unit = local_ts_unit(raw_ts)
        probe.raw_first_local_ts = raw_ts
        probe.first_local_ts = raw_ts * probe.local_ts_scale
    try:
        obj = orjson.loads(memoryview(raw)[sp + 1 :])
    except orjson.JSONDecodeError:
        return
    if type(obj) is not dict:
        return
    if "lastUpdateId" in obj:
        # Only the futures' REST snapshots carry E and T; COIN-M's also names its pair.
        futures = "pair" in obj or _COINM_SYMBOL.match(str(obj.get("symbol", ""))) is not None
        probe.hint("coinm" if futures else "usdm" if "E" in obj or "T" in obj else "spot", 2)
        bids, asks = obj.get("bids"), obj.get("asks")
        if type(bids) is list and type(asks) is list:
            levels = [lv for lv in bids + asks if type(lv) is list and len(lv) >= 2]
            probe.sample([lv[0] for lv in levels], [lv[1] for lv in levels], 3, "snapshot")
        return
    stream = obj.get("stream")
    data = obj.get("data") if stream is not None else obj
    if type(data) is not dict:
        return
    if type(stream) is str:
        prefix, _, rest = stream.partition("@")
        symbol: object = prefix.upper()
    else:
        event = data.get("e")
        rest = {"depthUpdate": "depth", "trade": "trade"}.get(str(event), "bookTicker")
        symbol = data.get("s")
    if type(symbol) is not str or not symbol:
        return
    if probe.symbol is None:
        probe.symbol = symbol
    elif symbol != probe.symbol:
        return
    coinm = "ps" in data or _COINM_SYMBOL.match(symbol) is not None  # COIN-M names its pair
    if rest == "depth" or rest.startswith("depth@"):
        probe.hint("coinm" if coinm else "usdm" if "pu" in data else "spot", 2)
        bids, asks = data.get("b"), data.get("a")
        if type(bids) is list and type(asks) is list:
            levels = [lv for lv in bids + asks if type(lv) is list and len(lv) >= 2]
            probe.sample([lv[0] for lv in levels], [lv[1] for lv in levels], 3, "depth diff")
    elif rest == "trade":
        # USD-M trades carry X (order type).
        probe.hint("coinm" if coinm else "usdm" if "X" in data else "spot", 1)
        probe.sample([data.get("p")], [data.get("q")], 2, "trade")
    elif rest == "bookTicker" and {"u", "b", "a"} <= data.keys():
        # Spot bookTicker has no e/E/T.
        probe.hint("coinm" if coinm else "usdm" if "e" in data else "spot", 1)
        probe.sample([data.get("b"), data.get("a")], [data.get("B"), data.get("A")], 1, "bbo")


# ----- files, markets, instruments ----------------------------------------------------------


def local_ts_unit(first: int) -> tuple[int, str]:
    """(factor to ns, unit) of a file whose first local timestamp is `first` (`TS_UNITS`)."""
    for smallest, factor, unit in TS_UNITS:
        if first >= smallest:
            return factor, unit
    return 1, "ns"


def expand_paths(paths: PathArg | Iterable[PathArg]) -> list[str]:
    items = [paths] if isinstance(paths, str | PathLike) else list(paths)
    out: list[str] = []
    for item in items:
        path = Path(fspath(item))
        if path.is_dir():
            out.extend(str(p) for p in sorted(path.glob("*.gz")))
        else:
            out.append(fspath(item))
    if not out:
        raise ValueError("no input files")
    return out


def market_of(symbol: str, chain: list[Probe], override: Market | None) -> Market:
    if override is not None:
        return override
    seen = {p.market for p in chain if p.market is not None}
    if len(seen) > 1:
        raise SourceFormatError(
            chain[0].path, None, f"{symbol}: files disagree on the market {sorted(seen)}"
        )
    if not seen:
        raise SourceFormatError(
            chain[0].path,
            None,
            f"cannot tell whether {symbol} is USD-M, COIN-M or spot from the first "
            f"{PROBE_LINES} lines; pass market='usdm', market='coinm' or market='spot'",
        )
    return seen.pop()


def _decimals(samples: list[str]) -> int:
    """Largest number of fraction digits among plain decimal strings (Binance pads to its
    precision, so every string of a symbol has the same count)."""
    best = 0
    for s in samples:
        whole, _, frac = s.partition(".")
        if (whole + frac).isdigit():
            best = max(best, len(frac))
    return best


def _step(decimals: int) -> str:
    return "1" if decimals == 0 else "0." + "0" * (decimals - 1) + "1"


def resolve_instruments(
    groups: dict[str, list[Probe]],
    market: Market | None,
    instruments: Instruments | None,
    stats: BinanceStats,
) -> tuple[SymbolTable, dict[str, InstrumentSpec], set[str]]:
    """The symbol table (caller's ids first), the spec of every symbol read, and the symbols
    whose grid the caller gave (the others come from the built-in table or the data)."""
    table = SymbolTable()
    given: dict[str, InstrumentSpec] = {}
    if isinstance(instruments, SymbolTable):
        table = SymbolTable(instruments.specs)
    elif isinstance(instruments, Mapping):
        given = {k.upper(): v for k, v in instruments.items()}
    elif instruments is not None:
        given = {spec.symbol.upper(): spec for spec in instruments}
    specs: dict[str, InstrumentSpec] = {}
    given_by_caller: set[str] = set()
    for symbol, probes in groups.items():
        first = min(probes, key=lambda p: (p.first_local_ts or 0, p.index))
        sym_market = market_of(symbol, probes, market)
        if symbol in table:
            spec, how = table.spec(symbol), "caller's symbol table"
            given_by_caller.add(symbol)
        elif symbol in given:
            spec, how = given[symbol], "caller's instruments"
            given_by_caller.add(symbol)
        elif (sym_market, symbol) in BUILTIN_INSTRUMENTS:
            spec, how = BUILTIN_INSTRUMENTS[sym_market, symbol], f"built-in {sym_market} table"
        else:
            best = max(probes, key=lambda p: p.sample_rank)
            if best.sample_rank == 0:
                raise SourceFormatError(
                    first.path,
                    None,
                    f"no tick/lot known for {symbol} and no price strings to infer them from; "
                    "pass instruments=",
                )
            px_dec, qty_dec = _decimals(best.px_samples), _decimals(best.qty_samples)
            spec = InstrumentSpec(symbol, _step(px_dec), _step(qty_dec), f"binance-{sym_market}")
            how = (
                f"inferred from the {best.sample_from} strings of {best.path}: "
                f"{px_dec} price decimals, {qty_dec} size decimals"
            )
        if sym_market == "coinm":
            how += f"; {COINM_SIZES}"
        if spec.symbol != symbol:  # e.g. given as "btcusdt": the table is keyed by the feed's name
            spec = replace(spec, symbol=symbol)
        table.add(spec)
        specs[symbol] = spec
        stats.instruments[symbol] = f"{how}: tick {spec.tick_size}, lot {spec.lot_size}"
    return table, specs, given_by_caller
