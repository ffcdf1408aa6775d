"""`ReadAhead`: items in order from another thread, errors after the items before them, and a
close that stops the thread and closes the iterator, whenever the caller stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from featureplane.sources._read_ahead import ReadAhead


class Source:
    """A generator's stand-in that records which thread advanced it and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.gen = self._items(n, fail_at)
        self.threads: set[str] = set()
        self.closed = threading.Event()

    def _items(self, n: int, fail_at: int | None) -> Iterator[int]:
        try:
            for i in range(n):
                if i == fail_at:
                    raise ValueError(f"bad item {i}")
                self.threads.add(threading.current_thread().name)
                yield i
        finally:
            self.closed.set()


def test_items_in_order_from_one_other_thread() -> None:
    src = Source(1000)
    with ReadAhead(src.gen, depth=3, name="test") as ahead:
        assert list(ahead) == list(range(1000))
    assert src.threads == {"featureplane-test"}
    assert src.closed.is_set()
    assert next(ahead, None) is None  # exhausted stays exhausted


def test_an_error_arrives_after_the_items_before_it() -> None:
    src = Source(10, fail_at=4)
    got: list[int] = []
    with pytest.raises(ValueError, match="bad item 4") as info, ReadAhead(src.gen) as ahead:
        got.extend(ahead)
    assert got == [0, 1, 2, 3]
    # The traceback reaches into the generator that raised, in the other thread.
    assert any(frame.name == "_items" for frame in info.traceback)


def test_stopping_early_stops_the_thread_and_closes_the_source() -> None:
    src = Source(10**9)
    ahead = ReadAhead(src.gen, depth=2)
    assert [next(ahead) for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()
    assert src.closed.wait(5)
    assert not ahead._thread.is_alive()
    with pytest.raises(StopIteration):
        next(ahead)


def test_a_failing_consumer_leaves_no_thread_behind() -> None:
    src = Source(10**9)
    with pytest.raises(RuntimeError), ReadAhead(src.gen) as ahead:
        for i in ahead:
            if i == 3:
                raise RuntimeError("writer failed")
    assert src.closed.wait(5)
    assert not ahead._thread.is_alive()


def test_production_starts_before_the_first_request() -> None:
    started = threading.Event()

    def items() -> Iterator[int]:
        started.set()
        yield 1

    with ReadAhead(items()) as ahead:
        assert started.wait(5)  # set up can overlap the first item
        assert list(ahead) == [1]


def test_the_producer_runs_beside_a_busy_consumer() -> None:
    """Items are produced while the caller works on the last one: with depth 1, after a
    consumer's pause the next item is already there."""
    made: list[float] = []

    def items() -> Iterator[int]:
        for i in range(3):
            made.append(time.perf_counter())
            yield i

    with ReadAhead(items(), depth=1) as ahead:
        first = next(ahead)
        time.sleep(0.2)
        asked = time.perf_counter()
        assert next(ahead) == first + 1
    assert made[1] < asked


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(iter([1]), depth=0)
