"""The L2 aggregate behind the LOBSTER source: message effects, start snapshot, depth refill.

LOBSTER messages are order level; the engine wants absolute level sizes, so the source keeps
price -> total size per side and emits the new total at the price a message touched.

A LOBSTER file with N levels only carries the messages that change the visible N levels. A
level deeper than N is invisible to the message file: its size when it first comes into view
(a level above it emptied) is unknown, and so are the changes to a level while it was pushed
out of view. `DepthBook` reconciles every message with the orderbook file's row for it:

- Known region: on a side that showed N levels before the message, every price at least as
  good as the N-th level; on a side with fewer than N levels, every price. Inside it, the
  messages decide the size. Any disagreement with the orderbook file is a `SourceFormatError`.
- Outside it, the orderbook file decides: a level coming into view is emitted with the size
  the file shows ("refill"), and a level the stream still holds from before it left view but
  that the file no longer shows is emitted with size 0 ("stale"). Both are counted.

Prices and sizes here are LOBSTER integers (dollars x 10000, shares); the reader scales them.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable
from dataclasses import dataclass

from featureplane.events import ASK, BID
from featureplane.sources.lobster.files import (
    DUMMY_ASK_PX,
    DUMMY_BID_PX,
    EXECUTE_VISIBLE,
    NEW_ORDER,
    TYPE_NAMES,
)

Row = tuple[int, int, int]
"""(side, LOBSTER price, shares): the new absolute size of one level."""
Fail = Callable[[int, str], Exception]
"""Builds the error for (line, reason) against one file."""
_INF = float("inf")


@dataclass
class DepthCounts:
    """What the reconciliation did, for `LobsterStats`."""

    view_changes: int = 0
    """Rows whose visible prices changed (a level appeared, emptied or shifted)."""
    refill_unseen: int = 0
    """Levels that came into view at a price the stream never held: size from the orderbook."""
    refill_changed: int = 0
    """Levels that came back into view with another size than when they left it."""
    revealed_unchanged: int = 0
    """Levels that came back into view with the size they left with (no row needed)."""
    stale_removed: int = 0
    """Levels the stream held out of view that the orderbook no longer shows (emitted as 0)."""
    refill_messages: int = 0
    """Messages carrying at least one refill or stale row."""
    out_of_window: int = 0
    """Messages at a price beyond the visible levels (LOBSTER filters these out; expect 0)."""
    clamped: int = 0
    """Without reconciliation: updates that would have made a size negative (set to 0)."""

    @property
    def refill_levels(self) -> int:
        """Levels whose size came from the orderbook file: unseen plus changed."""
        return self.refill_unseen + self.refill_changed


class _Hidden:
    """Levels the emitted stream holds beyond the visible ones (last sizes seen), sorted."""

    def __init__(self) -> None:
        self.qty: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def pop(self, px: int) -> int | None:
        qty = self.qty.pop(px, None)
        if qty is not None:
            del self.prices[bisect_left(self.prices, px)]
        return qty

    def put(self, px: int, qty: int) -> None:
        self.pop(px)
        if qty > 0:
            self.qty[px] = qty
            insort(self.prices, px)

    def at_or_better(self, worst: int | None, is_bid: bool) -> list[int]:
        """Prices at least as good as `worst` (every price when None)."""
        if worst is None:
            return list(self.prices)
        if is_bid:
            return self.prices[bisect_left(self.prices, worst) :]
        return self.prices[: bisect_right(self.prices, worst)]


class _Side:
    """One side: the visible levels as the orderbook row lays them out, and the hidden ones."""

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.is_bid = sign == BID
        self.px: list[int] = []
        """Visible prices, best first, laid out as in the last orderbook row."""
        self.qty: list[int] = []
        self.full = False
        self.hidden = _Hidden()

    def set_view(self, px: list[int], qty: list[int], full: bool) -> None:
        self.px, self.qty, self.full = px, qty, full


def parse_side(
    tokens: list[bytes], is_bid: bool, line: int, fail: Fail
) -> tuple[list[int], list[int]]:
    """(prices, sizes) of one side of an orderbook row, best first, padding dropped, checked."""
    off = 2 if is_bid else 0
    try:
        px = [int(t) for t in tokens[off::4]]
        qty = [int(t) for t in tokens[off + 1 :: 4]]
    except ValueError:
        raise fail(line, "not a row of integers") from None
    dummy = DUMMY_BID_PX if is_bid else DUMMY_ASK_PX
    name = "bid" if is_bid else "ask"
    k = len(px)
    while k and px[k - 1] == dummy and qty[k - 1] == 0:
        k -= 1
    for j in range(k):
        if px[j] == dummy or qty[j] <= 0 or px[j] <= 0:
            raise fail(line, f"{name} level {j + 1} ({px[j]}, {qty[j]}) is not a level")
        if j and (px[j] >= px[j - 1] if is_bid else px[j] <= px[j - 1]):
            raise fail(line, f"{name} prices are not in book order at level {j + 1}")
    return px[:k], qty[:k]


class DepthBook:
    """The aggregate of one LOBSTER file pair, reconciled with the orderbook file row by row.

    Orderbook rows arrive as their comma-separated byte tokens: most messages change one size
    in place, and comparing tokens with the previous row (one token swapped for the new size)
    settles those without converting 40 integers per row.

    Parameters
    ----------
    levels
        N, the orderbook file's levels per side.
    msg_fail, ob_fail
        Error factories naming the message file and the orderbook file.
    """

    def __init__(self, levels: int, msg_fail: Fail, ob_fail: Fail) -> None:
        self.levels = levels
        self.bid = _Side(BID)
        self.ask = _Side(ASK)
        self.msg_fail = msg_fail
        self.ob_fail = ob_fail
        self.counts = DepthCounts()
        self._prev: list[bytes] = []
        """Tokens of the last reconciled row (empty before message 1 is reconciled)."""
        self.start_levels: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])
        """Every level of the start snapshot (bids, asks), best first."""

    def start(
        self, typ: int, sign: int, px: int, size: int, tokens: list[bytes]
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The book before message 1: orderbook row 1 with message 1's effect undone.

        Returns every level of the snapshot (bids, asks), best first. Only the row's N levels
        are known: when message 1 added a level that pushed the N-th out of view, the snapshot
        has N-1 levels on that side and the missing one stays unknown.
        """
        bpx, bqty = parse_side(tokens, True, 1, self.ob_fail)
        apx, aqty = parse_side(tokens, False, 1, self.ob_fail)
        books = {BID: dict(zip(bpx, bqty, strict=True)), ASK: dict(zip(apx, aqty, strict=True))}
        if typ <= EXECUTE_VISIBLE:  # types 1-4 change the book
            book = books[sign]
            before = book.get(px, 0) + (-size if typ == NEW_ORDER else size)
            if before < 0:
                raise self.ob_fail(
                    1,
                    f"row 1 shows {book.get(px, 0)} shares at {px}, less than message 1's "
                    f"{TYPE_NAMES[typ]} of {size}: the files do not belong together",
                )
            if before:
                book[px] = before
            else:
                book.pop(px, None)
        full = {BID: len(bpx) == self.levels, ASK: len(apx) == self.levels}
        out = []
        for side in (self.bid, self.ask):
            levels = sorted(books[side.sign].items(), reverse=side.is_bid)
            n = self.levels
            side.set_view([p for p, _ in levels[:n]], [q for _, q in levels[:n]], full[side.sign])
            for p, q in levels[n:]:
                side.hidden.put(p, q)
            out.append(levels)
        self._prev = []  # forces the full reconciliation for message 1
        self.start_levels = (out[0], out[1])
        return out[0], out[1]

    def step(
        self, line: int, typ: int, sign: int, px: int, size: int, tokens: list[bytes]
    ) -> list[Row]:
        """Apply message `line` and reconcile with its orderbook row; the level rows to emit."""
        prev = self._prev
        if typ <= EXECUTE_VISIBLE:
            side = self.bid if sign == BID else self.ask
            if prev and px in side.px:
                j = side.px.index(px)
                new = side.qty[j] + size if typ == NEW_ORDER else side.qty[j] - size
                if new > 0:
                    # Fast path: only this level's size changed, as the message says.
                    expect = prev.copy()
                    expect[4 * j + (3 if side.is_bid else 1)] = b"%d" % new
                    if expect == tokens:
                        side.qty[j] = new
                        self._prev = tokens
                        return [(sign, px, new)]
        elif tokens == prev:
            return []
        return self._reconcile(line, typ, sign, px, size, tokens)

    def _reconcile(
        self, line: int, typ: int, sign: int, px: int, size: int, tokens: list[bytes]
    ) -> list[Row]:
        counts = self.counts
        counts.view_changes += 1
        prev = self._prev
        rows: list[Row] = []
        levels = self.levels
        for side in (self.bid, self.ask):
            own = typ <= EXECUTE_VISIBLE and side.sign == sign
            off = 2 if side.is_bid else 0
            if (
                not own
                and prev
                and tokens[off::4] == prev[off::4]
                and tokens[off + 1 :: 4] == prev[off + 1 :: 4]
            ):
                continue  # this side's row did not change and no message touched it
            s = side.sign  # prices times s grow towards the best level on both sides
            # Known region: every price at least as good as the last visible level of a full
            # side; every price on a side with fewer than N levels.
            limit = s * side.px[-1] if side.full else -_INF
            known = dict(zip(side.px, side.qty, strict=True))
            if own:
                rows.append(self._own(side, known, s * px >= limit, line, typ, px, size))
            tpx, tqty = parse_side(tokens, side.is_bid, line, self.ob_fail)
            tlimit = s * tpx[-1] if len(tpx) == levels else -_INF
            for p, q in zip(tpx, tqty, strict=True):
                if s * p >= limit:
                    if known.get(p, 0) != q:
                        raise self.ob_fail(
                            line,
                            f"{_name(side)} {p}: the orderbook shows {q} shares, message line "
                            f"{line} and the rows before it give {known.get(p, 0)}",
                        )
                    continue
                held = side.hidden.pop(p)
                if held == q:
                    counts.revealed_unchanged += 1
                    continue
                if held is None:
                    counts.refill_unseen += 1
                else:
                    counts.refill_changed += 1
                rows.append((s, p, q))
            in_view = set(tpx)
            for p, q in known.items():
                if q == 0 or p in in_view:
                    continue
                if s * p < tlimit:
                    side.hidden.put(p, q)  # pushed out of view by a better level
                    continue
                raise self.ob_fail(
                    line,
                    f"{_name(side)} {p}: message line {line} and the rows before it leave "
                    f"{q} shares, the orderbook shows no level there",
                )
            for p in side.hidden.at_or_better(tpx[-1] if tlimit > -_INF else None, side.is_bid):
                side.hidden.pop(p)
                counts.stale_removed += 1
                rows.append((s, p, 0))
            side.set_view(tpx, tqty, len(tpx) == levels)
        if len(rows) > (1 if typ <= EXECUTE_VISIBLE else 0):
            counts.refill_messages += 1
        self._prev = tokens
        return rows

    def _own(
        self,
        side: _Side,
        known: dict[int, int],
        in_region: bool,
        line: int,
        typ: int,
        px: int,
        size: int,
    ) -> Row:
        """The message's own level change (updates `known` or the hidden levels)."""
        if in_region:
            old = known.get(px, 0)
            if typ != NEW_ORDER and old == 0:
                raise self.msg_fail(
                    line, f"{TYPE_NAMES[typ]} at {px} but the {_name(side)} has no level there"
                )
            new = old + size if typ == NEW_ORDER else old - size
            if new < 0:
                raise self.msg_fail(
                    line,
                    f"{TYPE_NAMES[typ]} of {size} shares at {px} leaves a negative size "
                    f"({old} held)",
                )
            known[px] = new
            return (side.sign, px, new)
        # Beyond the visible levels: the held size may be stale; the orderbook corrects it when
        # the level comes into view.
        self.counts.out_of_window += 1
        old = side.hidden.pop(px) or 0
        new = max(0, old + size if typ == NEW_ORDER else old - size)
        side.hidden.put(px, new)
        return (side.sign, px, new)


class PlainBook:
    """The aggregate from the messages alone (no orderbook file, or refill switched off).

    Depth the messages never described is unknown, so an update that would make a size
    negative sets it to 0 and is counted (`DepthCounts.clamped`) rather than raised.
    """

    def __init__(self) -> None:
        self.books: dict[int, dict[int, int]] = {BID: {}, ASK: {}}
        self.counts = DepthCounts()

    def load(self, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        self.books = {BID: dict(bids), ASK: dict(asks)}

    def step(self, typ: int, sign: int, px: int, size: int) -> list[Row]:
        if typ > EXECUTE_VISIBLE:
            return []
        book = self.books[sign]
        new = book.get(px, 0) + (size if typ == NEW_ORDER else -size)
        if new < 0:
            self.counts.clamped += 1
            new = 0
        if new:
            book[px] = new
        else:
            book.pop(px, None)
        return [(sign, px, new)]


def _name(side: _Side) -> str:
    return "bid" if side.is_bid else "ask"


__all__ = ["DepthBook", "DepthCounts", "Fail", "PlainBook", "Row", "parse_side"]
