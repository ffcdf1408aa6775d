"""The venue's own book of a symbol, kept as the exchange keeps it, to answer depth requests.

Prices and sizes stay the decimal strings of the capture, so a snapshot the venue builds uses
the exchange's own spelling. The book starts from the capture's REST snapshot and applies the
diffs by Binance's rule (a diff older than the snapshot is dropped; the sizes are absolute, a
zero size removes the level); diffs recorded before the snapshot line wait for it, as they
waited in the recorder.
"""

from __future__ import annotations

from typing import Any

import orjson

from featureplane.live.wire import Market

MAX_PENDING = 10_000
"""Diffs kept while waiting for the first snapshot (Binance's own client keeps as many)."""


def _is_zero(qty: str) -> bool:
    return qty.strip("0.") == ""


class VenueBook:
    """One symbol's book at the venue."""

    def __init__(self, symbol: str, market: Market) -> None:
        self.symbol = symbol
        self.market = market
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.ready = False
        self.last_update_id = 0
        """The id the book state corresponds to: the snapshot's, then the last applied `u`."""
        self.event_ms = 0
        self.txn_ms = 0
        self._pending: list[dict[str, Any]] = []

    def copy(self) -> VenueBook:
        out = VenueBook(self.symbol, self.market)
        out.bids, out.asks = dict(self.bids), dict(self.asks)
        out.ready, out.last_update_id = self.ready, self.last_update_id
        out.event_ms, out.txn_ms = self.event_ms, self.txn_ms
        return out

    def load_snapshot(self, raw: bytes) -> None:
        """Start from a recorded REST snapshot; the diffs that came before it follow."""
        obj = orjson.loads(raw)
        self.bids = {str(px): str(qty) for px, qty, *_ in obj.get("bids", [])}
        self.asks = {str(px): str(qty) for px, qty, *_ in obj.get("asks", [])}
        self.last_update_id = int(obj["lastUpdateId"])
        self.event_ms = int(obj.get("E", self.event_ms))
        self.txn_ms = int(obj.get("T", self.txn_ms))
        self.ready = True
        pending, self._pending = self._pending, []
        for data in pending:
            self._apply(data)

    def apply_raw(self, raw: bytes) -> None:
        """Apply one recorded diff line's JSON (`{"stream":..,"data":{..}}` or bare)."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return  # research skips it too; the market's book is what the diffs say
        data = obj.get("data", obj) if type(obj) is dict else None
        if type(data) is not dict or data.get("e") != "depthUpdate":
            return
        if not self.ready:
            if len(self._pending) < MAX_PENDING:
                self._pending.append(data)
            return
        self._apply(data)

    def _apply(self, data: dict[str, Any]) -> None:
        u = data.get("u")
        if type(u) is not int:
            return
        lid = self.last_update_id
        # USD-M drops u < lastUpdateId, spot u <= lastUpdateId (their documented rules).
        if u < lid or (self.market == "spot" and u <= lid):
            return
        for side, levels in ((self.bids, data.get("b") or []), (self.asks, data.get("a") or [])):
            for level in levels:
                px, qty = str(level[0]), str(level[1])
                if _is_zero(qty):
                    side.pop(px, None)
                else:
                    side[px] = qty
        self.last_update_id = u
        self.event_ms = int(data.get("E", self.event_ms))
        self.txn_ms = int(data.get("T", self.txn_ms))

    def snapshot_json(self, last_update_id: int, limit: int) -> bytes:
        """A REST depth response of the book now: best `limit` levels a side."""
        bids = sorted(self.bids.items(), key=lambda kv: float(kv[0]), reverse=True)[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        body: dict[str, Any] = {"lastUpdateId": last_update_id}
        if self.market == "usdm":  # the USD-M response carries the event and transaction times
            body["E"] = self.event_ms
            body["T"] = self.txn_ms
        body["bids"] = [[p, q] for p, q in bids]
        body["asks"] = [[p, q] for p, q in asks]
        return orjson.dumps(body)


def diff_ids(raw: bytes) -> tuple[int, int] | None:
    """(U, u) of a recorded diff line's JSON, or None if it has none."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    data = obj.get("data", obj) if type(obj) is dict else None
    if type(data) is not dict:
        return None
    first, last = data.get("U"), data.get("u")
    if type(first) is not int or type(last) is not int:
        return None
    return first, last


def straddling_id(market: Market, next_first: int) -> int:
    """The `lastUpdateId` of a snapshot taken just before a diff whose `U` is `next_first`.

    The book holds every diff before that one; the id is chosen so that diff straddles it by
    the market's rule (USD-M `U <= id <= u`, spot `U <= id + 1 <= u`). On USD-M the id is the
    diff's own `U`: the book lacks that update, which the diff brings with absolute sizes, so
    applying it gives the exact book (update ids are shared by every symbol, so `U` is usually
    far past the previous `u`, and no id between them would straddle).
    """
    return next_first if market == "usdm" else next_first - 1
