"""Real units: feature values as prices and sizes, from the metadata and the instrument.

A scaled-int feature (`FLAG_SCALED_INT`) counts steps of a grid divided by `scale`:

- unit "price": real = value * tick_size / scale
- unit "size":  real = value * lot_size / scale

f64 features are already in real units (prices times tick, sizes times lot), and unitless
features (unit "ratio", "zscore", "bits", ...) stay as they are.

Two conversions:

- `to_real(value, spec, instrument) -> Decimal`: exact, for one value.
- `to_real_columns(batch) -> dict[str, ndarray]`: float64 columns for a whole `FrameBatch`, each
  symbol with its own instrument (`scaled_to_real` for one column, as a feature file reader
  converts). A scaled value becomes the f64 nearest to its exact real value
  (while `|value * tick units| < 2**53`): it is computed as `value * units / (10**exp * scale)`
  with the grid step `units / 10**exp`, two exact integer-valued operands and one rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, Inexact, localcontext
from typing import Protocol

import numpy as np

from featureplane.instruments import Grid, InstrumentSpec, SymbolTable
from featureplane.schema import FLAG_SCALED_INT, FeatureSet, FeatureSpec


class FrameLike(Protocol):
    """What a conversion reads of a `FeatureUpdateFrameV1` (this module sits below frames)."""

    symbol: str
    feature_set_id: str
    values: tuple[int | float, ...]


class ColumnsLike(Protocol):
    """What a conversion reads of a `FrameBatch`."""

    feature_set: FeatureSet
    symbols: SymbolTable
    columns: dict[str, np.ndarray]
    values: dict[str, np.ndarray]


GRID_UNITS = ("price", "size")
"""Units of scaled-int features: which instrument grid the integer counts."""

_EXACT_LIMIT = 2**53


def is_scaled(spec: FeatureSpec) -> bool:
    """Whether a feature is a scaled integer on the tick or lot grid."""
    return bool(spec.flags & FLAG_SCALED_INT)


def grid_of(spec: FeatureSpec, instrument: InstrumentSpec) -> Grid:
    """The instrument grid a scaled-int feature counts (tick for "price", lot for "size").

    Raises
    ------
    ValueError
        The feature is not a scaled int, or its unit or scale cannot be converted.
    """
    if not is_scaled(spec):
        raise ValueError(f"feature {spec.name} is not a scaled integer")
    if spec.scale <= 0:
        raise ValueError(f"scaled feature {spec.name} has scale {spec.scale}")
    if spec.unit == "price":
        return instrument.price_grid
    if spec.unit == "size":
        return instrument.size_grid
    raise ValueError(f"scaled feature {spec.name} has unit {spec.unit!r}, not one of {GRID_UNITS}")


def real_step(spec: FeatureSpec, instrument: InstrumentSpec) -> Decimal:
    """Exact real value of one unit of a scaled-int feature (`tick_size / scale`, ...)."""
    grid = grid_of(spec, instrument)
    return _exact_quotient(grid.units, grid.exp, spec.scale)


def to_real(value: int | float, spec: FeatureSpec, instrument: InstrumentSpec) -> Decimal:
    """One feature value in real units, as a `Decimal`.

    Scaled ints are exact (a scale whose prime factors are 2 and 5, as every lob_shared_v1
    scale, always divides exactly; another scale is rounded to at least 50 significant digits).
    An f64 becomes the shortest decimal that reads back as the same f64 (`repr`), so
    `float(to_real(x, ...)) == x`; NaN stays NaN. Unitless integers come back unchanged.
    """
    if is_scaled(spec):
        if isinstance(value, float):
            raise TypeError(f"scaled feature {spec.name} holds integers, got {value!r}")
        grid = grid_of(spec, instrument)
        # value * units / 10**exp / scale: integers until the one division.
        return _exact_quotient(int(value) * grid.units, grid.exp, spec.scale)
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(int(value))


def frame_to_real(
    frame: FrameLike, feature_set: FeatureSet, symbols: SymbolTable
) -> dict[str, Decimal]:
    """Every value of a frame in real units (exact), keyed by feature name."""
    feature_set.check(frame.feature_set_id)
    instrument = symbols.spec(frame.symbol)
    return {
        spec.name: to_real(value, spec, instrument)
        for spec, value in zip(feature_set.features, frame.values, strict=True)
    }


def to_real_columns(
    batch: ColumnsLike, names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The feature columns of a batch in real units.

    Scaled ints become float64 in real units (each row with its own symbol's tick or lot size);
    f64 columns are copied as they are; other integer columns (bits) keep their dtype.

    Parameters
    ----------
    batch
        Frames of any number of symbols.
    names
        Features to convert (default: all, in schema order).
    """
    fs = batch.feature_set
    sids = batch.columns["symbol_id"].astype(np.intp)
    specs = [fs.features[fs.index(n)] for n in names] if names is not None else fs.features
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        col = batch.values[spec.name]
        if not is_scaled(spec):
            out[spec.name] = col.copy()
            continue
        out[spec.name] = scaled_to_real(col, spec, batch.symbols, sids)
    return out


def scaled_to_real(
    values: np.ndarray, spec: FeatureSpec, symbols: SymbolTable, symbol_id: np.ndarray
) -> np.ndarray:
    """One scaled-int column as float64 real units, row i with the instrument of
    `symbol_id[i]` (the f64 nearest to the exact real value, as `to_real_columns`)."""
    num, den = _factors(spec, symbols)
    sids = symbol_id.astype(np.intp, copy=False)
    return np.asarray(values.astype(np.float64) * num[sids] / den[sids])


def _factors(spec: FeatureSpec, symbols: SymbolTable) -> tuple[np.ndarray, np.ndarray]:
    """Per symbol id: (grid units, 10**exp * scale) as float64, both exact integers."""
    num = np.empty(len(symbols), dtype=np.float64)
    den = np.empty(len(symbols), dtype=np.float64)
    for sid, instrument in enumerate(symbols.specs):
        grid = grid_of(spec, instrument)
        d = 10**grid.exp * spec.scale
        if grid.units >= _EXACT_LIMIT or d >= _EXACT_LIMIT:
            # Not representable exactly: fall back to the nearest f64 of the step itself.
            num[sid], den[sid] = float(real_step(spec, instrument)), 1.0
        else:
            num[sid], den[sid] = float(grid.units), float(d)
    return num, den


def _exact_quotient(numerator: int, exp: int, scale: int) -> Decimal:
    """`numerator / 10**exp / scale` as a Decimal, exact whenever the quotient terminates."""
    with localcontext() as ctx:
        # Enough digits that no step rounds a terminating quotient (Decimal's default is 28).
        ctx.prec = max(50, len(str(abs(numerator))) + 3 * len(str(scale)) + 10)
        ctx.traps[Inexact] = False
        value = Decimal(numerator).scaleb(-exp)
        return value if scale == 1 else value / scale
