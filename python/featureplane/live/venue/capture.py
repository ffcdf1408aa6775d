"""Recorded captures as the one stream a venue sends: the research replay's order, line by line.

Files are grouped and chained per symbol exactly as the research reader does
(`sources.binance`): a symbol's files in order of their first local timestamp, each line keyed
by the running maximum of the local timestamps read so far in its chain, symbols merged by
(key, rank of the chain's first file) and stably. So a client that applies the lines in the
order the venue sends them applies them in the order research replay does.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike, fspath

from featureplane.errors import StreamDamageError, VenueError
from featureplane.live.wire import Kind, Market, classify
from featureplane.sources._lines import iter_line_blocks
from featureplane.sources.binance.parse import I64_MAX, local_ts
from featureplane.sources.binance.probe import Probe, expand_paths, market_of, probe_file

LOOKAHEAD_LINES = 1_000_000
"""How far a chain is read ahead at most to find the diffs a "newer" snapshot is taken after."""


@dataclass(frozen=True, slots=True)
class CaptureLine:
    """One recorded line: its local time, what it is, and its JSON exactly as recorded."""

    index: int
    """Position in the merged stream (0-based), the address of a fault."""
    symbol: str
    local_ts: int
    kind: Kind
    stream: str | None
    msg_id: int | None
    raw: bytes


@dataclass
class CaptureStats:
    lines: int = 0
    skipped: int = 0
    """Lines that are not `<local_ts_ns> <json>` (research skips them too)."""
    damaged_files: int = 0


class _ChainReader:
    """One symbol's files in chain order, with a look-ahead buffer."""

    def __init__(self, symbol: str, market: Market, paths: list[str], rank: int) -> None:
        self.symbol = symbol
        self.market = market
        self.paths = paths
        self.rank = rank
        self._lines = self._read()
        self._ahead: deque[tuple[int, int, Kind, str | None, int | None, bytes]] = deque()
        self._rel = -(1 << 62)
        self.stats = CaptureStats()

    def _read(self) -> Iterator[bytes]:
        for path in self.paths:
            try:
                for block in iter_line_blocks(path):
                    yield from block
            except StreamDamageError:
                self.stats.damaged_files += 1

    def _next_raw(self) -> tuple[int, int, Kind, str | None, int | None, bytes] | None:
        for raw in self._lines:
            sp = raw.find(b" ")
            head = raw[:sp]
            if sp <= 0 or not head.isdigit():
                self.stats.skipped += 1
                continue
            ts = local_ts(head)
            if ts > I64_MAX:
                self.stats.skipped += 1
                continue
            # The research reader's merge key: the running max of the chain's local times.
            if ts > self._rel:
                self._rel = ts
            body = raw[sp + 1 :]
            c = classify(body)
            kind = c.kind
            if kind == Kind.CONTROL and b'"lastUpdateId"' in body[:64]:
                kind = Kind.SNAPSHOT
            self.stats.lines += 1
            return self._rel, ts, kind, c.stream, c.msg_id, body
        return None

    def next(self) -> tuple[int, int, Kind, str | None, int | None, bytes] | None:
        if self._ahead:
            return self._ahead.popleft()
        return self._next_raw()

    def peek_diffs(self, n: int) -> list[bytes]:
        """The raw JSON of this chain's next `n` depth diffs not yet taken (fewer at the end)."""
        out = [item[5] for item in self._ahead if item[2] == Kind.DIFF][:n]
        read = 0
        while len(out) < n and read < LOOKAHEAD_LINES:
            item = self._next_raw()
            if item is None:
                break
            read += 1
            self._ahead.append(item)
            if item[2] == Kind.DIFF:
                out.append(item[5])
        return out


class Capture:
    """Binance recorder files served as one merged stream (see the module doc).

    Parameters
    ----------
    paths
        Files or directories (their `*.gz`), any number of symbols, USD-M or spot.
    """

    def __init__(self, paths: str | PathLike[str] | Iterable[str | PathLike[str]]) -> None:
        files = expand_paths(paths if not isinstance(paths, str | PathLike) else [fspath(paths)])
        groups: dict[str, list[Probe]] = {}
        for index, path in enumerate(files):
            probe = probe_file(path, index)
            if probe.symbol is None:
                raise VenueError(f"{path}: no Binance stream in its first lines")
            groups.setdefault(probe.symbol, []).append(probe)
        self.markets: dict[str, Market] = {}
        self.files: dict[str, list[str]] = {}
        self._chains: list[_ChainReader] = []
        for symbol, probes in groups.items():
            chain = sorted(probes, key=lambda p: (p.first_local_ts or 0, p.index))
            found = market_of(symbol, chain, None)
            if found == "coinm":
                raise VenueError(f"{symbol}: COIN-M captures are not served (USD-M and spot are)")
            market: Market = found
            self.markets[symbol] = market
            self.files[symbol] = [p.path for p in chain]
            rank = min(p.index for p in probes)
            self._chains.append(_ChainReader(symbol, market, self.files[symbol], rank))
        self._by_symbol = {c.symbol: c for c in self._chains}
        self._heads: dict[str, tuple[int, int, Kind, str | None, int | None, bytes]] = {}
        self.started = False

    @property
    def symbols(self) -> list[str]:
        return list(self.markets)

    @property
    def stats(self) -> CaptureStats:
        total = CaptureStats()
        for c in self._chains:
            total.lines += c.stats.lines
            total.skipped += c.stats.skipped
            total.damaged_files += c.stats.damaged_files
        return total

    def lines(self) -> Iterator[CaptureLine]:
        """The merged stream, once."""
        if self.started:
            raise VenueError("a capture is served once; open it again to serve it again")
        self.started = True
        heap: list[tuple[int, int, int, str]] = []
        seq = 0
        for chain in self._chains:
            item = chain.next()
            if item is not None:
                self._heads[chain.symbol] = item
                heapq.heappush(heap, (item[0], chain.rank, seq, chain.symbol))
                seq += 1
        index = 0
        while heap:
            _, _, _, symbol = heapq.heappop(heap)
            _, ts, kind, stream, msg_id, raw = self._heads.pop(symbol)
            chain = self._by_symbol[symbol]
            yield CaptureLine(index, symbol, ts, kind, stream, msg_id, raw)
            index += 1
            nxt = chain.next()
            if nxt is not None:
                self._heads[symbol] = nxt
                heapq.heappush(heap, (nxt[0], chain.rank, seq, symbol))
                seq += 1

    def peek_diffs(self, symbol: str, n: int) -> list[bytes]:
        """The next `n` depth diffs of `symbol` not yet yielded by `lines()`."""
        head = self._heads.get(symbol)
        out = [head[5]] if head is not None and head[2] == Kind.DIFF else []
        if len(out) < n:
            out.extend(self._by_symbol[symbol].peek_diffs(n - len(out)))
        return out[:n]
