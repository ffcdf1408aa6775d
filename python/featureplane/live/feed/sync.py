"""The live sync rule of one symbol: dedup, hold, snapshot, continuity on every message.

Binance's rule for a local book ("How to manage a local order book correctly"), applied per
symbol and again at every resync:

1. While the symbol is SYNCING its depth diffs are held (bounded: an overflow restarts the
   resync); trades go on (their frames say the book is not trusted).
2. A REST snapshot is asked for, tagged with the symbol's epoch; an answer of an older epoch is
   discarded. The snapshot joins the stream where its in-stream marker comes back
   (`feed.client`), then the held diffs follow; the research chain drops the stale ones
   (USD-M `u < L`, spot `u <= L`).
3. The first diff applied after a snapshot must straddle it (USD-M `U <= L <= u`, spot
   `U <= L + 1 <= u`); every later diff must continue the previous one (USD-M `pu == u'`,
   spot `U == u' + 1`). This is checked on **every** message the chain releases, not only
   after a snapshot. A break is a gap: the message still goes to the engine (which flags it
   `GAP_DETECTED`), and the symbol resyncs alone, with a new epoch.

Before the chain, messages are deduplicated by id (a diff's `u`, a trade's `t`): an id not
above the last one seen is a duplicate (equal) or late (lower), dropped and counted. Two
connections overlapping during a rotation deliver every message twice; this keeps one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from featureplane.events import CLEAR, END_OF_MESSAGE, LEVEL
from featureplane.live.feed.chain import LiveChain
from featureplane.live.wire import Kind, Market

DEFAULT_MAX_HELD = 10_000
"""Diffs held per symbol while it syncs (nautilus and Binance's examples keep as many)."""


class SyncState(IntEnum):
    SYNCING = 0
    LIVE = 1


@dataclass
class SyncCounters:
    """What happened to a symbol's messages; nothing is dropped without a count."""

    received: int = 0
    duplicates: int = 0
    late: int = 0
    held: int = 0
    held_overflows: int = 0
    gaps: int = 0
    """Continuity breaks seen on released messages."""
    sync_failures: int = 0
    """First diff after a snapshot that did not straddle it."""
    resyncs: int = 0
    snapshots_applied: int = 0
    snapshots_discarded: int = 0
    """Answers of an older epoch."""
    skipped: int = 0
    """Messages the parser skipped (bad JSON, off-grid values...), by the chain's reasons."""


@dataclass
class Released:
    """Messages the chain released for one input: their events and the raw lines fed."""

    events: np.ndarray
    lines: list[tuple[int, bytes]]
    """(local_ts, raw JSON) of every line fed to produce them, in order: the recording."""


class LiveSymbol:
    """One symbol's sync state, driven in stream order by the feed (see the module doc)."""

    def __init__(
        self, chain: LiveChain, symbol_id: int, market: Market, max_held: int = DEFAULT_MAX_HELD
    ) -> None:
        self.chain = chain
        self.symbol = chain.symbol
        self.symbol_id = symbol_id
        self.market = market
        self.usdm = market == "usdm"
        self.max_held = max_held
        self.state = SyncState.SYNCING
        self.epoch = 0
        self.counters = SyncCounters()
        self._held: deque[tuple[int, bytes]] = deque()
        self._last_id: dict[Kind, int] = {}
        # Continuity tracker over released messages.
        self._last_u: int | None = None
        self._snapshot_id: int | None = None
        self._first_pending = False
        self.resync_reason = "start"

    # ----- control ------------------------------------------------------------------------

    def start_resync(self, reason: str) -> int:
        """Begin a new sync epoch: held diffs are forgotten, a new snapshot is needed."""
        self.epoch += 1
        self.counters.resyncs += 1
        self.state = SyncState.SYNCING
        self._held.clear()
        self.resync_reason = reason
        return self.epoch

    def apply_snapshot(self, epoch: int, local_ts: int, raw: bytes) -> Released | None:
        """The snapshot of `epoch` joins the stream here; held diffs follow it.

        Returns None (and counts it) for an answer of an older epoch. After the release the
        symbol is LIVE, unless the first diff did not straddle the snapshot (then a resync has
        started again: `state` says so).
        """
        if epoch != self.epoch or self.state != SyncState.SYNCING:
            self.counters.snapshots_discarded += 1
            return None
        self.counters.snapshots_applied += 1
        self.state = SyncState.LIVE
        parts: list[np.ndarray] = []
        lines = [(local_ts, raw)]
        out = self.chain.feed(local_ts, raw)
        if out is not None:
            parts.append(out)
        held, self._held = self._held, deque()
        for ts, line in held:
            lines.append((ts, line))
            out = self.chain.feed(ts, line)
            if out is not None:
                parts.append(out)
        self._sync_skips()
        events = np.concatenate(parts) if parts else None
        if events is None:
            return None
        self._track(events)
        return Released(events, lines)

    # ----- stream -------------------------------------------------------------------------

    def on_message(
        self, kind: Kind, msg_id: int | None, local_ts: int, raw: bytes
    ) -> Released | None:
        """One stream message of this symbol, in stream order."""
        c = self.counters
        c.received += 1
        if msg_id is not None:
            last = self._last_id.get(kind)
            if last is not None and msg_id <= last:
                if msg_id == last:
                    c.duplicates += 1
                else:
                    c.late += 1
                return None
            self._last_id[kind] = msg_id
        if kind == Kind.DIFF and self.state == SyncState.SYNCING:
            if len(self._held) >= self.max_held:
                # Bounded: the buffer is useless now, the resync starts over.
                c.held_overflows += 1
                self.start_resync("held diffs overflow")
            self._held.append((local_ts, raw))
            c.held += 1
            return None
        events = self.chain.feed(local_ts, raw)
        self._sync_skips()
        if events is None:
            return None
        self._track(events)
        return Released(events, [(local_ts, raw)])

    def _sync_skips(self) -> None:
        self.counters.skipped = self.chain.skipped

    def _track(self, events: np.ndarray) -> None:
        """Continuity of the released book messages; a break starts a resync."""
        ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE)
        starts = np.concatenate(([0], ends[:-1] + 1))
        kinds = events["kind"]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            first_kind = int(kinds[start])
            if first_kind == CLEAR:
                self._snapshot_id = int(events["seq"][end])
                self._first_pending = True
                self._last_u = None
                continue
            if first_kind != LEVEL:
                continue
            first = int(events["first_seq"][end])
            prev = int(events["prev_seq"][end])
            u = int(events["seq"][end])
            if self._first_pending:
                self._first_pending = False
                lid = self._snapshot_id if self._snapshot_id is not None else u
                target = lid if self.usdm else lid + 1
                if not first <= target <= u:
                    self.counters.sync_failures += 1
                    self.start_resync("first diff does not straddle the snapshot")
            elif self._last_u is not None:
                ok = prev == self._last_u if self.usdm else first == self._last_u + 1
                if not ok and self.state == SyncState.LIVE:
                    self.counters.gaps += 1
                    self.start_resync("sequence gap")
            self._last_u = u

    @property
    def held(self) -> int:
        return len(self._held)
