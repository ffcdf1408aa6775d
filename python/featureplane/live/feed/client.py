"""`BinanceFeed`: the websocket + REST client of one Binance market data venue.

One combined-stream connection carries every symbol's streams. Per connection and per symbol:

- **sync**: every symbol syncs at connect (`feed.sync`): its diffs are held, a depth snapshot
  is fetched (`httpx`) with the symbol's epoch, and when it arrives a `LIST_SUBSCRIPTIONS`
  request is sent on the websocket; the snapshot is applied where that request's answer
  appears in the stream (its marker), then the held diffs follow. A gap later resyncs that
  symbol alone.
- **reconnect**: a connection that dies is replaced with capped exponential backoff and
  jitter (the attempt count resets once a connection has been healthy for
  `reconnect_reset_s`); every symbol resyncs on the new one, since what was lost meanwhile
  (trades included) cannot be known.
- **rotation**: before the venue's 24 h limit (`rotate_after_s`), and at once on
  `serverShutdown`, a new connection is opened and subscribed before the old one is closed;
  both are read while they overlap and the sync rule's dedup keeps one copy of each message,
  so no symbol resyncs unless continuity actually broke.
- **watchdogs**: no message on a connection for `connection_stale_s` closes it (a silent
  socket is a dead one); no message of a symbol for `symbol_stale_s` marks the symbol STALE
  until its next message (quiet markets exist, so this does not reconnect).

Everything the feed receives is stamped with a strictly increasing local time (ns), handed to
the sync rule in arrival order, and what the research chain releases goes to `on_data`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from featureplane.errors import FeedError
from featureplane.instruments import InstrumentSpec
from featureplane.live.config import FeedConfig
from featureplane.live.feed.chain import LiveChain
from featureplane.live.feed.sync import LiveSymbol, Released
from featureplane.live.wire import (
    DEPTH_PATH,
    END_OF_STREAM,
    Kind,
    Market,
    classify,
    combined_path,
    stream_names,
)

log = logging.getLogger("featureplane.feed")


@dataclass(frozen=True, slots=True)
class FeedData:
    """Messages released for one symbol, with their stage times (perf_counter ns)."""

    symbol_id: int
    epoch: int
    released: Released
    wire_ns: int
    """When the message that released them came off the websocket."""
    parsed_ns: int


@dataclass
class FeedCounters:
    connections: int = 0
    connect_failures: int = 0
    reconnects: int = 0
    rotations: int = 0
    server_shutdowns: int = 0
    stale_connections: int = 0
    snapshot_requests: int = 0
    snapshot_failures: int = 0
    snapshots_discarded: int = 0
    markers_sent: int = 0
    control_unknown: int = 0
    end_of_stream: bool = False
    close_codes: dict[str, int] = field(default_factory=dict)


class _Conn:
    __slots__ = ("cid", "last_msg", "opened", "reader", "retiring", "ws")

    def __init__(self, cid: int, ws: ClientConnection) -> None:
        self.cid = cid
        self.ws = ws
        self.opened = time.monotonic()
        self.last_msg = self.opened
        self.reader: asyncio.Task[None] | None = None
        self.retiring = False


class _SnapshotBudget:
    """At most `per_minute` snapshot requests in any minute (the venue's weight limits)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: list[float] = []

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self._times = [t for t in self._times if now - t < 60.0]
            if len(self._times) < self.per_minute:
                self._times.append(now)
                return
            await asyncio.sleep(60.0 - (now - self._times[0]))


class BinanceFeed:
    """Market data of some symbols of one Binance venue (see the module doc).

    Parameters
    ----------
    config
        The feed section of the live config (URLs, timings, limits).
    instruments
        (spec, symbol id, market) of every symbol, ids as in the engine's symbol table.
    on_data
        Called, in stream order, with every release of the research chain.
    on_health
        Called with (symbol id, "stale" | "fresh") when a symbol's watchdog changes its mind.
    """

    def __init__(
        self,
        config: FeedConfig,
        instruments: list[tuple[InstrumentSpec, int, Market]],
        on_data: Callable[[FeedData], None],
        on_health: Callable[[int, str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_data = on_data
        self.on_health = on_health
        self.health_log: list[tuple[float, str, str]] = []
        """(monotonic time, symbol, "stale" | "fresh") of every watchdog change."""
        self.symbols: dict[str, LiveSymbol] = {}
        self.by_id: dict[int, LiveSymbol] = {}
        streams: list[str] = []
        for spec, sid, market in instruments:
            chain = LiveChain(spec, sid, market, config.parser)
            live = LiveSymbol(chain, sid, market, config.max_held_diffs)
            self.symbols[spec.symbol] = live
            self.by_id[sid] = live
            streams.extend(stream_names(spec.symbol, market, config.trades, config.book_ticker))
        self.streams = streams
        self.counters = FeedCounters()
        self._markets = {s: live.market for s, live in self.symbols.items()}
        self._current: _Conn | None = None
        self._conns: list[_Conn] = []
        self._next_cid = 0
        self._last_ts = 0
        self._marker_id = 0
        self._parked: dict[int, tuple[LiveSymbol, int, bytes]] = {}
        self._symbol_seen: dict[str, float] = {}
        self._stale: set[str] = set()
        self._rotate_now = asyncio.Event()
        self._budget = _SnapshotBudget(config.max_snapshots_per_minute)
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ended = False

    # ----- driving ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, stay connected and in sync until `stop` is set or the stream ends.

        Raises
        ------
        FeedError
            `max_reconnects` consecutive connection attempts failed.
        """
        cfg = self.config
        self._http = httpx.AsyncClient(
            base_url=cfg.rest_url, timeout=cfg.snapshot_timeout_s, trust_env=False
        )
        watchdog = asyncio.create_task(self._watchdog(stop), name="feed-watchdog")
        try:
            attempt = 0
            while not stop.is_set() and not self.ended:
                conn = await self._connect(stop, attempt)
                if conn is None:
                    break
                if self.counters.connections > 1:
                    self.counters.reconnects += 1
                self._install(conn)
                for live in self.symbols.values():
                    self._resync(live, "connect")
                healthy = await self._supervise(conn, stop)
                attempt = 0 if healthy else attempt + 1
        finally:
            watchdog.cancel()
            await self._close_all()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, watchdog, return_exceptions=True)
            await self._http.aclose()

    async def _connect(self, stop: asyncio.Event, attempt: int) -> _Conn | None:
        cfg = self.config
        url = cfg.ws_url.rstrip("/") + combined_path(self.streams)
        while not stop.is_set():
            if attempt:
                await _sleep_or_stop(self.backoff(attempt), stop)
                if stop.is_set():
                    return None
            try:
                sock = await self._socket() if cfg.receive_buffer_bytes else None
                ws = await connect(
                    url,
                    sock=sock,
                    compression=None,
                    proxy=None,
                    open_timeout=cfg.connect_timeout_s,
                    ping_interval=cfg.ping_interval_s,
                    ping_timeout=cfg.ping_interval_s,
                    max_queue=cfg.receive_queue,
                    max_size=cfg.max_message_bytes,
                )
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                self.counters.connect_failures += 1
                if self.ended or self._gone(exc):
                    return None  # the stream ended meanwhile (a rotation met the end)
                attempt += 1
                log.warning("connect to %s failed (%s); attempt %d", cfg.ws_url, exc, attempt)
                if cfg.max_reconnects and attempt > cfg.max_reconnects:
                    raise FeedError(
                        f"{cfg.ws_url}: {attempt - 1} connection attempts failed, the last: {exc}"
                    ) from None
                continue
            self.counters.connections += 1
            conn = _Conn(self._next_cid, ws)
            self._next_cid += 1
            return conn
        return None

    def _gone(self, exc: Exception) -> bool:
        """A handshake answered 410 `end of stream` (the loopback venue after its end): with
        `exit_on_end_of_stream`, the end, as the close reason is on a live connection."""
        if not (self.config.exit_on_end_of_stream and isinstance(exc, InvalidStatus)):
            return False
        response = exc.response
        if response.status_code != 410 or END_OF_STREAM.encode() not in bytes(response.body or b""):
            return False
        self.counters.end_of_stream = True
        self.ended = True
        return True

    async def _socket(self) -> socket.socket:
        """A connected TCP socket with the configured receive buffer."""
        parts = urlsplit(self.config.ws_url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.receive_buffer_bytes)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, addr), self.config.connect_timeout_s
            )
        except BaseException:
            sock.close()
            raise
        return sock

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with additive jitter, in seconds."""
        cfg = self.config
        base = min(
            cfg.reconnect_max_s, cfg.reconnect_initial_s * cfg.reconnect_factor ** (attempt - 1)
        )
        return base + random.uniform(0.0, cfg.reconnect_jitter_s)

    def _install(self, conn: _Conn) -> None:
        self._conns.append(conn)
        self._current = conn
        conn.reader = asyncio.create_task(self._read(conn), name=f"feed-read-{conn.cid}")

    async def _supervise(self, conn: _Conn, stop: asyncio.Event) -> bool:
        """Follow the current connection until it ends for good; True if it was healthy."""
        cfg = self.config
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                current = self._current
                assert current is not None and current.reader is not None
                age = time.monotonic() - current.opened
                rotate_in = max(0.0, cfg.rotate_after_s - age) if cfg.rotate_after_s else None
                rotate_now = asyncio.create_task(self._rotate_now.wait())
                done, _ = await asyncio.wait(
                    {current.reader, stopping, rotate_now},
                    timeout=rotate_in,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                rotate_now.cancel()
                if stopping in done:
                    return True
                if current.reader in done:
                    failure = current.reader.exception()
                    if failure is not None:
                        raise failure  # a bug, not the network: stop, do not hide it
                    healthy = time.monotonic() - current.opened >= cfg.reconnect_reset_s
                    self._conns.remove(current)
                    if self.ended:
                        return healthy
                    log.warning("connection %d closed; reconnecting", current.cid)
                    self._current = None
                    return healthy
                # Rotation: due by age, or asked for by serverShutdown.
                self._rotate_now.clear()
                new = await self._connect(stop, 0)
                if new is None:
                    return True
                self.counters.rotations += 1
                self._install(new)
                self._retire(current)
        finally:
            stopping.cancel()

    def _retire(self, conn: _Conn) -> None:
        """Close a replaced connection once the overlap has passed."""
        conn.retiring = True

        async def later() -> None:
            await asyncio.sleep(self.config.rotation_overlap_s)
            with contextlib.suppress(Exception):
                await conn.ws.close()
            if conn.reader is not None:
                with contextlib.suppress(BaseException):
                    await conn.reader
            if conn in self._conns:
                self._conns.remove(conn)

        self._spawn(later())

    async def _close_all(self) -> None:
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close()
            if conn.reader is not None:
                conn.reader.cancel()
                with contextlib.suppress(BaseException):
                    await conn.reader
        self._conns.clear()
        self._current = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- reading ------------------------------------------------------------------------

    async def _read(self, conn: _Conn) -> None:
        ws = conn.ws
        try:
            while True:
                raw = await ws.recv(decode=False)
                wire = time.perf_counter_ns()
                conn.last_msg = time.monotonic()
                self._on_raw(conn, raw if isinstance(raw, bytes) else bytes(raw), wire)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            code = str(rcvd.code) if rcvd is not None else "abnormal"
            self.counters.close_codes[code] = self.counters.close_codes.get(code, 0) + 1
            if (
                rcvd is not None
                and rcvd.reason == END_OF_STREAM
                and self.config.exit_on_end_of_stream
            ):
                self.counters.end_of_stream = True
                self.ended = True

    def _stamp(self) -> int:
        """Local receive time, ns since the epoch, strictly increasing (a total order)."""
        ts = time.time_ns()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def _on_raw(self, conn: _Conn, raw: bytes, wire_ns: int) -> None:
        ts = self._stamp()
        c = classify(raw)
        if c.kind == Kind.CONTROL:
            self._control(conn, raw, ts, wire_ns)
            return
        live = self.symbols.get(c.symbol or "")
        if live is None or c.kind == Kind.OTHER:
            self.counters.control_unknown += 1
            return
        self._symbol_seen[live.symbol] = time.monotonic()
        if live.symbol in self._stale:
            self._stale.discard(live.symbol)
            self._health(live, "fresh")
        epoch = live.epoch
        released = live.on_message(c.kind, c.msg_id, ts, raw)
        broke = live.epoch != epoch  # the message broke continuity: this symbol resyncs
        if released is not None:
            self.on_data(FeedData(live.symbol_id, epoch, released, wire_ns, time.perf_counter_ns()))
        if broke:
            self._request(live)

    def _control(self, conn: _Conn, raw: bytes, ts: int, wire_ns: int) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.counters.control_unknown += 1
            return
        if type(obj) is not dict:
            self.counters.control_unknown += 1
            return
        if obj.get("e") == "serverShutdown":
            self.counters.server_shutdowns += 1
            if not conn.retiring:
                self._rotate_now.set()
            return
        marker = obj.get("id")
        parked = self._parked.pop(marker, None) if type(marker) is int else None
        if parked is None:
            if "id" not in obj:
                self.counters.control_unknown += 1
            return
        live, epoch, body = parked
        before = live.epoch
        released = live.apply_snapshot(epoch, ts, body)
        if released is not None:
            self.on_data(FeedData(live.symbol_id, epoch, released, wire_ns, time.perf_counter_ns()))
        if live.epoch != before:
            self._request(live)  # the first diff did not straddle it: sync again

    # ----- resync and snapshots -----------------------------------------------------------

    def resync(self, symbol_id: int, reason: str) -> int:
        """Resync one symbol (the service's overflow policy calls this); its new epoch."""
        live = self.by_id[symbol_id]
        self._resync(live, reason)
        return live.epoch

    def _resync(self, live: LiveSymbol, reason: str) -> None:
        live.start_resync(reason)
        self._request(live)

    def _request(self, live: LiveSymbol) -> None:
        self._spawn(self._fetch(live, live.epoch))

    async def _fetch(self, live: LiveSymbol, epoch: int) -> None:
        cfg = self.config
        assert self._http is not None
        path = DEPTH_PATH[live.market]
        params = {"symbol": live.symbol, "limit": str(cfg.snapshot_limit)}
        delay = cfg.snapshot_retry_initial_s
        for _ in range(cfg.snapshot_retries):
            if live.epoch != epoch:
                break
            await self._budget.acquire()
            self.counters.snapshot_requests += 1
            try:
                resp = await self._http.get(path, params=params)
                resp.raise_for_status()
                body = resp.content
            except httpx.HTTPError as exc:
                self.counters.snapshot_failures += 1
                log.warning("%s snapshot failed: %s", live.symbol, exc)
                await asyncio.sleep(delay + random.uniform(0.0, delay / 2))
                delay = min(delay * 2, cfg.snapshot_retry_max_s)
                continue
            if live.epoch != epoch:
                break
            conn = self._current
            if conn is None:
                return  # the next connection resyncs everything
            self._marker_id += 1
            self._parked[self._marker_id] = (live, epoch, body)
            try:
                await conn.ws.send(
                    orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": self._marker_id}),
                    text=True,
                )
                self.counters.markers_sent += 1
            except ConnectionClosed:
                self._parked.pop(self._marker_id, None)
            return
        self.counters.snapshots_discarded += 1

    # ----- watchdogs ----------------------------------------------------------------------

    async def _watchdog(self, stop: asyncio.Event) -> None:
        cfg = self.config
        period = max(0.01, min(cfg.connection_stale_s, cfg.symbol_stale_s) / 4)
        while not stop.is_set():
            await asyncio.sleep(period)
            now = time.monotonic()
            conn = self._current
            if (
                conn is not None
                and not conn.retiring
                and now - conn.last_msg > cfg.connection_stale_s
            ):
                self.counters.stale_connections += 1
                log.warning(
                    "connection %d silent for %.1f s: closing it", conn.cid, now - conn.last_msg
                )
                transport = getattr(conn.ws, "transport", None)
                if transport is not None:
                    transport.abort()
            for symbol, live in self.symbols.items():
                seen = self._symbol_seen.get(symbol)
                if seen is None or symbol in self._stale:
                    continue
                if now - seen > cfg.symbol_stale_s:
                    self._stale.add(symbol)
                    self._health(live, "stale")

    def _health(self, live: LiveSymbol, state: str) -> None:
        self.health_log.append((time.monotonic(), live.symbol, state))
        if self.on_health is not None:
            self.on_health(live.symbol_id, state)

    def stale(self, symbol: str) -> bool:
        return symbol in self._stale


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
