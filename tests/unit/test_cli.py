"""The `featureplane` command: schema output, replay on a small capture, clean error exits."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from featureplane import __version__
from featureplane.cli import build_parser, main
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1 as FS
from featureplane.frames.parquet import read_feature_file
from featureplane.schema import FeatureSet

T0 = 1_700_000_000_000  # ms


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("featureplane: error: ")
    assert "Traceback" not in err


def line(local_ts_ns: int, obj: dict[str, Any]) -> str:
    return f"{local_ts_ns} {json.dumps(obj, separators=(',', ':'))}\n"


def diff(i: int, first: int, last: int, prev: int, bid_qty: str) -> dict[str, Any]:
    data = {
        "e": "depthUpdate",
        "E": T0 + i,
        "T": T0 + i,
        "s": "BTCUSDT",
        "U": first,
        "u": last,
        "pu": prev,
        "b": [["42000.0", bid_qty]],
        "a": [["42000.5", "0.300"]],
    }
    return {"stream": "btcusdt@depth@0ms", "data": data}


def trade(i: int, buyer_maker: bool) -> dict[str, Any]:
    data = {
        "e": "trade",
        "E": T0 + i,
        "T": T0 + i,
        "s": "BTCUSDT",
        "t": 70 + i,
        "p": "42000.5",
        "q": "0.010",
        "X": "MARKET",
        "m": buyer_maker,
    }
    return {"stream": "btcusdt@trade", "data": data}


def capture(path: Path, *, snapshot: bool = True, n: int = 6) -> Path:
    """A hand-written USD-M capture: REST snapshot (lastUpdateId 100), diffs, trades."""
    text = ""
    if snapshot:
        text += line(
            T0 * 10**6,
            {
                "lastUpdateId": 100,
                "E": T0,
                "T": T0,
                "bids": [["42000.0", "1.500"], ["41999.5", "2.000"]],
                "asks": [["42000.5", "0.250"]],
            },
        )
    prev, last = 97, 101  # the first diff straddles the snapshot: U <= 100 <= u
    for i in range(1, n + 1):
        first = 99 if i == 1 else prev + 1
        text += line((T0 + i) * 10**6 + 5, diff(i, first, last, prev, f"{i}.000"))
        text += line((T0 + i) * 10**6 + 9, trade(i, buyer_maker=i % 2 == 0))
        prev, last = last, last + 3
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(text.encode())
    return path


# ----- schema -----------------------------------------------------------------------------


def test_schema_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "schema")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("lob_shared_v1 (schema version 1, 22 features)")
    assert FS.schema_hash in out
    head = next(ln for ln in lines if ln.startswith("id"))
    assert head.split() == ["id", "name", "dtype", "scale", "unit", "warm-up", "source", "flags"]
    rows = {ln.split()[1]: ln.split() for ln in lines if ln[:2].strip().isdigit()}
    assert list(rows) == list(FS.names)
    assert rows["mid"] == ["5", "mid", "i64", "2", "price", "1", "book", "scaled,exact"]
    assert rows["mid_zscore_64"][2:] == ["f64", "0", "zscore", "64", "book", "rolling"]
    assert rows["book_regime"][-1] == "exact"


def test_schema_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", "--json", "--feature-set", "lob_shared_v1")
    assert code == 0
    obj = json.loads(out)
    assert obj["schema_hash"] == FS.schema_hash
    assert FeatureSet.from_json(obj) == FS


def test_schema_unknown_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "schema", "--feature-set", "nope_v9")
    assert_one_line_error(code, err)
    assert "nope_v9" in err


def test_usage_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "usage" in err
    code, _, err = run(capsys, "replay", "x.gz")  # --out is required
    assert code == 2 and "--out" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


# ----- replay -----------------------------------------------------------------------------


@pytest.fixture
def binance() -> None:
    pytest.importorskip("featureplane.sources.binance.reader")


@pytest.mark.usefixtures("binance")
def test_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = capture(tmp_path / "btcusdt_20231114.gz")
    out = tmp_path / "features.parquet"
    code, stdout, err = run(
        capsys, "replay", str(src), "--out", str(out), "--backend", "python", "--no-progress",
        "--units", "scaled",
    )  # fmt: skip
    assert code == 0, err
    assert "13 frames" in stdout and "events/s" in stdout and "STATE_RESET 1" in stdout
    assert "units scaled" in stdout
    f = read_feature_file(out)
    assert f.units == "scaled" and len(f) == 13
    exact = f.to_arrow(units="scaled", nulls=False)
    assert exact["bid_px"][0].as_py() == 420_000 and exact["bid_qty"][0].as_py() == 1_500
    assert exact["bid_qty"][-1].as_py() == 6_000
    assert exact["last_trade_px"][-1].as_py() == 420_005
    # Trades of the capture: buyer-initiated when the buyer is not the maker (m false).
    assert exact["trade_signed_qty_cum"][-1].as_py() == 0  # three buys, three sells of 10 lots
    assert f.sources[0].name == src.name


@pytest.mark.usefixtures("binance")
def test_replay_parsers_write_the_same_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("featureplane._core")
    src = capture(tmp_path / "btcusdt_20231114.gz")
    outs = []
    for parser in ("python", "rust"):
        out = tmp_path / f"{parser}.parquet"
        code, _, err = run(
            capsys, "replay", str(src), "--out", str(out), "--parser", parser, "--no-progress"
        )
        assert code == 0, err
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    code, _, err = run(capsys, "replay", str(src), "--out", str(tmp_path / "x"), "--parser", "c")
    assert code == 2 and "invalid choice" in err


@pytest.mark.usefixtures("binance")
def test_replay_real_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = capture(tmp_path / "btcusdt.gz")
    out = tmp_path / "real.parquet"
    code, stdout, err = run(
        capsys, "replay", str(src), "--out", str(out), "--no-progress", "--backend", "python"
    )
    assert code == 0, err
    assert "units real" in stdout  # the default
    f = read_feature_file(out)
    assert f.units == "real"
    assert f.column("bid_px")[0] == 42000.0 and f.column("mid")[0] == 42000.25
    assert f.column("ask_qty")[0] == 0.25
    assert main(["replay", str(src), "--out", str(out), "--units", "real", "--no-progress",
                 "--backend", "python"]) == 0  # fmt: skip
    assert read_feature_file(out).column("mid")[0] == 42000.25


@pytest.mark.usefixtures("binance")
def test_replay_garbage_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.gz"
    junk.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, "replay", str(junk), "--out", str(out), "--no-progress")
    assert_one_line_error(code, err)
    assert "junk.gz" in err
    assert not out.exists()


@pytest.mark.usefixtures("binance")
def test_replay_damaged_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cut = tmp_path / "cut.gz"
    cut.write_bytes(capture(tmp_path / "whole.gz").read_bytes()[:40])
    out = tmp_path / "out.parquet"
    code, _, err = run(capsys, "replay", str(cut), "--out", str(out), "--errors", "raise")
    assert_one_line_error(code, err)
    assert "cut.gz" in err


@pytest.mark.usefixtures("binance")
def test_replay_bad_line_with_errors_raise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = capture(tmp_path / "good.gz")
    with gzip.open(good, "rb") as f:
        text = f.read()
    bad = tmp_path / "bad.gz"
    with gzip.GzipFile(bad, "wb", mtime=0) as f:
        f.write(text + b"1700000000999000000 {not json\n")
    out = tmp_path / "out.parquet"
    code, _, err = run(
        capsys,
        "replay",
        str(bad),
        "--out",
        str(out),
        "--errors",
        "raise",
        "--no-progress",
        "--backend",
        "python",
    )
    assert_one_line_error(code, err)
    assert "bad.gz:" in err
    assert not out.exists()
    # The default skips and counts the line instead.
    code, stdout, err = run(
        capsys, "replay", str(bad), "--out", str(out), "--no-progress", "--backend", "python"
    )
    assert code == 0, err
    assert "bad_json" in stdout


@pytest.mark.usefixtures("binance")
def test_replay_without_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = capture(tmp_path / "nosnap.gz", snapshot=False)
    out = tmp_path / "out.parquet"
    code, _, err = run(
        capsys, "replay", str(src), "--out", str(out), "--no-progress", "--backend", "python"
    )
    assert_one_line_error(code, err)
    assert "snapshot" in err
    assert not out.exists()
    # Asked to, the replay drops the diffs and keeps the trades.
    code, stdout, err = run(
        capsys,
        "replay",
        str(src),
        "--out",
        str(out),
        "--no-progress",
        "--backend",
        "python",
        "--on-missing-snapshot",
        "skip",
    )
    assert code == 0, err
    assert "no_snapshot_diffs" in stdout
    assert len(read_feature_file(out)) == 6  # the six trades


def test_replay_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("featureplane.sources.binance.reader")
    missing = tmp_path / "missing.gz"
    code, _, err = run(capsys, "replay", str(missing), "--out", str(tmp_path / "o.parquet"))
    assert_one_line_error(code, err)
    assert "missing.gz" in err


# ----- demo -------------------------------------------------------------------------------


def test_demo_passes_its_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = pytest.importorskip("featureplane.demo")
    calls: list[tuple[Path, dict[str, Any]]] = []

    def fake_run_demo(out_dir: Path, **kwargs: Any) -> None:
        calls.append((out_dir, kwargs))

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    code, _, err = run(
        capsys,
        "demo",
        "--out",
        str(tmp_path / "d"),
        "--seed",
        "11",
        "--backend",
        "python",
        "--no-progress",
    )
    assert code == 0, err
    assert calls == [(tmp_path / "d", {"seed": 11, "backend": "python", "progress": False})]


def test_demo_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = pytest.importorskip("featureplane.demo")

    def failing(out_dir: Path, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(out_dir))

    monkeypatch.setattr(demo, "run_demo", failing)
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "ro"))
    assert_one_line_error(code, err)
    assert "Permission denied" in err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subparsers(sub).items()})
    return found


def test_every_option_has_help_and_every_command_examples() -> None:
    subs = _subparsers(build_parser())
    assert {"schema", "replay", "demo", "parity", "bench", "perf-gate", "backtest"} <= set(subs)
    missing = [
        f"{name} {'/'.join(a.option_strings) or a.dest}"
        for name, sub in subs.items()
        for a in sub._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction) and not a.help
    ]
    assert missing == []
    no_examples = [
        n for n, s in subs.items() if " " not in n and "examples:" not in (s.epilog or "")
    ]
    assert no_examples == []
    text = subs["replay"].format_help()
    assert "(default: real)" in text and "half ticks" in text  # units explained, default shown


def test_backtest_finds_its_default_capture_through_the_one_data_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEATUREPLANE_DATA", str(tmp_path))
    assert main(["backtest", "ab", "--loop", "python"]) == 1
    err = capsys.readouterr().err
    assert "FEATUREPLANE_DATA" in err and str(tmp_path) in err
