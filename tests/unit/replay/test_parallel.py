"""Many-file replay: chains, parallel == sequential byte for byte, schedulers, errors, loader."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featureplane.cli import main
from featureplane.engine.facade import FeatureEngine
from featureplane.errors import (
    ChainReplayError,
    SchemaMismatchError,
    SourceFormatError,
    UnknownSymbolError,
)
from featureplane.frames.frame import FrameBatch, QualityFlag
from featureplane.frames.load import load_features
from featureplane.frames.parquet import read_feature_file
from featureplane.instruments import InstrumentSpec
from featureplane.replay.chains import Chain, expand_inputs, output_paths, plan_chains
from featureplane.replay.parallel import choose_workers, replay_files
from featureplane.sources.binance.reader import read_binance
from featureplane.sources.registry import SourceOptions
from tests.support.replay import replay_binance
from tests.unit.sources.test_formats import (
    binance,
    hftbacktest_npz,
    lobster_pair,
    lobster_zip,
    tardis_pair,
)


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """A folder of every format the Rust-free readers handle: 4 chains, 7 files.

    BTCUSDT in two files (the second continues the first's book, no snapshot), named so that
    name order is not time order; ETHUSDT; a LOBSTER pair; a tardis book + trades pair.
    """
    d = tmp_path / "in"
    d.mkdir()
    binance(d / "a_btcusdt_late.gz", first=7, n=5, snapshot=False)
    binance(d / "b_btcusdt_early.gz", n=6)
    binance(d / "ethusdt.gz", "ETHUSDT", n=4)
    lobster_pair(d)
    tardis_pair(d, "SOLUSDT", gz=True)
    (d / "SOURCE.md").write_text("# not data: a directory skips it\n")
    return d


def frames_equal(a: FrameBatch, b: FrameBatch) -> None:
    assert len(a) == len(b)
    for name in ("symbol_id", "seq", "source_ts_ns", "local_ts_ns", "changed_mask",
                 "warmup_ready_mask", "quality_flags"):  # fmt: skip
        assert np.array_equal(a.columns[name], b.columns[name]), name
    for name, col in a.values.items():
        assert np.array_equal(col, b.values[name], equal_nan=col.dtype.kind == "f"), name


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


# ----- planning -------------------------------------------------------------------------------


def test_chains_of_a_mixed_folder(inputs: Path) -> None:
    chains = plan_chains([inputs])
    assert [c.name for c in chains] == [
        "binance-usdm-BTCUSDT",
        "binance-usdm-ETHUSDT",
        "lobster-TEST_2024-01-02_34200000_57600000_message_2",
        "tardis-solusdt_book",
    ]
    btc, eth, lob, tardis = chains
    # Time order, not name order: the file with the snapshot comes first.
    assert [Path(f).name for f in btc.files] == ["b_btcusdt_early.gz", "a_btcusdt_late.gz"]
    assert btc.symbols == ("BTCUSDT",) and eth.symbols == ("ETHUSDT",)
    assert [Path(f).name.split("_")[4] for f in lob.files] == ["message", "orderbook"]
    assert lob.symbols == ("TEST",)
    assert [Path(f).name for f in tardis.files] == ["solusdt_book.csv.gz", "solusdt_trades.csv.gz"]


def test_tardis_files_chain_only_when_they_share_a_symbol(tmp_path: Path) -> None:
    files = [*tardis_pair(tmp_path, "BTCUSDT"), *tardis_pair(tmp_path, "ETHUSDT")]
    chains = plan_chains(files)
    assert [c.symbols for c in chains] == [("BTCUSDT",), ("ETHUSDT",)]
    assert all(len(c.files) == 2 for c in chains)


def test_symbols_filter_and_unknown_symbol(inputs: Path) -> None:
    opts = SourceOptions(symbols=("ethusdt",))
    assert [c.name for c in plan_chains([inputs], options=opts)] == ["binance-usdm-ETHUSDT"]
    with pytest.raises(UnknownSymbolError, match="XRPUSDT"):
        plan_chains([inputs], options=SourceOptions(symbols=("ETHUSDT", "XRPUSDT")))


def test_expand_inputs(inputs: Path, tmp_path: Path) -> None:
    files = expand_inputs([inputs, inputs / "ethusdt.gz", str(inputs / "*btc*.gz")])
    assert "SOURCE.md" not in {Path(f).name for f in files}
    assert len(files) == len(set(files)) == 7  # named twice: read once
    with pytest.raises(FileNotFoundError):
        expand_inputs([str(tmp_path / "nothing*.gz")])
    with pytest.raises(ValueError, match="no input files"):
        expand_inputs([])


def test_chain_names_are_unique_file_names(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    zips = [lobster_zip(tmp_path / d / "day.zip") for d in ("x", "y")]
    assert [c.name for c in plan_chains(zips)] == ["lobster-day", "lobster-day-2"]
    book = tardis_pair(tmp_path)[0].rename(tmp_path / "btc book (1).csv")
    assert [c.name for c in plan_chains([book])] == ["tardis-btc_book__1_"]


def test_output_paths() -> None:
    a = Chain("binance", "binance-usdm-A", ("a1", "a2"), ("A",))
    b = Chain("binance", "binance-usdm-B", ("b",), ("B",))
    c = Chain("lobster", "lobster-C", ("c",))
    chains, outs = output_paths([a, b], "out")
    assert outs == [Path("out/binance-usdm-A.parquet"), Path("out/binance-usdm-B.parquet")]
    assert output_paths([a], "one.parquet") == ([a], [Path("one.parquet")])
    # Several Binance chains into one file: the reader's merged stream, inputs in caller order.
    chains, outs = output_paths([a, b], "all.parquet", ["b", "a2", "a1"])
    assert chains == [Chain("binance", "all", ("b", "a2", "a1"), ("A", "B"))]
    with pytest.raises(ValueError, match="directory"):
        output_paths([a, c], "mixed.parquet")


# ----- replaying ------------------------------------------------------------------------------


def test_parallel_equals_sequential_byte_for_byte(
    inputs: Path, tmp_path: Path, backend: str
) -> None:
    seq = replay_files([inputs], tmp_path / "seq", jobs=1, backend=backend, progress=False)
    par = replay_files([inputs], tmp_path / "par", jobs=2, backend=backend, progress=False)
    assert par.workers == 2 and seq.workers == 1
    a, b = tree(tmp_path / "seq"), tree(tmp_path / "par")
    assert list(a) == [f"{c.name}.parquet" for c in seq.chains] and len(a) == 4
    assert a == b
    assert [s.frames for s in seq.summaries] == [s.frames for s in par.summaries]
    assert par.total("events") == seq.total("events") > 0
    assert par.flag_counts() == seq.flag_counts()
    assert json.loads(json.dumps(par.to_dict()))["events"] == par.total("events")
    text = par.format()
    assert "7 files in 4 chains on 2 worker(s) (local)" in text and "events/s" in text


def test_chain_carries_the_book_across_files(inputs: Path, tmp_path: Path, backend: str) -> None:
    """The BTCUSDT chain equals one engine over both files read as one stream."""
    replay_files(
        [inputs], tmp_path / "out", jobs=2, backend=backend, progress=False, units="scaled"
    )
    got = read_feature_file(tmp_path / "out" / "binance-usdm-BTCUSDT.parquet").to_batch()
    files = [inputs / "a_btcusdt_late.gz", inputs / "b_btcusdt_early.gz"]
    whole = read_binance(files)
    want = FeatureEngine(whole.symbols, backend=backend).process_batch(whole.events)
    frames_equal(got, want)
    assert len(got) == 23  # the snapshot, then 11 diffs and 11 trades over the two files
    # The second file (no snapshot of its own) continues the book: one reset (the snapshot),
    # no gap, and its last diff's bid size.
    flags = got.columns["quality_flags"]
    assert np.count_nonzero(flags & QualityFlag.STATE_RESET) == 1
    assert not np.any(flags & QualityFlag.GAP_DETECTED)
    assert got.values["bid_qty"][-1] == 11_000


def test_one_chain_to_a_file_is_the_plain_replay(inputs: Path, tmp_path: Path) -> None:
    files = [inputs / "b_btcusdt_early.gz", inputs / "a_btcusdt_late.gz"]
    summary = replay_files(files, tmp_path / "new.parquet", progress=False)
    replay_binance(files, tmp_path / "old.parquet", progress=False, units="real")
    assert (tmp_path / "new.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()
    assert summary.format().startswith("wrote 23 frames")


def test_several_binance_chains_merge_into_one_file(inputs: Path, tmp_path: Path) -> None:
    files = [inputs / "ethusdt.gz", inputs / "b_btcusdt_early.gz"]
    replay_files(files, tmp_path / "new.parquet", jobs=2, progress=False)
    replay_binance(files, tmp_path / "old.parquet", progress=False, units="real")
    assert (tmp_path / "new.parquet").read_bytes() == (tmp_path / "old.parquet").read_bytes()
    assert set(read_feature_file(tmp_path / "new.parquet").column("symbol")) == {
        "BTCUSDT",
        "ETHUSDT",
    }


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="no dask")
def test_dask_local_cluster_equals_sequential(inputs: Path, tmp_path: Path) -> None:
    replay_files([inputs], tmp_path / "seq", jobs=1, progress=False)
    summary = replay_files([inputs], tmp_path / "dask", jobs=2, scheduler="dask", progress=False)
    assert summary.scheduler == "dask" and summary.workers == 2
    assert tree(tmp_path / "dask") == tree(tmp_path / "seq")


# ----- bad input ------------------------------------------------------------------------------


def test_unknown_file_in_a_set(inputs: Path, tmp_path: Path) -> None:
    notes = inputs / "notes.csv"
    notes.write_text("hello,world\n")
    with pytest.raises(SourceFormatError, match=r"notes\.csv: unknown format \(tried binance"):
        replay_files([inputs], tmp_path / "out", jobs=2, progress=False)
    assert not (tmp_path / "out").exists()  # nothing runs before every file is known


@pytest.mark.parametrize("jobs", [1, 2])
def test_corrupt_file_in_a_set_names_it(inputs: Path, tmp_path: Path, jobs: int) -> None:
    bad = inputs / "ethusdt.gz"
    text = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(text + b"1700000000999000000 {not json\n", mtime=0))
    opts = SourceOptions(errors="raise")
    with pytest.raises(ChainReplayError) as info:
        replay_files([inputs], tmp_path / "out", jobs=jobs, options=opts, progress=False)
    message = str(info.value)
    assert "binance-usdm-ETHUSDT" in message and "ethusdt.gz:" in message
    assert not (tmp_path / "out" / "binance-usdm-ETHUSDT.parquet").exists()


def test_bad_arguments(inputs: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scheduler"):
        replay_files([inputs], tmp_path / "o", scheduler="spark")
    with pytest.raises(ValueError, match="jobs"):
        replay_files([inputs], tmp_path / "o", jobs=0)
    with pytest.raises(ValueError, match="unknown format"):
        replay_files([inputs], tmp_path / "o", format="csv")


# ----- the command and the loader -------------------------------------------------------------


def test_cli_many_files(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "features"
    code = main(["replay", str(inputs), "--out", str(out), "--jobs", "2", "--no-progress"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "in 4 chains on 2 worker(s)" in stdout
    assert len(tree(out)) == 4
    code = main(["replay", str(inputs), "--out", str(tmp_path / "x.parquet"), "--no-progress"])
    _, err = capsys.readouterr()
    assert code == 1 and "give a directory" in err and len(err.strip().splitlines()) == 1
    code = main(["replay", str(inputs), "--out", str(out), "--scheduler-address", "h:1"])
    _, err = capsys.readouterr()
    assert code == 1 and "--scheduler dask" in err
    code = main(["replay", str(inputs / "*.zip"), "--out", str(out), "--format", "lobster"])
    _, err = capsys.readouterr()
    assert code == 1 and "no file matches" in err


def test_load_features(inputs: Path, tmp_path: Path) -> None:
    summary = replay_files([inputs], tmp_path / "out", progress=False)
    table = load_features(tmp_path / "out", as_="arrow")
    assert isinstance(table, pa.Table)
    assert table.num_rows == summary.total("frames")
    assert set(table.column("chain").to_pylist()) == {c.name for c in summary.chains}
    assert set(table.column("symbol").to_pylist()) == {"BTCUSDT", "ETHUSDT", "TEST", "SOLUSDT"}
    one = load_features(tmp_path / "out" / "binance-usdm-ETHUSDT.parquet", as_="arrow")
    assert one.num_rows == summary.summaries[1].frames and "chain" not in one.column_names
    if importlib.util.find_spec("polars") is not None:
        df = load_features(tmp_path / "out", columns=["symbol", "mid"])
        assert df.shape == (table.num_rows, 3)
    if importlib.util.find_spec("pandas") is not None:
        pdf = load_features(tmp_path / "out", as_="pandas")
        assert len(pdf) == table.num_rows


def test_load_features_of_scaled_files_gives_real_units(inputs: Path, tmp_path: Path) -> None:
    replay_files([inputs], tmp_path / "real", progress=False)
    replay_files([inputs], tmp_path / "scaled", progress=False, units="scaled")
    real = load_features(tmp_path / "real", as_="arrow")
    got = load_features(tmp_path / "scaled", as_="arrow")
    for name in ("mid", "bid_px", "ask_qty", "microprice", "mid_zscore_64"):
        assert got.column(name).equals(real.column(name)), name
    assert got.column("mid_zscore_64").null_count > 0  # in its warm-up: not ready, null
    exact = load_features(tmp_path / "scaled", as_="arrow", units="scaled", nulls=False)
    assert exact.column("mid").type == pa.int64() and exact.column("mid").null_count == 0
    with pytest.raises(SchemaMismatchError, match="scaled"):
        load_features(tmp_path / "real", as_="arrow", units="scaled")
    if importlib.util.find_spec("polars") is not None:
        df = load_features(tmp_path / "scaled" / "binance-usdm-BTCUSDT.parquet")
        ready = df.filter(df["mid"].is_not_null())
        assert len(ready) > 0
        assert ((ready["mid"] - (ready["bid_px"] + ready["ask_px"]) / 2).abs() < 1e-9).all()


def test_load_features_refuses_mixed_files_and_missing_libraries(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    replay_files([inputs / "ethusdt.gz"], out, progress=False, units="scaled")
    replay_files([inputs / "b_btcusdt_early.gz"], out / "btc.parquet", progress=False)
    with pytest.raises(SchemaMismatchError, match="units"):
        load_features(out, as_="arrow")
    with pytest.raises(FileNotFoundError):
        load_features(tmp_path, as_="arrow")
    import featureplane.frames.load as loader

    monkeypatch.setattr(loader, "_installed", lambda module: False)
    with pytest.raises(ImportError, match="pip install pandas"):
        load_features(out / "btc.parquet", as_="pandas")
    assert isinstance(load_features(out / "btc.parquet"), pa.Table)  # no polars: arrow


def test_hftbacktest_array_with_its_instrument(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = hftbacktest_npz(tmp_path / "btc.npz", inputs / "b_btcusdt_early.gz")
    from featureplane.sources.hftbacktest.reader import read_hftbacktest_events

    out = tmp_path / "out"
    argv = ["replay", str(npz), str(inputs / "ethusdt.gz"), "--out", str(out), "--no-progress"]
    assert main(argv) == 1
    assert "--instrument" in capsys.readouterr().err
    code = main([*argv, "--instrument", "BTCUSDT:0.1:0.001", "--jobs", "2", "--units", "scaled"])
    assert code == 0, capsys.readouterr().err
    whole = read_hftbacktest_events(npz, InstrumentSpec("BTCUSDT", "0.1", "0.001"))
    want = FeatureEngine(whole.symbols).process_batch(whole.events)
    frames_equal(read_feature_file(out / "hftbacktest-btc.parquet").to_batch(), want)
    # The instrument given for BTCUSDT does not leak into the ETHUSDT chain's symbol table.
    eth = read_feature_file(out / "binance-usdm-ETHUSDT.parquet")
    assert [s.symbol for s in eth.symbols] == ["ETHUSDT"]


# ----- scheduling and progress ------------------------------------------------------------------


def test_default_scheduling_says_what_it_chose(inputs: Path, tmp_path: Path) -> None:
    chains = plan_chains([inputs])
    workers, why = choose_workers(chains, None)
    assert workers == 1 and why.startswith("sequential")  # small inputs, or a small machine
    assert choose_workers(chains, 3) == (3, "3 worker(s), as asked")
    assert choose_workers(chains[:1], None) == (1, "sequential: one chain")
    summary = replay_files([inputs], tmp_path / "out", progress=False)
    assert summary.workers == 1 and summary.plan == why
    assert f"scheduling: {why}" in summary.format()


def test_dask_on_one_chain_says_it_ran_here(inputs: Path, tmp_path: Path) -> None:
    summary = replay_files(
        [inputs / "ethusdt.gz"], tmp_path / "eth.parquet", scheduler="dask", progress=False
    )
    assert summary.scheduler == "local" and "this process" in summary.plan


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_counts_messages_not_only_files(
    inputs: Path, tmp_path: Path, jobs: int, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = replay_files([inputs], tmp_path / "out", jobs=jobs, progress=True)
    err = capsys.readouterr().err
    # The bar's last state: every message of every chain (tqdm scales units: 39 -> "39.0"),
    # and every file.
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert f"{summary.total('messages'):.1f} msg" in last
    assert f"files {summary.files}/{summary.files}" in last


def test_a_script_without_the_main_guard_gets_one_clear_line(inputs: Path, tmp_path: Path) -> None:
    script = tmp_path / "noguard.py"
    script.write_text(
        "from featureplane.replay import replay_files\n"
        f"replay_files([{str(inputs)!r}], {str(tmp_path / 'out')!r}, jobs=2, progress=False)\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode != 0
    assert "if __name__ == '__main__':" in run.stderr
    assert "Traceback" not in run.stderr.split("ChainReplayError")[0].split("noguard.py")[-1]
    assert run.stderr.count("An attempt has been made to start a new process") == 0
    assert len(run.stderr.splitlines()) < 40  # was 165 lines
