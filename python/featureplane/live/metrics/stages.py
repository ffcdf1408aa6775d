"""Per-stage latency of the live path: recorded per message into a preallocated ring, bucketed
into a histogram only when scraped.

A `prometheus_client` `observe()` costs about as much as the whole per-message call of the
kernel, so the hot path does not call one: the service writes the message's seven stage
durations (ns, from the `perf_counter_ns` stamps it already takes) into one row of an int64
numpy ring through a flat memoryview (seven item stores, no numpy call), and advances a plain
int. A scrape buckets every row written since the previous scrape (`np.searchsorted`) into
cumulative counts it keeps; rows overwritten before a scrape read them are counted, not guessed.

A duration of 0 means the stage did not run for that message (`book` on the feature path, where
one kernel call applies the book and computes the features; `risk` and `order` when the message
asked for no order work) and is left out of that stage's histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STAGES = ("receive", "parse", "book", "features", "strategy", "risk", "order")
"""receive: released by the parser -> taken from the inbox by the consumer (the wait between
the network side and the hot path); parse: the websocket message in hand -> released by the
research parser (dedup, sync rule, chain); book: the legacy path's `LOBEngine.apply`; features:
`FeatureEngine.process` (book and features in one kernel call); strategy: every listener of the
message (paper adapter, strategy hooks, sink), risk and order included; risk: `RiskGate` checks;
order: the paper adapter (fills, queue, arrivals, submissions)."""

N_STAGES = len(STAGES)

BUCKETS_S = (
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4,
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
"""Upper bounds (s): microsecond stages to the queue's worst backlog; +Inf is added."""

_BOUNDS_NS = np.array([round(b * 1e9) for b in BUCKETS_S], dtype=np.int64)


class StageRing:
    """The last `capacity` messages' stage durations (ns), one row per message.

    `record` is the hot path; `drain` (scrape time) returns the rows written since the last
    drain. One writer (the event loop) and one reader (the scrape thread): the write index moves
    only after a row is complete, so a drain never reads a half-written row unless the writer
    laps it, which `drain` counts as overwritten.
    """

    def __init__(self, capacity: int = 1 << 17) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.rows = np.zeros((capacity, N_STAGES), dtype=np.int64)
        self._flat = memoryview(self.rows.data).cast("B").cast("q")
        self.written = 0
        """Rows written since the start (a plain int: the hot path's only bookkeeping)."""
        self._drained = 0
        self.overwritten = 0
        """Rows lost to the writer lapping the reader (counted at drain)."""

    def record(
        self, receive: int, parse: int, book: int, features: int, strategy: int, risk: int,
        order: int,
    ) -> None:  # fmt: skip
        """One message's stage durations, ns (0: the stage did not run)."""
        n = self.written
        j = (n % self.capacity) * 7
        f = self._flat
        f[j] = receive
        f[j + 1] = parse
        f[j + 2] = book
        f[j + 3] = features
        f[j + 4] = strategy
        f[j + 5] = risk
        f[j + 6] = order
        self.written = n + 1

    def drain(self) -> np.ndarray:
        """Rows written since the last drain (a copy, oldest first)."""
        end = self.written
        start = self._drained
        if end - start > self.capacity:
            self.overwritten += end - start - self.capacity
            start = end - self.capacity
        self._drained = end
        if end == start:
            return self.rows[:0].copy()
        a, b = start % self.capacity, end % self.capacity
        if a < b:
            return self.rows[a:b].copy()
        return np.concatenate([self.rows[a:], self.rows[:b]])


@dataclass
class StageHistogram:
    """Cumulative bucket counts and sums per stage, fed by `StageRing.drain` at scrape time."""

    counts: np.ndarray
    """(stages, buckets + 1) counts per bucket, the last is +Inf (not cumulative)."""
    sum_ns: np.ndarray
    n: np.ndarray

    @classmethod
    def empty(cls) -> StageHistogram:
        return cls(
            np.zeros((N_STAGES, len(BUCKETS_S) + 1), dtype=np.int64),
            np.zeros(N_STAGES, dtype=np.int64),
            np.zeros(N_STAGES, dtype=np.int64),
        )

    def add(self, rows: np.ndarray) -> None:
        """Bucket a drain's rows (0 = the stage did not run: left out)."""
        for i in range(N_STAGES):
            d = rows[:, i]
            d = d[d > 0]
            if not len(d):
                continue
            idx = np.searchsorted(_BOUNDS_NS, d, side="left")  # first bound >= d: `le`
            self.counts[i] += np.bincount(idx, minlength=len(BUCKETS_S) + 1)
            self.sum_ns[i] += int(d.sum())
            self.n[i] += len(d)

    def buckets(self, stage: int) -> list[tuple[str, float]]:
        """Cumulative (`le`, count) pairs of one stage, as a histogram family takes them."""
        cum = np.cumsum(self.counts[stage])
        les = [*(repr(b) for b in BUCKETS_S), "+Inf"]
        return [(le, float(c)) for le, c in zip(les, cum.tolist(), strict=True)]
