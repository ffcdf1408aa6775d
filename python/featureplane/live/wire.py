"""What the live plane knows of Binance's wire: stream names, REST paths, message kinds.

The venue and the feed client both read a message's kind, symbol and id from the raw bytes
without parsing the JSON (`classify`): the parse is the research parser's job, later, once the
sync rule has decided the message goes to it. Only the few fields needed for that decision are
read here, with a byte search bounded to the head of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

Market = Literal["usdm", "spot"]
MARKETS: tuple[Market, ...] = ("usdm", "spot")


class Kind(IntEnum):
    """What a message is, as far as the sync rule cares."""

    DIFF = 0
    TRADE = 1
    BOOK_TICKER = 2
    SNAPSHOT = 3
    """A REST depth snapshot (a capture line without the stream envelope)."""
    CONTROL = 4
    """Not market data: a request's answer, `serverShutdown`, anything without a stream."""
    OTHER = 5
    """A stream the live plane does not read (partial depth, klines, ...)."""


DEPTH_PATH: dict[Market, str] = {"usdm": "/fapi/v1/depth", "spot": "/api/v3/depth"}
"""REST depth snapshot path of each market."""
DEPTH_STREAM: dict[Market, str] = {"usdm": "depth@0ms", "spot": "depth@100ms"}
"""The diff-depth stream the captures hold (USD-M unthrottled, spot every 100 ms)."""
SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000, 5000)
"""`limit` values the depth endpoint takes (5000 on spot only)."""
MAX_LIMIT: dict[Market, int] = {"usdm": 1000, "spot": 5000}
END_OF_STREAM = "end of stream"
"""Close reason the loopback venue gives every connection when its captures are exhausted."""

_PREFIX = b'{"stream":"'
_STREAM = re.compile(rb'\A\s*\{\s*"stream"\s*:\s*"([^"]{1,200})"')
# Ids are read from the head of a message only; a depth diff's levels start after them.
_HEAD = 512
_U = re.compile(rb'"u"\s*:\s*(\d{1,19})')
_T = re.compile(rb'"t"\s*:\s*(\d{1,19})')


@dataclass(frozen=True, slots=True)
class Classified:
    """A stream message as the sync rule sees it."""

    kind: Kind
    symbol: str | None
    """Upper-case symbol of the stream (None for control messages)."""
    stream: str | None
    msg_id: int | None
    """Depth `u`, trade `t` or book-ticker `u`; None when not found in the head."""


def stream_of(raw: bytes) -> str | None:
    """The combined-stream name of a message, read from its first bytes."""
    if raw.startswith(_PREFIX):
        end = raw.find(b'"', len(_PREFIX), len(_PREFIX) + 200)
        if end > len(_PREFIX):
            return raw[len(_PREFIX) : end].decode("ascii", "replace")
        return None
    m = _STREAM.match(raw, 0, 256)
    return m.group(1).decode("ascii", "replace") if m else None


def stream_kind(stream: str) -> tuple[str, Kind]:
    """(SYMBOL, kind) of a stream name such as `btcusdt@depth@0ms`."""
    prefix, _, rest = stream.partition("@")
    if rest == "depth" or rest.startswith("depth@"):
        kind = Kind.DIFF
    elif rest == "trade":
        kind = Kind.TRADE
    elif rest == "bookTicker":
        kind = Kind.BOOK_TICKER
    else:
        kind = Kind.OTHER
    return prefix.upper(), kind


def message_id(raw: bytes, kind: Kind) -> int | None:
    """The id the feed deduplicates on: `u` of a diff or book ticker, `t` of a trade."""
    pattern = _T if kind == Kind.TRADE else _U
    m = pattern.search(raw, 0, _HEAD)
    return int(m.group(1)) if m else None


def classify(raw: bytes) -> Classified:
    """Kind, symbol, stream and id of one websocket message (no JSON parse)."""
    stream = stream_of(raw)
    if stream is None:
        return Classified(Kind.CONTROL, None, None, None)
    symbol, kind = stream_kind(stream)
    msg_id = message_id(raw, kind) if kind != Kind.OTHER else None
    return Classified(kind, symbol, stream, msg_id)


def stream_names(
    symbol: str, market: Market, trades: bool = True, book_ticker: bool = False
) -> list[str]:
    """The combined-stream names a live symbol subscribes to."""
    s = symbol.lower()
    names = [f"{s}@{DEPTH_STREAM[market]}"]
    if trades:
        names.append(f"{s}@trade")
    if book_ticker:
        names.append(f"{s}@bookTicker")
    return names


def combined_path(streams: list[str]) -> str:
    """`/stream?streams=a/b/c`: Binance's combined-stream endpoint."""
    return "/stream?streams=" + "/".join(streams)
