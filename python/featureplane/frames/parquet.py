"""Feature files: frames written to Parquet with everything needed to read them back.

One row per frame. Columns, in order: `symbol` (dictionary-encoded string), `symbol_id`, `seq`,
`source_ts_ns`, `local_ts_ns`, `changed_mask`, `warmup_ready_mask`, `quality_flags`, then every
feature in schema order, in one of two units:

- `units="real"` (the default): what a person reads. Scaled ints as float64 real units (`mid` a
  price, like `microprice`), f64 features as they are, `bits` as uint32; a value that is not
  ready (its bit of `warmup_ready_mask` off) is null. The masks stay.
- `units="scaled"`: the kernel's values bit for bit (ticks, lots, `mid` in half ticks), not
  ready or not, so `FeatureFile.to_batch` gives back the very frames: for exact research, the
  parity checks and live recording. The file says so (`featureplane.units`), and every reader
  (`FeatureFile.to_arrow`/`to_polars`/`to_pandas`/`column`, `load_features`) converts it to
  real units with nulls unless asked for `units="scaled"`.

The file's key-value metadata (keys under `featureplane.`) holds the feature set JSON, the
instrument specs, the units, the input files (name, size, sha256), the featureplane version and
the source's stats, so a file read years later is interpreted exactly as it was written.

Files are deterministic: the same frames give byte-identical files whatever chunks they were
written in (rows are regrouped into fixed-size row groups; no timestamps; fixed writer options).
docs/replay.md describes the format; `featureplane.replay.run` produces these files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featureplane import __version__
from featureplane.errors import SchemaMismatchError, SourceFormatError
from featureplane.features.plan import feature_set_from_json
from featureplane.frames import DEFAULT_UNITS, UNITS, arrow
from featureplane.frames.frame import HEADER_COLUMNS as FRAME_HEADER
from featureplane.frames.frame import FrameBatch
from featureplane.frames.units import (
    is_scaled,
    scaled_to_real,
    to_real_columns,
)
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

Units = Literal["real", "scaled"]

FILE_FORMAT = "featureplane.feature_file"
FILE_FORMAT_VERSION = 1
ROW_GROUP_ROWS = 65_536
"""Rows per row group: about 15 MB of lob_shared_v1 columns in memory while writing."""
ZSTD_LEVEL = 3

META_FORMAT = "featureplane.format"
META_FORMAT_VERSION = "featureplane.format_version"
META_VERSION = "featureplane.version"
META_FEATURE_SET = "featureplane.feature_set"
META_SYMBOLS = "featureplane.symbols"
META_UNITS = "featureplane.units"
META_SOURCES = "featureplane.sources"
META_SOURCE_STATS = "featureplane.source_stats"
META_REPLAY = "featureplane.replay"

HEADER_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("symbol", pa.dictionary(pa.int32(), pa.string())),
    *(
        (name, pa.from_numpy_dtype(np.dtype(dt)))
        for name, dt in FRAME_HEADER.items()
        if name != "input_index"  # a position in the producer's input, not part of a file
    ),
)
"""The file's header columns: the symbol name, then the frame header (`frames.frame`)."""
# Statistics only where they serve row-group pruning (time and sequence ranges, symbols);
# the feature columns hold NaNs and would add bytes for no use.
_STATISTICS_COLUMNS = ["symbol", "symbol_id", "seq", "source_ts_ns", "local_ts_ns"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "i64": pa.int64(),
    "f64": pa.float64(),
    "u32": pa.uint32(),
}


# ----- metadata helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """An input file as recorded in a feature file: base name, size in bytes, sha256 (hex)."""

    name: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: str | PathLike[str]) -> SourceFile:
        """Describe a file on disk (reads it once to hash it)."""
        p = Path(path)
        digest = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        # The base name only: a full path would make the file depend on where inputs live.
        return cls(p.name, p.stat().st_size, digest.hexdigest())


def _dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace): the same object gives the same bytes."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)


def jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = [jsonable(v) for v in obj]
        return sorted(items, key=repr) if isinstance(obj, set | frozenset) else items
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, PathLike):
        return str(obj)
    return obj


def feature_file_schema(feature_set: FeatureSet, symbols: SymbolTable, units: str) -> pa.Schema:
    """The Arrow schema of a feature file (without the file-level metadata)."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    fields = [pa.field(name, typ, nullable=False) for name, typ in HEADER_COLUMNS]
    # Real-units files hold nulls where a value is not ready; scaled ones every kernel value.
    nullable = units == "real"
    for spec in feature_set.features:
        typ = pa.float64() if units == "real" and is_scaled(spec) else _ARROW_TYPES[spec.dtype]
        meta = {
            "featureplane.feature_id": str(spec.feature_id),
            "featureplane.unit": spec.unit,
            "featureplane.scale": str(spec.scale if units == "scaled" else 0),
        }
        fields.append(pa.field(spec.name, typ, nullable=nullable, metadata=meta))
    return pa.schema(fields)


# ----- writing --------------------------------------------------------------------------------


class FeatureFileWriter:
    """Writes frame batches to a feature file in bounded memory.

    Rows are buffered and written in row groups of exactly `row_group_rows` (the last one
    shorter), so the file does not depend on how the frames were chunked. Use as a context
    manager, or call `close()`; metadata known only at the end (`set_source_stats`,
    `set_replay_info`) is added at close.

    Parameters
    ----------
    path
        The Parquet file to create (overwritten).
    feature_set, symbols
        What every batch written must carry.
    units
        "real" (default: scaled ints as float64 real units, null where not ready) or
        "scaled" (the kernel's values bit for bit; see the module doc).
    sources
        Input files to record (name, size, sha256).
    row_group_rows
        Rows per row group.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        feature_set: FeatureSet,
        symbols: SymbolTable,
        *,
        units: str = DEFAULT_UNITS,
        sources: Iterable[str | PathLike[str]] = (),
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        if row_group_rows <= 0:
            raise ValueError("row_group_rows must be positive")
        self.path = Path(path)
        self.feature_set = feature_set
        self.symbols = symbols
        self.units = units
        self.row_group_rows = row_group_rows
        self.rows_written = 0
        self._symbols_json = symbols.to_json()
        self._symbol_names = arrow.strings([s.symbol for s in symbols.specs])
        self._schema = feature_file_schema(feature_set, symbols, units)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._late: dict[str, str] = {}
        sources_meta = [dataclasses.asdict(SourceFile.of(p)) for p in sources]
        metadata = {
            META_FORMAT: FILE_FORMAT,
            META_FORMAT_VERSION: str(FILE_FORMAT_VERSION),
            META_VERSION: __version__,
            META_FEATURE_SET: _dumps(feature_set.to_json()),
            META_SYMBOLS: _dumps(self._symbols_json),
            META_UNITS: units,
            META_SOURCES: _dumps(sources_meta),
        }
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            str(self.path),
            self._schema.with_metadata(metadata),
            version="2.6",
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            # Only the symbol names repeat: dictionary pages on the value columns (floats, ns
            # stamps, masks) made the file 40% larger and its write 70% slower than zstd alone.
            use_dictionary=["symbol"],
            write_statistics=_STATISTICS_COLUMNS,
            data_page_version="1.0",
            write_page_index=False,
            write_page_checksum=False,
            store_schema=True,
        )

    def __enter__(self) -> FeatureFileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, batch: FrameBatch) -> None:
        """Append the frames of a batch (of this writer's feature set and symbols)."""
        if self._writer is None:
            raise ValueError("the writer is closed")
        self.feature_set.check(batch.feature_set.feature_set_id, batch.feature_set.schema_hash)
        if batch.symbols is not self.symbols and batch.symbols.to_json() != self._symbols_json:
            raise SchemaMismatchError("batch symbols differ from the file's symbol table")
        if not len(batch):
            return
        self._pending.append(self._table(batch))
        self._pending_rows += len(batch)
        if self._pending_rows >= self.row_group_rows:
            self._flush(final=False)

    def set_source_stats(self, stats: Any) -> None:
        """Record the source's stats (a dict or dataclass; stored as canonical JSON)."""
        self._late[META_SOURCE_STATS] = _dumps(stats)

    def set_replay_info(self, info: dict[str, Any]) -> None:
        """Record what the replay did (engine counters, flag counts): no timings, no paths."""
        self._late[META_REPLAY] = _dumps(info)

    def close(self) -> int:
        """Write the last rows and the footer; the number of rows written."""
        if self._writer is None:
            return self.rows_written
        self._flush(final=True)
        if self._late:
            self._writer.add_key_value_metadata(self._late)
        self._writer.close()
        self._writer = None
        return self.rows_written

    def abort(self) -> None:
        """Close without finishing and delete the partial file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.path.unlink(missing_ok=True)

    def _table(self, batch: FrameBatch) -> pa.Table:
        c = batch.columns
        sid = c["symbol_id"]
        arrays: list[pa.Array] = [arrow.dictionary(sid, self._symbol_names)]
        arrays.extend(arrow.numeric(c[name], typ) for name, typ in HEADER_COLUMNS[1:])
        feature_fields = list(self._schema)[len(HEADER_COLUMNS) :]
        if self.units == "scaled":
            arrays.extend(arrow.numeric(batch.values[f.name], f.type) for f in feature_fields)
        else:
            values = to_real_columns(batch)
            ready = c["warmup_ready_mask"]
            for spec, f in zip(self.feature_set.features, feature_fields, strict=True):
                off = _not_ready(ready, spec.feature_id)
                arrays.append(arrow.numeric(values[f.name], f.type, off))
        return pa.Table.from_arrays(arrays, schema=self._schema)

    def _flush(self, *, final: bool) -> None:
        assert self._writer is not None
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        n = len(table)
        full = n - n % self.row_group_rows
        stop = n if final else full
        start = 0
        while start < stop:
            # One contiguous row group at a time: pages are then cut at the same rows whatever
            # the input chunking was, which keeps the bytes identical.
            length = min(self.row_group_rows, stop - start)
            group = table.slice(start, length).combine_chunks()
            self._writer.write_table(group, row_group_size=self.row_group_rows)
            start += length
        self.rows_written += stop
        rest = table.slice(stop)
        self._pending = [rest] if len(rest) else []
        self._pending_rows = len(rest)


def write_feature_file(
    batch_or_batches: FrameBatch | Iterable[FrameBatch],
    path: str | PathLike[str],
    *,
    units: str = DEFAULT_UNITS,
    sources: Iterable[str | PathLike[str]] = (),
    source_stats: Any | None = None,
    feature_set: FeatureSet | None = None,
    symbols: SymbolTable | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> int:
    """Write frames to a feature file; returns the number of rows.

    Parameters
    ----------
    batch_or_batches
        One `FrameBatch` or an iterable of them (consumed lazily: a generator keeps memory
        bounded).
    path
        The Parquet file to create.
    units
        "real" (default) or "scaled" (see the module docstring).
    sources
        Input files whose names, sizes and sha256 digests are recorded.
    source_stats
        The source's stats (dict or dataclass), stored as JSON.
    feature_set, symbols
        Needed only when there may be no batch at all (an empty file still has a schema).
    """
    batches: Iterator[FrameBatch] = (
        iter([batch_or_batches])
        if isinstance(batch_or_batches, FrameBatch)
        else iter(batch_or_batches)
    )
    first = next(batches, None)
    fs = feature_set or (first.feature_set if first is not None else None)
    syms = symbols or (first.symbols if first is not None else None)
    if fs is None or syms is None:
        raise ValueError("no frames to write: pass feature_set and symbols for an empty file")
    with FeatureFileWriter(
        path, fs, syms, units=units, sources=sources, row_group_rows=row_group_rows
    ) as writer:
        if first is not None:
            writer.write(first)
        for batch in batches:
            writer.write(batch)
        if source_stats is not None:
            writer.set_source_stats(source_stats)
    return writer.rows_written


# ----- reading --------------------------------------------------------------------------------


@dataclass
class FeatureFile:
    """A feature file read back: its table and the metadata to interpret it.

    `table` holds the columns as stored, in the file's `units`. For people, `to_arrow`,
    `to_polars`, `to_pandas` and `column` give real units with nulls where a value is not ready
    whatever the file holds, unless asked for `units="scaled"` (a scaled file) or `nulls=False`.
    """

    path: Path
    table: pa.Table
    feature_set: FeatureSet
    symbols: SymbolTable
    units: str
    sources: list[SourceFile]
    source_stats: Any | None
    replay: dict[str, Any] | None
    featureplane_version: str
    metadata: dict[str, str] = field(repr=False)
    symbol_id: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, "<u4"))
    """Each row's symbol id, read even when `columns=` leaves it out (conversions need it)."""
    warmup_ready_mask: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, "<u8"))
    """Each row's ready mask, read even when `columns=` leaves it out (nulls need it)."""

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def to_arrow(self, *, units: str = DEFAULT_UNITS, nulls: bool = True) -> pa.Table:
        """The read columns as a `pyarrow.Table` for people.

        Parameters
        ----------
        units
            "real" (default): scaled-int features as float64 real units, whatever the file
            holds (`featureplane.units` of the result says "real"). "scaled": the kernel's
            integers, from a scaled file only.
        nulls
            A feature value whose bit of `warmup_ready_mask` is off is null (default). False
            keeps the values as stored (a real-units file stores none where not ready).

        Raises
        ------
        SchemaMismatchError
            `units="scaled"` asked of a real-units file (its exact ints are not stored).
        ValueError
            `units` is neither "real" nor "scaled".
        """
        convert = _convert(units, self.units, self.path)
        specs = {s.name: s for s in self.feature_set.features}
        table = self.table
        fields = []
        arrays = []
        for fld, col in zip(table.schema, table.columns, strict=True):
            spec = specs.get(fld.name)
            if spec is None:
                fields.append(fld)
                arrays.append(col)
                continue
            values = np.asarray(col.to_numpy())
            if convert and is_scaled(spec):
                values = scaled_to_real(values, spec, self.symbols, self.symbol_id)
                meta = {**(fld.metadata or {}), b"featureplane.scale": b"0"}
                fld = pa.field(fld.name, pa.float64(), nullable=True, metadata=meta)
            mask = np.asarray(col.is_null().to_numpy(), dtype=bool) if col.null_count else None
            if nulls:
                off = _not_ready(self.warmup_ready_mask, spec.feature_id)
                mask = off if mask is None else mask | off
            if mask is not None:
                # A null read back from a real-units file turned into NaN (floats) or a float
                # (bits): put the stored type back under the mask.
                values = np.where(mask, 0, values).astype(fld.type.to_pandas_dtype())
                fld = fld.with_nullable(True)
            fields.append(fld)
            arrays.append(pa.array(values, type=fld.type, mask=mask))
        meta = {**(table.schema.metadata or {}), META_UNITS.encode(): units.encode()}
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))

    def to_polars(self, *, units: str = DEFAULT_UNITS, nulls: bool = True) -> Any:
        """`to_arrow` as a polars `DataFrame` (needs polars)."""
        try:
            import polars as pl
        except ImportError:
            raise ImportError("to_polars needs polars: pip install polars") from None
        return pl.from_arrow(self.to_arrow(units=units, nulls=nulls))

    def to_pandas(self, *, units: str = DEFAULT_UNITS, nulls: bool = True) -> Any:
        """`to_arrow` as a pandas `DataFrame` (needs pandas); nulls become NaN / NA."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        return self.to_arrow(units=units, nulls=nulls).to_pandas()

    def column(self, name: str, *, units: str = DEFAULT_UNITS, nulls: bool = True) -> np.ndarray:
        """One column as a numpy array, in `units` as `to_arrow` gives it.

        `symbol` comes as its string values. Nulls (not ready, with `nulls=True`) are NaN, so a
        column that has any comes back as float64; `units="scaled", nulls=False` of a scaled
        file is the stored column as it is.
        """
        if name in self.feature_set.names:
            col = self.to_arrow(units=units, nulls=nulls).column(name)
        else:
            if units not in UNITS:
                raise ValueError(f"units must be one of {UNITS}, got {units!r}")
            col = self.table.column(name)  # a header column: the same in any units
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        return np.asarray(col.to_numpy())

    def to_batch(self) -> FrameBatch:
        """The frames as a `FrameBatch` (a scaled-units file read in full only).

        `input_index` is -1: the position of the frames' messages in the replay input is not
        stored.

        Raises
        ------
        SchemaMismatchError
            A real-units file: it holds floats and nulls, not the kernel's values (replay with
            `units="scaled"` for frames).
        ValueError
            Columns were left out when reading.
        """
        if self.units != "scaled":
            raise SchemaMismatchError(
                f"{self.path.name} is in {self.units} units: only a units='scaled' file holds "
                "the values of a FrameBatch (replay with --units scaled)"
            )
        missing = [n for n, _ in HEADER_COLUMNS if n not in self.table.column_names]
        missing += [n for n in self.feature_set.names if n not in self.table.column_names]
        if missing:
            raise ValueError(f"columns not read: {missing}")
        n = self.table.num_rows
        columns = {"input_index": np.full(n, -1, dtype="<i8")}
        for name, _ in HEADER_COLUMNS[1:]:
            columns[name] = self._stored(name)
        values = {
            f.name: self._stored(f.name).astype(f.numpy_dtype, copy=False)
            for f in self.feature_set.features
        }
        return FrameBatch(self.feature_set, self.symbols, columns, values)

    def _stored(self, name: str) -> np.ndarray:
        return np.asarray(self.table.column(name).to_numpy())


def _not_ready(ready: np.ndarray, feature_id: int) -> np.ndarray:
    """Rows where the feature's bit of the ready mask is off."""
    return np.asarray((ready >> np.uint64(feature_id)) & np.uint64(1) == 0)


def _convert(units: str, stored: str, path: Path) -> bool:
    """Whether reading `stored` units as `units` converts scaled ints to real units."""
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    if units == "scaled" and stored != "scaled":
        raise SchemaMismatchError(
            f"{path.name} is in {stored} units: its exact scaled ints are not stored "
            "(replay with --units scaled)"
        )
    return units == "real" and stored == "scaled"


# Read whatever `columns=` asks: conversions and nulls need each row's symbol and ready mask.
_ROW_KEYS = ("symbol_id", "warmup_ready_mask")


def read_feature_file(
    path: str | PathLike[str],
    *,
    feature_set_id: str | None = None,
    schema_hash: str | None = None,
    columns: Sequence[str] | None = None,
) -> FeatureFile:
    """Read a feature file and the metadata that interprets it.

    The `FeatureFile`'s `table` is as stored; its `to_arrow`, `to_polars`, `to_pandas` and
    `column` give real units with nulls where not ready, whatever units the file holds.

    Parameters
    ----------
    path
        A file written by `write_feature_file` or a replay.
    feature_set_id, schema_hash
        What the caller was built for; another set raises `SchemaMismatchError`.
    columns
        Read only these columns (default all).

    Raises
    ------
    SourceFormatError
        Not a Parquet file, or not a featureplane feature file.
    SchemaMismatchError
        The file's feature set is not the expected one, or its metadata and columns disagree.
    """
    p = Path(path)
    try:
        pf = pq.ParquetFile(p)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise SourceFormatError(str(p), None, f"not a Parquet file ({exc})") from None
    raw = pf.metadata.metadata or {}
    meta = {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}
    if meta.get(META_FORMAT) != FILE_FORMAT:
        raise SourceFormatError(str(p), None, "not a featureplane feature file (no metadata)")
    version = int(meta.get(META_FORMAT_VERSION, "0"))
    if version != FILE_FORMAT_VERSION:
        raise SchemaMismatchError(
            f"{p}: feature file format {version}, this featureplane reads {FILE_FORMAT_VERSION}"
        )
    feature_set = feature_set_from_json(json.loads(meta[META_FEATURE_SET]))
    feature_set.check(feature_set_id, schema_hash)
    symbols = SymbolTable.from_json(json.loads(meta[META_SYMBOLS]))
    units = meta.get(META_UNITS)
    if units not in UNITS:
        raise SchemaMismatchError(f"{p}: units {units!r} in its metadata, not one of {UNITS}")
    expected = feature_file_schema(feature_set, symbols, units).names
    if pf.schema_arrow.names != expected:
        raise SchemaMismatchError(f"{p}: columns do not match the feature set in its metadata")
    wanted = list(columns) if columns is not None else None
    extra = [k for k in _ROW_KEYS if wanted is not None and k not in wanted]
    table = pf.read(columns=[*wanted, *extra] if wanted is not None else None)
    rows = {k: np.asarray(table.column(k).to_numpy()) for k in _ROW_KEYS}
    if extra:
        table = table.drop_columns(extra)
    table = table.replace_schema_metadata(meta)
    stats = meta.get(META_SOURCE_STATS)
    replay = meta.get(META_REPLAY)
    return FeatureFile(
        path=p,
        table=table,
        feature_set=feature_set,
        symbols=symbols,
        units=units,
        sources=[SourceFile(**s) for s in json.loads(meta.get(META_SOURCES, "[]"))],
        source_stats=json.loads(stats) if stats is not None else None,
        replay=json.loads(replay) if replay is not None else None,
        featureplane_version=meta.get(META_VERSION, ""),
        metadata=meta,
        symbol_id=rows["symbol_id"],
        warmup_ready_mask=rows["warmup_ready_mask"],
    )
