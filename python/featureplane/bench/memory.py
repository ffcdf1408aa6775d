"""Resident memory of this process, as the kernel sees it (Rust allocations included).

`tracemalloc` sees only Python's allocator; the Rust core allocates with the system allocator,
so the benchmarks read the resident set from `/proc/self/status` instead. A row's peak is
measured as its peak RSS growth: freed memory is first handed back to the OS (`malloc_trim`),
the kernel's high-water mark is reset (`/proc/self/clear_refs`), the row runs once, and the
new high-water mark minus the resident set before is reported. Where Linux's `/proc` is missing
the figures are None, never guessed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes() -> int | None:
    """The resident set size now, in bytes (None where `/proc` is not there)."""
    kb = _status_kb("VmRSS")
    return None if kb is None else kb * 1024


def peak_rss_bytes() -> int | None:
    """The high-water mark of the resident set, in bytes (since start or the last reset)."""
    kb = _status_kb("VmHWM")
    return None if kb is None else kb * 1024


def _trim() -> None:
    """Hand freed heap pages back to the OS (glibc), so they cannot hide a row's growth."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


def reset_peak() -> bool:
    """Reset the high-water mark to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Samples the RSS on a background thread every `interval_s`: the peak of a run where the
    high-water mark cannot be reset, and a trace over a long run."""

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.peak = rss_bytes() or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes() or 0)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes() or 0)


def peak_growth(fn: Callable[[], Any]) -> tuple[Any, int | None]:
    """Run `fn` once; its result and the peak RSS growth during the call, in bytes."""
    _trim()
    before = rss_bytes()
    if before is None:
        return fn(), None
    if reset_peak():
        result = fn()
        peak = peak_rss_bytes() or before
    else:
        with RssSampler() as sampler:
            result = fn()
        peak = sampler.peak
    return result, max(peak - before, 0)
