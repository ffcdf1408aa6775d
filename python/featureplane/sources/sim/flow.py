"""One symbol's true message stream: the queue model run on an integer L2 book.

The model is a zero-intelligence queue model in the spirit of Cont, Stoikov and Talreja (2010):
events arrive as a Poisson process whose rate depends on the book (cancellations are
proportional to the resting depth), and every event is one message carrying the level changes
it caused (absolute sizes, 0 removes) and, for marketable orders, one trade per level hit.

Inner loop design: one event per iteration with a fixed draw of 7 uniforms (so the stream of
random numbers does not depend on which branch ran), pre-drawn in chunks and read from a Python
list, and the book held as two dicts keyed so that the best level is the maximum on both sides
(`key = px` for bids, `key = -px` for asks). That keeps the bid and ask code paths one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import log

import numpy as np
import numpy.typing as npt

from featureplane.events import CLEAR, LEVEL, SNAPSHOT, TRADE
from featureplane.sources.sim.config import SimInstrument, SimModel

_CHUNK = 16_384
_N_UNIFORMS = 7
_SGN = (1, -1)  # side code of book index 0 (bids) and 1 (asks); also px = key * sgn
_MAX_DISTANCE = 10_000  # guards the tail of the geometric draw, never reached in practice


@dataclass
class SymbolFlow:
    """The true (fault-free) stream of one symbol, rows grouped by message.

    Row arrays are parallel (`kind`, `side`, `px`, `qty`); message `m` holds rows
    `msg_end[m - 1]:msg_end[m]`. Message 0 is the initial snapshot.
    """

    kind: npt.NDArray[np.uint8]
    side: npt.NDArray[np.int8]
    px: npt.NDArray[np.int64]
    qty: npt.NDArray[np.int64]
    msg_end: npt.NDArray[np.int64]
    src_ts_ns: npt.NDArray[np.int64]
    is_snapshot: npt.NDArray[np.bool_]
    flow_msg: npt.NDArray[np.int64]
    """Message index of each simulated (non-snapshot) message, in order."""
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def n_messages(self) -> int:
        return len(self.msg_end)


def simulate_symbol(
    inst: SimInstrument,
    model: SimModel,
    n_flow: int,
    rng: np.random.Generator,
    start_ts_ns: int,
    resync_after: frozenset[int] = frozenset(),
) -> SymbolFlow:
    """Run the model for `n_flow` events after an initial snapshot.

    Parameters
    ----------
    resync_after
        Flow indices after which the venue sends a snapshot of the current book (a resync).
    """
    order_lots = float(inst.order_lots)
    act = inst.activity
    lam = model.limit_rate_hz * act
    r_limit = 2.0 * lam
    r_market = r_limit + 2.0 * model.market_rate_hz * act
    mu = model.market_rate_hz * act
    r_pull = r_market + model.pull_rate_hz * act
    r_base = r_pull + model.wipe_rate_hz * act
    # Each resting order (mean size order_lots) cancels at cancel_rate_hz: rate per lot of depth.
    cancel_per_lot = model.cancel_rate_hz * act / order_lots
    mkt_mean = order_lots * model.market_size_factor
    # Geometric distance on {1, 2, ...} with the instrument's mean, drawn by inversion.
    p_geo = 1.0 / inst.distance_mean_ticks
    log_q = log(1.0 - p_geo) if p_geo < 1.0 else 0.0
    max_sweep = model.max_sweep_levels
    marketable_prob = model.marketable_prob
    far_cut = model.marketable_prob + model.far_prob
    far_ticks = model.far_ticks_factor * inst.distance_mean_ticks
    refill_prob = model.refill_prob
    refill_offset = model.refill_offset_ticks

    books: list[dict[int, int]] = [{}, {}]
    best: list[int | None] = [None, None]
    tot = [0, 0]
    kinds: list[int] = []
    sides: list[int] = []
    pxs: list[int] = []
    qtys: list[int] = []
    msg_end: list[int] = []
    msg_ts: list[int] = []
    msg_snap: list[bool] = []
    flow_msg: list[int] = []
    stats = dict.fromkeys(
        ("limit", "marketable", "market", "cancel", "pull", "wipe", "refill", "trades", "resync"),
        0,
    )

    def emit_level(s: int, key: int, qty: int) -> None:
        kinds.append(LEVEL)
        sides.append(_SGN[s])
        pxs.append(key * _SGN[s])
        qtys.append(qty)

    def emit_snapshot(ts: int) -> None:
        kinds.append(CLEAR)
        sides.append(0)
        pxs.append(0)
        qtys.append(0)
        for s in (0, 1):
            book = books[s]
            for key in sorted(book, reverse=True):
                kinds.append(SNAPSHOT)
                sides.append(_SGN[s])
                pxs.append(key * _SGN[s])
                qtys.append(book[key])
        msg_end.append(len(kinds))
        msg_ts.append(ts)
        msg_snap.append(True)

    def add(s: int, key: int, qty: int) -> None:
        book = books[s]
        new = book.get(key, 0) + qty
        book[key] = new
        tot[s] += qty
        b = best[s]
        if b is None or key > b:
            best[s] = key
        emit_level(s, key, new)

    def remove_best(s: int) -> None:
        book = books[s]
        key = best[s]
        assert key is not None
        tot[s] -= book.pop(key)
        best[s] = max(book) if book else None
        emit_level(s, key, 0)

    def sweep(r: int, want: int, limit_key: int | None, trades: list[tuple[int, int, int]]) -> int:
        """Consume resting side `r` from its best level; return the unfilled size.

        Stops after `max_sweep` levels, at the limit price, and before the side would empty:
        normal flow keeps both sides quoted (one-sided moments are their own events).
        """
        book = books[r]
        aggressor = -_SGN[r]
        for _ in range(max_sweep):
            key = best[r]
            if want <= 0 or key is None or (limit_key is not None and key + limit_key < 0):
                break
            q = book[key]
            fill = want if want < q else q
            if fill == q and len(book) == 1:
                fill = q - 1
            if fill <= 0:
                break
            want -= fill
            tot[r] -= fill
            trades.append((aggressor, key * _SGN[r], fill))
            if fill == q:
                del book[key]
                best[r] = max(book) if book else None
                emit_level(r, key, 0)
            else:
                book[key] = q - fill
                emit_level(r, key, q - fill)
                break
        return want

    # Initial book: levels away from the touch with small random holes, sizes growing with depth.
    start = inst.start_ticks
    hole_mean = (inst.distance_mean_ticks - 1.0) / 4.0
    n_lv = model.snapshot_levels
    draws = rng.random((2, n_lv, 2))
    for s, touch_key in ((0, start), (1, -(start + 1))):
        key = touch_key
        for j in range(n_lv):
            u_gap, u_qty = draws[s, j]
            if j:
                key -= 1 + int(-log(1.0 - float(u_gap)) * hole_mean)
            mean_qty = 0.5 * order_lots * (1.0 + model.snapshot_growth * j)
            books[s][key] = max(1, round(mean_qty * (0.5 + float(u_qty))))
        tot[s] = sum(books[s].values())
        best[s] = touch_key
    ts = start_ts_ns
    emit_snapshot(ts)

    uniforms: list[list[float]] = []
    ui = 0
    for j in range(n_flow):
        if ui == len(uniforms):
            uniforms = rng.random((_CHUNK, _N_UNIFORMS)).tolist()
            ui = 0
        u_dt, u_ev, u_side, u_dist, u_size, u_aggr, u_refill = uniforms[ui]
        ui += 1
        rate = r_base + (tot[0] + tot[1]) * cancel_per_lot
        ts += int(-log(1.0 - u_dt) / rate * 1e9)
        row_start = len(kinds)
        trades: list[tuple[int, int, int]] = []
        dist = 1 + int(log(1.0 - u_dist) / log_q) if log_q < 0.0 else 1
        dist = min(dist, _MAX_DISTANCE)
        limit_side = -1  # side of a plain limit order to place, -1 for none
        limit_offset = 0

        empty = 0 if best[0] is None else (1 if best[1] is None else -1)
        if empty >= 0 and u_refill < refill_prob:
            # A side is empty: liquidity comes back, away from the opposite touch.
            limit_side = empty
            limit_offset = refill_offset
            stats["refill"] += 1
        else:
            x = u_ev * rate
            if x < r_limit:
                s = 0 if x < lam else 1
                o = 1 - s
                opp = best[o]
                if opp is not None and u_aggr < marketable_prob:
                    # Priced at or through the opposite best: trades as a taker up to its limit,
                    # the rest rests at the limit if the book is no longer crossed there.
                    stats["marketable"] += 1
                    limit_key = -opp + (dist - 1)
                    want = max(1, int(-log(1.0 - u_size) * order_lots + 0.5))
                    left = sweep(o, want, limit_key, trades)
                    opp_after = best[o]
                    if left > 0 and (opp_after is None or opp_after + limit_key < 0):
                        add(s, limit_key, left)
                    if len(kinds) == row_start:
                        limit_side = s
                else:
                    limit_side = s
                    if marketable_prob <= u_aggr < far_cut:
                        # Background depth: uniform over the far range (u_dist is reused, the
                        # geometric draw above is discarded).
                        dist = 1 + int(u_dist * far_ticks)
            elif x < r_market:
                r = 0 if x - r_limit < mu else 1
                if best[r] is None:
                    limit_side = r
                else:
                    stats["market"] += 1
                    want = max(1, int(-log(1.0 - u_size) * mkt_mean + 0.5))
                    sweep(r, want, None, trades)
                    if not trades:  # a one-lot last level cannot trade: quote it instead
                        limit_side = r
            elif x < r_pull:
                # Liquidity pull: the top levels of one side go at once, the spread widens.
                r = 0 if u_side < 0.5 else 1
                k = min(1 + int(u_dist * 3.0), len(books[r]) - 1)
                if k < 1:
                    limit_side = r
                else:
                    stats["pull"] += 1
                    for _ in range(k):
                        remove_best(r)
            elif x < r_base:
                # One-sided moment: every level of one side is cancelled in one message.
                r = 0 if u_side < 0.5 else 1
                if best[r] is None or best[1 - r] is None:
                    limit_side = r if best[r] is None else 1 - r
                else:
                    stats["wipe"] += 1
                    for key in sorted(books[r], reverse=True):
                        emit_level(r, key, 0)
                    books[r].clear()
                    best[r] = None
                    tot[r] = 0
            else:
                # Cancellation: a resting lot picked uniformly, so a level's chance is its size.
                r = 0 if u_side * (tot[0] + tot[1]) < tot[0] else 1
                book = books[r]
                target = u_dist * tot[r]
                acc = 0
                level = (0, 0)
                for level in book.items():
                    acc += level[1]
                    if acc > target:
                        break
                key, q = level
                c = max(1, int(-log(1.0 - u_size) * order_lots + 0.5))
                if c >= q:
                    c = q - 1 if len(book) == 1 else q
                if c < 1:
                    limit_side = r
                else:
                    stats["cancel"] += 1
                    tot[r] -= c
                    if c == q:
                        del book[key]
                        if key == best[r]:
                            best[r] = max(book)
                        emit_level(r, key, 0)
                    else:
                        book[key] = q - c
                        emit_level(r, key, q - c)

        if limit_side >= 0:
            s = limit_side
            opp = best[1 - s]
            if opp is not None:
                key = -opp - dist - limit_offset
            else:
                own = best[s]
                assert own is not None, "normal flow never empties both sides"
                key = own - (dist - 1) - limit_offset
            add(s, key, max(1, int(-log(1.0 - u_size) * order_lots + 0.5)))
            stats["limit"] += 1
        assert len(kinds) > row_start, "every event emits at least one row"
        for aggressor, px, qty in trades:
            kinds.append(TRADE)
            sides.append(aggressor)
            pxs.append(px)
            qtys.append(qty)
        stats["trades"] += len(trades)
        msg_end.append(len(kinds))
        msg_ts.append(ts)
        msg_snap.append(False)
        flow_msg.append(len(msg_end) - 1)
        if j in resync_after:
            stats["resync"] += 1
            emit_snapshot(ts)

    return SymbolFlow(
        kind=np.asarray(kinds, dtype=np.uint8),
        side=np.asarray(sides, dtype=np.int8),
        px=np.asarray(pxs, dtype=np.int64),
        qty=np.asarray(qtys, dtype=np.int64),
        msg_end=np.asarray(msg_end, dtype=np.int64),
        src_ts_ns=np.asarray(msg_ts, dtype=np.int64),
        is_snapshot=np.asarray(msg_snap, dtype=np.bool_),
        flow_msg=np.asarray(flow_msg, dtype=np.int64),
        stats=stats,
    )
