"""The perf gate: comparison, config, baseline and exit codes decided on constructed counts;
then real instruction counts under callgrind: two runs count the same, the normal build passes
its own baseline, the perf-canary build fails it, a debug build is refused.

The real counts need valgrind, cargo and the Rust extension: without them these tests skip
locally and fail under CI=true.
"""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from featureplane._rust import rust_available
from featureplane.bench import callgrind, gate
from featureplane.bench.gate import LOB_STATS, LOB_UPDATE, PARITY, GateConfig, Measurement
from featureplane.bench.synthetic import Shape
from featureplane.cli import main
from featureplane.errors import FeatureplaneError
from tests.support.rust import on_ci

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "perf" / "gate.toml"
TOOLCHAIN = {"rustc": "rustc 1.95.0 (59807616e 2026-04-14)", "valgrind": "valgrind-3.19.0"}


def measurement(
    stats: float = 135.0, update: float = 197.0, rate: float = 0.0, **toolchain: str
) -> Measurement:
    events = 199_936
    return Measurement(
        {LOB_STATS: stats, LOB_UPDATE: update, PARITY: rate},
        {LOB_STATS: round(stats * events), LOB_UPDATE: round(update * events)},
        events,
        GateConfig().workload.to_json(),
        {**TOOLCHAIN, **toolchain},
    )


def verdicts(base: Measurement, cur: Measurement) -> dict[str, bool]:
    return {v.rule.name: v.ok for v in gate.compare(base, cur, GateConfig())}


# ----- decided on constructed counts -----------------------------------------------------------


def test_same_counts_pass() -> None:
    assert all(verdicts(measurement(), measurement()).values())


def test_a_costlier_kernel_fails_only_that_metric() -> None:
    got = verdicts(measurement(), measurement(update=197.0 * 1.12))
    assert got == {LOB_STATS: True, LOB_UPDATE: False, PARITY: True}
    # Just inside the limit passes: deliberate small changes do not need a new baseline.
    assert all(verdicts(measurement(), measurement(update=197.0 * 1.09)).values())


def test_a_cheaper_kernel_passes_and_any_parity_mismatch_fails() -> None:
    assert all(verdicts(measurement(), measurement(stats=100.0, update=150.0)).values())
    assert verdicts(measurement(), measurement(rate=1e-6))[PARITY] is False


def test_a_metric_missing_from_the_baseline_fails() -> None:
    base = measurement()
    del base.values[LOB_UPDATE]
    assert verdicts(base, measurement())[LOB_UPDATE] is False


def test_counts_of_another_workload_are_not_compared() -> None:
    other = measurement()
    other.workload = {**other.workload, "diffs": 10}
    with pytest.raises(FeatureplaneError, match=r"another input.*--write-baseline"):
        gate.compare(other, measurement(), GateConfig())


def test_a_toolchain_change_warns_and_says_how_to_rebaseline() -> None:
    assert gate.warnings(measurement(), measurement()) == []
    got = gate.warnings(measurement(), measurement(rustc="rustc 1.96.0 (0000000 2026-06-01)"))
    assert len(got) == 1
    assert got[0].startswith("WARNING: rustc differs") and "1.96.0" in got[0]
    assert gate.REBASELINE in got[0]
    # The verdicts still come: a compiler change that slows the kernel 20% is worth seeing.
    assert all(verdicts(measurement(), measurement(valgrind="valgrind-3.22.0")).values())


def test_the_table_has_one_row_per_metric() -> None:
    base, cur = measurement(), measurement(update=197.0 * 1.25)
    text = gate.format_verdicts(gate.compare(base, cur, GateConfig()), cur)
    head, _, *rows = text.splitlines()
    assert head.split() == ["metric", "baseline", "current", "ratio", "limit", "verdict"]
    assert rows[1].split() == [LOB_UPDATE, "197.00", "246.25", "x1.2500", "<=", "x1.10",
                               "REGRESSION"]  # fmt: skip
    assert rows[2].split()[-1] == "ok"


def test_committed_config_and_baseline_load() -> None:
    config = gate.load_config(CONFIG)
    assert config.rules == GateConfig().rules
    assert config.shape == Shape(symbols=2, depth=1000, changes=68, trades=3)
    assert 100_000 <= config.events <= 200_000  # callgrind runs ~50x slower than native
    base = gate.load_baseline(REPO / "perf" / "baseline.json")
    assert set(base.values) == {LOB_STATS, LOB_UPDATE, PARITY}
    assert base.values[PARITY] == 0.0
    assert base.workload == config.workload.to_json()
    assert base.toolchain["rustc"].startswith("rustc ")
    assert base.toolchain["valgrind"].startswith("valgrind-")
    for name in (LOB_STATS, LOB_UPDATE):
        assert base.values[name] == pytest.approx(base.instructions[name] / base.events)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[gate\n", "not valid TOML"),
        ("[metrics.nonsense]\nmax_ratio = 2\n", "unknown metric"),
        (f"[metrics.{LOB_STATS}]\nmax_ratio = 2\nmax_value = 1\n", "exactly one"),
        (f"[metrics.{LOB_STATS}]\nmax_ratio = 'x'\n", "must be a number"),
        ("[gate]\nevents = 'many'\n", "bad \\[gate\\] value"),
        ("[gate]\nruns = 7\n", "unknown key gate.runs"),
        ("[gate.shape]\nlevels = 7\n[extra]\n", "unknown table \\[extra\\].*gate.shape.levels"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    with pytest.raises(FeatureplaneError, match=match):
        gate.load_config(path)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no baseline there"),
        ("not json", "not JSON"),
        (json.dumps({"version": 1, "anchor_us": 0.06, "values": {}}), "baseline version 1"),
        (json.dumps({"version": 2, "values": {}}), "not a perf-gate baseline"),
        (json.dumps({**measurement().to_json(), "values": {LOB_STATS: 0}}), "must be > 0"),
    ],
)
def test_a_missing_or_corrupted_baseline_exits_1_with_one_line(
    tmp_path: Path, content: str | None, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    assert main(["perf-gate", "--baseline", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("featureplane: error:") and err.count("\n") == 1
    assert says in err and "--write-baseline" in err


def test_no_baseline_argument_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["perf-gate"]) == 1
    assert "--baseline" in capsys.readouterr().err


def _script(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_debug_build_or_another_program_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    debug = _script(tmp_path / "debug", "echo profile=debug; echo canary=false")
    with pytest.raises(FeatureplaneError, match="debug build: the perf gate counts release"):
        callgrind.build_info(debug)
    with pytest.raises(FeatureplaneError, match="not the perf gate's binary"):
        callgrind.build_info(_script(tmp_path / "other", "exit 3"))
    args = ["perf-gate", "--config", str(CONFIG), "--write-baseline", str(tmp_path / "b.json")]
    assert main([*args, "--binary", str(debug)]) == 1
    assert "debug build" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


# ----- real counts under callgrind -------------------------------------------------------------


def require_gate_tools() -> None:
    """Skip without valgrind, cargo or the Rust extension; fail under CI=true."""
    missing = [tool for tool in ("valgrind", "cargo") if shutil.which(tool) is None]
    if not rust_available():
        missing.append("the Rust extension")
    if missing:
        reason = f"the perf gate needs {', '.join(missing)}"
        if on_ci():
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def counted() -> Measurement:
    """The normal build's counts on the committed config's input."""
    require_gate_tools()
    return gate.measure(gate.load_config(CONFIG))


def test_two_runs_count_the_same(counted: Measurement) -> None:
    again = gate.measure(gate.load_config(CONFIG))
    for name in (LOB_STATS, LOB_UPDATE):
        assert again.values[name] == pytest.approx(counted.values[name], rel=0.005)
    assert counted.values[PARITY] == 0.0 and not counted.canary
    assert counted.toolchain["valgrind"].startswith("valgrind-")


def test_the_normal_build_passes_its_own_baseline(
    counted: Measurement, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(counted.to_json()))
    assert main(["perf-gate", "--config", str(CONFIG), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "perf gate: pass" in out and "WARNING" not in out
    for name in (LOB_STATS, LOB_UPDATE, PARITY):
        assert name in out


def test_the_canary_build_fails_on_both_counted_metrics(
    counted: Measurement, tmp_path: Path, capsys: pytest.CaptureFixture[str], report: Any
) -> None:
    config = gate.load_config(CONFIG)
    canary = gate.measure(config, canary=True)
    assert canary.canary
    got = {v.rule.name: v for v in gate.compare(counted, canary, config)}
    assert {name: v.ok for name, v in got.items()} == {
        LOB_STATS: False, LOB_UPDATE: False, PARITY: True
    }  # fmt: skip
    ratios = {name: got[name].ratio for name in (LOB_STATS, LOB_UPDATE)}
    # The canary is sized for 1.25x (crates/featureplane-core/src/canary.rs).
    assert all(r is not None and 1.2 < r < 1.3 for r in ratios.values()), ratios
    report(f"perf-canary build: x{ratios[LOB_STATS]:.4f} {LOB_STATS}, "
           f"x{ratios[LOB_UPDATE]:.4f} {LOB_UPDATE}")  # fmt: skip

    # Through the command: exit 1, the table says REGRESSION, and no baseline is written from it.
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(counted.to_json()))
    args = ["perf-gate", "--config", str(CONFIG), "--baseline", str(base), "--canary"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"REGRESSION in {LOB_STATS}, {LOB_UPDATE}" in out and "perf-canary" in out
    assert main([*args, "--write-baseline", str(tmp_path / "new.json")]) == 1
    assert "perf-canary" in capsys.readouterr().err
    assert not (tmp_path / "new.json").exists()


def test_a_toolchain_mismatch_warns_through_the_command(
    counted: Measurement, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = counted.to_json()
    data["toolchain"]["rustc"] = "rustc 1.80.0 (051478957 2024-07-21)"
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(data))
    assert main(["perf-gate", "--config", str(CONFIG), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: rustc differs from the baseline's" in out and gate.REBASELINE in out


def test_the_real_debug_build_is_refused() -> None:
    require_gate_tools()
    with pytest.raises(FeatureplaneError, match="debug build"):
        callgrind.build_info(callgrind.build(debug=True))
