"""Type stubs of the Rust extension `featureplane._core` (crates/featureplane-py)."""

from collections.abc import Callable, Mapping
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUILD_PROFILE",
    "FEATURES",
    "FEATURE_SET_ID",
    "FRAME_RECORD_HEADER",
    "FRAME_RECORD_SIZE",
    "LOB_SHARED_V1_PLAN",
    "BinanceChain",
    "Engine",
    "PlanEngine",
    "RingReader",
    "RingWriter",
    "SyntheticFeed",
    "__version__",
    "live_path_ns",
    "ring_bench_clock_cost",
    "ring_bench_clock_ns",
    "ring_bench_read_flood",
    "ring_bench_read_latencies",
    "ring_bench_write_flood",
    "ring_bench_write_paced",
    "ring_probe",
    "ring_remove_stale",
]

__version__: str
BUILD_PROFILE: str
"""`"release"` or `"debug"`."""
FEATURE_SET_ID: str
FEATURES: list[tuple[str, str]]
"""(name, dtype) of every feature the kernel computes, in schema order."""
FRAME_RECORD_HEADER: list[tuple[str, str]]
"""(name, numpy dtype) of the FPF1 header fields (docs/frame-abi.md) that `Engine.process_into`
writes before the values, in byte order: ("magic", "S4"), ("layout_version", "<u2"), ..."""
FRAME_RECORD_SIZE: int
"""Bytes of an FPF1 typed frame of lob_shared_v1: 64 + 8 per feature."""
LOB_SHARED_V1_PLAN: str
"""The compiled plan (canonical JSON) of lob_shared_v1, the generic kernel's input."""

_Levels = list[tuple[int, int]]

@final
class Engine:
    """Per-symbol books and lob_shared_v1 state: featureplane_core::Engine.

    Every method raises `PanicException` (a `BaseException`) if the kernel panics; the engine
    then refuses further calls with `FeatureplaneError`.
    """

    def __new__(
        cls,
        grids: list[tuple[float, float]],
        stale_after_ns: int | None = None,
        book_only: bool = False,
        *,
        schema_hash64: int = 0,
    ) -> Engine: ...
    @property
    def book_only(self) -> bool: ...
    @property
    def schema_hash64(self) -> int: ...
    def process_books(
        self, events: npt.NDArray[np.uint8]
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.uint32],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
    ]: ...
    def add_symbol(self, tick: float, lot: float) -> int: ...
    def set_source_depth(self, symbol_id: int, depth: int | None) -> None: ...
    @property
    def n_symbols(self) -> int: ...
    @property
    def stale_after_ns(self) -> int | None: ...
    def process_batch(
        self, events: npt.NDArray[np.uint8]
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.uint32],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint32],
        list[npt.NDArray[np.int64] | npt.NDArray[np.float64] | npt.NDArray[np.uint32]],
    ]: ...
    # `message`: the EVENT_DTYPE rows as bytes, or the message's numpy array (read in place
    # when its dtype is `message_input`'s object, else handed to the fallback).
    def process_into(
        self,
        message: bytes | npt.NDArray[Any],
        out: bytearray | memoryview | npt.NDArray[np.uint8],
    ) -> bool: ...
    def frame_type(self, cls: type, feature_set_id: str, marker: str) -> bool: ...
    def frame_names(self, names: list[str]) -> None: ...
    def process_frame(self, message: bytes) -> Any | None: ...
    def message_input(
        self,
        dtype: np.dtype[Any],
        fallback: Callable[[Any], Any],
        fallback_into: Callable[[Any, Any], bool],
    ) -> None: ...
    def process(self, message: npt.NDArray[Any]) -> Any | None: ...
    def symbol_values(
        self, symbol_id: int
    ) -> tuple[tuple[int | float, ...], int, int, int, int]: ...
    def reset_symbol(self, symbol_id: int) -> None: ...
    def reset_book(self, symbol_id: int) -> None: ...
    def l1(self, symbol_id: int) -> tuple[int | None, int | None, int | None, int | None]: ...
    def top_n(self, symbol_id: int, n: int) -> tuple[_Levels, _Levels]: ...
    def snapshot(self, symbol_id: int) -> tuple[_Levels, _Levels]: ...
    def book_stats(self, symbol_id: int) -> tuple[int, int, int, int, bool, bool, int, int]: ...
    def counters(self) -> dict[str, int]: ...
    # The whole state as {"counters": {...}, "symbols": [{"book", "sequencing", "features",
    # "frame"}, ...]} (the keys of featureplane.engine.state); import raises ValueError naming
    # the field of a malformed state, and changes nothing then.
    def export_state(self) -> dict[str, Any]: ...
    def import_state(self, state: dict[str, Any]) -> None: ...
    def _debug_panic(self) -> None: ...

@final
class PlanEngine:
    """The generic kernel of a declared feature set: featureplane_core::plan::PlanEngine.

    Built from the set's compiled plan (canonical JSON); the calls of `Engine`, with one value
    array per output feature. A malformed plan, or a family the kernel does not evaluate,
    raises ValueError. A kernel panic raises `PanicException` and poisons the engine.
    """

    def __new__(
        cls,
        plan: str,
        grids: list[tuple[float, float]],
        stale_after_ns: int | None = None,
        *,
        schema_hash64: int = 0,
    ) -> PlanEngine: ...
    @property
    def features(self) -> list[tuple[str, str]]: ...
    @property
    def frame_size(self) -> int: ...
    @property
    def schema_hash64(self) -> int: ...
    def add_symbol(self, tick: float, lot: float) -> int: ...
    def set_source_depth(self, symbol_id: int, depth: int | None) -> None: ...
    @property
    def n_symbols(self) -> int: ...
    @property
    def stale_after_ns(self) -> int | None: ...
    def process_batch(
        self, events: npt.NDArray[np.uint8]
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.uint32],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint32],
        list[npt.NDArray[np.int64] | npt.NDArray[np.float64] | npt.NDArray[np.uint32]],
    ]: ...
    # `message`: the EVENT_DTYPE rows as bytes, or the message's numpy array (read in place
    # when its dtype is `message_input`'s object, else handed to the fallback).
    def process_into(
        self,
        message: bytes | npt.NDArray[Any],
        out: bytearray | memoryview | npt.NDArray[np.uint8],
    ) -> bool: ...
    def frame_type(self, cls: type, feature_set_id: str, marker: str) -> bool: ...
    def frame_names(self, names: list[str]) -> None: ...
    def process_frame(self, message: bytes) -> Any | None: ...
    def message_input(
        self,
        dtype: np.dtype[Any],
        fallback: Callable[[Any], Any],
        fallback_into: Callable[[Any, Any], bool],
    ) -> None: ...
    def process(self, message: npt.NDArray[Any]) -> Any | None: ...
    def symbol_values(
        self, symbol_id: int
    ) -> tuple[tuple[int | float, ...], int, int, int, int]: ...
    def reset_symbol(self, symbol_id: int) -> None: ...
    def reset_book(self, symbol_id: int) -> None: ...
    def l1(self, symbol_id: int) -> tuple[int | None, int | None, int | None, int | None]: ...
    def top_n(self, symbol_id: int, n: int) -> tuple[_Levels, _Levels]: ...
    def snapshot(self, symbol_id: int) -> tuple[_Levels, _Levels]: ...
    def book_stats(self, symbol_id: int) -> tuple[int, int, int, int, bool, bool, int, int]: ...
    def counters(self) -> dict[str, int]: ...
    # The kernel part of featureplane.plan_state.v1: {"counters": {...}, "symbols": [{"book",
    # "sequencing", "features", "frame"}, ...]}; a NaN other than float("nan") as "f64:<bits>".
    # Import raises ValueError naming the field of a malformed state, and changes nothing then.
    def export_state(self) -> dict[str, Any]: ...
    def import_state(self, state: Mapping[str, Any]) -> None: ...
    def _debug_panic(self) -> None: ...

@final
class SyntheticFeed:
    """The core's deterministic synthetic feed as a stream of EVENT_DTYPE rows (as uint8):
    `snapshots()` once, then `diffs(n)` chunk after chunk."""

    def __new__(
        cls,
        symbols: int = 1,
        depth: int = 1000,
        changes_per_diff: int = 68,
        trades_per_diff: int = 3,
        seed: int = 7,
    ) -> SyntheticFeed: ...
    @property
    def rows_per_diff(self) -> int: ...
    def snapshots(self) -> npt.NDArray[np.uint8]: ...
    def diffs(self, n: int) -> npt.NDArray[np.uint8]: ...

@final
class BinanceChain:
    """One symbol's chain of Binance recorder files, parsed in Rust
    (featureplane_core::sources::binance::Chain); driven by sources.binance_rust.

    Every method raises `PanicException` (a `BaseException`) if the parser panics; the object
    then refuses further calls with `FeatureplaneError`.
    """

    def __new__(
        cls,
        *,
        symbol: str,
        symbol_id: int,
        usdm: bool,
        px_grid: tuple[int, int],
        qty_grid: tuple[int, int],
        chunk_rows: int,
        stop_on_skip: bool,
        px_cache: Any,
        qty_cache: Any,
    ) -> BinanceChain: ...
    def start_file(self, pos: int, local_ts_scale: int = 1) -> None: ...
    # (next start, status): 0 block read, 1 chunk full, 2 a line skipped (stop_on_skip).
    def feed(self, block: bytes, start: int) -> tuple[int, int]: ...
    # (event words int64 x8 per row, message ends, keys, book-ticker bytes, book-ticker keys).
    def take_chunk(
        self,
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint8],
        npt.NDArray[np.int64],
    ]: ...
    # ("skip", reason, start, line, end): bytes start:end of the block last fed, or
    # ("warn", reason, file_pos, line, detail).
    def take_notes(self) -> list[tuple[str, str, int, int, int | str]]: ...
    def finish(self) -> tuple[int, int, int, tuple[int, int] | None] | None: ...
    @property
    def lines(self) -> int: ...
    def counters(self) -> dict[str, Any]: ...
    def _debug_panic(self) -> None: ...

# ----- the shared-memory frame ring (featureplane_core::ring; Python: frames.ring) -----------

_Bytes = bytes | npt.NDArray[np.uint8]

def live_path_ns(
    lines: list[bytes],
    *,
    symbol: str,
    usdm: bool,
    px_grid: tuple[int, int],
    qty_grid: tuple[int, int],
    tick: float,
    lot: float,
    schema_hash64: int,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8], int, bytes]: ...
def ring_probe(name: str) -> dict[str, Any] | None:
    """The ring's status (the fields of `frames.ring.RingStatus`), None when absent."""

def ring_remove_stale(name: str) -> dict[str, Any] | None: ...

@final
class RingWriter:
    """The one writer of a ring (featureplane_core::ring::RingWriter)."""

    def __new__(
        cls,
        name: str,
        *,
        capacity: int,
        max_symbols: int,
        max_readers: int,
        frame_size: int,
        feature_set_id: str,
        schema_hash64: int,
        meta: bytes,
        replace_stale: bool = True,
    ) -> RingWriter: ...
    @property
    def name(self) -> str: ...
    @property
    def cursor(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def replaced(self) -> dict[str, Any] | None: ...
    def status(self) -> dict[str, Any]: ...
    def publish(self, frame: _Bytes) -> int: ...
    def publish_batch(self, frames: _Bytes) -> int: ...
    def lock_memory(self) -> None: ...
    def heartbeat(self) -> None: ...
    # (pid, position, lag, lost, gaps, attached_ns, alive) per attached reader.
    def readers(self) -> list[tuple[int, int, int, int, int, int, bool]]: ...
    def close(self, unlink: bool = True) -> None: ...

@final
class RingReader:
    """A reader of a ring (featureplane_core::ring::RingReader)."""

    def __new__(
        cls,
        name: str,
        *,
        feature_set_id: str,
        schema_hash64: int,
        frame_size: int,
        start: str = "live",
        allow_stale: bool = False,
    ) -> RingReader: ...
    # (start, frames, lost, closed)
    def read_into(
        self, out: npt.NDArray[np.uint8], max_frames: int, timeout_ns: int = 0, spin_ns: int = 0
    ) -> tuple[int, int, int, bool]: ...
    def latest_into(self, out: npt.NDArray[np.uint8]) -> int: ...
    def meta(self) -> bytes: ...
    def status(self) -> dict[str, Any]: ...
    def writer_alive(self) -> bool: ...
    def lock_memory(self) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def cursor(self) -> int: ...
    @property
    def lag(self) -> int: ...
    @property
    def lost(self) -> int: ...
    @property
    def gaps(self) -> int: ...
    @property
    def registered(self) -> bool: ...
    @property
    def capacity(self) -> int: ...
    @property
    def max_symbols(self) -> int: ...
    @property
    def frame_size(self) -> int: ...
    @property
    def epoch(self) -> int: ...

def ring_bench_write_paced(
    writer: RingWriter, template: bytes, n: int, interval_ns: int, spin_pacing: bool = False
) -> None: ...
def ring_bench_clock_ns() -> int: ...

# (median, largest) ns between back-to-back clock reads
def ring_bench_clock_cost(samples: int) -> tuple[int, int]: ...

# (frames, lost, wrong, latencies_ns, elapsed_ns)
def ring_bench_read_latencies(
    reader: RingReader, n: int, timeout_ns: int, spin_ns: int
) -> tuple[int, int, int, npt.NDArray[np.uint64], int]: ...
def ring_bench_write_flood(writer: RingWriter, template: bytes, n: int, batch: int) -> int: ...

# (frames, lost, wrong, elapsed_ns)
def ring_bench_read_flood(
    reader: RingReader, batch: int, timeout_ns: int
) -> tuple[int, int, int, int]: ...
