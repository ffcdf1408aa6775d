"""`featureplane bench --transport`: frame transports between two processes, side by side.

The same FPF1 frames (240 bytes of lob_shared_v1) go from a writer process to a reader process
through the shared-memory ring (driven by the core's own loops, and through the Python API),
a `multiprocessing.Queue`, a pipe, a TCP socket on 127.0.0.1, and the Redis Streams bus. Two
runs per transport:

- latency: one frame at a time, one every interval (no queueing), the writer stamping
  `local_ts_ns` with CLOCK_MONOTONIC (one clock for every process of the machine) just before
  sending and the reader subtracting it on receipt; p50 / p99 / p99.9. The ring's rows run in
  its deployment configurations side by side: as the OS places it, pinned to a core each,
  pinned and SCHED_FIFO (docs/transport.md, "Tail latency");
- throughput: frames in batches as fast as the writer can, the reader reading batches; frames
  received per second of the reader's time.

Every row checks its output: the reader checks each frame's `seq` against the position it
must have, and received + lost must be every frame sent. The ring may lose frames in the
throughput run (a writer never waits for a reader): they are counted and shown, not hidden.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np

from featureplane.errors import TransportError
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.frames.placement import Placement, apply_placement, check_cpus, placed
from featureplane.frames.wire import frame_batch_dtype
from featureplane.instruments import InstrumentSpec, SymbolTable

DTYPE = frame_batch_dtype(LOB_SHARED_V1)
SIZE = DTYPE.itemsize
SYMBOLS = SymbolTable([InstrumentSpec("BTCUSDT", "0.1", "0.001")])
TIMEOUT_S = 120.0
BATCH = 1024
"""Frames per write in the throughput runs (a `FrameBatch` of one engine call)."""


def frames(first: int, n: int) -> np.ndarray:
    """`n` valid lob_shared_v1 frames with `seq` = first, first + 1, ..."""
    rec = np.zeros(n, dtype=DTYPE)
    rec["magic"] = b"FPF1"
    rec["layout_version"] = 1
    rec["n_values"] = len(LOB_SHARED_V1)
    rec["schema_hash64"] = LOB_SHARED_V1.schema_hash64
    rec["seq"] = np.arange(first, first + n)
    rec["bid_px"] = 618_002
    rec["ask_px"] = 618_003
    rec["microprice"] = 61_800.25
    return rec


@dataclass
class Row:
    transport: str
    latency_us: dict[str, float] = field(default_factory=dict)
    frames_per_s: float = 0.0
    sent: int = 0
    received: int = 0
    lost: int = 0
    correct: bool = False
    note: str = ""


@dataclass
class TransportTable:
    rows: list[Row]
    clock_read_ns: int = 0
    """Median cost of one read of the stamping clock (CLOCK_MONOTONIC)."""
    load: int = 0
    """Busy processes that ran beside the table."""

    @property
    def correct(self) -> bool:
        return all(r.correct for r in self.rows if not r.note.startswith("skipped"))

    def format(self) -> str:
        base = next((r for r in self.rows if r.correct and r.latency_us), None)
        head = (
            f"{'transport':<24}{'p50 us':>11}{'p99 us':>11}{'p99.9 us':>11}{'Mframes/s':>11}"
            f"{'lost':>12}{'p50 x':>9}{'tput x':>8}  check"
        )
        lines = ["frame transports, writer process -> reader process (240-byte frames)", head]
        for r in self.rows:
            if r.note.startswith("skipped"):
                lines.append(f"{r.transport:<24}{r.note}")
                continue
            lat = r.latency_us
            p50x = lat["p50"] / base.latency_us["p50"] if base and lat else float("nan")
            if not lat:
                lines.append(
                    f"{r.transport:<24}{'-':>11}{'-':>11}{'-':>11}{r.frames_per_s / 1e6:>11.2f}"
                    f"{'-':>12}{'-':>9}{r.frames_per_s / base.frames_per_s if base else 0:>8.3f}"
                    f"  {'ok' if r.correct else 'WRONG'} {r.note}"
                )
                continue
            tput, tpx = "-", "-"
            if r.frames_per_s and base and base.frames_per_s:
                tput = f"{r.frames_per_s / 1e6:.2f}"
                tpx = f"{r.frames_per_s / base.frames_per_s:.3f}"
            lines.append(
                f"{r.transport:<24}{lat.get('p50', 0):>11.2f}{lat.get('p99', 0):>11.2f}"
                f"{lat.get('p99.9', 0):>11.2f}{tput:>11}{r.lost:>12,}"
                f"{p50x:>9.3g}{tpx:>8}  {'ok' if r.correct else 'WRONG'} {r.note}".rstrip()
            )
        lines.append(
            "p50 x, tput x: this row over the first (ring, core loops): latency and throughput"
        )
        ring = [r for r in self.rows if r.latency_us and r.transport.startswith("ring")]
        if ring:
            labels = _bucket_labels()
            lines.append("")
            lines.append(f"{'latency, % of frames':<24}" + "".join(f"{lab:>12}" for lab in labels))
            lines.extend(
                f"{r.transport:<24}"
                + "".join(f"{r.latency_us[f'share {lab}']:>12.2f}" for lab in labels)
                for r in ring
            )
        if self.clock_read_ns:
            lines.append(
                f"stamps: CLOCK_MONOTONIC, {self.clock_read_ns} ns a read; "
                f"busy processes beside the run: {self.load}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "correct": self.correct,
            "clock_read_ns": self.clock_read_ns,
            "load": self.load,
            "rows": [r.__dict__ for r in self.rows],
        }


BUCKETS_US = (1.0, 5.0, 50.0, 1000.0)
"""Edges of the latency distribution printed under the table: < 1 us (a cache-line hand-off),
1-5 us (inside the p99 goal), 5-50 us (an interrupt, a wake-up), 50 us-1 ms (a context
switch), > 1 ms (a time slice, a throttled or stolen core)."""


def _percentiles(lat_ns: np.ndarray) -> dict[str, float]:
    if not len(lat_ns):
        return {}
    us = lat_ns.astype(np.float64) / 1e3
    q = np.percentile(us, [10, 50, 99, 99.9])
    out = {
        "p10": float(q[0]),
        "p50": float(q[1]),
        "p99": float(q[2]),
        "p99.9": float(q[3]),
        "max": float(us.max()),
        "over_5us_pct": float((us > 5).mean() * 100),
    }
    counts = np.histogram(us, bins=(0.0, *BUCKETS_US, np.inf))[0]
    for label, c in zip(_bucket_labels(), counts, strict=True):
        out[f"share {label}"] = float(c / len(us) * 100)
    return out


def _bucket_labels() -> list[str]:
    edges = [f"{e:g}" for e in BUCKETS_US]
    middle = [f"{a}-{b}us" for a, b in itertools.pairwise(edges)]
    return [f"<{edges[0]}us", *middle, f">{edges[-1]}us"]


# ----- the ring, driven by the core's loops ------------------------------------------------


def _core() -> Any:
    from featureplane import _core

    return _core


def _ring_writer(name: str, capacity: int) -> Any:
    return _core().RingWriter(
        name,
        capacity=capacity,
        max_symbols=1,
        max_readers=8,
        frame_size=SIZE,
        feature_set_id=LOB_SHARED_V1.feature_set_id,
        schema_hash64=LOB_SHARED_V1.schema_hash64,
        meta=b"{}",
        replace_stale=True,
    )


def _ring_reader(name: str) -> Any:
    return _core().RingReader(
        name,
        feature_set_id=LOB_SHARED_V1.feature_set_id,
        schema_hash64=LOB_SHARED_V1.schema_hash64,
        frame_size=SIZE,
    )


SPIN_S = 0.02
"""Longest spin of one wait of a latency reader before it parks on the futex: a bound on how
long a reader (a FIFO one too) holds its core while nothing arrives."""


@dataclass(frozen=True)
class RingTuning:
    """One configuration of the ring's latency row: where the writer and reader run, and
    whether the reader spins (bounded by `SPIN_S`, then parks) or parks at once."""

    label: str
    writer: Placement = field(default_factory=Placement)
    reader: Placement = field(default_factory=Placement)
    spin: bool = True
    lock_memory: bool = False


def _core_ring_reader(
    name: str, mode: str, n: int, tuning: RingTuning, ready: Event, out: Any
) -> None:
    report = apply_placement(tuning.reader)
    reader = _ring_reader(name)
    if tuning.lock_memory:
        reader.lock_memory()
    ready.set()
    if mode == "latency":
        timeout = int(TIMEOUT_S * 1e9)
        spin = int(SPIN_S * 1e9) if tuning.spin else 0
        got, lost, wrong, lat, _ = _core().ring_bench_read_latencies(reader, n, timeout, spin)
        out.put((got, lost, wrong, np.asarray(lat), 0, report.refused))
    else:
        got, lost, wrong, elapsed = _core().ring_bench_read_flood(
            reader, 8192, int(TIMEOUT_S * 1e9)
        )
        out.put((got, lost, wrong, np.zeros(0, np.uint64), elapsed, report.refused))


def _core_ring(
    ctx: Any, mode: str, n: int, interval_ns: int, tuning: RingTuning = RingTuning("default")
) -> tuple[Any, ...]:
    """One run of the core's loops: (received, lost, wrong, latencies_ns, elapsed_ns,
    refused), `refused` naming the placement knobs the kernel refused (writer's and
    reader's)."""
    name = f"fp-bench-{os.getpid()}-{mode}"
    writer = _ring_writer(name, 1 << 16)
    if tuning.lock_memory:
        writer.lock_memory()
    try:
        ready, out = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=_core_ring_reader, args=(name, mode, n, tuning, ready, out))
        proc.start()
        _wait_ready(ready, proc)
        time.sleep(0.05)
        template = frames(0, 1).tobytes()
        with placed(tuning.writer) as report:
            if mode == "latency":
                # The writer sleeps between frames, so a FIFO writer never spins.
                _core().ring_bench_write_paced(writer, template, n, interval_ns)
            else:
                _core().ring_bench_write_flood(writer, template, n, BATCH)
        writer.close(False)
        result = out.get(timeout=TIMEOUT_S)
        proc.join(TIMEOUT_S)
        return (*result[:5], report.refused + tuple(result[5]))
    finally:
        writer.close(True)


def _wait_ready(ready: Event, proc: Any) -> None:
    """Wait for the reader process to attach; a reader that died first is an error now, not
    a wait of `TIMEOUT_S`."""
    deadline = time.monotonic() + TIMEOUT_S
    while not ready.wait(0.1):
        if not proc.is_alive() or time.monotonic() > deadline:
            raise TransportError(f"the reader process did not attach (exit code {proc.exitcode})")


def tunings(pin: tuple[int, int] | None, fifo_priority: int) -> list[RingTuning]:
    """The ring's latency rows: the default, then each deployment knob added in turn.

    `pin` is (writer core, reader core), None to leave the pinned rows out; the FIFO row
    makes the reader (the spinner) and the writer (which sleeps between frames) SCHED_FIFO,
    so at most one FIFO process ever spins, and only for `SPIN_S` at a time. It is left out
    when the two cores are one (a FIFO spinner would hold the writer off its core)."""
    rows = [RingTuning("ring (core loops)")]
    if pin is not None:
        w, r = Placement(cpus=(pin[0],)), Placement(cpus=(pin[1],))
        rows.append(RingTuning("ring pinned + spin", w, r))
        if fifo_priority and pin[0] != pin[1]:
            rows.append(
                RingTuning(
                    "ring pinned+spin+FIFO",
                    Placement(cpus=(pin[0],), fifo_priority=fifo_priority),
                    Placement(cpus=(pin[1],), fifo_priority=fifo_priority),
                    lock_memory=True,
                )
            )
    rows.append(RingTuning("ring (parked reader)", spin=False))
    return rows


def default_pin() -> tuple[int, int] | None:
    """The first two cores this process may use (writer, reader), None with fewer."""
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


# ----- Python transports: one reader function per transport, the same writer loop ---------


def _stamp(rec: np.ndarray) -> bytes:
    rec["local_ts_ns"] = time.monotonic_ns()
    return rec.tobytes()


def _write_all(send: Callable[[bytes], None], mode: str, n: int, interval_ns: int) -> None:
    """The writer side of every Python transport: paced single frames, or batches."""
    if mode == "latency":
        one = frames(0, 1)
        t0 = time.perf_counter_ns()
        for i in range(n):
            # Sleep to the frame's time, as a writer fed by a socket waits for its input.
            wait = i * interval_ns - (time.perf_counter_ns() - t0)
            if wait > 0:
                time.sleep(wait / 1e9)
            one["seq"] = i
            send(_stamp(one))
    else:
        chunk = frames(0, BATCH)
        for first in range(0, n, BATCH):
            k = min(BATCH, n - first)
            chunk["seq"] = np.arange(first, first + BATCH)
            send(chunk[:k].tobytes())


class _Check:
    """Reader-side accounting: seq continuity, latencies, elapsed time."""

    def __init__(self, mode: str, n: int) -> None:
        self.mode, self.n = mode, n
        self.next = 0
        self.wrong = 0
        self.lat = np.zeros(n if mode == "latency" else 0, dtype=np.int64)
        self.t0 = 0.0

    def take(self, data: bytes | memoryview | np.ndarray, lost: int = 0) -> None:
        now = time.monotonic_ns()
        rec = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=DTYPE)
        if not self.t0:
            self.t0 = time.perf_counter()
        self.next += lost
        k = len(rec)
        self.wrong += int((rec["seq"] != np.arange(self.next, self.next + k)).sum())
        if self.mode == "latency":
            self.lat[self.next - lost : self.next - lost + k] = now - rec["local_ts_ns"]
        self.next += k

    def done(self) -> bool:
        return self.next >= self.n

    def result(self, lost: int = 0) -> tuple[Any, ...]:
        elapsed = int((time.perf_counter() - self.t0) * 1e9) if self.t0 else 0
        received = self.next - lost
        lat = self.lat[:received].astype(np.uint64) if self.mode == "latency" else self.lat
        return (received, lost, self.wrong, lat, elapsed)


def _py_ring_reader(name: str, mode: str, n: int, ready: Event, out: Any) -> None:
    from featureplane.frames.ring import RingReader

    reader = RingReader(name, batch=8192)
    ready.set()
    check, lost = _Check(mode, n), 0
    deadline = time.monotonic() + TIMEOUT_S
    while not check.done() and time.monotonic() < deadline:
        got = reader.read(1 if mode == "latency" else None, timeout=1.0, spin=1.0)
        lost += got.lost
        if len(got) or got.lost:
            check.take(got.records, got.lost)
        if got.closed:
            break
    out.put(check.result(lost))


def _queue_reader(q: Any, mode: str, n: int, ready: Event, out: Any) -> None:
    ready.set()
    check = _Check(mode, n)
    while not check.done():
        check.take(q.get(timeout=TIMEOUT_S))
    out.put(check.result())


def _pipe_reader(conn: Connection, mode: str, n: int, ready: Event, out: Any) -> None:
    ready.set()
    check = _Check(mode, n)
    while not check.done() and conn.poll(TIMEOUT_S):
        check.take(conn.recv_bytes())
    out.put(check.result())


def _socket_reader(port: int, mode: str, n: int, ready: Event, out: Any) -> None:
    srv = socket.create_server(("127.0.0.1", port))
    ready.set()
    srv.settimeout(TIMEOUT_S)
    conn, _ = srv.accept()
    conn.settimeout(TIMEOUT_S)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    check = _Check(mode, n)
    buf = bytearray(SIZE * 8192)
    have = 0
    while not check.done():
        got = conn.recv_into(memoryview(buf)[have:])
        if not got:
            break
        have += got
        whole = have - have % SIZE
        if whole:
            check.take(bytes(buf[:whole]))
            buf[: have - whole] = buf[whole:have]
            have -= whole
    out.put(check.result())
    conn.close()
    srv.close()


def _bus_reader(url: str, prefix: str, mode: str, n: int, ready: Event, out: Any) -> None:
    from featureplane.frames.bus import BusConsumer

    consumer = BusConsumer(url=url, prefix=prefix)
    ready.set()
    check, lost = _Check(mode, n), 0
    deadline = time.monotonic() + TIMEOUT_S
    while not check.done() and time.monotonic() < deadline:
        got = consumer.read(count=1000, timeout=1.0)
        lost += got.lost
        if len(got) or got.lost:
            check.take(got.records, got.lost)
    out.put(check.result(lost))


def _run_python(ctx: Any, kind: str, mode: str, n: int, interval_ns: int, url: str) -> tuple:
    ready, out = ctx.Event(), ctx.Queue()
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if kind == "ring (Python API)":
        from featureplane.frames.ring import RingWriter

        name = f"fp-bench-py-{os.getpid()}-{mode}"
        ring = RingWriter(name, SYMBOLS, capacity=1 << 16)
        proc = ctx.Process(target=_py_ring_reader, args=(name, mode, n, ready, out))
        if mode == "latency":

            def send(b: bytes) -> None:
                ring.publish(b)

        else:

            def send(b: bytes) -> None:
                ring.publish_records(np.frombuffer(b, dtype=DTYPE))

        cleanup = ring.close
    elif kind == "multiprocessing.Queue":
        q = ctx.Queue()
        proc = ctx.Process(target=_queue_reader, args=(q, mode, n, ready, out))
        send = q.put
    elif kind == "pipe":
        recv_end, send_end = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_pipe_reader, args=(recv_end, mode, n, ready, out))
        send = send_end.send_bytes
    elif kind == "socket (TCP 127.0.0.1)":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = ctx.Process(target=_socket_reader, args=(port, mode, n, ready, out))
        sock: socket.socket | None = None

        def send(b: bytes) -> None:
            nonlocal sock
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(b)

        def close_sock() -> None:
            if sock is not None:
                sock.close()

        cleanup = close_sock
    else:  # the bus
        from featureplane.frames.bus import BusPublisher

        prefix = f"bench-{os.getpid()}-{mode}"
        publisher = BusPublisher(SYMBOLS, url=url, prefix=prefix)
        proc = ctx.Process(target=_bus_reader, args=(url, prefix, mode, n, ready, out))

        def send(b: bytes) -> None:
            publisher.publish_records(np.frombuffer(b, dtype=DTYPE))

        cleanup = publisher.close
    proc.start()
    try:
        ready.wait(TIMEOUT_S)
        time.sleep(0.05)
        _write_all(send, mode, n, interval_ns)
        result = out.get(timeout=TIMEOUT_S)
        proc.join(TIMEOUT_S)
        return tuple(result)
    finally:
        cleanup()
        if proc.is_alive():
            proc.kill()


# ----- the ring's own ceiling: writer alone, then a batch reader alone ----------------------


def _ring_alone(rounds: int) -> tuple[float, float, bool]:
    """Frames per second of `publish_records` filling a 65,536-slot ring, then of a batch
    reader draining it (8,192 a read), in this process, one after the other: what each side
    does with a core to itself. Best of `rounds`; checks every frame read."""
    from featureplane.frames.ring import RingReader, RingWriter

    name = f"fp-bench-alone-{os.getpid()}"
    n = 1 << 16
    rec = frames(0, n)
    best_w = best_r = 0.0
    ok = True
    with RingWriter(name, SYMBOLS, capacity=n) as writer:
        reader = RingReader(name, batch=8192)
        for k in range(rounds):
            rec["seq"] = np.arange(k * n, (k + 1) * n)
            t0 = time.perf_counter()
            writer.publish_records(rec)
            best_w = max(best_w, n / (time.perf_counter() - t0))
            got = 0
            t0 = time.perf_counter()
            while len(read := reader.read()):
                ok &= bool((read.records["seq"] == read.positions.astype(np.int64)).all())
                got += len(read)
            best_r = max(best_r, got / (time.perf_counter() - t0))
            ok &= got == n
        reader.close()
    return best_w, best_r, ok


# ----- redis-server for the bus row ------------------------------------------------------


class _Redis:
    """A private redis-server on 127.0.0.1 for the bus row (None where it is not installed)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        binary = shutil.which("redis-server")
        if binary is None:
            return
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                self.url = f"redis://127.0.0.1:{port}/0"
                return
            except OSError:
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.dir.cleanup()


# ----- the run -------------------------------------------------------------------------------

OTHER_TRANSPORTS = (
    "ring (Python API)",
    "multiprocessing.Queue",
    "pipe",
    "socket (TCP 127.0.0.1)",
    "redis bus",
)
RING_INTERVAL_NS = 20_000
OTHER_INTERVAL_NS = 50_000


def _burn(until: float) -> None:
    """A busy process (the `load` of a run): spins until the monotonic time `until`."""
    x = 0
    while time.monotonic() < until:
        x += 1


class _Load:
    """`n` busy processes at the ordinary priority for the run's duration (bounded: each
    stops by itself after `TIMEOUT_S` x 4 and is killed when the run ends)."""

    def __init__(self, ctx: Any, n: int) -> None:
        until = time.monotonic() + TIMEOUT_S * 4
        self.procs = [ctx.Process(target=_burn, args=(until,), daemon=True) for _ in range(n)]
        for p in self.procs:
            p.start()

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.join(10)


def _ring_row(ctx: Any, tuning: RingTuning, n_lat: int, n_tp: int | None) -> Row:
    """A ring row: the latency run under `tuning`, and the throughput run when `n_tp`."""
    row = Row(tuning.label)
    lat = _core_ring(ctx, "latency", n_lat, RING_INTERVAL_NS, tuning)
    got_l, lost_l, wrong_l, lat_ns, _, refused = lat
    row.latency_us = _percentiles(np.asarray(lat_ns)[n_lat // 100 :])
    row.sent, row.received, row.lost = n_lat, got_l, lost_l
    row.correct = wrong_l == 0 and got_l + lost_l == n_lat
    notes = []
    if n_tp:
        got_t, lost_t, wrong_t, _, elapsed, _ = _core_ring(ctx, "throughput", n_tp, 0)
        row.frames_per_s = got_t / (elapsed / 1e9) if elapsed else 0.0
        row.sent += n_tp
        row.received += got_t
        row.lost += lost_t
        row.correct = row.correct and wrong_t == 0 and got_t + lost_t == n_tp
    else:
        notes.append("latency only")
    if tuning.writer.tuned or tuning.reader.tuned:
        notes.append(
            f"writer cpu {','.join(map(str, tuning.writer.cpus))}, "
            f"reader cpu {','.join(map(str, tuning.reader.cpus))}"
            + (f", FIFO {tuning.reader.fifo_priority}" if tuning.reader.fifo_priority else "")
            + (", mlock" if tuning.lock_memory else "")
        )
    notes.extend(f"refused: {r}" for r in refused)
    if lost_l:
        notes.append(f"{lost_l} lost in the latency run")
    row.note = "; ".join(notes)
    return row


def run(
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
    *,
    pin: tuple[int, int] | str | None = "auto",
    fifo_priority: int = 10,
    load: int = 0,
    ring_only: bool = False,
) -> TransportTable:
    """Every transport, latency then throughput, one after the other (never two at once:
    the machine's cores go to the two processes of the row being measured).

    Parameters
    ----------
    quick
        A fast smoke run (a tenth of the frames).
    progress
        Called with the table so far after each row.
    pin
        (writer core, reader core) of the ring's pinned rows; "auto" takes the first two
        cores of this process's affinity; None leaves the pinned rows out.
    fifo_priority
        SCHED_FIFO priority of the pinned+FIFO row (0 leaves it out). Refused by the kernel,
        the row still runs and says so in its note.
    load
        Busy processes (ordinary priority) running beside the whole run: the same table on
        a loaded machine.
    ring_only
        The ring's rows alone (no Python API, queue, pipe, socket, bus).
    """
    from featureplane._rust import use_rust
    from featureplane.bench.timing import require_release_build

    use_rust("rust", "engine")
    require_release_build()
    ctx = mp.get_context("spawn")
    n_lat = 2_000 if quick else 20_000
    sizes = {
        "ring (core loops)": 2_000_000 if quick else 20_000_000,
        "ring (Python API)": 500_000 if quick else 5_000_000,
        "redis bus": 50_000 if quick else 300_000,
    }
    if load < 0:
        raise ValueError(f"load must be >= 0 busy processes, got {load}")
    cores = default_pin() if pin == "auto" else pin
    if isinstance(cores, tuple):
        check_cpus(cores)
    Placement(fifo_priority=fifo_priority)  # the priority's range, before any process starts
    others = () if ring_only else OTHER_TRANSPORTS
    redis = _Redis() if others else None
    burners = _Load(ctx, load)
    rows: list[Row] = []
    try:
        for tuning in tunings(cores if isinstance(cores, tuple) else None, fifo_priority):
            n_tp = sizes["ring (core loops)"] if tuning.label == "ring (core loops)" else None
            rows.append(_ring_row(ctx, tuning, n_lat, n_tp))
            if progress:
                progress(TransportTable(rows).format())
        for kind in others:
            assert redis is not None
            row = Row(kind)
            if kind == "redis bus" and not redis.url:
                row.note = "skipped: redis-server is not installed"
                rows.append(row)
                continue
            n_tp = sizes.get(kind, 200_000 if quick else 1_000_000)
            lat = _run_python(ctx, kind, "latency", n_lat, OTHER_INTERVAL_NS, redis.url)
            tput = _run_python(ctx, kind, "throughput", n_tp, 0, redis.url)
            got_l, lost_l, wrong_l, lat_ns, _ = lat
            got_t, lost_t, wrong_t, _, elapsed = tput
            row.latency_us = _percentiles(np.asarray(lat_ns)[n_lat // 100 :])
            row.frames_per_s = got_t / (elapsed / 1e9) if elapsed else 0.0
            row.sent = n_lat + n_tp
            row.received = got_l + got_t
            row.lost = lost_l + lost_t
            row.correct = (
                wrong_l == wrong_t == 0 and got_l + lost_l == n_lat and got_t + lost_t == n_tp
            )
            if lost_l:
                row.note = f"{lost_l} lost in the latency run"
            rows.append(row)
            if progress:
                progress(TransportTable(rows).format())
        wrote, read, ok = _ring_alone(5 if quick else 20)
        rows.append(Row("ring writer alone", frames_per_s=wrote, correct=ok, note="one process"))
        rows.append(Row("ring batch reader alone", frames_per_s=read, correct=ok,
                        note="one process, 8,192 frames a read"))  # fmt: skip
    finally:
        burners.stop()
        if redis is not None:
            redis.stop()
    clock = _core().ring_bench_clock_cost(100_000)
    return TransportTable(rows, clock_read_ns=int(clock[0]), load=load)
