"""Items of an iterator produced in a background thread while the caller uses the last one.

A replay has three steps that release the GIL: inflating the capture (zlib, ISA-L), parsing
its lines (the Rust parser) and the kernel with the Parquet encoding. Run one after another in
one thread they leave the second core idle; each stage drawn through a `ReadAhead` runs beside
the next.

The iterator is advanced in one other thread only, so anything a plain generator may do it may
do here, except what is bound to the thread that made it (an `sqlite3` connection, an asyncio
loop). Items arrive in order, and an exception raised by the iterator arrives after the items
before it, with its own traceback. `close()` (or leaving the `with` block) stops the thread
and closes the iterator, also when the caller stopped early or failed; it waits for the item
being produced, so it suits sources that produce in bounded time (files, not a socket that
may block for ever).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.05
"""How often a producer waiting for room looks whether it was stopped."""


class ReadAhead(Generic[T]):
    """Iterate `items` with up to `depth` of them produced ahead, in a thread started now.

    Starting at construction, not at the first `next()`, lets the first item be produced while
    the caller still sets up (opens its output, builds an engine).
    """

    def __init__(self, items: Iterator[T], *, depth: int = 1, name: str = "read-ahead") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._items = items
        self._slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, name=f"featureplane-{name}", daemon=True
        )
        self._thread.start()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item, exc = self._slots.get()
        if exc is not None:
            self.close()
            raise exc
        if item is _END:
            self.close()
            raise StopIteration
        return item  # type: ignore[return-value]  # anything but _END came from `items`

    def close(self) -> None:
        """Stop the producer and wait for it; the iterator is closed by its own thread."""
        self._done = True
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _put(self, item: object, exc: BaseException | None = None) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put((item, exc), timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the caller's thread, raised there
            self._put(None, exc)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()  # a generator's files and threads, if the caller stopped early
