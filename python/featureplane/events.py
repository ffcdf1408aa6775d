"""The normalized message model.

A source turns each venue message into rows of `EVENT_DTYPE`, one row per price-level change,
snapshot level, clear or trade. The rows of one message are contiguous and the last of them
carries `END_OF_MESSAGE`; the engine applies a whole message, then emits one frame.

Message-level fields (`symbol_id`, `seq`, `first_seq`, `prev_seq`, `source_ts_ns`,
`local_ts_ns`) are written on every row of the message and read from its last row. The layout is
fixed (64 bytes, little endian, no padding holes) and mirrored by a `#[repr(C)]` struct in
`featureplane-core`, so a batch crosses into Rust without per-row conversion.

Sequence fields, -1 where the source has none:

- `seq`: the message's own sequence number (Binance `u`, a trade id, a venue sequence).
- `first_seq`: the first update id the message covers (Binance `U`).
- `prev_seq`: the sequence the previous message of the stream must have ended at (Binance
  USD-M `pu`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from featureplane.errors import InvalidMessageError

__all__ = [
    "ASK",
    "BID",
    "BUY",
    "CLEAR",
    "END_OF_MESSAGE",
    "EVENT_DTYPE",
    "KINDS",
    "KIND_NAMES",
    "LEVEL",
    "MAX_ABS_UNITS",
    "NO_SEQ",
    "SELL",
    "SNAPSHOT",
    "TRADE",
    "UNKNOWN_SIDE",
    "check_array",
    "concat",
    "empty",
    "iter_messages",
    "make_message",
    "message_bounds",
    "validate",
]

EVENT_DTYPE = np.dtype(
    [
        ("kind", "u1"),
        ("side", "i1"),
        ("flags", "u1"),
        ("reserved", "u1"),
        ("symbol_id", "<u4"),
        ("seq", "<i8"),
        ("first_seq", "<i8"),
        ("prev_seq", "<i8"),
        ("source_ts_ns", "<i8"),
        ("local_ts_ns", "<i8"),
        ("px", "<i8"),
        ("qty", "<i8"),
    ]
)
assert EVENT_DTYPE.itemsize == 64

# Row kinds.
LEVEL = 1
"""Sets the absolute size `qty` (lots) at price `px` (ticks) on `side`; qty 0 removes the level."""
TRADE = 2
"""A trade of `qty` lots at `px` ticks; `side` is the initiator (BUY, SELL or 0 unknown)."""
CLEAR = 3
"""Empties the symbol's book. A message holding a CLEAR is a snapshot and resets the symbol."""
SNAPSHOT = 4
"""A level of a snapshot; follows the CLEAR row of the same message."""
KINDS = (LEVEL, TRADE, CLEAR, SNAPSHOT)
KIND_NAMES = {LEVEL: "level", TRADE: "trade", CLEAR: "clear", SNAPSHOT: "snapshot"}

# Sides. Book rows: the side of the book. Trade rows: the aggressor.
BID = 1
ASK = -1
BUY = 1
SELL = -1
UNKNOWN_SIDE = 0

# Row flags.
END_OF_MESSAGE = 1

NO_SEQ = -1

MAX_ABS_UNITS = 1 << 48
"""Largest |px| (ticks) and qty (lots) a row may carry. It keeps every integer feature (mid =
A + B, OFI sums, cumulative sums) far inside i64 in both backends; real instruments stay many
orders of magnitude below it (2^48 ticks of 0.01 is 2.8 trillion)."""


def empty(n: int) -> np.ndarray:
    """Zeroed event rows with the sequence fields set to `NO_SEQ`."""
    rows = np.zeros(n, dtype=EVENT_DTYPE)
    rows["seq"] = NO_SEQ
    rows["first_seq"] = NO_SEQ
    rows["prev_seq"] = NO_SEQ
    return rows


def make_message(
    symbol_id: int,
    *,
    source_ts_ns: int,
    local_ts_ns: int = 0,
    seq: int = NO_SEQ,
    first_seq: int = NO_SEQ,
    prev_seq: int = NO_SEQ,
    levels: Iterable[tuple[int, int, int]] = (),
    trades: Iterable[tuple[int, int, int]] = (),
    snapshot: Iterable[tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """Build the rows of one message.

    Parameters
    ----------
    levels
        `(side, px_ticks, qty_lots)` level changes, applied in order.
    trades
        `(aggressor_side, px_ticks, qty_lots)` trades, in order.
    snapshot
        When given (even empty), the message is a snapshot: a CLEAR row, then these levels as
        SNAPSHOT rows, then any `levels` and `trades`.
    """
    body: list[tuple[int, int, int, int]] = []
    if snapshot is not None:
        body.append((CLEAR, 0, 0, 0))
        body.extend((SNAPSHOT, side, px, qty) for side, px, qty in snapshot)
    body.extend((LEVEL, side, px, qty) for side, px, qty in levels)
    body.extend((TRADE, side, px, qty) for side, px, qty in trades)
    if not body:
        raise InvalidMessageError("a message needs at least one row")
    rows = empty(len(body))
    rows["kind"] = [b[0] for b in body]
    rows["side"] = [b[1] for b in body]
    rows["px"] = [b[2] for b in body]
    rows["qty"] = [b[3] for b in body]
    rows["symbol_id"] = symbol_id
    rows["seq"] = seq
    rows["first_seq"] = first_seq
    rows["prev_seq"] = prev_seq
    rows["source_ts_ns"] = source_ts_ns
    rows["local_ts_ns"] = local_ts_ns
    rows["flags"][-1] = END_OF_MESSAGE
    return rows


def concat(messages: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate messages into one event array (an empty array for no messages)."""
    if not messages:
        return empty(0)
    joined: np.ndarray = np.concatenate(messages).astype(EVENT_DTYPE, copy=False)
    return joined


def message_bounds(events: np.ndarray) -> np.ndarray:
    """Exclusive end index of each message in `events` (positions after END_OF_MESSAGE rows).

    Raises
    ------
    InvalidMessageError
        If the last row does not end a message: trailing rows would otherwise be lost silently.
    """
    ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE) + 1
    if len(events) and (len(ends) == 0 or ends[-1] != len(events)):
        raise InvalidMessageError(
            f"event rows {int(ends[-1]) if len(ends) else 0}..{len(events) - 1} "
            "are not closed by an END_OF_MESSAGE row"
        )
    return ends


def iter_messages(events: np.ndarray) -> Iterator[np.ndarray]:
    """Yield each message of `events` as a view of its rows."""
    start = 0
    for end in message_bounds(events):
        yield events[start:end]
        start = int(end)


def check_array(events: object) -> None:
    """Check that `events` is an event array at all: a 1-d numpy array of `EVENT_DTYPE` rows.

    Both backends run this first, so the same input gets the same error from either. A 1-d
    array may be strided (a view such as `events[::2]`); rows are read in order. Nothing else
    is normalised: an (n, 1) array or a 0-d array is refused rather than guessed at.

    Raises
    ------
    TypeError
        Not a numpy array: a list, bytes, or one row taken out as a scalar (`events[i]`).
    InvalidMessageError
        Another dtype, or not one-dimensional.
    """
    if not isinstance(events, np.ndarray):
        raise TypeError(
            f"events must be a numpy array of EVENT_DTYPE rows, got {type(events).__name__}"
        )
    if events.dtype != EVENT_DTYPE:
        raise InvalidMessageError(f"events must have EVENT_DTYPE, got {events.dtype}")
    if events.ndim != 1:
        raise InvalidMessageError(
            f"events must be a 1-d array of EVENT_DTYPE rows, got shape {events.shape}"
        )


def validate(events: np.ndarray, n_symbols: int) -> None:
    """Check an event array against the message model before anything is applied.

    Both backends run the same checks up front, so bad input fails the whole call with the
    index of the first bad row and no partial state change.

    Raises
    ------
    TypeError
        Not a numpy array (see `check_array`).
    InvalidMessageError
        Wrong dtype or shape, unknown kind or side, negative size, a price or size beyond
        `MAX_ABS_UNITS`, unknown symbol id, a message mixing symbols, or rows not closed by
        END_OF_MESSAGE.
    """
    check_array(events)
    if len(events) == 0:
        return
    ends = message_bounds(events)
    kind = events["kind"]
    bad = ~np.isin(kind, KINDS)
    _raise_first(bad, events, "unknown row kind")
    book = (kind == LEVEL) | (kind == SNAPSHOT)
    _raise_first(book & (events["side"] != BID) & (events["side"] != ASK), events, "bad book side")
    _raise_first(
        (kind == TRADE) & (np.abs(events["side"].astype(np.int16)) > 1), events, "bad trade side"
    )
    _raise_first(events["qty"] < 0, events, "negative size")
    px = events["px"]  # compared both ways: abs() of the i64 minimum wraps negative
    out_of_range = (events["qty"] > MAX_ABS_UNITS) | (px > MAX_ABS_UNITS) | (px < -MAX_ABS_UNITS)
    _raise_first(out_of_range, events, "price or size out of range")
    _raise_first(events["symbol_id"] >= n_symbols, events, "unknown symbol id")
    # Every row of a message must name the symbol of its last row.
    msg_of_row = np.repeat(np.arange(len(ends)), np.diff(np.concatenate(([0], ends))))
    last_symbol = events["symbol_id"][ends - 1][msg_of_row]
    _raise_first(events["symbol_id"] != last_symbol, events, "a message mixes symbols")


def _raise_first(mask: np.ndarray, events: np.ndarray, what: str) -> None:
    hits = np.flatnonzero(mask)
    if len(hits):
        i = int(hits[0])
        row = events[i]
        raise InvalidMessageError(
            f"{what} at event row {i} (kind={int(row['kind'])}, side={int(row['side'])}, "
            f"symbol_id={int(row['symbol_id'])}, px={int(row['px'])}, qty={int(row['qty'])}); "
            f"{len(hits)} such row(s)"
        )
