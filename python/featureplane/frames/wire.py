"""Typed binary frames: one fixed little-endian layout for a frame, alone or in a batch.

`TypedFeatureFrameV1` is the wire form of a `FeatureUpdateFrameV1`: a 64-byte header followed
by one 8-byte slot per feature in schema order. Every field sits at an offset that is a multiple
of its size, so a C/Rust `#[repr(C)]` struct or a numpy structured dtype reads it in place.

Header (offsets in bytes, little endian)::

     0  magic              4s   b"FPF1"
     4  layout_version     u16  1
     6  n_values           u16  number of value slots that follow
     8  schema_hash64      u64  FeatureSet.schema_hash64 of the producer
    16  symbol_id          u32  id in the producer's SymbolTable
    20  quality_flags      u32  QualityFlag bits
    24  seq                i64
    32  source_ts_ns       i64
    40  local_ts_ns        i64
    48  changed_mask       u64
    56  warmup_ready_mask  u64
    64  values             n_values x 8 bytes: i64 as i64, f64 as f64, u32 zero-extended

A receiver decodes only against the feature set it was built for: a wrong magic, layout version,
schema hash or value count raises `SchemaMismatchError` before any value is read, so a reordered
or rescaled schema can never be misread. docs/frame-abi.md has the byte table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from featureplane.errors import SchemaMismatchError, UnknownSymbolError
from featureplane.frames.frame import HEADER_COLUMNS, FeatureUpdateFrameV1, FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

MAGIC = b"FPF1"
LAYOUT_VERSION = 1
HEADER_SIZE = 64
SLOT_SIZE = 8

_HEADER_FORMAT = "<4sHHQIIqqqQQ"
_HEADER = struct.Struct(_HEADER_FORMAT)
assert _HEADER.size == HEADER_SIZE

# Header fields of the structured dtype, in byte order; values follow as one field per feature.
HEADER_DTYPE_FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "S4"),
    ("layout_version", "<u2"),
    ("n_values", "<u2"),
    ("schema_hash64", "<u8"),
    ("symbol_id", "<u4"),
    ("quality_flags", "<u4"),
    ("seq", "<i8"),
    ("source_ts_ns", "<i8"),
    ("local_ts_ns", "<i8"),
    ("changed_mask", "<u8"),
    ("warmup_ready_mask", "<u8"),
)

# struct code and structured-dtype format of one value slot per feature dtype. A u32 travels as
# a u64 (zero-extended): every slot is 8 bytes, so offsets never depend on the schema's dtypes.
_SLOT_CODES = {"i64": "q", "f64": "d", "u32": "Q"}
_SLOT_DTYPES = {"i64": "<i8", "f64": "<f8", "u32": "<u8"}
_U32_MAX = 0xFFFF_FFFF

# Header columns a FrameBatch carries, with their FrameBatch dtypes (input_index is not sent).
_BATCH_HEADER = tuple((n, dt) for n, dt in HEADER_COLUMNS.items() if n != "input_index")

NO_INPUT_INDEX = -1
"""`input_index` of a batch decoded from records: the producer's input rows are not sent."""


@dataclass(frozen=True)
class FrameHeader:
    """The decoded header of one typed frame (see `peek_header`)."""

    layout_version: int
    n_values: int
    schema_hash64: int
    symbol_id: int
    quality_flags: int
    seq: int
    source_ts_ns: int
    local_ts_ns: int
    changed_mask: int
    warmup_ready_mask: int


def byte_view(buf: bytes | bytearray | memoryview) -> memoryview:
    """`buf` as a flat view of its bytes (no copy where it is C-contiguous).

    Every length rule of the layout counts bytes, but `len` of a memoryview counts items of its
    format (8-byte items of a "Q" view, rows of a 2-d one); a frame received in such a view
    is as valid as in `bytes`. A non-contiguous view is copied in its logical order.
    """
    view = memoryview(buf)
    if not view.c_contiguous:
        return memoryview(view.tobytes())
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def peek_header(buf: bytes | bytearray | memoryview) -> FrameHeader:
    """Decode the header of a typed frame without checking it against any schema.

    Useful to route frames (by symbol or schema hash) before choosing a decoder.

    Raises
    ------
    SchemaMismatchError
        The buffer is shorter than a header or does not start with the magic.
    """
    buf = byte_view(buf)
    if len(buf) < HEADER_SIZE:
        raise SchemaMismatchError(
            f"a typed frame needs at least {HEADER_SIZE} bytes, got {len(buf)}"
        )
    magic, version, n_values, hash64, sid, flags, seq, src, local, changed, ready = (
        _HEADER.unpack_from(buf, 0)
    )
    if magic != MAGIC:
        raise SchemaMismatchError(f"not a typed feature frame: magic {magic!r}, want {MAGIC!r}")
    return FrameHeader(version, n_values, hash64, sid, flags, seq, src, local, changed, ready)


class TypedFeatureFrameV1:
    """Encoder/decoder of the typed frame layout for one feature set.

    Build one per feature set and reuse it: it precompiles the struct and the numpy dtype.

    Parameters
    ----------
    feature_set
        The schema frames are packed with and checked against.
    """

    def __init__(self, feature_set: FeatureSet) -> None:
        if len(feature_set) > 0xFFFF:
            raise ValueError("n_values is a u16")
        self.feature_set = feature_set
        self.n_values = len(feature_set)
        self.size = HEADER_SIZE + SLOT_SIZE * self.n_values
        codes = "".join(_SLOT_CODES[f.dtype] for f in feature_set.features)
        self._struct = struct.Struct(_HEADER_FORMAT + codes)
        assert self._struct.size == self.size
        self._u32_slots = tuple(i for i, f in enumerate(feature_set.features) if f.dtype == "u32")

    @cached_property
    def dtype(self) -> np.dtype:
        """The numpy structured dtype of one frame: the same bytes as `pack`, no padding."""
        fields = list(HEADER_DTYPE_FIELDS)
        fields.extend((f.name, _SLOT_DTYPES[f.dtype]) for f in self.feature_set.features)
        dt = np.dtype(fields)
        assert dt.itemsize == self.size
        return dt

    # ----- one frame ----------------------------------------------------------------------

    def pack(
        self, frame: FeatureUpdateFrameV1 | tuple[FrameBatch, int], symbol_id: int | None = None
    ) -> bytes:
        """Encode one frame.

        Parameters
        ----------
        frame
            A `FeatureUpdateFrameV1`, or `(batch, i)` for row i of a `FrameBatch`.
        symbol_id
            The frame's symbol id; required for a `FeatureUpdateFrameV1` (it names its symbol,
            not its id), optional for a batch row (which carries it; a different id is an error).

        Raises
        ------
        SchemaMismatchError
            The frame belongs to another feature set or has another number of values.
        ValueError
            A value does not fit its slot (for example a u32 feature out of range).
        """
        if isinstance(frame, tuple):
            batch, row = frame
            self._check_set(batch.feature_set)
            batch_sid = int(batch.columns["symbol_id"][row])
            if symbol_id is not None and symbol_id != batch_sid:
                raise ValueError(f"row {row} is symbol id {batch_sid}, not {symbol_id}")
            frame = batch.frame(row)
            symbol_id = batch_sid
        elif symbol_id is None:
            raise TypeError("pack(FeatureUpdateFrameV1) needs the frame's symbol_id")
        fs = self.feature_set
        if frame.feature_set_id != fs.feature_set_id:
            raise SchemaMismatchError(
                f"frame of feature set {frame.feature_set_id!r} packed as {fs.feature_set_id!r}"
            )
        if len(frame.values) != self.n_values:
            raise SchemaMismatchError(
                f"frame has {len(frame.values)} values, {fs.feature_set_id} has {self.n_values}"
            )
        for i in self._u32_slots:
            v = frame.values[i]
            if not isinstance(v, int) or not 0 <= v <= _U32_MAX:
                raise ValueError(f"feature {fs.features[i].name} is u32, got {v!r}")
        try:
            return self._struct.pack(
                MAGIC,
                LAYOUT_VERSION,
                self.n_values,
                fs.schema_hash64,
                symbol_id,
                frame.quality_flags,
                frame.seq,
                frame.source_ts_ns,
                frame.local_ts_ns,
                frame.changed_mask,
                frame.warmup_ready_mask,
                *frame.values,
            )
        except struct.error as exc:
            raise ValueError(f"frame does not fit the typed layout: {exc}") from None

    def unpack(
        self, buf: bytes | bytearray | memoryview, symbols: SymbolTable
    ) -> FeatureUpdateFrameV1:
        """Decode one frame packed by `pack` for this feature set.

        Raises
        ------
        SchemaMismatchError
            Wrong magic, layout version, schema hash, value count or buffer length, or a u32
            slot with its high bytes set: never a value read under the wrong schema.
        UnknownSymbolError
            The symbol id is not in `symbols`.
        """
        buf = byte_view(buf)
        header = peek_header(buf)
        self._check_header(header.layout_version, header.n_values, header.schema_hash64)
        if len(buf) != self.size:
            raise SchemaMismatchError(
                f"a {self.feature_set.feature_set_id} frame is {self.size} bytes, got {len(buf)}"
            )
        fields = self._struct.unpack_from(buf, 0)
        values = fields[len(HEADER_DTYPE_FIELDS) :]
        for i in self._u32_slots:
            if values[i] > _U32_MAX:
                raise SchemaMismatchError(
                    f"u32 slot {self.feature_set.features[i].name} has its high bytes set"
                )
        return FeatureUpdateFrameV1(
            symbol=symbols.name_of(header.symbol_id),
            seq=header.seq,
            source_ts_ns=header.source_ts_ns,
            local_ts_ns=header.local_ts_ns,
            feature_set_id=self.feature_set.feature_set_id,
            changed_mask=header.changed_mask,
            warmup_ready_mask=header.warmup_ready_mask,
            quality_flags=header.quality_flags,
            values=tuple(values),
        )

    # ----- batches ------------------------------------------------------------------------

    def batch_to_records(self, batch: FrameBatch) -> np.ndarray:
        """Every frame of a batch as one structured array (`records.tobytes()` to send)."""
        self._check_set(batch.feature_set)
        rec = np.zeros(len(batch), dtype=self.dtype)
        rec["magic"] = MAGIC
        rec["layout_version"] = LAYOUT_VERSION
        rec["n_values"] = self.n_values
        rec["schema_hash64"] = self.feature_set.schema_hash64
        for name, _ in _BATCH_HEADER:
            rec[name] = batch.columns[name]
        for f in self.feature_set.features:
            # u32 -> u64 is a zero extension, which is what the slot layout promises.
            rec[f.name] = batch.values[f.name]
        return rec

    def records_from_bytes(self, buf: bytes | bytearray | memoryview) -> np.ndarray:
        """View a received buffer as records of this layout (checked; no copy where the
        buffer is C-contiguous)."""
        buf = byte_view(buf)
        if len(buf) % self.size:
            raise SchemaMismatchError(
                f"{len(buf)} bytes is not a whole number of {self.size}-byte "
                f"{self.feature_set.feature_set_id} frames"
            )
        rec = np.frombuffer(buf, dtype=self.dtype)
        self._check_records(rec)
        return rec

    def records_to_batch(self, records: np.ndarray, symbols: SymbolTable) -> FrameBatch:
        """Decode records into a `FrameBatch` (columns copied out, so the buffer can go).

        `input_index` is `NO_INPUT_INDEX` for every frame: the producer's input rows are not
        part of the wire format.

        Raises
        ------
        SchemaMismatchError
            The records have another dtype, or a header that is not this feature set's.
        UnknownSymbolError
            A symbol id is not in `symbols`.
        """
        if records.dtype != self.dtype:
            raise SchemaMismatchError(
                f"records of dtype {records.dtype} are not {self.feature_set.feature_set_id} "
                "typed frames"
            )
        self._check_records(records)
        if len(records) and int(records["symbol_id"].max()) >= len(symbols):
            bad = int(records["symbol_id"].max())
            raise UnknownSymbolError(f"unknown symbol id {bad}")
        columns = {"input_index": np.full(len(records), NO_INPUT_INDEX, dtype="<i8")}
        for name, dt in _BATCH_HEADER:
            columns[name] = records[name].astype(dt)
        values = {f.name: records[f.name].astype(f.numpy_dtype) for f in self.feature_set.features}
        return FrameBatch(self.feature_set, symbols, columns, values)

    # ----- checks -------------------------------------------------------------------------

    def _check_set(self, other: FeatureSet) -> None:
        if other.schema_hash != self.feature_set.schema_hash:
            raise SchemaMismatchError(
                f"frames of {other.feature_set_id} ({other.schema_hash[:16]}) given to a "
                f"{self.feature_set.feature_set_id} ({self.feature_set.schema_hash[:16]}) codec"
            )

    def _check_header(self, version: int, n_values: int, hash64: int) -> None:
        fs = self.feature_set
        if version != LAYOUT_VERSION:
            raise SchemaMismatchError(
                f"typed frame layout version {version}, this reader knows {LAYOUT_VERSION}"
            )
        if hash64 != fs.schema_hash64:
            raise SchemaMismatchError(
                f"frame schema hash {hash64:016x}, receiver expects {fs.feature_set_id} "
                f"({fs.schema_hash64:016x})"
            )
        if n_values != self.n_values:
            raise SchemaMismatchError(
                f"frame has {n_values} values, {fs.feature_set_id} has {self.n_values}"
            )

    def _check_records(self, rec: np.ndarray) -> None:
        if not len(rec):
            return
        ok = (
            (rec["magic"] == MAGIC)
            & (rec["layout_version"] == LAYOUT_VERSION)
            & (rec["schema_hash64"] == self.feature_set.schema_hash64)
            & (rec["n_values"] == self.n_values)
        )
        if not ok.all():
            # Name the first bad record and what is wrong with it (a foreign schema shows up
            # on record 0 already; a bad magic further on means a torn or misaligned buffer).
            i = int(np.flatnonzero(~ok)[0])
            row = rec[i]
            if row["magic"] != MAGIC:
                raise SchemaMismatchError(
                    f"record {i} is not a typed frame: magic {bytes(row['magic'])!r}"
                )
            self._check_header(
                int(row["layout_version"]), int(row["n_values"]), int(row["schema_hash64"])
            )
        for i in self._u32_slots:
            name = self.feature_set.features[i].name
            if (rec[name] > _U32_MAX).any():
                raise SchemaMismatchError(f"u32 slot {name} has its high bytes set")


_CODECS: dict[str, TypedFeatureFrameV1] = {}


def record_buffer(out: object, size: int) -> memoryview:
    """`out` as the writable byte buffer of one `size`-byte typed frame (`process_into`),
    with the errors the Rust kernel gives: TypeError for an object without the buffer
    protocol, BufferError for items that are not bytes, ValueError for a read-only, strided or
    wrongly sized buffer."""
    view = memoryview(out)  # type: ignore[arg-type]
    if view.format.lstrip("@=<>!") not in ("B", "c"):
        raise BufferError("buffer contents are not compatible with u8")
    if view.readonly or view.nbytes != size or not view.c_contiguous:
        raise ValueError(f"out must be a writable, C-contiguous buffer of exactly {size} bytes")
    return view.cast("B")


def codec_for(feature_set: FeatureSet) -> TypedFeatureFrameV1:
    """The (cached) `TypedFeatureFrameV1` codec of a feature set."""
    codec = _CODECS.get(feature_set.schema_hash)
    if codec is None:
        codec = _CODECS[feature_set.schema_hash] = TypedFeatureFrameV1(feature_set)
    return codec


def frame_size(feature_set: FeatureSet) -> int:
    """Bytes of one typed frame of `feature_set`: 64 + 8 * number of features."""
    return HEADER_SIZE + SLOT_SIZE * len(feature_set)


def pack(
    frame: FeatureUpdateFrameV1 | tuple[FrameBatch, int],
    feature_set: FeatureSet,
    symbol_id: int | None = None,
) -> bytes:
    """Encode one frame (or `(batch, row)`); see `TypedFeatureFrameV1.pack`."""
    return codec_for(feature_set).pack(frame, symbol_id)


def unpack(
    buf: bytes | bytearray | memoryview, feature_set: FeatureSet, symbols: SymbolTable
) -> FeatureUpdateFrameV1:
    """Decode one frame for a receiver built for `feature_set`; see `TypedFeatureFrameV1.unpack`."""
    return codec_for(feature_set).unpack(buf, symbols)


def frame_batch_dtype(feature_set: FeatureSet) -> np.dtype:
    """The numpy structured dtype of one typed frame of `feature_set` (64 + 8n bytes)."""
    return codec_for(feature_set).dtype


def batch_to_records(batch: FrameBatch) -> np.ndarray:
    """A whole `FrameBatch` as one structured array of typed frames."""
    return codec_for(batch.feature_set).batch_to_records(batch)


def records_from_bytes(buf: bytes | bytearray | memoryview, feature_set: FeatureSet) -> np.ndarray:
    """Checked zero-copy view of a received buffer as typed-frame records of `feature_set`."""
    return codec_for(feature_set).records_from_bytes(buf)


def records_to_batch(
    records: np.ndarray, feature_set: FeatureSet, symbols: SymbolTable
) -> FrameBatch:
    """Decode typed-frame records into a `FrameBatch` for a receiver built for `feature_set`."""
    return codec_for(feature_set).records_to_batch(records, symbols)
