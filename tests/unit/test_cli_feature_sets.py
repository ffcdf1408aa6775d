"""`--feature-set FILE|ID` on the commands, `featureplane schema --set`, the live config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from featureplane import _rust
from featureplane.cli import main
from featureplane.errors import ConfigError
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.parquet import read_feature_file
from featureplane.live.config import parse_config
from tests.support.datapaths import shared_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "feature-sets"
LOB_TOML = str(EXAMPLES / "lob_shared_v1.toml")
RESEARCH_TOML = str(EXAMPLES / "research_v1.toml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schema_set_prints_plan_and_hash(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "schema", "--set", RESEARCH_TOML)
    fs = resolve_feature_set(RESEARCH_TOML)
    assert code == 0 and f"schema_hash {fs.schema_hash}" in out
    assert "research_v1 (schema version 1, 48 features)" in out
    plan_line = next(line for line in out.splitlines() if line.startswith("plan "))
    assert plan_line == f"plan {fs.plan}"
    code, out, _ = run(capsys, "schema", "--set", RESEARCH_TOML, "--json")
    assert json.loads(out)["plan"] == fs.plan
    # the built-in declaration prints the built-in set, with its published hash
    code, out, _ = run(capsys, "schema", "--set", LOB_TOML)
    assert f"schema_hash {LOB_SHARED_V1.schema_hash}" in out


def test_bad_declaration_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[feature_set]\nid = "x"\nversion = 1\n'
        '[[features]]\nid = "a"\nfamily = "ema"\ninput = "b"\nparams = { span = 0 }\n'
    )
    code, _, err = run(capsys, "schema", "--set", str(bad))
    assert code == 1 and "unknown input 'b'" in err and "span" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "replay", str(bad), "--out", str(tmp_path / "o.parquet"),
                       "--feature-set", "no_such_set")  # fmt: skip
    assert code == 1 and "no_such_set" in err


def test_live_config_checks_the_feature_set(tmp_path: Path) -> None:
    base = {"symbols": [{"symbol": "BTCUSDT", "market": "usdm"}]}
    ok = parse_config({**base, "feature_engine": {"feature_set": RESEARCH_TOML}})
    assert ok.feature_engine.feature_set == RESEARCH_TOML
    with pytest.raises(ConfigError, match=r"feature_engine\.feature_set"):
        parse_config({**base, "feature_engine": {"feature_set": str(tmp_path / "none.toml")}})
    with pytest.raises(ConfigError, match="unknown feature set"):
        parse_config({**base, "feature_engine": {"feature_set": "nope_v9"}})


def test_parity_of_a_declared_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "parity", "--generated", "1", "--messages", "400",
                         "--candidate", "python", "--feature-set", RESEARCH_TOML)  # fmt: skip
    assert code == 0, err
    assert "x 56 columns, 0 mismatches" in out  # 48 features + 8 header columns
    if _rust.rust_available("engine") and not _rust.rust_available("plan"):
        code, _, err = run(capsys, "parity", "--generated", "1", "--messages", "100",
                           "--feature-set", RESEARCH_TOML)  # fmt: skip
        assert code == 1 and "plan kernel" in err


@pytest.mark.realdata
def test_replay_of_the_builtin_declaration_equals_the_default(
    tmp_path: Path, report: Callable[[str], None]
) -> None:
    captures = [
        shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz",
        shared_data("binance-usdm-ethusdt-20240808") / "ethusdt_20240808.gz",
    ]
    for capture in captures:
        default, declared = tmp_path / "default.parquet", tmp_path / "declared.parquet"
        common = ["replay", str(capture), "--units", "real", "--no-progress"]
        assert main([*common, "--out", str(default)]) == 0
        assert main([*common, "--out", str(declared), "--feature-set", LOB_TOML]) == 0
        # the files are equal byte for byte: values (NaN bits included), metadata, hash
        assert default.read_bytes() == declared.read_bytes()
        rows = pq.read_metadata(default).num_rows
        assert rows > 20_000
        report(f"replay --feature-set lob_shared_v1.toml = default on {capture.name}: "
               f"{rows:,} rows, files byte-identical")  # fmt: skip


@pytest.mark.realdata
def test_replay_of_research_v1(tmp_path: Path) -> None:
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    out = tmp_path / "research.parquet"
    assert main(["replay", str(capture), "--out", str(out), "--units", "real", "--no-progress",
                 "--feature-set", RESEARCH_TOML, "--backend", "python"]) == 0  # fmt: skip
    f = read_feature_file(out)
    assert f.feature_set == resolve_feature_set(RESEARCH_TOML) and f.units == "real"
    table = f.table
    assert table.num_rows > 20_000
    # real units: spread (scaled ticks) became price
    spread = table.column("spread").to_numpy()
    assert spread.dtype.kind == "f" and 0.0 < float(spread[spread > 0].min()) < 1.0
