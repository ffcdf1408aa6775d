"""hftbacktest event arrays <-> normalized messages.

`read_hftbacktest_events` reads an array of hftbacktest's `event_dtype` (or an `.npz` with key
`data`, as its converters write) into `EVENT_DTYPE` messages; `to_hftbacktest_events` writes any
featureplane stream (Binance, LOBSTER, tardis, Databento) as an hftbacktest array, so every
source feeds hftbacktest's backtester. docs/sources/hftbacktest.md has the rules.

Reading takes the **local** view: the rows flagged LOCAL_EVENT, in array order. hftbacktest's
`correct_event_order` puts every market event into the array once as a local row (alone or
merged with its exchange row) and once as an exchange row, and orders the local rows by local
time: the order in which a strategy sees the feed, so the order a research replay must use.
Exchange-only rows are duplicates of local rows and are skipped.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from os import fspath
from typing import Any

import numpy as np
import numpy.typing as npt

from featureplane.errors import OffGridError, SourceFormatError
from featureplane.events import (
    ASK,
    BID,
    BUY,
    CLEAR,
    END_OF_MESSAGE,
    LEVEL,
    MAX_ABS_UNITS,
    NO_SEQ,
    SELL,
    SNAPSHOT,
    TRADE,
    UNKNOWN_SIDE,
    empty,
    message_bounds,
)
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.sources._common import EventArray, PathArg, SourceData

GRID_TOLERANCE = 1e-6
"""Largest |px / tick - round(px / tick)| (in ticks; the same for sizes in lots) read as on the
grid, for values up to about 10^9 steps. f64 prices of a decimal grid land within ~1e-10 ticks
of it; anything further is off grid. Larger values carry the f64 rounding of their magnitude:
the tolerance grows to `ULPS_TOLERANCE` units in the last place of `px / tick` (a spot size of
200 BTC is 2e10 lots of 1e-8, whose f64 quotient is only good to ~4e-6 lots)."""
ULPS_TOLERANCE = 4
"""f64 roundings of a value and of its quotient by the step, with room to spare."""

# hftbacktest's format (hftbacktest.types, 2.4.4). The reader needs these numbers without
# importing hftbacktest (numba, polars): a reader of its arrays does not need its engine.
# `_hbt_constants()` checks them against the installed package where it is there.
_DEPTH_EVENT = 1
_TRADE_EVENT = 2
_DEPTH_CLEAR_EVENT = 3
_DEPTH_SNAPSHOT_EVENT = 4
_EXCH_EVENT = 1 << 31
_LOCAL_EVENT = 1 << 30
_BUY_EVENT = 1 << 29
_SELL_EVENT = 1 << 28
_KIND_MASK = 0xFF
_FIELDS = ("ev", "exch_ts", "local_ts", "px", "qty")
_NPZ_DAMAGE = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    MemoryError,
)
"""What `np.load` raises on an empty, cut short or corrupt file: zipfile's NotImplementedError
and RuntimeError for a zip it cannot read (a newer zip version, another compression method,
an encrypted member), a MemoryError for an array header claiming more than memory holds."""
_NPY_MAGIC = b"\x93NUMPY"

# Kind groups: consecutive rows of one group and one local timestamp form a message.
_GROUP_DEPTH, _GROUP_TRADE, _GROUP_SNAPSHOT = 0, 1, 2
_GROUP_OF_KIND = {
    _DEPTH_EVENT: _GROUP_DEPTH,
    _TRADE_EVENT: _GROUP_TRADE,
    _DEPTH_CLEAR_EVENT: _GROUP_SNAPSHOT,
    _DEPTH_SNAPSHOT_EVENT: _GROUP_SNAPSHOT,
}


@dataclass
class HftbacktestStats:
    """What `read_hftbacktest_events` read and how it grouped it."""

    source: str
    rows: int = 0
    """Rows of the input array."""
    local_rows: int = 0
    """Rows flagged LOCAL_EVENT (the view read)."""
    exch_only_rows: int = 0
    """Rows flagged EXCH_EVENT only: the exchange-time copies, skipped."""
    unflagged_rows: int = 0
    """Rows with neither flag (hftbacktest replays none of them), skipped."""
    skipped_kinds: dict[int, int] = field(default_factory=dict)
    """Local rows of kinds featureplane has no row for (BBO, L3 order events, custom ids)."""
    messages: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("book", "snapshot", "trade"), 0)
    )
    clear_rows: int = 0
    partial_clears: int = 0
    """CLEAR rows with a side and a finite price: hftbacktest clears that side only from the
    best level to the price, featureplane's snapshot replaces the whole book (see the docs)."""
    snapshot_rows_as_levels: int = 0
    """SNAPSHOT rows in a group without CLEAR: applied as level changes, as hftbacktest does."""
    exch_ts_backwards: int = 0
    """Messages whose exchange time is earlier than the message before (local order)."""
    events: int = 0

    def summary(self) -> str:
        """One human-readable line (for logs and the CLI)."""
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(self.skipped_kinds.items()))
        return (
            f"{self.source}: {self.rows} rows, {self.local_rows} local read, "
            f"{self.exch_only_rows} exchange-only and {self.unflagged_rows} unflagged skipped; "
            f"skipped kinds {{{kinds}}}; messages "
            + ", ".join(f"{k} {v}" for k, v in self.messages.items())
            + f"; {self.clear_rows} clear rows ({self.partial_clears} partial), "
            f"{self.snapshot_rows_as_levels} snapshot rows as levels, "
            f"{self.exch_ts_backwards} exchange times backwards"
        )


class HftbacktestReplay(SourceData[HftbacktestStats]):
    """Messages read from an hftbacktest array."""


def read_hftbacktest_events(
    data: npt.NDArray[Any] | PathArg,
    instrument: InstrumentSpec,
    *,
    symbols: SymbolTable | None = None,
) -> HftbacktestReplay:
    """Read an hftbacktest event array (one asset) into normalized messages.

    Parameters
    ----------
    data
        An array with hftbacktest's `event_dtype` fields, or an `.npz` file with key `data`.
    instrument
        The asset's tick and lot: prices become `round(px / tick)` ticks, as hftbacktest
        rounds them, and sizes `round(qty / lot)` lots.
    symbols
        A table to add the instrument to (its ids are kept); default a new one.

    Raises
    ------
    SourceFormatError
        Names the input and the row: no LOCAL_EVENT row (an array before
        `correct_event_order`), local times going backwards, a depth row without a side, a
        trade with both sides, a price or size off the grid (further than `GRID_TOLERANCE`
        from it), non-finite or negative.
    """
    source, array = _load(data)
    table = symbols if symbols is not None else SymbolTable()
    sid = table.add(instrument)
    stats = HftbacktestStats(source, rows=len(array))
    ev = array["ev"].astype(np.uint64)
    local = (ev & _LOCAL_EVENT) != 0
    exch = (ev & _EXCH_EVENT) != 0
    stats.local_rows = int(local.sum())
    stats.exch_only_rows = int((exch & ~local).sum())
    stats.unflagged_rows = int((~exch & ~local).sum())
    if len(array) and not stats.local_rows:
        raise SourceFormatError(
            source,
            None,
            "no LOCAL_EVENT row: flag the rows with hftbacktest.data.correct_event_order first",
        )
    _check_exchange_rows(source, array, ev, exch & ~local, instrument)
    index = np.flatnonzero(local)
    kind = (ev[index] & _KIND_MASK).astype(np.int64)
    known = np.isin(kind, list(_GROUP_OF_KIND))
    for k, n in zip(*np.unique(kind[~known], return_counts=True), strict=True):
        stats.skipped_kinds[int(k)] = int(n)
    index, kind = index[known], kind[known]
    rows = array[index]
    local_ts = rows["local_ts"].astype(np.int64)
    _refuse(source, index, np.diff(local_ts) < 0, "local time goes backwards", shift=1)

    group = np.select(
        [kind == _DEPTH_EVENT, kind == _TRADE_EVENT], [_GROUP_DEPTH, _GROUP_TRADE], _GROUP_SNAPSHOT
    )
    row_side = ev[index] & (_BUY_EVENT | _SELL_EVENT)
    is_clear = kind == _DEPTH_CLEAR_EVENT
    starts = np.ones(len(rows), dtype=bool)
    starts[1:] = (local_ts[1:] != local_ts[:-1]) | (group[1:] != group[:-1])
    # A side-less CLEAR empties the whole book in hftbacktest: it starts a snapshot of its
    # own, as featureplane's CLEAR does. Per-side clears (hftbacktest's converters clear bids,
    # write bids, clear asks, write asks) stay in one message.
    starts |= is_clear & (row_side == 0)
    msg = np.cumsum(starts) - 1
    n_msgs = int(msg[-1]) + 1 if len(msg) else 0

    # Snapshot groups: one CLEAR first (the first CLEAR row moved to the front, the others
    # dropped); without any CLEAR their SNAPSHOT rows are plain level changes.
    stats.clear_rows = int(is_clear.sum())
    has_clear = np.zeros(n_msgs, dtype=bool)
    has_clear[msg[is_clear]] = True
    first_clear = np.zeros(len(rows), dtype=bool)
    clear_pos = np.flatnonzero(is_clear)
    first_clear[clear_pos[np.unique(msg[clear_pos], return_index=True)[1]]] = True
    px = rows["px"].astype(np.float64)
    stats.partial_clears = int((is_clear & (row_side != 0) & np.isfinite(px)).sum())
    as_level = (kind == _DEPTH_SNAPSHOT_EVENT) & ~has_clear[msg]
    stats.snapshot_rows_as_levels = int(as_level.sum())
    keep = ~is_clear | first_clear
    order = np.lexsort((np.arange(len(rows)), ~first_clear, msg))
    order = order[keep[order]]

    out_kind = np.where(as_level, _DEPTH_EVENT, kind)[order]
    index, rows, msg, row_side = index[order], rows[order], msg[order], row_side[order]
    events = empty(len(rows))
    events["kind"] = np.select(
        [out_kind == _DEPTH_EVENT, out_kind == _TRADE_EVENT, out_kind == _DEPTH_CLEAR_EVENT],
        [LEVEL, TRADE, CLEAR],
        SNAPSHOT,
    )
    events["side"] = _sides(source, index, out_kind, row_side)
    book = out_kind != _DEPTH_CLEAR_EVENT
    events["px"][book] = _units(source, index[book], rows["px"][book], instrument.tick_f64, "px")
    events["qty"][book] = _units(source, index[book], rows["qty"][book], instrument.lot_f64, "qty")
    events["symbol_id"] = sid

    ends = np.flatnonzero(np.diff(msg, append=n_msgs)) if len(msg) else msg
    events["flags"][ends] = END_OF_MESSAGE
    lens = np.diff(ends, prepend=-1)
    for name in ("source_ts_ns", "local_ts_ns"):
        column = "exch_ts" if name == "source_ts_ns" else "local_ts"
        events[name] = np.repeat(rows[column][ends].astype(np.int64), lens)
    for name in ("seq", "first_seq", "prev_seq"):
        events[name] = NO_SEQ  # hftbacktest rows carry no sequence number

    last_kind = events["kind"][ends]
    first_kind = events["kind"][ends - lens + 1]
    stats.messages["snapshot"] = int((first_kind == CLEAR).sum())
    stats.messages["trade"] = int((last_kind == TRADE).sum())
    stats.messages["book"] = len(ends) - stats.messages["snapshot"] - stats.messages["trade"]
    src = events["source_ts_ns"][ends]
    stats.exch_ts_backwards = int((np.diff(src) < 0).sum())
    stats.events = len(events)
    return HftbacktestReplay(events, table, stats)


def to_hftbacktest_events(
    events: EventArray, symbols: SymbolTable, symbol: str
) -> npt.NDArray[Any]:
    """Write one symbol's messages as an hftbacktest event array.

    LEVEL rows become DEPTH_EVENT, SNAPSHOT rows DEPTH_SNAPSHOT_EVENT (BUY_EVENT for bids,
    SELL_EVENT for asks), CLEAR a side-less DEPTH_CLEAR_EVENT (hftbacktest then empties both
    sides, as featureplane's snapshot does), TRADE rows TRADE_EVENT with the initiator's
    BUY_EVENT or SELL_EVENT (none for an unknown side). `exch_ts` is the message's source time,
    `local_ts` its local time made non-decreasing (a running maximum), so hftbacktest's local
    order is featureplane's message order. Rows are flagged EXCH_EVENT | LOCAL_EVENT, or, where
    the exchange times go backwards, split by hftbacktest's own `correct_event_order`; the
    result passes its `validate_event_order`.

    Prices are `ticks * tick` and sizes `lots * lot` as the f64 nearest the exact decimal (the
    value hftbacktest's converters parse from the venue's string).

    Raises
    ------
    ImportError
        hftbacktest is not installed.
    """
    from hftbacktest.data import correct_event_order, validate_event_order
    from hftbacktest.types import event_dtype

    _hbt_constants()
    spec = symbols.spec(symbol)
    rows = events[events["symbol_id"] == symbols.id_of(symbol)]
    if len(rows):
        message_bounds(rows)  # a symbol's rows are whole messages, or the input is broken
    kind, side = rows["kind"], rows["side"]
    ev = np.select(
        [kind == LEVEL, kind == SNAPSHOT, kind == CLEAR, kind == TRADE],
        [_DEPTH_EVENT, _DEPTH_SNAPSHOT_EVENT, _DEPTH_CLEAR_EVENT, _TRADE_EVENT],
        0,
    ).astype(np.uint64)
    sided = kind != CLEAR
    ev |= np.where(sided & (side == BUY), _BUY_EVENT, 0).astype(np.uint64)
    ev |= np.where(sided & (side == SELL), _SELL_EVENT, 0).astype(np.uint64)

    # Message-level fields are the last row's (featureplane.events); every row gets them.
    ends = message_bounds(rows)
    lens = np.diff(ends, prepend=0)
    local = np.maximum.accumulate(rows["local_ts_ns"][ends - 1]) if len(ends) else ends
    out = np.zeros(len(rows), dtype=event_dtype)
    out["ev"] = ev
    out["exch_ts"] = np.repeat(rows["source_ts_ns"][ends - 1], lens)
    out["local_ts"] = np.repeat(local, lens)
    out["px"] = np.where(sided, _to_f64(rows["px"], spec.tick_size), 0.0)
    out["qty"] = np.where(sided, _to_f64(rows["qty"], spec.lot_size), 0.0)
    if len(out) < 2 or (np.diff(out["exch_ts"]) >= 0).all():
        out["ev"] |= np.uint64(_EXCH_EVENT | _LOCAL_EVENT)
    else:
        out = correct_event_order(  # numba-compiled: returns an untyped array
            out,
            np.argsort(out["exch_ts"], kind="mergesort"),
            np.argsort(out["local_ts"], kind="mergesort"),
        )
    validate_event_order(out)
    exported: npt.NDArray[Any] = out
    return exported


# ----- helpers --------------------------------------------------------------------------------


def _load(data: npt.NDArray[Any] | PathArg) -> tuple[str, npt.NDArray[Any]]:
    if isinstance(data, np.ndarray):
        source, array = "<array>", data
    else:
        source = fspath(data)
        try:
            # Opened here: np.load leaves the file open when it is not a readable archive.
            with open(source, "rb") as f:
                # An .npy is refused before np.load reads it: its header alone could claim an
                # array of any size.
                if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
                    raise ValueError("a single ndarray (.npy), not an archive")
                f.seek(0)
                loaded = np.load(f, allow_pickle=False)
                if not isinstance(loaded, np.lib.npyio.NpzFile):  # an .npy, whatever its name
                    raise ValueError(f"a single {type(loaded).__name__}, not an archive")
                with loaded as npz:
                    array = npz["data"]
        except (*_NPZ_DAMAGE, KeyError) as exc:
            reason = f"not an .npz with key 'data' ({type(exc).__name__}: {exc})"
            raise SourceFormatError(source, None, reason) from None
    names = array.dtype.names or ()
    if missing := [f for f in _FIELDS if f not in names]:
        raise SourceFormatError(source, None, f"not hftbacktest events: no field(s) {missing}")
    if array.ndim != 1:
        raise SourceFormatError(source, None, f"expected a 1-d array, got shape {array.shape}")
    return source, array


def _check_exchange_rows(
    source: str,
    array: npt.NDArray[Any],
    ev: npt.NDArray[Any],
    exch_only: npt.NDArray[Any],
    instrument: InstrumentSpec,
) -> None:
    """The exchange-only rows are not read, but hftbacktest's simulator replays them: they get
    the checks of the local rows (sides, finite prices and sizes on the grid, no negative
    size), so bad values never reach it through the rows featureplane leaves out."""
    index = np.flatnonzero(exch_only)
    kind = (ev[index] & _KIND_MASK).astype(np.int64)
    known = np.isin(kind, list(_GROUP_OF_KIND))
    index, kind = index[known], kind[known]
    if not len(index):
        return
    _sides(source, index, kind, ev[index] & (_BUY_EVENT | _SELL_EVENT))
    book = kind != _DEPTH_CLEAR_EVENT
    rows = array[index[book]]
    _units(source, index[book], rows["px"], instrument.tick_f64, "px")
    _units(source, index[book], rows["qty"], instrument.lot_f64, "qty")


def _refuse(
    source: str, index: npt.NDArray[Any], bad: npt.NDArray[Any], what: str, shift: int = 0
) -> None:
    """Raise for the first True of `bad`, naming its row in the input array."""
    hits = np.flatnonzero(bad)
    if len(hits):
        row = int(index[hits[0] + shift])
        raise SourceFormatError(source, row, f"{what} (row {row}; {len(hits)} such row(s))")


def _sides(
    source: str, index: npt.NDArray[Any], kind: npt.NDArray[Any], side: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    buy = (side & _BUY_EVENT) != 0
    sell = (side & _SELL_EVENT) != 0
    book = (kind == _DEPTH_EVENT) | (kind == _DEPTH_SNAPSHOT_EVENT)
    _refuse(source, index, book & (buy == sell), "a depth row needs exactly one of BUY/SELL")
    _refuse(source, index, (kind == _TRADE_EVENT) & buy & sell, "a trade with both BUY and SELL")
    trade_side = np.where(buy, BUY, np.where(sell, SELL, UNKNOWN_SIDE))
    book_side = np.where(buy, BID, ASK)
    return np.where(book, book_side, np.where(kind == _TRADE_EVENT, trade_side, 0))


def _units(
    source: str, index: npt.NDArray[Any], values: npt.NDArray[Any], step: float, what: str
) -> npt.NDArray[Any]:
    """`values / step` rounded half away from zero (Rust's f64::round, which hftbacktest
    uses; numpy rounds half to even), refusing values off the grid."""
    v = values.astype(np.float64)
    _refuse(source, index, ~np.isfinite(v), f"{what} is not finite")
    unit = "ticks" if what == "px" else "lots"
    with np.errstate(over="ignore"):  # a finite value past f64 in steps: refused just below
        x = v / step
    _refuse(source, index, ~np.isfinite(x), f"{what} beyond {MAX_ABS_UNITS} (2^48) {unit}")
    units = np.copysign(np.floor(np.abs(x) + 0.5), x)
    tolerance = np.maximum(GRID_TOLERANCE, ULPS_TOLERANCE * np.spacing(np.abs(x)))
    off = np.abs(x - units) > tolerance
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise OffGridError(
            f"{source}:{int(index[i])}: {what} {float(values[i])!r} is "
            f"{abs(float(x[i] - units[i])):.3g} steps off the grid of {step!r} "
            f"(row {int(index[i])}; {int(off.sum())} such row(s))"
        )
    # The event model's bound: refused here with its row, not by the engine for the batch.
    beyond = np.abs(units) > MAX_ABS_UNITS
    _refuse(source, index, beyond, f"{what} beyond {MAX_ABS_UNITS} (2^48) {unit}")
    if what == "qty":
        _refuse(source, index, units < 0, "negative size")
    as_int: npt.NDArray[np.int64] = units.astype(np.int64)
    return as_int


def _to_f64(units: npt.NDArray[Any], step: Decimal) -> npt.NDArray[Any]:
    """`units * step` as the f64 nearest the exact decimal product.

    With step = m / 10**e, `units * m` is an exact integer and 10**e an exact f64, so one IEEE
    division rounds the exact quotient once: the f64 that `float("<decimal string>")` gives.
    Products beyond 2**53 (not exact in f64) go through Decimal.
    """
    num, den = step.as_integer_ratio()
    scaled = units.astype(np.int64) * num
    out = scaled.astype(np.float64) / float(den)
    big = np.abs(units) > (1 << 53) // max(num, 1)
    for i in np.flatnonzero(big):
        out[i] = float(Decimal(int(units[i])) * step)
    return out


def _hbt_constants() -> None:
    """Check the format numbers above against the installed hftbacktest."""
    from hftbacktest import types

    expected = {
        "DEPTH_EVENT": _DEPTH_EVENT,
        "TRADE_EVENT": _TRADE_EVENT,
        "DEPTH_CLEAR_EVENT": _DEPTH_CLEAR_EVENT,
        "DEPTH_SNAPSHOT_EVENT": _DEPTH_SNAPSHOT_EVENT,
        "EXCH_EVENT": _EXCH_EVENT,
        "LOCAL_EVENT": _LOCAL_EVENT,
        "BUY_EVENT": _BUY_EVENT,
        "SELL_EVENT": _SELL_EVENT,
    }
    for name, value in expected.items():
        if getattr(types, name) != value:
            raise ImportError(f"hftbacktest.types.{name} is {getattr(types, name)}, not {value}")


__all__ = [
    "GRID_TOLERANCE",
    "HftbacktestReplay",
    "HftbacktestStats",
    "read_hftbacktest_events",
    "to_hftbacktest_events",
]
