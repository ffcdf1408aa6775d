"""Instruments: tick and lot grids with exact conversion, and the symbol table.

Prices travel as integer ticks and sizes as integer lots. Conversion from the venue's decimal
strings is exact (integer arithmetic on the digits, no float on the way); a value off the grid is
an error, never a silent rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from featureplane.errors import InvalidMessageError, OffGridError, UnknownSymbolError


def _as_decimal(value: str | int | Decimal) -> Decimal:
    if isinstance(value, float):
        raise TypeError("pass grid sizes as strings or Decimal: a float is not exact")
    try:
        dec = Decimal(value)
    except InvalidOperation as exc:
        raise InvalidMessageError(f"not a decimal number: {value!r}") from exc
    if not dec.is_finite() or dec <= 0:
        raise InvalidMessageError(f"a grid size must be finite and positive: {value!r}")
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
        return Grid(self.tick_size)

    @property
    def size_grid(self) -> Grid:
        return Grid(self.lot_size)

    def px_to_ticks(self, px: str | bytes) -> int:
        """Exact ticks of a decimal price string."""
        return self.price_grid.parse(px, "price")

    def qty_to_lots(self, qty: str | bytes) -> int:
        """Exact lots of a decimal size string; a negative size is an error."""
        lots = self.size_grid.parse(qty, "size")
        if lots < 0:
            raise InvalidMessageError(f"negative size {qty!r}")
        return lots

    def ticks_to_px(self, ticks: int) -> Decimal:
        return Decimal(ticks) * self.tick_size

    def lots_to_qty(self, lots: int) -> Decimal:
        return Decimal(lots) * self.lot_size

    @property
    def tick_f64(self) -> float:
        return float(self.tick_size)

    @property
    def lot_f64(self) -> float:
        return float(self.lot_size)

    def to_json(self) -> dict[str, str | int]:
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
        depth = obj.get("depth")
        return cls(
            str(obj["symbol"]),
            str(obj["tick_size"]),
            str(obj["lot_size"]),
            str(obj.get("venue", "")),
            None if depth is None else int(depth),
        )


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
        try:
            return self._ids[symbol]
        except KeyError:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}") from None

    def name_of(self, symbol_id: int) -> str:
        return self.spec_of(symbol_id).symbol

    def spec_of(self, symbol_id: int) -> InstrumentSpec:
        if not 0 <= symbol_id < len(self._specs):
            raise UnknownSymbolError(f"unknown symbol id {symbol_id}")
        return self._specs[symbol_id]

    def spec(self, symbol: str) -> InstrumentSpec:
        return self._specs[self.id_of(symbol)]

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._specs)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    @property
    def specs(self) -> tuple[InstrumentSpec, ...]:
        return tuple(self._specs)

    def to_json(self) -> list[dict[str, str | int]]:
        return [spec.to_json() for spec in self._specs]

    @classmethod
    def from_json(cls, items: list[dict[str, str | int]]) -> SymbolTable:
        return cls([InstrumentSpec.from_json(item) for item in items])
