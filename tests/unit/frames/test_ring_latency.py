"""The ring's tail-latency knobs: pages mapped at create and attach (no first-touch fault),
mlock, CPU pinning and SCHED_FIFO (applied, reported when refused, put back), and the
benchmark's tuned rows checking every frame. Timings are never asserted."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator

import numpy as np
import pytest

from featureplane.bench import transport
from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import PlacementError
from featureplane.frames.placement import Placement, apply_placement, online_cpus, placed
from featureplane.frames.ring import RingReader, RingWriter, probe, remove_stale
from featureplane.frames.wire import batch_to_records
from tests.support.rust import require_rust
from tests.support.sessions import SYMBOLS, session


@pytest.fixture(autouse=True)
def _rust() -> None:
    require_rust("engine")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Iterator[str]:
    ring = f"fp-test-{os.getpid()}-{request.node.name[:60]}".replace("[", "-").replace("]", "")
    yield ring
    if (found := probe(ring)) is not None and found.state != "live":
        remove_stale(ring)


def mappings_of(path: str) -> list[tuple[int, int]]:
    """(Size kB, Rss kB) of each mapping of the file `path` in this process (by inode: the
    writer mapped it under its private name before linking it in)."""
    inode = str(os.stat(path).st_ino)
    out: list[tuple[int, int]] = []
    current = False
    size = 0
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                current = head[4] == inode and "/dev/shm/" in line
            elif current and head[0] == "Size:":
                size = int(head[1])
            elif current and head[0] == "Rss:":
                out.append((size, int(head[1])))
    return out


def test_every_page_is_mapped_at_create_and_attach(name: str) -> None:
    # A 4 MiB ring nobody has written: without MAP_POPULATE its slots' pages would be absent
    # from both mappings until first touched (a fault on every 16th frame of the first lap).
    with RingWriter(name, SYMBOLS, capacity=1 << 14) as writer:
        reader = RingReader(name)
        maps = mappings_of(f"/dev/shm/{name}")
        assert len(maps) == 2  # the writer's and the reader's
        for size, rss in maps:
            assert size >= (1 << 14) * 256 // 1024
            assert rss == size
        reader.close()
        assert writer.cursor == 0


def test_locked_segment_carries_frames(name: str) -> None:
    records = batch_to_records(FeatureEngine(SYMBOLS, backend="rust").process_batch(session(50)))
    with RingWriter(name, SYMBOLS, capacity=1024, lock_memory=True) as writer:
        reader = RingReader(name, lock_memory=True)
        writer.publish_records(records)
        got = reader.read()
        assert got.records.tobytes() == records.tobytes()
        reader.close()


def test_placement_refuses_bad_values() -> None:
    with pytest.raises(PlacementError, match="fifo_priority"):
        Placement(fifo_priority=100)
    with pytest.raises(PlacementError, match="cpus"):
        Placement(cpus=(-1,))
    missing = max(online_cpus()) + 1
    with pytest.raises(PlacementError, match="not online"):
        apply_placement(Placement(cpus=(missing,)))


def test_placed_pins_and_puts_back() -> None:
    before = os.sched_getaffinity(0)
    cpu = max(before)
    with placed(Placement(cpus=(cpu,))) as report:
        assert os.sched_getaffinity(0) == {cpu}
        assert report.cpus == (cpu,) and report.complete
    assert os.sched_getaffinity(0) == before


def test_fifo_is_applied_or_reported_and_put_back() -> None:
    policy = os.sched_getscheduler(0)
    with placed(Placement(fifo_priority=1)) as report:
        if report.complete:
            assert os.sched_getscheduler(0) == os.SCHED_FIFO
            assert report.fifo_priority == 1
        else:
            # Refused (no CAP_SYS_NICE): said, never silently dropped.
            assert "SCHED_FIFO" in report.refused[0] and report.fifo_priority == 0
    assert os.sched_getscheduler(0) == policy


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_tuned_rows_check_every_frame() -> None:
    ctx = mp.get_context("spawn")
    pin = transport.default_pin()
    assert pin is not None
    rows = transport.tunings(pin, fifo_priority=5)
    assert [r.label for r in rows] == [
        "ring (core loops)",
        "ring pinned + spin",
        "ring pinned+spin+FIFO",
        "ring (parked reader)",
    ]
    for tuning in rows[1:3]:
        row = transport._ring_row(ctx, tuning, 300, None)
        assert row.correct, row
        assert row.received + row.lost == row.sent == 300
        assert f"reader cpu {pin[1]}" in row.note
        assert np.isfinite(row.latency_us["p99"])
        shares = [v for k, v in row.latency_us.items() if k.startswith("share ")]
        assert len(shares) == 5 and abs(sum(shares) - 100) < 1e-6


def test_same_core_has_no_fifo_row() -> None:
    # A FIFO reader spinning on the writer's only core would hold the writer off it.
    labels = [r.label for r in transport.tunings((0, 0), fifo_priority=10)]
    assert "ring pinned+spin+FIFO" not in labels and "ring pinned + spin" in labels


def test_bench_refuses_a_bad_pin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--transport", "--pin", "zero"]) == 1
    assert "--pin takes two core numbers" in capsys.readouterr().err
    assert (
        main(["bench", "--transport", "--ring-only", "--pin", f"0,{max(online_cpus()) + 1}"]) == 1
    )
    assert "not online" in capsys.readouterr().err


def test_strategy_attach_spins_and_locks(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.support import ring_workers

    records = batch_to_records(FeatureEngine(SYMBOLS, backend="rust").process_batch(session(200)))
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    args = (name, records, SYMBOLS.to_json(), ready)
    writer = ctx.Process(target=ring_workers.publish_capture, args=args)
    writer.start()
    assert ready.wait(60)
    argv = ["strategy", "attach", "--ring", name, "--symbol", "ETHUSDT", "--start", "oldest"]
    argv += ["--spin", "0.001", "--lock-memory"]
    code = main([*argv, "--strategy", "tests.support.ring_workers:CountingStrategy"])
    writer.join(60)
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["frames_read"], stats["lost"]) == (len(records), 0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cpus", "x"], "--cpus takes core numbers"),
        (["--fifo", "100"], "fifo_priority must be 0"),
        (["--spin", "-1"], "--spin must be >= 0"),
        (["--fifo", "5", "--spin", "0.1"], "a FIFO spinner must leave a core"),
    ],
)
def test_strategy_attach_refuses_bad_knobs(
    flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["strategy", "attach", "--ring", "none-such", "--symbol", "X", "--strategy", "a:B"]
    assert main([*argv, *flags]) == 1
    assert message in capsys.readouterr().err
