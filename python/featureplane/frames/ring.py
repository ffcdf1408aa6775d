"""The shared-memory frame ring: FPF1 frames to other processes on this machine.

One `RingWriter` per ring publishes typed frames (docs/frame-abi.md) into fixed-size slots of a
segment under `/dev/shm/<name>`; any number of `RingReader`s, in any process, attach by name
and read them in batches as a numpy view of `frame_batch_dtype`, with no object per frame.
The ring lives in the Rust core (`featureplane_core::ring`); docs/transport.md has the layout,
the seqlock and the lapping rules.

- The writer never waits for a reader. A reader that falls a whole ring behind is lapped: its
  next read reports exactly how many frames it lost (`RingRead.lost`) and the first frame of
  every symbol after the loss carries `QualityFlag.GAP_DETECTED`. A torn frame is never
  returned.
- Attach checks the ring's feature set, schema hash and frame size (`SchemaMismatchError`).
- The segment's metadata holds the writer's symbol table and feature set (its `to_json()`,
  which for a declared set carries the plan), so a reader needs only the name:
  `RingReader(name, feature_set=None)` takes the ring's own set, checked against its plan and
  against the hashes of the ring's header (`SchemaMismatchError` when they differ).
- A late joiner reads each symbol's current frame with `RingReader.latest()`.
- A writer that died without closing leaves a stale segment: `probe(name)` reports it
  (`state == "crashed"`), attach refuses it (`StaleRingError`), the next writer of the name
  replaces it and says so (`RingWriter.replaced`).

Example::

    with RingWriter("fp.btc", engine.symbols) as ring:      # producer
        ring.publish_batch(engine.process_batch(events))

    reader = RingReader("fp.btc")                            # another process
    got = reader.read(timeout=1.0)
    got.records["mid"], got.lost
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from featureplane._rust import use_rust
from featureplane.errors import SchemaMismatchError, TransportError
from featureplane.frames.frame import FeatureUpdateFrameV1, FrameBatch
from featureplane.frames.wire import codec_for, frame_batch_dtype
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet

if TYPE_CHECKING:
    from featureplane.engine.facade import FeatureEngine, Subscription

DEFAULT_CAPACITY = 1 << 16
"""Slots of a ring (16 MiB of lob_shared_v1 frames): about 0.2 s of a 300k frames/s burst."""
DEFAULT_MAX_READERS = 64
DEFAULT_BATCH = 4096
META_FORMAT = "featureplane.ring.v1"

Start = Literal["live", "oldest"]


def _core() -> Any:
    """The extension module; the ring has no Python fallback."""
    use_rust("rust", "engine")
    from featureplane import _core

    return _core


def _feature_set(feature_set: str | FeatureSet) -> FeatureSet:
    # A registered id, a declaration file (featureplane.features.plan) or a FeatureSet.
    from featureplane.features.resolve import resolve_feature_set

    return resolve_feature_set(feature_set)


@dataclass(frozen=True)
class RingStatus:
    """A ring segment as its header describes it."""

    name: str
    state: str
    """"live", "closed" (readers drain what is left) or "crashed" (the writer is gone)."""
    writer_pid: int
    epoch: int
    """Wall-clock ns at which the writer created the segment."""
    cursor: int
    """Frames published."""
    heartbeat_ns: int
    heartbeat_age_ns: int
    capacity: int
    max_symbols: int
    frame_size: int
    feature_set_id: str
    schema_hash64: int

    @property
    def stale(self) -> bool:
        return self.state == "crashed"


@dataclass(frozen=True)
class ReaderLag:
    """One attached reader as the writer sees it (the ring's reader table)."""

    pid: int
    position: int
    lag: int
    """Frames published that it has not read yet."""
    lost: int
    """Frames it lost to being lapped, in all."""
    gaps: int
    attached_ns: int
    alive: bool


def probe(name: str) -> RingStatus | None:
    """The status of the ring `name`, or None when there is none."""
    found = _core().ring_probe(name)
    return None if found is None else RingStatus(**found)


def remove_stale(name: str) -> RingStatus | None:
    """Remove the ring `name` if its writer is gone (its status then); a live one is refused
    with `RingBusyError`."""
    found = _core().ring_remove_stale(name)
    return None if found is None else RingStatus(**found)


class RingWriter:
    """The writer of the ring `name`.

    Parameters
    ----------
    name
        The segment's name under /dev/shm: letters, digits, ".", "_", "-".
    symbols
        The producer's symbol table: frames carry ids into it, readers get it from the ring.
    feature_set
        The frames' feature set (default lob_shared_v1).
    capacity
        Slots, a power of two: how far a reader may fall behind before it loses frames.
    max_readers
        Entries of the reader table (readers beyond it read normally, without a visible lag).
    replace_stale
        Replace a segment of this name left by a writer that is gone (reported by
        `replaced`); False refuses it with `StaleRingError`.
    lock_memory
        `mlock` the segment in this process (never swapped out). Every page is mapped at
        create either way (no page fault on a slot's first write).

    Raises
    ------
    RingBusyError
        A live writer holds the name.
    TransportError
        `lock_memory` refused (no `CAP_IPC_LOCK`, `RLIMIT_MEMLOCK` below the segment).
    """

    def __init__(
        self,
        name: str,
        symbols: SymbolTable,
        feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
        *,
        capacity: int = DEFAULT_CAPACITY,
        max_readers: int = DEFAULT_MAX_READERS,
        replace_stale: bool = True,
        lock_memory: bool = False,
    ) -> None:
        self.feature_set = _feature_set(feature_set)
        self.symbols = symbols
        self._codec = codec_for(self.feature_set)
        self.dtype = self._codec.dtype
        meta = {
            "format": META_FORMAT,
            "feature_set_id": self.feature_set.feature_set_id,
            "schema_hash": self.feature_set.schema_hash,
            "symbols": symbols.to_json(),
            # The set itself (a declared set's carries its plan): a reader that attaches by
            # name alone learns the columns from the ring (`RingReader(name, None)`).
            "feature_set": self.feature_set.to_json(),
        }
        self._ring = _core().RingWriter(
            name,
            capacity=capacity,
            max_symbols=max(len(symbols), 1),
            max_readers=max_readers,
            frame_size=self._codec.size,
            feature_set_id=self.feature_set.feature_set_id,
            schema_hash64=self.feature_set.schema_hash64,
            meta=json.dumps(meta).encode(),
            replace_stale=replace_stale,
        )
        if lock_memory:
            self._ring.lock_memory()
        found = self._ring.replaced()
        self.replaced: RingStatus | None = None if found is None else RingStatus(**found)
        """The crashed or closed segment of this name that this writer replaced."""

    @property
    def name(self) -> str:
        return str(self._ring.name)

    @property
    def cursor(self) -> int:
        """Frames published so far (the next frame's position)."""
        return int(self._ring.cursor)

    @property
    def capacity(self) -> int:
        return int(self._ring.capacity)

    def publish(self, frame: FeatureUpdateFrameV1 | bytes | np.ndarray) -> int:
        """Publish one frame: a frame object, its FPF1 bytes, or one record; its position.

        Raises
        ------
        SchemaMismatchError
            The frame is of another feature set or layout.
        UnknownSymbolError
            Its symbol is not in the ring's symbol table.
        """
        if isinstance(frame, FeatureUpdateFrameV1):
            data: bytes | np.ndarray = self._codec.pack(frame, self.symbols.id_of(frame.symbol))
        elif isinstance(frame, np.ndarray):
            data = self._as_bytes(frame)
        else:
            data = bytes(frame)
        return int(self._ring.publish(data))

    def publish_records(self, records: np.ndarray) -> int:
        """Publish typed-frame records (`frame_batch_dtype`) in one call; the first one's
        position. Every record is checked before any is published."""
        return int(self._ring.publish_batch(self._as_bytes(records)))

    def publish_batch(self, batch: FrameBatch) -> int:
        """Publish every frame of a `FrameBatch` (`FeatureEngine.process_batch`'s result)."""
        return self.publish_records(self._codec.batch_to_records(batch))

    def subscribe(self, engine: FeatureEngine) -> Subscription:
        """Publish every frame `engine` pushes from now on (`FeatureEngine.on_features`)."""

        def publish(frame: FeatureUpdateFrameV1) -> None:
            self.publish(frame)

        return engine.on_features(
            publish,
            feature_set_id=self.feature_set.feature_set_id,
            schema_hash=self.feature_set.schema_hash,
        )

    def _as_bytes(self, records: np.ndarray) -> np.ndarray:
        if records.dtype != self.dtype:
            raise SchemaMismatchError(
                f"records of dtype {records.dtype} are not "
                f"{self.feature_set.feature_set_id} typed frames"
            )
        return np.ascontiguousarray(records).reshape(-1).view(np.uint8)

    def heartbeat(self) -> None:
        """Mark the writer alive while it has nothing to publish."""
        self._ring.heartbeat()

    def readers(self) -> list[ReaderLag]:
        """Every attached reader with its lag and losses (the metrics layer reads these)."""
        return [ReaderLag(*r) for r in self._ring.readers()]

    def status(self) -> RingStatus:
        return RingStatus(**self._ring.status())

    @property
    def closed(self) -> bool:
        return bool(self._ring.closed)

    def close(self, unlink: bool = True) -> None:
        """Close the ring: readers drain it and then see the end. `unlink` removes the name
        (attached readers keep reading; new ones cannot attach)."""
        self._ring.close(unlink)

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class RingRead:
    """One read: `records` are the frames at positions `start, start + 1, ...`, after `lost`
    frames the reader was lapped over.

    `records` is a view of the reader's buffer, valid until its next read: copy it to keep it.
    """

    records: np.ndarray
    start: int
    lost: int
    closed: bool
    """The writer closed the ring and everything was read."""

    def __len__(self) -> int:
        return len(self.records)

    @property
    def positions(self) -> np.ndarray:
        return np.arange(self.start, self.start + len(self.records), dtype=np.uint64)


def _attach_own(name: str, start: Start, allow_stale: bool) -> tuple[Any, FeatureSet]:
    """Attach to `name` as its header describes it and read the feature set its metadata
    carries; refused unless the set follows from its plan and has the header's id, hash and
    frame size and the metadata's schema hash."""
    from featureplane.errors import RingNotFoundError
    from featureplane.features.plan import feature_set_from_json

    status = probe(name)
    if status is None:
        raise RingNotFoundError(f"no ring {name!r}")
    ring = _core().RingReader(
        name,
        feature_set_id=status.feature_set_id,
        schema_hash64=status.schema_hash64,
        frame_size=status.frame_size,
        start=start,
        allow_stale=allow_stale,
    )
    try:
        meta = json.loads(bytes(ring.meta()))
        fs = feature_set_from_json(meta["feature_set"])
        stored_hash = meta["schema_hash"]
    except SchemaMismatchError:
        del ring  # detach now (the reader's table entry), not when the traceback goes
        raise
    except (KeyError, TypeError, ValueError) as exc:
        del ring
        raise SchemaMismatchError(
            f"ring {name!r} carries no readable feature set (name the set): {exc!r}"
        ) from None
    if (fs.feature_set_id, fs.schema_hash64, frame_batch_dtype(fs).itemsize, fs.schema_hash) != (
        status.feature_set_id,
        status.schema_hash64,
        status.frame_size,
        stored_hash,
    ):
        del ring
        raise SchemaMismatchError(
            f"ring {name!r}: the feature set in its metadata ({fs.feature_set_id}, schema "
            f"{fs.schema_hash[:16]}) is not the one its header and hash name "
            f"({status.feature_set_id}, schema {str(stored_hash)[:16]})"
        )
    return ring, fs


class RingReader:
    """A reader of the ring `name`, in any process.

    Parameters
    ----------
    name
        The ring's name.
    feature_set
        The feature set this reader is built for; a ring of another set, schema hash or
        frame size is refused with `SchemaMismatchError`. None: the ring's own set, from its
        metadata (refused when it does not follow from its plan or its hash is not the one
        the ring's header and metadata carry).
    start
        "live": from the next frame published (with `latest()` for current values);
        "oldest": from the oldest frame the ring still holds.
    batch
        Most frames one `read` returns (the size of the reader's buffer).
    allow_stale
        Attach to a ring whose writer is gone, to drain it; otherwise `StaleRingError`.
    lock_memory
        `mlock` the segment in this process. Every page is mapped at attach either way (no
        page fault on a slot's first read).

    Raises
    ------
    RingNotFoundError, SchemaMismatchError, StaleRingError
    TransportError
        `lock_memory` refused (no `CAP_IPC_LOCK`, `RLIMIT_MEMLOCK` below the segment).
    """

    def __init__(
        self,
        name: str,
        feature_set: str | FeatureSet | None = DEFAULT_FEATURE_SET_ID,
        *,
        start: Start = "live",
        batch: int = DEFAULT_BATCH,
        allow_stale: bool = False,
        lock_memory: bool = False,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be positive, got {batch}")
        if feature_set is None:
            self._ring, fs = _attach_own(name, start, allow_stale)
        else:
            fs = _feature_set(feature_set)
            self._ring = _core().RingReader(
                name,
                feature_set_id=fs.feature_set_id,
                schema_hash64=fs.schema_hash64,
                frame_size=frame_batch_dtype(fs).itemsize,
                start=start,
                allow_stale=allow_stale,
            )
        self.feature_set = fs
        self.dtype = frame_batch_dtype(fs)
        if lock_memory:
            self._ring.lock_memory()
        meta = json.loads(bytes(self._ring.meta()))
        if meta.get("format") != META_FORMAT or meta.get("schema_hash") != fs.schema_hash:
            raise SchemaMismatchError(
                f"ring {name!r} carries schema {str(meta.get('schema_hash'))[:16]}, this reader "
                f"is built for {fs.feature_set_id} ({fs.schema_hash[:16]})"
            )
        self.symbols = SymbolTable.from_json(meta["symbols"])
        self._buf = np.zeros(batch, dtype=self.dtype)
        self._bytes = self._buf.view(np.uint8)

    @property
    def name(self) -> str:
        return str(self._ring.name)

    def read(
        self, max_frames: int | None = None, *, timeout: float = 0.0, spin: float = 0.0
    ) -> RingRead:
        """The next frames (up to `max_frames`, at most the batch size), waiting up to
        `timeout` seconds for one: spinning the first `spin` seconds (lowest latency, a core
        busy), then parked on the ring's futex until the writer publishes (no CPU used).
        An empty read means nothing arrived in time, or `closed`."""
        n = len(self._buf) if max_frames is None else min(max_frames, len(self._buf))
        start, got, lost, closed = self._ring.read_into(
            self._bytes, n, int(timeout * 1e9), int(spin * 1e9)
        )
        return RingRead(self._buf[:got], int(start), int(lost), bool(closed))

    def frames(self, *, idle_timeout: float = 1.0) -> Iterator[RingRead]:
        """Reads until the writer closes the ring (or nothing arrives for `idle_timeout`
        seconds and the writer is gone); empty reads are skipped."""
        while True:
            got = self.read(timeout=idle_timeout)
            if len(got) or got.lost:
                yield got
            if got.closed:
                return
            if not len(got) and not got.lost and not self.writer_alive():
                return

    def latest(self) -> np.ndarray:
        """Each symbol's current frame (a copy), older than the reader's position: at attach,
        the state a late joiner starts from; the ring brings everything after it."""
        out = np.zeros(max(int(self._ring.max_symbols), 1), dtype=self.dtype)
        n = self._ring.latest_into(out.view(np.uint8))
        return out[:n]

    def to_batch(self, records: np.ndarray) -> FrameBatch:
        """Records as a `FrameBatch` (columns copied out; `input_index` is -1)."""
        return codec_for(self.feature_set).records_to_batch(records, self.symbols)

    @property
    def position(self) -> int:
        """The next position this reader reads."""
        return int(self._ring.position)

    @property
    def cursor(self) -> int:
        """The writer's cursor: frames published."""
        return int(self._ring.cursor)

    @property
    def lag(self) -> int:
        """Frames published that this reader has not read (a gauge for the metrics layer)."""
        return int(self._ring.lag)

    @property
    def lost(self) -> int:
        """Frames lost to being lapped, in all (a counter for the metrics layer)."""
        return int(self._ring.lost)

    @property
    def gaps(self) -> int:
        """Times this reader was lapped."""
        return int(self._ring.gaps)

    @property
    def capacity(self) -> int:
        return int(self._ring.capacity)

    def writer_alive(self) -> bool:
        """Whether the writer that created the segment still runs (pid and start time)."""
        return bool(self._ring.writer_alive())

    def status(self) -> RingStatus:
        return RingStatus(**self._ring.status())

    def close(self) -> None:
        """Detach: the reader's entry in the reader table is freed at once (also when the
        reader is garbage collected); any later call raises `TransportError`."""
        self._ring = _Detached()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Detached:
    """What a closed reader holds instead of its ring."""

    def __getattr__(self, name: str) -> Any:
        raise TransportError("this ring reader is closed")
