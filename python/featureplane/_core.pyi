"""Type stubs of the Rust extension `featureplane._core` (crates/featureplane-py)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUILD_PROFILE",
    "FEATURES",
    "FEATURE_SET_ID",
    "FRAME_RECORD_HEADER",
    "FRAME_RECORD_SIZE",
    "Engine",
    "__version__",
]

__version__: str
BUILD_PROFILE: str
"""`"release"` or `"debug"`."""
FEATURE_SET_ID: str
FEATURES: list[tuple[str, str]]
"""(name, dtype) of every feature the kernel computes, in schema order."""
FRAME_RECORD_HEADER: list[tuple[str, str]]
"""(name, numpy dtype) of the header fields of a packed frame record, before the values."""
FRAME_RECORD_SIZE: int
"""Bytes of a packed frame record: the header, then each feature in its dtype."""

_Levels = list[tuple[int, int]]

@final
class Engine:
    """Per-symbol books and lob_shared_v1 state: featureplane_core::Engine.

    Every method raises `PanicException` (a `BaseException`) if the kernel panics; the engine
    then refuses further calls with `FeatureplaneError`.
    """

    def __new__(
        cls, grids: list[tuple[float, float]], stale_after_ns: int | None = None
    ) -> Engine: ...
    def add_symbol(self, tick: float, lot: float) -> int: ...
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
    def process_into(
        self, message: bytes, out: bytearray | memoryview | npt.NDArray[np.uint8]
    ) -> int: ...
    def process_frame(
        self, message: bytes
    ) -> tuple[int, int, int, int, int, int, int, tuple[int | float, ...]] | None: ...
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
    # "frame"}, ...]} (the keys of featureplane.engine_state); import raises ValueError naming
    # the field of a malformed state, and changes nothing then.
    def export_state(self) -> dict[str, Any]: ...
    def import_state(self, state: dict[str, Any]) -> None: ...
    def _debug_panic(self) -> None: ...
