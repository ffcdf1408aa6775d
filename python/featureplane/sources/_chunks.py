"""Chunks of normalized messages, built column-wise, and their merge across symbols.

A per-symbol reader appends messages to a `ChunkBuilder` as plain Python lists (one list per
column, whole lists of levels at a time) and turns them into numpy arrays once per chunk: one
numpy array per message would cost more than parsing the JSON.

Every message and book-ticker row carries a merge key: the running maximum of the local
timestamps of the lines read so far in its symbol's chain (the line that released it), then the
stream's rank (the position of its first file in the caller's list). Keys never decrease inside
a stream, so streams can be merged chunk by chunk with a stable sort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from featureplane.events import END_OF_MESSAGE, EVENT_DTYPE, empty

BOOK_TICKER_DTYPE = np.dtype(
    [
        ("symbol_id", "<u4"),
        ("update_id", "<i8"),
        ("bid_px", "<i8"),
        ("bid_qty", "<i8"),
        ("ask_px", "<i8"),
        ("ask_qty", "<i8"),
        ("source_ts_ns", "<i8"),
        ("local_ts_ns", "<i8"),
    ]
)
"""Best bid/offer rows (Binance `bookTicker`): prices in ticks, sizes in lots."""


@dataclass
class Chunk:
    """Whole messages of one stream, with their merge keys."""

    events: NDArray[Any]
    ends: NDArray[Any]
    """Exclusive end row of each message."""
    key: NDArray[Any]
    bbo: NDArray[Any]
    bbo_key: NDArray[Any]

    def __len__(self) -> int:
        return len(self.ends) + len(self.bbo)

    def last_key(self) -> int:
        last = [int(k[-1]) for k in (self.key, self.bbo_key) if len(k)]
        return max(last)


class ChunkBuilder:
    """Columns of the messages and book tickers of one symbol, turned into a `Chunk` on flush."""

    def __init__(self, symbol_id: int) -> None:
        self.symbol_id = symbol_id
        # Row columns.
        self.kind: list[int] = []
        self.side: list[int] = []
        self.px: list[int] = []
        self.qty: list[int] = []
        # Message columns.
        self.m_len: list[int] = []
        self.m_seq: list[int] = []
        self.m_first: list[int] = []
        self.m_prev: list[int] = []
        self.m_src: list[int] = []
        self.m_local: list[int] = []
        self.m_key: list[int] = []
        # Book-ticker rows: (update_id, bid_px, bid_qty, ask_px, ask_qty, src, local), and keys.
        self.bbo: list[tuple[int, int, int, int, int, int, int]] = []
        self.b_key: list[int] = []
        self._columns = [v for v in vars(self).values() if isinstance(v, list)]

    def _reset(self) -> None:
        # Cleared in place: callers may hold the lists (the readers append to them directly).
        for column in self._columns:
            column.clear()

    @property
    def rows(self) -> int:
        return len(self.px) + len(self.bbo)

    def message(
        self, n: int, seq: int, first: int, prev: int, src: int, local: int, key: int
    ) -> None:
        """Close a message whose `n` rows were just appended to the row columns."""
        self.m_len.append(n)
        self.m_seq.append(seq)
        self.m_first.append(first)
        self.m_prev.append(prev)
        self.m_src.append(src)
        self.m_local.append(local)
        self.m_key.append(key)

    def flush(self) -> Chunk | None:
        """The chunk built so far (None when empty); the builder starts over."""
        if not self.m_len and not self.bbo:
            return None
        lens = np.array(self.m_len, dtype=np.int64)
        ends = np.cumsum(lens)
        events = np.empty(len(self.px), dtype=EVENT_DTYPE)
        events["kind"] = self.kind
        events["side"] = self.side
        events["flags"] = 0
        events["flags"][ends - 1] = END_OF_MESSAGE
        events["reserved"] = 0
        events["symbol_id"] = self.symbol_id
        for name, col in (
            ("seq", self.m_seq),
            ("first_seq", self.m_first),
            ("prev_seq", self.m_prev),
            ("source_ts_ns", self.m_src),
            ("local_ts_ns", self.m_local),
        ):
            events[name] = np.repeat(np.array(col, dtype=np.int64), lens)
        events["px"] = self.px
        events["qty"] = self.qty
        bbo = np.empty(len(self.bbo), dtype=BOOK_TICKER_DTYPE)
        if self.bbo:
            cols = np.array(self.bbo, dtype=np.int64)
            bbo["symbol_id"] = self.symbol_id
            for i, name in enumerate(BOOK_TICKER_DTYPE.names[1:]):  # type: ignore[index]
                bbo[name] = cols[:, i]
        chunk = Chunk(
            events,
            ends,
            np.array(self.m_key, dtype=np.int64),
            bbo,
            np.array(self.b_key, dtype=np.int64),
        )
        self._reset()
        return chunk


def merge_chunks(
    streams: Sequence[Iterator[Chunk]], ranks: Sequence[int]
) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
    """Merge per-symbol chunk streams by (key, rank), stably; yield (events, book tickers).

    Every step takes, from each pending chunk, the items up to the smallest last key among the
    streams still running: nothing a running stream yields later can sort before them.
    """
    if len(streams) == 1:
        for only in streams[0]:
            yield only.events, only.bbo
        return
    pending: list[Chunk | None] = [None] * len(streams)
    live = [True] * len(streams)
    while True:
        for i, stream in enumerate(streams):
            if live[i] and pending[i] is None:
                pending[i] = next(stream, None)
                live[i] = pending[i] is not None
        horizon: tuple[int, int] | None = None
        for i, chunk in enumerate(pending):
            if live[i] and chunk is not None:
                cand = (chunk.last_key(), ranks[i])
                horizon = cand if horizon is None or cand < horizon else horizon
        taken: list[tuple[Chunk, int]] = []
        for i, chunk in enumerate(pending):
            if chunk is None:
                continue
            head, rest = _split(chunk, ranks[i], horizon)
            if len(head):
                taken.append((head, ranks[i]))
            pending[i] = rest if len(rest) else None
        if not taken:
            if not any(live) and all(c is None for c in pending):
                return
            continue
        yield _combine(taken)


def _split(chunk: Chunk, rank: int, horizon: tuple[int, int] | None) -> tuple[Chunk, Chunk]:
    """Items of `chunk` with (key, rank) <= horizon, and the rest."""
    if horizon is None:
        return chunk, _slice(chunk, len(chunk.ends), len(chunk.bbo))
    side: Literal["left", "right"] = "right" if rank <= horizon[1] else "left"
    m = int(np.searchsorted(chunk.key, horizon[0], side=side))
    b = int(np.searchsorted(chunk.bbo_key, horizon[0], side=side))
    return _slice(chunk, 0, 0, m, b), _slice(chunk, m, b)


def _slice(chunk: Chunk, m0: int, b0: int, m1: int | None = None, b1: int | None = None) -> Chunk:
    m1 = len(chunk.ends) if m1 is None else m1
    b1 = len(chunk.bbo) if b1 is None else b1
    r0 = int(chunk.ends[m0 - 1]) if m0 else 0
    r1 = int(chunk.ends[m1 - 1]) if m1 else 0
    return Chunk(
        chunk.events[r0:r1],
        chunk.ends[m0:m1] - r0,
        chunk.key[m0:m1],
        chunk.bbo[b0:b1],
        chunk.bbo_key[b0:b1],
    )


def _combine(taken: list[tuple[Chunk, int]]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Concatenate chunks of several streams and sort their messages stably by merge key.

    Each stream's items sit together in the concatenation, in stream order, and `lexsort` is
    stable: items of one stream keep their order.
    """
    events = np.concatenate([c.events for c, _ in taken])
    lens = np.concatenate([np.diff(c.ends, prepend=0) for c, _ in taken])
    key = np.concatenate([c.key for c, _ in taken])
    rank = np.concatenate([np.full(len(c.ends), r, dtype=np.int64) for c, r in taken])
    order = np.lexsort((rank, key))
    starts = np.cumsum(lens) - lens
    new_lens = lens[order]
    new_starts = np.cumsum(new_lens) - new_lens
    rows = np.repeat(starts[order] - new_starts, new_lens) + np.arange(int(new_lens.sum()))
    events = events[rows] if len(rows) else empty(0)

    bbo = np.concatenate([c.bbo for c, _ in taken])
    b_order = np.lexsort(
        (
            np.concatenate([np.full(len(c.bbo), r, dtype=np.int64) for c, r in taken]),
            np.concatenate([c.bbo_key for c, _ in taken]),
        )
    )
    return events, bbo[b_order]


__all__ = ["BOOK_TICKER_DTYPE", "Chunk", "ChunkBuilder", "merge_chunks"]
