"""Instruments: tick and lot grids with exact conversion, and the symbol table.

Prices travel as integer ticks and sizes as integer lots. Conversion from the venue's decimal
strings is exact (integer arithmetic on the digits, no float on the way); a value off the grid is
an error, never a silent rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import numpy as np
import numpy.typing as npt

from featureplane.errors import InvalidMessageError, OffGridError, UnknownSymbolError
from featureplane.events import MAX_ABS_UNITS

__all__ = [
    "MAX_FRACTION_DIGITS",
    "MAX_WHOLE_DIGITS",
    "Grid",
    "InstrumentSpec",
    "Number",
    "SymbolTable",
]


def _as_decimal(value: str | int | Decimal) -> Decimal:
    if isinstance(value, float):
        raise TypeError("pass grid sizes as strings or Decimal: a float is not exact")
    try:
        dec = Decimal(value)
    except InvalidOperation as exc:
        raise InvalidMessageError(f"not a decimal number: {value!r}") from exc
    if not dec.is_finite() or dec <= 0:
        raise InvalidMessageError(f"a grid size must be finite and positive: {value!r}")
    # The f64 features scale ticks and lots by the nearest float64 (`tick_f64`, `lot_f64`): a
    # size that rounds to 0 or overflows to inf would make every real-unit feature 0, inf or
    # NaN. Both backends rest on this check (the Rust engine refuses such floats too).
    as_float = float(dec)
    if not (math.isfinite(as_float) and as_float > 0):
        raise InvalidMessageError(
            f"a grid size must be a finite positive float64 too: {value!r} is {as_float} as one"
        )
    return dec


@dataclass(frozen=True)
class Grid:
    """A price or size grid `step = units / 10**exp` (exact), with parsing of decimal strings."""

    step: Decimal
    units: int = field(init=False)
    exp: int = field(init=False)

    def __post_init__(self) -> None:
        _sign, digits, exponent = self.step.as_tuple()
        assert isinstance(exponent, int)
        units = int("".join(map(str, digits)))
        exp = -exponent
        if exp < 0:  # e.g. Decimal("1E+1"): fold the power of ten into the units
            units *= 10**-exp
            exp = 0
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "exp", exp)

    def parse(self, text: str | bytes, what: str = "value") -> int:
        """Exact number of grid steps in a decimal string; raises on off-grid or non-numeric."""
        if isinstance(text, bytes):
            text = text.decode("ascii", "replace")
        mantissa, frac_digits = _parse_decimal(text, what)
        # value = mantissa / 10**frac_digits; steps = value / (units / 10**exp)
        num = mantissa * 10**self.exp
        den = self.units * 10**frac_digits
        steps, rem = divmod(num, den)
        if rem:
            raise OffGridError(f"{what} {text!r} is not a multiple of the grid step {self.step}")
        return int(steps)

    def to_decimal(self, steps: int) -> Decimal:
        """Exact real value of a number of steps."""
        return Decimal(steps) * self.step

    @property
    def as_float(self) -> float:
        """The step as the nearest f64: the factor f64 features use for real units."""
        return float(self.step)


MAX_WHOLE_DIGITS = 60
"""Digits before the point of the largest number read: far beyond any int64 count of grid steps
(19 digits) on any grid, so a longer number is out of range whatever the grid."""
MAX_FRACTION_DIGITS = 200
"""Significant digits after the point of the finest number read: finer than any grid step, so a
longer fraction is off grid whatever the grid."""


def _parse_decimal(text: str, what: str) -> tuple[int, int]:
    """`text` as (integer mantissa, number of fraction digits); rejects NaN, inf and junk.

    The bounds above are checked before any exact arithmetic: `1e999999999` or a 10,000-digit
    string would otherwise make the arithmetic (or Python's int-from-string limit) the cost.
    """
    body = text.strip()
    neg = body.startswith("-")
    if neg or body.startswith("+"):
        body = body[1:]
    whole, _, frac = body.partition(".")
    digits = whole + frac
    if digits and digits.isascii() and digits.isdigit() and (whole or frac) and len(digits) <= 40:
        value = int(digits)
        return (-value if neg else value), len(frac)
    # Rare forms (exponents, very long strings) go through Decimal, which is exact; NaN and inf
    # are refused.
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise InvalidMessageError(f"{what} {text!r} is not a number") from None
    if not dec.is_finite():
        raise InvalidMessageError(f"{what} {text!r} is not finite")
    sign, dec_digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    significant = "".join(map(str, dec_digits)).lstrip("0")
    if not significant:
        return 0, 0
    stripped = significant.rstrip("0")
    exponent += len(significant) - len(stripped)  # value = stripped * 10**exponent
    if exponent + len(stripped) > MAX_WHOLE_DIGITS:
        raise InvalidMessageError(f"{what} {_short(text)} is out of range")
    if -exponent > MAX_FRACTION_DIGITS:
        raise OffGridError(f"{what} {_short(text)} has more fraction digits than any grid step")
    mantissa = int(stripped)
    if exponent > 0:
        mantissa *= 10**exponent
        exponent = 0
    return (-mantissa if sign else mantissa), -exponent


Number = str | bytes | int | float | Decimal
"""A price or size as a user or a venue gives it."""


def _decimal_text(value: Number) -> str | bytes:
    """The decimal text of a number: strings as they are, floats by their shortest repr."""
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"a price or size must be a str, int, float or Decimal, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessageError(f"not a finite number: {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


def _to_steps(values: npt.ArrayLike, grid: Grid, what: str) -> npt.NDArray[np.int64]:
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InvalidMessageError(f"{what} at index {int(np.argmin(np.isfinite(x)))} is not finite")
    # step = units / 10**exp, both exact in float64 for every real grid.
    quotient = x * 10.0**grid.exp / grid.units
    steps = np.rint(quotient)
    # Float error of a decimal on the grid is a few ulps of the quotient: far below 1e-6.
    off = np.abs(quotient - steps) > 1e-6
    if np.any(off):
        i = int(np.argmax(off))
        raise OffGridError(
            f"{what} {float(x[i])!r} at index {i} is not a multiple of the step {grid.step}"
        )
    if np.any(np.abs(steps) > MAX_ABS_UNITS):
        raise InvalidMessageError(f"a {what} beyond the event model's range of 2^48 steps")
    return steps.astype(np.int64)


def _from_steps(steps: npt.ArrayLike, grid: Grid) -> npt.NDArray[np.float64]:
    # One rounding (the division by the exact power of ten), as the feature files' real units.
    return np.asarray(steps, dtype=np.float64) * grid.units / 10.0**grid.exp


def _short(text: str) -> str:
    """`text` for an error message, cut short if it is long."""
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}... ({len(text):,} characters)"


@dataclass(frozen=True)
class InstrumentSpec:
    """One tradable instrument: its name, its exact tick (price) and lot (size) grids, and the
    depth its source carries.

    `depth` is the number of price levels per side the source describes exactly: None for a
    full-depth feed (every level: Binance, tardis, Databento), N for a source that shows the
    best N levels only (a LOBSTER level-N file), 0 for one whose book is not trustworthy at
    all (a LOBSTER message file without its orderbook file). A feature that reads more levels
    than the source carries is never ready on it (`featureplane.features.lob_shared_v1`).
    """

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    venue: str = ""
    depth: int | None = None

    def __init__(
        self,
        symbol: str,
        tick_size: str | int | Decimal,
        lot_size: str | int | Decimal,
        venue: str = "",
        depth: int | None = None,
    ) -> None:
        if depth is not None and (type(depth) is not int or depth < 0):
            raise InvalidMessageError(f"depth must be None or a non-negative int, got {depth!r}")
        object.__setattr__(self, "symbol", symbol)
        object.__setattr__(self, "tick_size", _as_decimal(tick_size))
        object.__setattr__(self, "lot_size", _as_decimal(lot_size))
        object.__setattr__(self, "venue", venue)
        object.__setattr__(self, "depth", depth)

    @property
    def price_grid(self) -> Grid:
        """The tick grid prices are counted on."""
        return Grid(self.tick_size)

    @property
    def size_grid(self) -> Grid:
        """The lot grid sizes are counted on."""
        return Grid(self.lot_size)

    def px_to_ticks(self, px: Number) -> int:
        """Exact ticks of a price: a decimal string, a `Decimal`, an int or a float.

        A float is read as the shortest decimal that gives it back (`repr`: 61659.8 is
        "61659.8"), which is what a user typed or a venue sent; off the grid raises.
        """
        return self.price_grid.parse(_decimal_text(px), "price")

    def qty_to_lots(self, qty: Number) -> int:
        """Exact lots of a size (as `px_to_ticks` takes them); a negative size is an error."""
        lots = self.size_grid.parse(_decimal_text(qty), "size")
        if lots < 0:
            raise InvalidMessageError(f"negative size {qty!r}")
        return lots

    def ticks_to_px(self, ticks: int) -> Decimal:
        """The exact price of `ticks` (use `ticks_to_px_array` for float64 columns)."""
        return Decimal(ticks) * self.tick_size

    def lots_to_qty(self, lots: int) -> Decimal:
        """The exact size of `lots`."""
        return Decimal(lots) * self.lot_size

    def px_to_ticks_array(self, px: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Ticks of float prices, element-wise: each must sit on the grid within float error
        (1e-6 of a tick); the first that does not raises `OffGridError` naming its index."""
        return _to_steps(px, self.price_grid, "price")

    def qty_to_lots_array(self, qty: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Lots of float sizes, element-wise, as `px_to_ticks_array`; negative sizes raise."""
        lots = _to_steps(qty, self.size_grid, "size")
        if len(lots) and int(lots.min()) < 0:
            raise InvalidMessageError(f"negative size at index {int(np.argmin(lots))}")
        return lots

    def ticks_to_px_array(self, ticks: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Float64 prices of tick counts: the nearest float to each exact price, as the real
        units of feature files are."""
        return _from_steps(ticks, self.price_grid)

    def lots_to_qty_array(self, lots: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Float64 sizes of lot counts, as `ticks_to_px_array`."""
        return _from_steps(lots, self.size_grid)

    @property
    def tick_f64(self) -> float:
        """The tick size as the nearest float64: the factor from ticks to real prices in f64
        features."""
        return float(self.tick_size)

    @property
    def lot_f64(self) -> float:
        """The lot size as the nearest float64: the factor from lots to real sizes in f64
        features."""
        return float(self.lot_size)

    def to_json(self) -> dict[str, str | int]:
        """The spec as JSON (tick and lot sizes exact, as decimal text; the source depth in
        levels where the source has one)."""
        out: dict[str, str | int] = {
            "symbol": self.symbol,
            "tick_size": str(self.tick_size),
            "lot_size": str(self.lot_size),
            "venue": self.venue,
        }
        if self.depth is not None:  # a full-depth source writes what it always wrote
            out["depth"] = self.depth
        return out

    @classmethod
    def from_json(cls, obj: dict[str, str | int]) -> InstrumentSpec:
        """A spec from its `to_json` form ("venue" and "depth" may be absent).

        Raises
        ------
        InvalidMessageError
            A tick or lot size that is not a finite positive decimal.
        """
        depth = obj.get("depth")
        return cls(
            str(obj["symbol"]),
            str(obj["tick_size"]),
            str(obj["lot_size"]),
            str(obj.get("venue", "")),
            None if depth is None else int(depth),
        )


_REPR_SYMBOLS = 20
"""Symbols a `SymbolTable` repr lists; the rest are counted."""


class SymbolTable:
    """Symbol names <-> dense ids (0, 1, ...), with the instrument spec of each.

    Ids are assigned in insertion order, so the same instruments added in the same order give
    the same ids in every process (frames and files carry ids).
    """

    def __init__(self, specs: list[InstrumentSpec] | tuple[InstrumentSpec, ...] = ()) -> None:
        self._specs: list[InstrumentSpec] = []
        self._ids: dict[str, int] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: InstrumentSpec) -> int:
        """Register an instrument and return its id; re-adding the same spec returns its id."""
        known = self._ids.get(spec.symbol)
        if known is not None:
            if self._specs[known] != spec:
                raise InvalidMessageError(
                    f"symbol {spec.symbol!r} is already registered with another spec"
                )
            return known
        self._ids[spec.symbol] = len(self._specs)
        self._specs.append(spec)
        return len(self._specs) - 1

    def id_of(self, symbol: str) -> int:
        """The id of a symbol name.

        Raises
        ------
        UnknownSymbolError
            The table does not hold `symbol`.
        """
        try:
            return self._ids[symbol]
        except KeyError:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}") from None

    def name_of(self, symbol_id: int) -> str:
        """The symbol name of an id; raises `UnknownSymbolError` for an id out of range."""
        return self.spec_of(symbol_id).symbol

    def spec_of(self, symbol_id: int) -> InstrumentSpec:
        """The instrument spec of an id; raises `UnknownSymbolError` for an id out of range."""
        if not 0 <= symbol_id < len(self._specs):
            raise UnknownSymbolError(f"unknown symbol id {symbol_id}")
        return self._specs[symbol_id]

    def spec(self, symbol: str) -> InstrumentSpec:
        """The instrument spec of a symbol name; raises `UnknownSymbolError` if unknown."""
        return self._specs[self.id_of(symbol)]

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    def __repr__(self) -> str:
        shown = [
            f"{s.symbol} (tick {s.tick_size}, lot {s.lot_size})"
            for s in self._specs[:_REPR_SYMBOLS]
        ]
        if len(self._specs) > _REPR_SYMBOLS:
            shown.append(f"+{len(self._specs) - _REPR_SYMBOLS} more")
        plural = "" if len(self._specs) == 1 else "s"
        return f"<SymbolTable {len(self._specs)} symbol{plural}: {', '.join(shown) or 'none'}>"

    @property
    def specs(self) -> tuple[InstrumentSpec, ...]:
        """Every instrument spec, in id order."""
        return tuple(self._specs)

    def to_json(self) -> list[dict[str, str | int]]:
        """The specs in id order as `InstrumentSpec.to_json` dicts (ids are list positions)."""
        return [spec.to_json() for spec in self._specs]

    @classmethod
    def from_json(cls, items: list[dict[str, str | int]]) -> SymbolTable:
        """A table from its `to_json` form, with the same ids.

        Raises
        ------
        InvalidMessageError
            A bad tick or lot size, or one symbol listed twice with different specs.
        """
        return cls([InstrumentSpec.from_json(item) for item in items])
