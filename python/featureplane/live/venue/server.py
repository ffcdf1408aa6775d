"""The loopback venue: a websocket + HTTP server that replays captures as Binance sent them.

One server (`websockets`) answers the combined-stream websocket (`/stream?streams=a/b/c`) and
the REST depth snapshot (`/fapi/v1/depth`, `/api/v3/depth`) on one port of 127.0.0.1. One
market pump walks the merged capture (`Capture.lines`, research replay's order) and sends each
line's JSON, byte for byte, to every connection subscribed to its stream: paced by the recorded
local times (`speed` x real time) or as fast as the slowest client reads (`speed=None`).

"As fast as the client reads" needs a bound: kernel and library buffers would otherwise let the
pump run megabytes ahead of a client that still parses, and a snapshot the client asks for
would then be served far later in the stream than the client's need (or after its end). At max
speed the pump pings each connection every `max_lead` messages and waits for the pong, which the
client's websocket library sends only once it has read that far (it stops reading while its
queue of unconsumed messages is full): the client is never more than `max_lead` messages plus
its own queue behind.

Snapshots join the stream where they belong. A depth request waits for its symbol's snapshot
point: the capture's REST snapshot line (served byte for byte), or, once the venue keeps a
book of the symbol, the moment before the symbol's next diff (the book then, see
`book.straddling_id`). At that point the pump answers the request, then holds the stream until
a request arrives on the websocket (`LIST_SUBSCRIPTIONS`, bounded by `barrier_timeout_s`) and
answers it in the stream. A client that sends such a request when its snapshot arrives and
applies the snapshot where the answer appears in its stream applies it exactly where the
recorder did: that is how live frames equal research frames at max speed, where two sockets
would otherwise race.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from os import PathLike
from typing import Any
from urllib.parse import parse_qs

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from featureplane.errors import VenueError
from featureplane.live.venue.book import VenueBook, diff_ids, straddling_id
from featureplane.live.venue.capture import Capture, CaptureLine
from featureplane.live.venue.faults import Fault, FaultPlan, parse_faults
from featureplane.live.wire import (
    DEPTH_PATH,
    END_OF_STREAM,
    MAX_LIMIT,
    SNAPSHOT_LIMITS,
    Kind,
    stream_kind,
)

log = logging.getLogger("featureplane.venue")

_JSON = Headers([("Content-Type", "application/json")])
WRITE_LIMIT = 1 << 20
MAX_BEHIND_S = 0.05
"""A paced venue further behind its schedule than this resumes the pace instead of bursting."""


@dataclass
class VenueStats:
    """What the venue did; every fault that fired is counted."""

    connections: int = 0
    lines: int = 0
    messages_sent: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    disconnects: int = 0
    lost_lines: int = 0
    stalls: int = 0
    shutdowns: int = 0
    slow_disconnects: int = 0
    rotations: int = 0
    snapshots: dict[str, int] = field(
        default_factory=lambda: {"recorded": 0, "fresh": 0, "old": 0, "new": 0}
    )
    barrier_timeouts: int = 0
    lead_waits: int = 0
    """Pings the max-speed pump waited on (the client's read position, see the module doc)."""
    lead_timeouts: int = 0
    requests_answered: int = 0
    finished: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Subscriber:
    __slots__ = ("closing", "conn", "opened", "sid", "streams", "unacked")

    def __init__(self, sid: int, conn: ServerConnection, streams: set[str]) -> None:
        self.sid = sid
        self.conn = conn
        self.streams = streams
        self.opened = time.monotonic()
        self.closing = False
        self.unacked = 0
        """Messages sent since the last answered lead ping."""


@dataclass(frozen=True)
class SnapshotServed:
    """A depth snapshot the venue answered: where in the stream, which kind, what."""

    symbol: str
    index: int
    """The capture line it was served before (the symbol's next diff, or the recorded line); for
    a final answer, the number of lines in the capture."""
    kind: str
    """recorded | fresh | old | new | final (answered at the end of the stream: the last book)."""
    body: bytes


@dataclass
class _SnapshotRequest:
    limit: int
    future: asyncio.Future[bytes]


class LoopbackVenue:
    """A Binance-like venue on 127.0.0.1 replaying captures (see the module doc).

    Parameters
    ----------
    captures
        Binance recorder files or directories (USD-M and spot, any number of symbols).
    host, port
        Where to listen; port 0 picks a free port (`port` holds it after `start`).
    speed
        x real time by the recorded local times; None: as fast as the slowest client reads.
    faults
        A fault spec (`featureplane.live.venue.faults`) or a parsed plan.
    barrier_timeout_s
        How long the stream waits at a snapshot point for the client's request.
    ping_interval_s
        Server pings (Binance: 3 minutes on USD-M, 20 s on spot).
    max_connection_s
        A connection older than this is closed: the 24 h limit, scaled down. None: no limit.
    shutdown_grace_s
        Between `serverShutdown` and closing the connections it was sent on.
    wait_for_client_s
        How long the market waits for a subscriber (at start and after a cut) before it ends.
    max_lead
        At max speed, the messages a connection may be sent past its last answered ping (see
        the module doc). Not applied under the `slow` fault, whose point is a client that
        falls behind.
    """

    def __init__(
        self,
        captures: str | PathLike[str] | Iterable[str | PathLike[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float | None = None,
        faults: str | FaultPlan | None = None,
        barrier_timeout_s: float = 2.0,
        ping_interval_s: float | None = 20.0,
        max_connection_s: float | None = None,
        shutdown_grace_s: float = 0.25,
        wait_for_client_s: float = 30.0,
        max_lead: int = 256,
    ) -> None:
        if speed is not None and not speed > 0:
            raise VenueError(f"speed must be positive or None (max), got {speed}")
        if max_lead < 1:
            raise VenueError(f"max_lead must be at least 1, got {max_lead}")
        self.capture = Capture(captures)
        self.host = host
        self.port = port
        self.speed = speed
        self.faults = faults if isinstance(faults, FaultPlan) else parse_faults(faults)
        self.barrier_timeout_s = barrier_timeout_s
        self.ping_interval_s = ping_interval_s
        self.max_connection_s = max_connection_s
        self.shutdown_grace_s = shutdown_grace_s
        self.wait_for_client_s = wait_for_client_s
        self.max_lead = max_lead
        self.stats = VenueStats()
        self._books = {s: VenueBook(s, m) for s, m in self.capture.markets.items()}
        self._recorded: dict[str, bytes] = {}
        self._last_served: dict[str, bytes] = {}
        self.snapshot_log: list[SnapshotServed] = []
        self._pending: dict[str, list[_SnapshotRequest]] = {}
        self._request_seen: dict[str, asyncio.Event] = {}
        self._subs: list[_Subscriber] = []
        self._subscribed = asyncio.Event()
        self._requests: asyncio.Queue[tuple[_Subscriber, bytes]] = asyncio.Queue()
        self._requests_received = 0
        self._request_arrived = asyncio.Event()
        self._next_sid = 0
        self._slow: Fault | None = None
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pump_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        self._t0 = 0.0
        self._ts0: int | None = None

    # ----- lifecycle ----------------------------------------------------------------------

    async def start(self) -> int:
        """Listen and start the market pump; returns the port."""
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise VenueError(f"the loopback venue binds a loopback address only, not {self.host}")
        self._server = await serve(
            self._handler,
            self.host,
            self.port,
            process_request=self._process_request,
            compression=None,
            ping_interval=self.ping_interval_s,
            ping_timeout=self.ping_interval_s,
            max_queue=64,
            # Backpressure above 1 MiB unsent: a `slow` fault's limit sits below it, so the
            # venue cuts a slow client off before it would wait for it.
            write_limit=WRITE_LIMIT,
            server_header="featureplane-venue",
        )
        sock = next(iter(self._server.sockets))
        self.port = int(sock.getsockname()[1])
        self._pump_task = asyncio.create_task(self._pump(), name="venue-pump")
        return self.port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def aclose(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump_task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_finished(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.finished.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # ----- connections --------------------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if path == "/stream":
            if self.finished.is_set():
                return _error(410, -1000, END_OF_STREAM)
            if not _streams(query):
                return _error(400, -1100, "streams= names no stream")
            return None  # the websocket handshake goes on
        for market, depth_path in DEPTH_PATH.items():
            if path == depth_path:
                return await self._depth(market, parse_qs(query))
        if path in ("/fapi/v1/ping", "/api/v3/ping"):
            return Response(200, "OK", _JSON, b"{}")
        return _error(404, -1000, f"no such path {path}")

    async def _handler(self, conn: ServerConnection) -> None:
        _, _, query = (conn.request.path if conn.request else "").partition("?")
        sub = _Subscriber(self._next_sid, conn, set(_streams(query)))
        self._next_sid += 1
        self._subs.append(sub)
        self.stats.connections += 1
        if self._slow is not None:
            self._small_buffer(sub)
        self._subscribed.set()
        try:
            async for message in conn:
                raw = message.encode() if isinstance(message, str) else bytes(message)
                if self._pump_task is None or self._pump_task.done():
                    await self._answer(sub, raw)
                else:
                    self._requests_received += 1
                    self._requests.put_nowait((sub, raw))
                    self._request_arrived.set()
        except ConnectionClosed:
            pass
        finally:
            if sub in self._subs:
                self._subs.remove(sub)

    async def _answer(self, sub: _Subscriber, raw: bytes) -> None:
        """Answer one websocket request (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS)."""
        try:
            req = orjson.loads(raw)
            method, req_id = req.get("method"), req.get("id")
            params = req.get("params") or []
        except (orjson.JSONDecodeError, AttributeError):
            body: dict[str, Any] = {"error": {"code": 2, "msg": "Invalid request"}, "id": None}
        else:
            if method == "LIST_SUBSCRIPTIONS":
                body = {"result": sorted(sub.streams), "id": req_id}
            elif method == "SUBSCRIBE" and isinstance(params, list):
                sub.streams.update(str(p) for p in params)
                body = {"result": None, "id": req_id}
            elif method == "UNSUBSCRIBE" and isinstance(params, list):
                sub.streams.difference_update(str(p) for p in params)
                body = {"result": None, "id": req_id}
            else:
                body = {"error": {"code": 2, "msg": f"Invalid request: {method}"}, "id": req_id}
        self.stats.requests_answered += 1
        with contextlib.suppress(ConnectionClosed):
            await sub.conn.send(orjson.dumps(body), text=True)

    async def _answer_requests(self) -> None:
        while not self._requests.empty():
            sub, raw = self._requests.get_nowait()
            await self._answer(sub, raw)

    # ----- depth snapshots ----------------------------------------------------------------

    async def _depth(self, market: str, query: dict[str, list[str]]) -> Response:
        symbol = (query.get("symbol") or [""])[0].upper()
        if self.capture.markets.get(symbol) != market:
            return _error(400, -1121, "Invalid symbol.")
        limit_text = (query.get("limit") or ["500" if market == "usdm" else "100"])[0]
        if not limit_text.isdigit() or int(limit_text) not in SNAPSHOT_LIMITS:
            return _error(400, -1130, f"Invalid limit {limit_text!r}.")
        limit = min(int(limit_text), MAX_LIMIT[self.capture.markets[symbol]])
        if self.finished.is_set():
            book = self._books[symbol]
            return Response(200, "OK", _JSON, book.snapshot_json(book.last_update_id, limit))
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(symbol, []).append(_SnapshotRequest(limit, future))
        self._request_seen.setdefault(symbol, asyncio.Event()).set()
        try:
            body = await asyncio.wait_for(future, self.wait_for_client_s)
        except TimeoutError:
            return _error(503, -1007, "Timeout waiting for the snapshot point.")
        return Response(200, "OK", _JSON, body)

    def _wants_depth(self, symbol: str) -> bool:
        return any(stream_kind(s) == (symbol, Kind.DIFF) for sub in self._subs for s in sub.streams)

    async def _recorded_point(self, line: CaptureLine) -> None:
        """The capture's own REST snapshot line: the book starts here, requests are answered."""
        symbol = line.symbol
        self._books[symbol].load_snapshot(line.raw)
        self._recorded[symbol] = line.raw
        if not self._pending.get(symbol) and self._wants_depth(symbol):
            # The client asks at connect; give its request the time to arrive.
            seen = self._request_seen.setdefault(symbol, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.wait(), self.barrier_timeout_s)
        requests = self._pending.pop(symbol, [])
        if requests:
            self.stats.snapshots["recorded"] += len(requests)
            await self._serve(symbol, [(r, line.raw, "recorded") for r in requests], line.index)

    async def _fresh_point(self, line: CaptureLine) -> None:
        """Just before `line` (a diff of its symbol): answer the symbol's waiting requests."""
        symbol = line.symbol
        book = self._books[symbol]
        requests = self._pending.get(symbol)
        if not requests or not book.ready:
            return
        del self._pending[symbol]
        ids = diff_ids(line.raw)
        answers: list[tuple[_SnapshotRequest, bytes, str]] = []
        old = self.faults.due("snapshot-old", line.index, symbol)
        new = self.faults.due("snapshot-new", line.index, symbol)
        for req in requests:
            if old is not None:
                old.done = True
                self.stats.snapshots["old"] += 1
                body = self._last_served.get(symbol) or self._recorded.get(symbol)
                if body is None:
                    body = book.snapshot_json(book.last_update_id, req.limit)
                kind = "old"
            elif new is not None:
                new.done = True
                self.stats.snapshots["new"] += 1
                body = self._ahead(symbol, new.count, req.limit)
                kind = "new"
            else:
                self.stats.snapshots["fresh"] += 1
                lid = straddling_id(book.market, ids[0]) if ids else book.last_update_id
                body = book.snapshot_json(lid, req.limit)
                kind = "fresh"
            answers.append((req, body, kind))
        await self._serve(symbol, answers, line.index)

    def _ahead(self, symbol: str, n: int, limit: int) -> bytes:
        """A snapshot `n` diffs ahead of the stream (the book as the exchange has it later)."""
        upcoming = self.capture.peek_diffs(symbol, n + 1)
        book = self._books[symbol].copy()
        for raw in upcoming[:n]:
            book.apply_raw(raw)
        ids = diff_ids(upcoming[n]) if len(upcoming) > n else None
        lid = straddling_id(book.market, ids[0]) if ids else book.last_update_id
        return book.snapshot_json(lid, limit)

    async def _serve(
        self, symbol: str, answers: list[tuple[_SnapshotRequest, bytes, str]], index: int
    ) -> None:
        """Answer snapshot requests, then hold the stream for the client's in-stream request."""
        seen = self._requests_received
        for req, body, kind in answers:
            if not req.future.done():
                req.future.set_result(body)
            self._last_served[symbol] = body
            self.snapshot_log.append(SnapshotServed(symbol, index, kind, body))
        await self._answer_requests()
        deadline = asyncio.get_running_loop().time() + self.barrier_timeout_s
        while self._requests_received == seen:
            self._request_arrived.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not self._subs:
                self.stats.barrier_timeouts += 1
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._request_arrived.wait(), left)
        await self._answer_requests()

    # ----- the market pump ----------------------------------------------------------------

    async def _pump(self) -> None:
        try:
            await self._run_market()
        finally:
            self.stats.finished = True
            self.finished.set()
            for sub in list(self._subs):
                with contextlib.suppress(Exception):
                    await sub.conn.close(1000, END_OF_STREAM)
            for symbol, requests in self._pending.items():
                book = self._books[symbol]
                for req in requests:
                    if not req.future.done():
                        body = book.snapshot_json(book.last_update_id, req.limit)
                        req.future.set_result(body)
                        self.snapshot_log.append(
                            SnapshotServed(symbol, self.stats.lines, "final", body)
                        )

    async def _run_market(self) -> None:
        if not await self._await_subscriber():
            return
        held: dict[str, CaptureLine] = {}  # a reordered diff, sent after its symbol's next one
        lost = 0
        sent = 0
        wanted = self._wanted_streams()
        for line in self.capture.lines():
            self.stats.lines += 1
            lost += await self._line_faults(line)
            if line.kind == Kind.SNAPSHOT:
                await self._recorded_point(line)
                continue
            if line.kind == Kind.DIFF:
                if lost == 0:
                    await self._fresh_point(line)
                self._books[line.symbol].apply_raw(line.raw)
            if lost > 0:  # cut off: the market moves on without the client
                lost -= 1
                self.stats.lost_lines += 1
                continue
            if not self._subs and not await self._await_subscriber():
                return
            if line.stream not in wanted:
                wanted = self._wanted_streams()  # subscriptions may have changed
                if line.stream not in wanted:
                    continue  # nobody reads it: no pacing, no send
            await self._pace(line.local_ts)
            if line.kind == Kind.DIFF:
                late = held.pop(line.symbol, None)
                if await self._diff_faults(line, held):
                    if late is not None:
                        await self._send(late)
                    continue
                await self._send(line)
                if late is not None:
                    await self._send(late)
            else:
                await self._send(line)
            if not self._requests.empty():
                await self._answer_requests()
            # A send under the write limit does not suspend: give the loop to the REST and
            # request handlers after every line sent, or they would wait for the end.
            if sent != self.stats.messages_sent or line.index % 256 == 0:
                sent = self.stats.messages_sent
                await asyncio.sleep(0)
        for line in held.values():
            await self._send(line)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    def _wanted_streams(self) -> set[str | None]:
        return {s for sub in self._subs for s in sub.streams}

    async def _await_subscriber(self) -> bool:
        self._subscribed.clear()
        if self._subs:
            return True
        try:
            await asyncio.wait_for(self._subscribed.wait(), self.wait_for_client_s)
        except TimeoutError:
            log.warning("no client within %.1f s: the market ends", self.wait_for_client_s)
            return False
        self._ts0 = None  # a new pace from here
        return True

    async def _pace(self, local_ts: int) -> None:
        if self.speed is None:
            return
        loop = asyncio.get_running_loop()
        if self._ts0 is None:
            self._t0, self._ts0 = loop.time(), local_ts
            return
        wait = self._t0 + (local_ts - self._ts0) / 1e9 / self.speed - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -MAX_BEHIND_S:
            # Held up by a client that does not read: go on at the recorded pace from here
            # rather than burst the backlog at once.
            self._t0, self._ts0 = loop.time(), local_ts

    def _repace(self) -> None:
        self._ts0 = None

    async def _line_faults(self, line: CaptureLine) -> int:
        """Connection-level faults due before `line`; returns the lines to lose."""
        lost = 0
        if (f := self.faults.due("disconnect", line.index)) is not None:
            f.done = True
            self.stats.disconnects += 1
            for sub in list(self._subs):
                transport = getattr(sub.conn, "transport", None)
                if transport is not None:
                    transport.abort()  # no close frame: the line just goes dead
                self._subs.remove(sub)
            lost = f.count
        if (f := self.faults.due("stall", line.index)) is not None:
            f.done = True
            self.stats.stalls += 1
            await asyncio.sleep(f.seconds)
            self._repace()
        if (f := self.faults.due("shutdown", line.index)) is not None:
            f.done = True
            self.stats.shutdowns += 1
            await self._shutdown_notice()
        if (f := self.faults.due("slow", line.index)) is not None:
            f.done = True
            if f.count >= WRITE_LIMIT:
                raise VenueError(f"slow: the limit must be below {WRITE_LIMIT} bytes")
            self._slow = f
            for sub in self._subs:
                self._small_buffer(sub)
        if self.max_connection_s is not None:
            now = time.monotonic()
            for sub in list(self._subs):
                if not sub.closing and now - sub.opened > self.max_connection_s:
                    sub.closing = True
                    self.stats.rotations += 1
                    self._spawn(sub.conn.close(1000, "connection lifetime reached"))
        return lost

    def _small_buffer(self, sub: _Subscriber) -> None:
        """An exchange keeps little per client: the kernel's send buffer too (else it hides
        megabytes of a slow client's backlog from the `slow` rule)."""
        assert self._slow is not None
        transport = getattr(sub.conn, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._slow.count)

    async def _shutdown_notice(self) -> None:
        """`serverShutdown` to every connection; they close after the grace, and the market
        waits (bounded) for a connection opened after the notice."""
        notice = orjson.dumps({"e": "serverShutdown", "E": int(time.time() * 1000)})
        old = [s for s in self._subs if not s.closing]
        for sub in old:
            sub.closing = True
            with contextlib.suppress(ConnectionClosed):
                await sub.conn.send(notice, text=True)
        deadline = asyncio.get_running_loop().time() + self.barrier_timeout_s
        while not any(s not in old for s in self._subs):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.005)

        async def close_later(subs: list[_Subscriber]) -> None:
            await asyncio.sleep(self.shutdown_grace_s)
            for s in subs:
                with contextlib.suppress(Exception):
                    await s.conn.close(1001, "server shutdown")

        self._spawn(close_later(old))
        self._repace()

    async def _diff_faults(self, line: CaptureLine, held: dict[str, CaptureLine]) -> bool:
        """Drop, duplicate or hold back a diff; True when the line is not to be sent now."""
        if (f := self.faults.due("drop", line.index, line.symbol)) is not None:
            f.done = True
            self.stats.dropped += 1
            return True
        if (f := self.faults.due("dup", line.index, line.symbol)) is not None:
            f.done = True
            self.stats.duplicated += 1
            await self._send(line)
            return False
        if (f := self.faults.due("reorder", line.index, line.symbol)) is not None:
            f.done = True
            self.stats.reordered += 1
            held[line.symbol] = line
            return True
        return False

    async def _send(self, line: CaptureLine) -> None:
        stream = line.stream
        for sub in list(self._subs):
            if stream not in sub.streams:
                continue
            if self._slow is not None:
                transport = getattr(sub.conn, "transport", None)
                if transport is not None and transport.get_write_buffer_size() > self._slow.count:
                    # The exchange's rule for a client that does not keep up: cut it off.
                    self.stats.slow_disconnects += 1
                    self._subs.remove(sub)
                    self._spawn(sub.conn.close(1008, "slow consumer"))
                    continue
            try:
                await sub.conn.send(line.raw, text=True)
                self.stats.messages_sent += 1
                sub.unacked += 1
                if sub.unacked >= self.max_lead and self.speed is None and self._slow is None:
                    await self._wait_for_reader(sub)
            except ConnectionClosed:
                if sub in self._subs:
                    self._subs.remove(sub)

    async def _wait_for_reader(self, sub: _Subscriber) -> None:
        """Max speed: wait (bounded) until the client has read up to here (module doc)."""
        sub.unacked = 0
        self.stats.lead_waits += 1
        try:
            pong = await sub.conn.ping()
            await asyncio.wait_for(pong, self.barrier_timeout_s)
        except TimeoutError:
            self.stats.lead_timeouts += 1
            log.warning(
                "client %d did not answer a ping in %.1f s", sub.sid, self.barrier_timeout_s
            )


def _streams(query: str) -> list[str]:
    names = (parse_qs(query).get("streams") or [""])[0]
    return [s for s in names.split("/") if s]


def _error(status: int, code: int, msg: str) -> Response:
    reason = {400: "Bad Request", 404: "Not Found", 410: "Gone", 503: "Service Unavailable"}
    body = orjson.dumps({"code": code, "msg": msg})
    return Response(status, reason.get(status, "Error"), _JSON, body)


class VenueThread:
    """A `LoopbackVenue` on its own event loop in a thread (tests, benchmarks, the CLI)."""

    def __init__(self, venue: LoopbackVenue) -> None:
        self.venue = venue
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="featureplane-venue", daemon=True)

    def start(self, timeout: float = 30.0) -> VenueThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise VenueError("the venue did not start in time")
        if self._error is not None:
            raise VenueError(f"the venue failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.venue.start()
        finally:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.venue.aclose()

    def wait_finished(self, timeout: float) -> bool:
        loop = self._loop
        if loop is None:
            return False
        fut = asyncio.run_coroutine_threadsafe(self.venue.wait_finished(timeout), loop)
        return bool(fut.result(timeout + 5))

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> VenueThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
