"""Parsing pieces of the Binance source: exact decimal caches, field checks, parsed diffs."""

from __future__ import annotations

from typing import Any, NamedTuple

from featureplane.errors import InvalidMessageError, OffGridError, UnreadableLineError
from featureplane.events import MAX_ABS_UNITS
from featureplane.instruments import Grid

I64_MAX = (1 << 63) - 1  # every number must fit the event model's int64 fields
MS_MAX = I64_MAX // 1_000_000
GRID_CACHE_MAX = 1 << 18
"""Distinct price or size strings kept per symbol; a full cache starts over (rare: days)."""


class GridCache(dict[str, int]):
    """Decimal string -> exact grid steps.

    Binance repeats the same strings all day long, so a dict hit (C speed) replaces most parses;
    a miss parses exactly and remembers. Plain `[+-]digits[.digits]` strings take a short
    integer path (at any length, as the Rust parser does); anything else (exponents,
    whitespace, NaN) goes through `Grid.parse`.
    """

    def __init__(self, grid: Grid, what: str, positive: bool) -> None:
        super().__init__()
        self._grid = grid
        self._what = what
        self._positive = positive
        # steps = mantissa * 10**exp / (units * 10**fraction_digits), exactly.
        self._scale: int = 10**grid.exp
        self._den: list[int] = [grid.units * 10**k for k in range(40)]

    def __missing__(self, key: object) -> int:
        if type(key) is not str:
            raise UnreadableLineError(
                "bad_message", f"{self._what} {key!r} is not a decimal string"
            )
        neg = key[:1] == "-"
        whole, _, frac = (key[1:] if neg or key[:1] == "+" else key).partition(".")
        digits = whole + frac
        if digits and digits.isdigit() and digits.isascii():
            # Plain `[+-]digits[.digits]`, at any length: exact integer arithmetic.
            k = len(frac)
            den = self._den[k] if k < len(self._den) else self._grid.units * 10**k
            value = _digits_int(digits)
            steps, rem = divmod((-value if neg else value) * self._scale, den)
            if rem:
                raise OffGridError(
                    f"{self._what} {key!r} is not a multiple of the grid step {self._grid.step}"
                )
        else:
            try:
                steps = self._grid.parse(key, self._what)  # OffGridError / InvalidMessageError
            except (OffGridError, InvalidMessageError):
                raise
            except ValueError as exc:  # Python's cap on int(str) digits, for the rare forms
                raise InvalidMessageError(f"{self._what} {key!r} is not a number ({exc})") from None
        if steps < 0 or (self._positive and steps == 0):
            raise InvalidMessageError(f"{self._what} {key!r} is not positive")
        if steps > MAX_ABS_UNITS:
            # The event model's bound (2^48 ticks or lots): refused here, per line, rather than
            # by the engine for a whole batch.
            raise InvalidMessageError(
                f"{self._what} {key!r} is beyond {MAX_ABS_UNITS} (2^48) grid steps"
            )
        if len(self) >= GRID_CACHE_MAX:
            self.clear()
        self[key] = steps
        return steps


def _digits_int(digits: str) -> int:
    """`int(digits)` at any length (Python caps the str -> int conversion at 4300 digits)."""
    if len(digits) <= _INT_PIECE:
        return int(digits)
    value = 0
    for at in range(0, len(digits), _INT_PIECE):
        piece = digits[at : at + _INT_PIECE]
        value = value * 10 ** len(piece) + int(piece)
    return value


_INT_PIECE = 4000


class Diff(NamedTuple):
    """A parsed depth diff, kept until the sync rule lets it out."""

    first: int  # U
    last: int  # u
    prev: int  # pu (USD-M) or U - 1 (spot)
    src: int
    local: int
    px: list[int]
    qty: list[int]
    n_bids: int
    path: str
    line: int


def source_ts(d: dict[str, Any], local: int) -> int:
    """`T` if present else `E` (ms -> ns), as hftbacktest's converter; else the local time."""
    t = d.get("T")
    if t is None:
        t = d.get("E")
        if t is None:
            return local
    if type(t) is not int or not 0 <= t <= MS_MAX:
        raise UnreadableLineError("bad_message", f"timestamp {t!r} is not a millisecond time")
    return t * 1_000_000


def local_ts(head: bytes) -> int:
    """The ASCII digits of a line's timestamp as an int; past int64 as `I64_MAX + 1` (leading
    zeros aside, more than 19 digits is past it, and `int()` refuses past 4300 digits)."""
    digits = head.lstrip(b"0")
    return int(digits or b"0") if len(digits) <= 19 else I64_MAX + 1


def int_field(d: dict[str, Any], name: str) -> int:
    """A non-negative int64 field (ids, sequence numbers)."""
    value = d.get(name)
    if type(value) is not int or not 0 <= value <= I64_MAX:
        raise UnreadableLineError("bad_message", f"{name}={value!r} is not a non-negative int64")
    return value
