"""Load feature files into a data frame: one file, or a directory of chain files.

`load_features` reads through `featureplane.frames.parquet.read_feature_file`, so every file's
feature set, schema hash and columns are checked before a row is returned, and gives what a
person reads whatever the files hold: real units, nulls where a value is not ready.
"""

from __future__ import annotations

import importlib.util
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from featureplane.errors import SchemaMismatchError
from featureplane.frames import DEFAULT_UNITS
from featureplane.frames.parquet import FeatureFile, read_feature_file

FrameKind = Literal["polars", "pandas", "arrow"]

CHAIN_COLUMN = "chain"
"""Column added when a directory is loaded: the feature file's name without `.parquet`."""


def load_features(
    path_or_dir: str | PathLike[str],
    *,
    as_: FrameKind | None = None,
    columns: list[str] | None = None,
    feature_set_id: str | None = None,
    units: str = DEFAULT_UNITS,
    nulls: bool = True,
) -> Any:
    """A feature file, or every feature file of a directory, as one data frame.

    Parameters
    ----------
    path_or_dir
        A feature file, or a directory of them (`featureplane replay ... --out DIR`): its
        `*.parquet` files in name order, each file's rows in replay order, with a `chain`
        column naming the file they came from. `symbol_id` indexes each file's own symbol
        table, so across files use `symbol` (the name).
    as_
        "polars", "pandas" or "arrow" (a `pyarrow.Table`). Default: polars if installed, else
        arrow.
    columns
        Read only these columns (default all).
    feature_set_id
        What the caller expects; another feature set raises `SchemaMismatchError`.
    units
        "real" (default): prices and sizes in real units (`mid` a price, like `microprice`),
        from a real-units or a scaled file alike. "scaled": the kernel's exact integers (ticks,
        lots, `mid` in half ticks), from `--units scaled` files only.
    nulls
        A feature value whose bit of `warmup_ready_mask` is off is null (default); the mask
        column stays. False keeps the values as stored.

    Raises
    ------
    SchemaMismatchError
        Files of a directory hold different feature sets or units (they cannot share columns),
        or `units="scaled"` of a real-units file.
    SourceFormatError
        A file is not a feature file.
    ImportError
        The frame library asked for is not installed (with how to install it).
    FileNotFoundError
        No such path, or a directory without feature files.
    """
    kind = as_ if as_ is not None else ("polars" if _installed("polars") else "arrow")
    if kind not in ("polars", "pandas", "arrow"):
        raise ValueError(f"as_ must be 'polars', 'pandas' or 'arrow', got {kind!r}")
    if kind != "arrow" and not _installed(kind):
        raise ImportError(
            f"load_features(as_={kind!r}) needs {kind}, which is not installed: "
            f"pip install {kind}, or use as_='arrow'"
        )
    path = Path(path_or_dir)
    table = _read_dir(path, columns, feature_set_id, units, nulls) if path.is_dir() else (
        read_feature_file(path, feature_set_id=feature_set_id, columns=columns)
        .to_arrow(units=units, nulls=nulls)
    )  # fmt: skip
    if kind == "arrow":
        return table
    if kind == "pandas":
        return table.to_pandas()
    import polars as pl

    return pl.from_arrow(table)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _read_dir(
    path: Path, columns: list[str] | None, feature_set_id: str | None, units: str, nulls: bool
) -> pa.Table:
    files = sorted(p for p in path.glob("*.parquet") if p.is_file())
    if not files:
        raise FileNotFoundError(2, "no feature files (*.parquet) in the directory", str(path))
    parts: list[FeatureFile] = [
        read_feature_file(f, feature_set_id=feature_set_id, columns=columns) for f in files
    ]
    first = parts[0]
    for part in parts[1:]:
        # One frame needs one column layout: the same feature set (by hash) and units.
        if part.feature_set.schema_hash != first.feature_set.schema_hash:
            raise SchemaMismatchError(
                f"{part.path.name} holds {part.feature_set.feature_set_id}, "
                f"{first.path.name} {first.feature_set.feature_set_id}: load them apart"
            )
        if part.units != first.units:
            raise SchemaMismatchError(
                f"{part.path.name} is in {part.units} units, {first.path.name} in "
                f"{first.units}: load them apart"
            )
    tables = []
    for part in parts:
        chain = pa.DictionaryArray.from_arrays(
            pa.array([0] * len(part), type=pa.int32()), pa.array([part.path.stem])
        )
        table = part.to_arrow(units=units, nulls=nulls).replace_schema_metadata(None)
        tables.append(table.append_column(CHAIN_COLUMN, chain))
    # Each file's `symbol` dictionary is its own symbol table; unify them into one.
    return pa.concat_tables(tables).unify_dictionaries()
