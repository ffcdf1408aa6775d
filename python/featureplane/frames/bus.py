"""Frames to other machines: a bridge to Redis Streams.

`BusPublisher` puts FPF1 frames (docs/frame-abi.md, the same bytes as the ring) on one Redis
stream per symbol, `<prefix>:<feature_set_id>:<symbol>`; `BusConsumer`, on any machine that
reaches the server, reads them back into typed-frame records. docs/transport.md says why Redis
Streams and not NATS, and what loss and lag mean here.

An entry holds up to `entry_frames` frames of one symbol back to back (field `f`) and the
stream's frame number of the first of them (field `n`): every stream numbers its frames 0, 1,
2, ... So a consumer knows exactly what it missed:

- The server keeps about `maxlen` entries per stream (`XADD MAXLEN ~`). A consumer that falls
  further behind finds the next entry's `n` beyond the one it expected: the difference is the
  number of frames it lost, reported by `BusRead.lost`, and the first frame after the loss
  carries `QualityFlag.GAP_DETECTED`, as on the ring.
- The publisher never waits for a consumer; a server it cannot reach is a `BusError`.
- `BusConsumer.lag()` is, per symbol, the frames published and not yet read.
- A late joiner reads each symbol's newest frame with `BusConsumer.latest()`.
- The stream's metadata (`<prefix>:<feature_set_id>:meta`: feature set, schema hash, symbol
  table) is checked when a consumer or a second publisher starts (`SchemaMismatchError`).
- `close()` appends an end marker to every stream; a consumer sees `ended` once all of its
  streams have ended (a new publisher's next frame reopens a stream).

Order is kept within a symbol's stream; across symbols, merge by `local_ts_ns`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import numpy as np

from featureplane.errors import BusError, SchemaMismatchError, UnknownSymbolError
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch, QualityFlag
from featureplane.frames.wire import codec_for
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "featureplane"
DEFAULT_MAXLEN = 100_000
"""Entries a stream keeps (about: trimming is by whole radix-tree nodes)."""
ENTRY_FRAMES = 64
"""Most frames in one entry: fewer round trips and entries for a batch, at most this many
frames of one symbol per entry (a single `publish` is one frame, one entry)."""
META_FORMAT = "featureplane.bus.v1"
TIMEOUT_S = 5.0
"""Socket timeouts: a server that stops answering is a `BusError`, never a hang."""

_GAP = int(QualityFlag.GAP_DETECTED)


def _redis() -> Any:
    try:
        import redis
    except ImportError:  # pragma: no cover - the dev install has it
        raise BusError("the bus bridge needs redis-py: pip install 'featureplane[bus]'") from None
    return redis


def _connect(url: str) -> Any:
    redis = _redis()
    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise BusError(f"cannot reach the bus at {url}: {exc}") from None
    return client


def _guard(call: Any, *args: Any, **kwargs: Any) -> Any:
    redis = _redis()
    try:
        return call(*args, **kwargs)
    except redis.exceptions.RedisError as exc:
        raise BusError(f"bus command failed: {exc}") from None


def _feature_set(feature_set: str | FeatureSet) -> FeatureSet:
    # A registered id, a declaration file (featureplane.features.plan) or a FeatureSet.
    from featureplane.features.resolve import resolve_feature_set

    return resolve_feature_set(feature_set)


def stream_key(prefix: str, feature_set_id: str, symbol: str) -> str:
    return f"{prefix}:{feature_set_id}:{symbol}"


def meta_key(prefix: str, feature_set_id: str) -> str:
    return f"{prefix}:{feature_set_id}:meta"


def _entry_count(fields: dict[bytes, bytes], frame_size: int) -> int:
    return len(fields.get(b"f", b"")) // frame_size


class BusPublisher:
    """Publishes frames of one feature set and symbol table to Redis Streams.

    Parameters
    ----------
    symbols
        The producer's symbol table (stored with the streams for consumers).
    feature_set
        The frames' feature set.
    url
        The Redis server.
    prefix
        First part of every key.
    maxlen
        Entries each stream keeps; a consumer further behind loses frames (counted).
    entry_frames
        Most frames of one symbol per entry in batch publishes.

    Raises
    ------
    BusError
        The server cannot be reached.
    SchemaMismatchError
        The streams already carry another schema under this feature-set id.
    """

    def __init__(
        self,
        symbols: SymbolTable,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        *,
        url: str = DEFAULT_URL,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int = DEFAULT_MAXLEN,
        entry_frames: int = ENTRY_FRAMES,
    ) -> None:
        if maxlen < 1 or entry_frames < 1:
            raise ValueError("maxlen and entry_frames must be positive")
        self.feature_set = fs = _feature_set(feature_set)
        self.symbols = symbols
        self.maxlen = maxlen
        self.entry_frames = entry_frames
        self._codec = codec_for(fs)
        self._size = self._codec.size
        self._client = _connect(url)
        self.keys = [stream_key(prefix, fs.feature_set_id, s.symbol) for s in symbols.specs]
        meta = meta_key(prefix, fs.feature_set_id)
        stored = _guard(self._client.hget, meta, "schema_hash")
        if stored is not None and stored.decode() != fs.schema_hash:
            raise SchemaMismatchError(
                f"the bus carries {fs.feature_set_id} of schema {stored.decode()[:16]} at "
                f"{meta}; this publisher has {fs.schema_hash[:16]}"
            )
        _guard(
            self._client.hset,
            meta,
            mapping={
                "format": META_FORMAT,
                "feature_set_id": fs.feature_set_id,
                "schema_hash": fs.schema_hash,
                "symbols": json.dumps(symbols.to_json()),
            },
        )
        # Continue each stream's numbering where a previous publisher left it.
        self._next = [self._tail(key) for key in self.keys]
        self.published = 0

    def _tail(self, key: str) -> int:
        last = _guard(self._client.xrevrange, key, count=1)
        if not last:
            return 0
        fields = last[0][1]
        return int(fields[b"n"]) + _entry_count(fields, self._size)

    def publish(self, frame: FeatureUpdateFrameV1 | bytes | np.ndarray) -> None:
        """Publish one frame (an object, its FPF1 bytes, or one record) as one entry."""
        if isinstance(frame, FeatureUpdateFrameV1):
            data = self._codec.pack(frame, self.symbols.id_of(frame.symbol))
        elif isinstance(frame, np.ndarray):
            data = self._check(frame).tobytes()
        else:
            data = bytes(frame)
        records = self._codec.records_from_bytes(data)
        self.publish_records(records)

    def publish_batch(self, batch: FrameBatch) -> None:
        """Publish every frame of a `FrameBatch`."""
        self.publish_records(self._codec.batch_to_records(batch))

    def publish_records(self, records: np.ndarray) -> None:
        """Publish typed-frame records: per symbol, in order, `entry_frames` to an entry, in
        one round trip to the server.

        Raises
        ------
        SchemaMismatchError
            Records of another feature set.
        UnknownSymbolError
            A symbol id beyond the publisher's table.
        BusError
            The server failed or cannot be reached.
        """
        records = self._check(records)
        if not len(records):
            return
        sids = records["symbol_id"]
        present = np.unique(sids).tolist()
        if present[-1] >= len(self.keys):
            raise UnknownSymbolError(f"unknown symbol id {present[-1]}")
        pipe = self._client.pipeline(transaction=False)
        for sid in present:
            rows = records[sids == sid] if len(self.keys) > 1 else records
            key = self.keys[sid]
            for i in range(0, len(rows), self.entry_frames):
                part = rows[i : i + self.entry_frames]
                pipe.xadd(
                    key,
                    {"n": self._next[sid], "f": part.tobytes()},
                    maxlen=self.maxlen,
                    approximate=True,
                )
                self._next[sid] += len(part)
        _guard(pipe.execute)
        self.published += len(records)

    def _check(self, records: np.ndarray) -> np.ndarray:
        if records.dtype != self._codec.dtype:
            raise SchemaMismatchError(
                f"records of dtype {records.dtype} are not "
                f"{self.feature_set.feature_set_id} typed frames"
            )
        return np.ascontiguousarray(records).reshape(-1)

    def close(self) -> None:
        """Append an end marker to every stream, and disconnect."""
        pipe = self._client.pipeline(transaction=False)
        for key, n in zip(self.keys, self._next, strict=True):
            pipe.xadd(key, {"n": n, "end": 1}, maxlen=self.maxlen, approximate=True)
        _guard(pipe.execute)
        self._client.close()

    def __enter__(self) -> BusPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class BusRead:
    """Frames read from the bus (a copy), and the frames lost before them."""

    records: np.ndarray
    lost: int
    lost_by_symbol: dict[str, int] = field(default_factory=dict)
    ended: bool = False
    """Every stream of the consumer has ended (the publisher closed)."""

    def __len__(self) -> int:
        return len(self.records)


class BusConsumer:
    """Reads frames of one feature set back from Redis Streams.

    Parameters
    ----------
    feature_set
        The feature set this consumer is built for (checked against the streams' metadata).
    url, prefix
        The server and key prefix of the publisher.
    symbols
        The symbols to read (default: every symbol of the publisher's table).
    start
        "live": frames published from now on; "oldest": from the oldest entry kept.

    Raises
    ------
    BusError
        The server cannot be reached, or nothing of this feature set was ever published.
    SchemaMismatchError
        The streams carry another schema.
    """

    def __init__(
        self,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        *,
        url: str = DEFAULT_URL,
        prefix: str = DEFAULT_PREFIX,
        symbols: Sequence[str] | None = None,
        start: Literal["live", "oldest"] = "live",
    ) -> None:
        self.feature_set = fs = _feature_set(feature_set)
        self._codec = codec_for(fs)
        self._size = self._codec.size
        self.dtype = self._codec.dtype
        self._client = _connect(url)
        meta = _guard(self._client.hgetall, meta_key(prefix, fs.feature_set_id))
        if not meta:
            raise BusError(f"nothing of {fs.feature_set_id} was published under {prefix!r}")
        if meta.get(b"format") != META_FORMAT.encode() or meta[b"schema_hash"].decode() != (
            fs.schema_hash
        ):
            raise SchemaMismatchError(
                f"the bus carries schema {meta.get(b'schema_hash', b'?').decode()[:16]}, this "
                f"consumer is built for {fs.feature_set_id} ({fs.schema_hash[:16]})"
            )
        self.symbols = SymbolTable.from_json(json.loads(meta[b"symbols"]))
        names = [s.symbol for s in self.symbols.specs] if symbols is None else list(symbols)
        self._sids = {
            stream_key(prefix, fs.feature_set_id, s): self.symbols.id_of(s) for s in names
        }
        self._names = {key: name for key, name in zip(self._sids, names, strict=True)}
        self._ids: dict[str, bytes | str] = {}
        self._expect: dict[str, int | None] = {}
        self._ended: dict[str, bool] = {}
        for key in self._sids:
            last = _guard(self._client.xrevrange, key, count=1) if start == "live" else None
            if last:
                entry_id, fields = last[0]
                self._ids[key] = entry_id
                self._expect[key] = int(fields[b"n"]) + _entry_count(fields, self._size)
            else:
                self._ids[key] = "0-0"
                self._expect[key] = None
            self._ended[key] = False
        self.lost = 0
        """Frames lost to trimming, in all."""

    @property
    def ended(self) -> bool:
        return all(self._ended.values())

    def read(self, count: int = 1000, *, timeout: float = 0.0) -> BusRead:
        """The next entries (up to `count` per stream), waiting up to `timeout` seconds."""
        block = int(timeout * 1000) if timeout > 0 else None
        reply = _guard(self._client.xread, self._ids, count=count, block=block) or []
        chunks: list[bytes] = []
        lost_by: dict[str, int] = {}
        for key_b, entries in reply:
            key = key_b.decode() if isinstance(key_b, bytes) else key_b
            for entry_id, fields in entries:
                self._ids[key] = entry_id
                n = int(fields[b"n"])
                expect = self._expect[key]
                if b"end" in fields:
                    self._ended[key] = True
                    self._expect[key] = n
                    continue
                data = fields[b"f"]
                if len(data) % self._size or not data:
                    raise SchemaMismatchError(
                        f"a bus entry of {len(data)} bytes is not whole "
                        f"{self.feature_set.feature_set_id} frames"
                    )
                self._ended[key] = False
                if expect is not None and n > expect:
                    name = self._names[key]
                    lost_by[name] = lost_by.get(name, 0) + n - expect
                    flags = int.from_bytes(data[20:24], "little") | _GAP
                    data = data[:20] + flags.to_bytes(4, "little") + data[24:]
                self._expect[key] = n + len(data) // self._size
                chunks.append(data)
        lost = sum(lost_by.values())
        self.lost += lost
        records = self._codec.records_from_bytes(b"".join(chunks)).copy()
        return BusRead(records, lost, lost_by, self.ended)

    def latest(self) -> np.ndarray:
        """Each symbol's newest frame on the bus (for a late joiner)."""
        pipe = self._client.pipeline(transaction=False)
        for key in self._sids:
            pipe.xrevrange(key, count=8)
        chunks = []
        for entries in _guard(pipe.execute):
            for _, fields in entries or []:
                if b"f" in fields:
                    chunks.append(fields[b"f"][-self._size :])
                    break
        return self._codec.records_from_bytes(b"".join(chunks)).copy()

    def lag(self) -> dict[str, int]:
        """Per symbol, the frames published and not read yet."""
        pipe = self._client.pipeline(transaction=False)
        for key in self._sids:
            pipe.xrevrange(key, count=1)
        out = {}
        for key, last in zip(self._sids, _guard(pipe.execute), strict=True):
            tail = 0
            if last:
                fields = last[0][1]
                tail = int(fields[b"n"]) + _entry_count(fields, self._size)
            expect = self._expect[key]
            out[self._names[key]] = max(tail - (expect if expect is not None else 0), 0)
        return out

    def to_batch(self, records: np.ndarray) -> FrameBatch:
        """Records as a `FrameBatch` (columns copied out; `input_index` is -1)."""
        return self._codec.records_to_batch(records, self.symbols)

    def close(self) -> None:
        self._client.close()
