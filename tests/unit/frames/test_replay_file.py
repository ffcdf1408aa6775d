"""Feature files: Parquet round trip, metadata, determinism, real units, schema checks, replay."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featureplane import (
    InstrumentSpec,
    SchemaMismatchError,
    SourceFormatError,
    SymbolTable,
    __version__,
)
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import StreamDamageError
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.parquet import (
    FeatureFileWriter,
    SourceFile,
    read_feature_file,
    write_feature_file,
)
from featureplane.frames.units import is_scaled, to_real_columns
from featureplane.replay.run import replay_events
from featureplane.schema import FeatureSet
from tests.support.sessions import SYMBOLS, session

HEADER = [
    "symbol",
    "symbol_id",
    "seq",
    "source_ts_ns",
    "local_ts_ns",
    "changed_mask",
    "warmup_ready_mask",
    "quality_flags",
]


@pytest.fixture(scope="module")
def batch() -> FrameBatch:
    return FeatureEngine(SYMBOLS, backend="python").process_batch(session())


def split(b: FrameBatch, *cuts: int) -> list[FrameBatch]:
    edges = [0, *cuts, len(b)]
    return [
        FrameBatch(
            b.feature_set,
            b.symbols,
            {k: v[lo:hi] for k, v in b.columns.items()},
            {k: v[lo:hi] for k, v in b.values.items()},
        )
        for lo, hi in itertools.pairwise(edges)
    ]


def assert_same_frames(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b)
    for name in HEADER[1:]:
        assert np.array_equal(a.columns[name], b.columns[name]), name
        assert a.columns[name].dtype == b.columns[name].dtype, name
    for name, col in a.values.items():
        assert b.values[name].dtype == col.dtype, name
        assert np.array_equal(col, b.values[name], equal_nan=col.dtype.kind == "f"), name


def test_session_has_flags(batch: FrameBatch) -> None:
    q = batch.columns["quality_flags"]
    for flag in (QualityFlag.STATE_RESET, QualityFlag.GAP_DETECTED, QualityFlag.PARTIAL_FEATURES):
        assert (q & flag).any(), flag


def test_round_trip_values_masks_flags(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    assert write_feature_file(batch, path, units="scaled") == len(batch)
    f = read_feature_file(path)
    assert len(f) == len(batch)
    assert f.table.column_names == HEADER + list(FS.names)
    assert_same_frames(f.to_batch(), batch)
    assert (f.to_batch().columns["input_index"] == -1).all()
    names = [SYMBOLS.name_of(int(s)) for s in batch.columns["symbol_id"]]
    assert list(f.column("symbol")) == names
    assert pa.types.is_dictionary(f.table.schema.field("symbol").type)
    types = {fld.name: fld.type for fld in f.table.schema}
    assert types["changed_mask"] == pa.uint64() and types["quality_flags"] == pa.uint32()
    assert types["bid_px"] == pa.int64() and types["microprice"] == pa.float64()
    assert types["book_regime"] == pa.uint32()
    assert f.table.schema.field("mid").metadata[b"featureplane.scale"] == b"2"


def test_metadata(batch: FrameBatch, tmp_path: Path) -> None:
    src = tmp_path / "capture.gz"
    src.write_bytes(b"some recorded bytes\n" * 10)
    stats = {"lines": np.int64(200), "skipped": {"bad_json": 2}, "note": "x"}
    path = tmp_path / "f.parquet"
    write_feature_file(batch, path, sources=[src], source_stats=stats, units="scaled")
    f = read_feature_file(path)
    assert f.feature_set == FS and f.feature_set.schema_hash == FS.schema_hash
    assert f.symbols.to_json() == SYMBOLS.to_json()
    assert f.units == "scaled"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert f.sources == [SourceFile("capture.gz", 200, digest)]
    assert f.source_stats == {"lines": 200, "skipped": {"bad_json": 2}, "note": "x"}
    assert f.featureplane_version == __version__
    raw = pq.ParquetFile(path).metadata.metadata
    assert json.loads(raw[b"featureplane.feature_set"]) == FS.to_json()
    assert f.table.schema.metadata[b"featureplane.units"] == b"scaled"


def test_deterministic_bytes(batch: FrameBatch, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    write_feature_file(batch, a, row_group_rows=64, source_stats={"k": 1})
    write_feature_file(batch, b, row_group_rows=64, source_stats={"k": 1})
    # Different chunking of the same frames: the same row groups, the same bytes.
    write_feature_file(
        iter(split(batch, 1, 50, 51, 200)), c, row_group_rows=64, source_stats={"k": 1}
    )
    assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    meta = pq.ParquetFile(a).metadata
    assert meta.num_row_groups == -(-len(batch) // 64)
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups - 1)] == [64] * (
        meta.num_row_groups - 1
    )


def test_rewrite_in_another_process_is_identical(batch: FrameBatch, tmp_path: Path) -> None:
    first = tmp_path / "first.parquet"
    write_feature_file(batch, first, source_stats={"s": [1, 2]}, row_group_rows=100, units="scaled")
    script = (
        "import sys\n"
        "from featureplane.frames.parquet import read_feature_file, write_feature_file\n"
        "f = read_feature_file(sys.argv[1])\n"
        "write_feature_file(f.to_batch(), sys.argv[2], source_stats=f.source_stats,"
        " row_group_rows=100, units='scaled')\n"
    )
    second = tmp_path / "second.parquet"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script, str(first), str(second)], check=True, env=env)
    assert first.read_bytes() == second.read_bytes()


def not_ready(b: FrameBatch, feature_id: int) -> np.ndarray:
    return np.asarray((b.warmup_ready_mask >> np.uint64(feature_id)) & np.uint64(1) == 0)


def test_real_units_by_default_with_nulls_where_not_ready(
    batch: FrameBatch, tmp_path: Path
) -> None:
    path = tmp_path / "real.parquet"
    write_feature_file(split(batch, 77), path)
    f = read_feature_file(path)
    assert f.units == "real"
    assert f.table.schema.metadata[b"featureplane.units"] == b"real"
    real = to_real_columns(batch)
    seen_nulls = 0
    for spec in FS.features:
        col = f.table.column(spec.name)
        off = not_ready(batch, spec.feature_id)
        # Null where the ready bit is off, and only there; the stored value elsewhere.
        assert np.array_equal(np.asarray(col.is_null()), off), spec.name
        seen_nulls += int(off.sum())
        if is_scaled(spec):
            assert col.type == pa.float64()
        assert col.type == pa.from_numpy_dtype(real[spec.name].dtype)
        got = np.asarray(col.drop_null())
        assert np.array_equal(got, real[spec.name][~off], equal_nan=got.dtype.kind == "f")
    assert seen_nulls > 0  # the session has warm-ups and an empty side
    assert np.array_equal(f.column("warmup_ready_mask"), batch.warmup_ready_mask)
    eth = f.column("symbol") == "ETHUSDT"
    assert np.nanmin(np.abs(f.column("bid_px")[eth] - 300.0)) < 0.5
    assert f.table.schema.field("mid").metadata[b"featureplane.scale"] == b"0"
    with pytest.raises(SchemaMismatchError, match="scaled"):
        f.to_batch()
    with pytest.raises(SchemaMismatchError, match="scaled"):
        f.to_arrow(units="scaled")


def test_mid_and_microprice_share_a_unit(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "real.parquet"
    write_feature_file(batch, path)
    t = read_feature_file(path).table
    both = t.filter(pa.compute.and_(t["mid"].is_valid(), t["microprice"].is_valid()))
    assert len(both) > 0
    bid, ask = np.asarray(both["bid_px"]), np.asarray(both["ask_px"])
    mid, micro = np.asarray(both["mid"]), np.asarray(both["microprice"])
    assert np.allclose(mid, (bid + ask) / 2)
    # The microprice weighs the touch prices: it lies between them, in the same unit as mid.
    assert ((bid <= micro + 1e-9) & (micro <= ask + 1e-9)).all()


def test_real_file_without_nulls_reads_with_nulls(batch: FrameBatch, tmp_path: Path) -> None:
    """A real-units file written before files held nulls (not-ready values stored as 0)."""
    path, old = tmp_path / "real.parquet", tmp_path / "old.parquet"
    write_feature_file(batch, path)
    table = pq.read_table(path)
    for i, name in enumerate(table.column_names):
        if name in FS.names:
            col = table.column(name)
            table = table.set_column(i, table.field(name), col.fill_null(0))
    pq.write_table(table, old)
    f = read_feature_file(old)
    assert all(f.table.column(n).null_count == 0 for n in FS.names)
    assert f.to_arrow().equals(read_feature_file(path).to_arrow())


def test_readers_of_a_scaled_file_convert_unless_asked(batch: FrameBatch, tmp_path: Path) -> None:
    pytest.importorskip("polars")
    scaled, real = tmp_path / "scaled.parquet", tmp_path / "real.parquet"
    write_feature_file(batch, scaled, units="scaled")
    write_feature_file(batch, real)
    f = read_feature_file(scaled)
    assert f.table.schema.metadata[b"featureplane.units"] == b"scaled"
    assert f.table.column("mid").to_pylist() == batch.values["mid"].tolist()  # as stored
    want = read_feature_file(real).table
    got = f.to_arrow()
    assert got.schema.metadata[b"featureplane.units"] == b"real"
    for spec in FS.features:
        assert got.column(spec.name).equals(want.column(spec.name)), spec.name
    df = f.to_polars()
    assert df["mid"].to_list() == want.column("mid").to_pylist()
    assert df["mid"].null_count() == int(not_ready(batch, FS.index("mid")).sum())
    assert np.array_equal(f.column("mid"), read_feature_file(real).column("mid"), equal_nan=True)
    pdf = f.to_pandas()
    assert pdf["bid_px"].isna().sum() == int(not_ready(batch, FS.index("bid_px")).sum())
    exact = f.to_arrow(units="scaled", nulls=False)
    assert exact.column("mid").to_pylist() == batch.values["mid"].tolist()
    assert np.array_equal(f.column("mid", units="scaled", nulls=False), batch.values["mid"])
    with pytest.raises(ValueError, match="units"):
        f.to_arrow(units="ticks")


def test_expected_feature_set(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_feature_file(batch, path)
    read_feature_file(path, feature_set_id="lob_shared_v1", schema_hash=FS.schema_hash)
    read_feature_file(path, schema_hash=f"{FS.schema_hash64:016x}")
    with pytest.raises(SchemaMismatchError):
        read_feature_file(path, feature_set_id="lob_shared_v2")
    with pytest.raises(SchemaMismatchError):
        read_feature_file(path, schema_hash="0" * 64)


def test_tampered_metadata_is_refused(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_feature_file(batch, path)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    fs_json = json.loads(meta[b"featureplane.feature_set"])
    fs_json["features"][5]["scale"] = 1  # mid claimed in whole ticks, hash left as it was
    meta[b"featureplane.feature_set"] = json.dumps(fs_json).encode()
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.replace_schema_metadata(meta), bad)
    with pytest.raises(SchemaMismatchError):
        read_feature_file(bad)


def test_columns_must_match_metadata(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_feature_file(batch, path)
    table = pq.read_table(path)
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.drop_columns(["book_regime"]), bad)
    with pytest.raises(SchemaMismatchError, match="columns"):
        read_feature_file(bad)


def test_not_a_feature_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), plain)
    with pytest.raises(SourceFormatError, match="not a featureplane feature file"):
        read_feature_file(plain)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(SourceFormatError, match="Parquet"):
        read_feature_file(junk)
    with pytest.raises(FileNotFoundError):
        read_feature_file(tmp_path / "missing.parquet")


def test_column_subset(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    write_feature_file(batch, path, units="scaled")
    f = read_feature_file(path, columns=["symbol", "seq", "mid"])
    assert f.table.column_names == ["symbol", "seq", "mid"]
    assert np.array_equal(f.column("mid", units="scaled", nulls=False), batch.values["mid"])
    # The rows' symbols and ready masks are read anyway: real units and nulls need them.
    off = not_ready(batch, FS.index("mid"))
    mid = f.to_arrow().column("mid")
    assert np.array_equal(np.asarray(mid.is_null()), off)
    assert np.array_equal(np.asarray(mid.drop_null()), to_real_columns(batch)["mid"][~off])
    with pytest.raises(ValueError, match="not read"):
        f.to_batch()


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    assert write_feature_file([], path, feature_set=FS, symbols=SYMBOLS, units="scaled") == 0
    f = read_feature_file(path)
    assert len(f) == 0 and len(f.to_batch()) == 0 and len(f.to_arrow()) == 0
    with pytest.raises(ValueError, match="no frames"):
        write_feature_file([], tmp_path / "x.parquet")


def test_writer_refuses_foreign_batches(batch: FrameBatch, tmp_path: Path) -> None:
    other_syms = SymbolTable([InstrumentSpec("BTCUSDT", "0.5", "0.001"), SYMBOLS.spec_of(1)])
    path = tmp_path / "f.parquet"
    with FeatureFileWriter(path, FS, SYMBOLS) as w, pytest.raises(SchemaMismatchError):
        w.write(dataclasses.replace(batch, symbols=other_syms))
    first = dataclasses.replace(FS.features[0], scale=10)
    other = FeatureSet(FS.feature_set_id, 1, (first, *FS.features[1:]))
    with FeatureFileWriter(path, FS, SYMBOLS) as w, pytest.raises(SchemaMismatchError):
        w.write(dataclasses.replace(batch, feature_set=other))
    with pytest.raises(ValueError, match="units"):
        FeatureFileWriter(path, FS, SYMBOLS, units="cents")


def test_failed_write_leaves_no_file(batch: FrameBatch, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"

    def batches() -> Iterator[FrameBatch]:
        yield batch
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        write_feature_file(batches(), path)
    assert not path.exists()


def test_replay_events_in_chunks(batch: FrameBatch, tmp_path: Path) -> None:
    events = session()
    ends = np.flatnonzero(events["flags"] & 1) + 1
    cuts = [0, int(ends[10]), int(ends[150]), len(events)]
    chunks = [events[a:b] for a, b in itertools.pairwise(cuts)]
    out = tmp_path / "replay.parquet"
    summary = replay_events(chunks, SYMBOLS, out, backend="python", progress=False, units="scaled")
    assert summary.frames == len(batch)
    assert summary.messages == len(ends)
    assert summary.events == len(events)
    assert summary.flag_counts["STATE_RESET"] == int(
        np.count_nonzero(batch.columns["quality_flags"] & QualityFlag.STATE_RESET)
    )
    assert summary.events_per_s > 0
    f = read_feature_file(out)
    assert_same_frames(f.to_batch(), batch)
    assert f.replay is not None
    assert f.replay["frames"] == len(batch) and f.replay["backend"] == "python"
    assert "engine_counters" in f.replay
    text = summary.format()
    assert "frames" in text and "events/s" in text
    assert summary.to_dict()["frames"] == len(batch)


def test_replay_with_and_without_read_ahead_is_the_same_file(tmp_path: Path) -> None:
    events = session()
    ends = np.flatnonzero(events["flags"] & 1) + 1
    chunks = [events[a:b] for a, b in itertools.pairwise([0, int(ends[40]), len(events)])]
    files = {}
    for ahead in (True, False):
        out = tmp_path / f"ahead-{ahead}.parquet"
        replay_events(iter(chunks), SYMBOLS, out, progress=False, read_ahead=ahead)
        files[ahead] = out.read_bytes()
    assert files[True] == files[False]


@pytest.mark.parametrize("ahead", [True, False])
def test_a_source_failing_mid_replay_leaves_no_file(tmp_path: Path, ahead: bool) -> None:
    events = session()
    cut = int(np.flatnonzero(events["flags"] & 1)[40]) + 1

    def chunks() -> Iterator[np.ndarray]:
        yield events[:cut]
        raise StreamDamageError("truncated", "the capture ends mid-line")

    out = tmp_path / "replay.parquet"
    with pytest.raises(StreamDamageError, match="mid-line"):
        replay_events(chunks(), SYMBOLS, out, progress=False, read_ahead=ahead)
    assert not out.exists()


# ----- Binance captures -------------------------------------------------------------------


def write_capture(path: Path, n: int = 30) -> Path:
    """A small USD-M BTCUSDT capture: a REST snapshot, diffs that chain by `pu`, trades."""
    t0 = 1_700_000_000_000
    last = 5_000
    lines = [
        (
            t0 * 10**6 + 1,
            {
                "lastUpdateId": last,
                "E": t0,
                "T": t0,
                "bids": [["60000.0", "1.000"], ["59999.9", "2.500"]],
                "asks": [["60000.1", "0.750"], ["60000.2", "3.000"]],
            },
        ),
    ]
    prev = last - 3
    u = last + 1
    for i in range(1, n + 1):
        first = last - 1 if i == 1 else prev + 1
        data = {
            "e": "depthUpdate",
            "E": t0 + i,
            "T": t0 + i,
            "s": "BTCUSDT",
            "U": first,
            "u": u,
            "pu": prev,
            "b": [["60000.0", f"{1 + i % 7}.000"]],
            "a": [["60000.1", f"0.{100 + i:03d}"]],
        }
        lines.append(((t0 + i) * 10**6 + 50, {"stream": "btcusdt@depth@0ms", "data": data}))
        trade = {
            "e": "trade",
            "E": t0 + i,
            "T": t0 + i,
            "s": "BTCUSDT",
            "t": 900 + i,
            "p": "60000.1",
            "q": "0.002",
            "X": "MARKET",
            "m": i % 3 == 0,
        }
        lines.append(((t0 + i) * 10**6 + 70, {"stream": "btcusdt@trade", "data": trade}))
        prev, u = u, u + 2
    text = "".join(f"{ts} {json.dumps(obj)}\n" for ts, obj in lines)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(text.encode())
    return path


def test_replay_binance(tmp_path: Path) -> None:
    pytest.importorskip("featureplane.sources.binance.reader")
    from tests.support.replay import replay_binance

    capture = write_capture(tmp_path / "btcusdt_20240101.gz")
    out = tmp_path / "out.parquet"
    summary = replay_binance([capture], out, backend="python", progress=False)
    assert summary.messages == 61 and summary.frames == 61
    assert summary.flag_counts["STATE_RESET"] == 1
    assert summary.flag_counts["GAP_DETECTED"] == 0
    f = read_feature_file(out, feature_set_id="lob_shared_v1")
    assert [s.symbol for s in f.symbols.specs] == ["BTCUSDT"]
    assert f.units == "scaled"  # tests.support.replay writes exact ints
    assert f.column("bid_px", units="scaled")[0] == 600_000  # ticks of 0.1
    assert f.column("ask_qty", units="scaled")[0] == 750  # lots of 0.001
    assert f.column("bid_px")[0] == 60000.0  # read as real units unless asked
    assert f.column("source_ts_ns")[0] == 1_700_000_000_000 * 10**6
    assert f.column("last_trade_px", units="scaled")[-1] == 600_001
    digest = hashlib.sha256(capture.read_bytes()).hexdigest()
    assert f.sources == [SourceFile(capture.name, capture.stat().st_size, digest)]
    assert f.source_stats is not None and f.source_stats["messages"]["diff"] == 30
    assert str(tmp_path) not in json.dumps(f.source_stats)  # base names only
    assert "BTCUSDT" in summary.format()


def test_replay_binance_is_deterministic_across_directories(tmp_path: Path) -> None:
    pytest.importorskip("featureplane.sources.binance.reader")
    from tests.support.replay import replay_binance

    a_dir, b_dir = tmp_path / "a", tmp_path / "elsewhere" / "b"
    a_dir.mkdir()
    b_dir.mkdir(parents=True)
    capture = write_capture(a_dir / "btcusdt.gz")
    shutil.copy(capture, b_dir / "btcusdt.gz")
    replay_binance([capture], a_dir / "out.parquet", backend="python", progress=False)
    replay_binance(
        [b_dir / "btcusdt.gz"],
        b_dir / "out.parquet",
        backend="python",
        progress=False,
        chunk_rows=7,
        units="scaled",
    )
    assert (a_dir / "out.parquet").read_bytes() == (b_dir / "out.parquet").read_bytes()


def test_replay_binance_real_units_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("featureplane.sources.binance.reader")
    from tests.support.replay import replay_binance

    capture = write_capture(tmp_path / "btcusdt.gz", n=5)
    out = tmp_path / "real.parquet"
    replay_binance([capture], out, units="real", backend="python", progress=True)
    assert "replay" in capsys.readouterr().err  # the tqdm bar went to stderr
    f = read_feature_file(out)
    assert f.units == "real"
    assert f.column("bid_px")[0] == 60000.0
    assert f.column("ask_qty")[0] == 0.75


def test_replay_binance_without_data(tmp_path: Path) -> None:
    pytest.importorskip("featureplane.sources.binance.reader")
    from tests.support.replay import replay_binance

    junk = tmp_path / "junk.gz"
    junk.write_bytes(b"hello\nworld\n")
    with pytest.raises(SourceFormatError, match="no Binance stream"):
        replay_binance([junk], tmp_path / "out.parquet", progress=False)
    assert not (tmp_path / "out.parquet").exists()
