"""The benchmark commands run and check themselves (correctness per row); timings are not
asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from featureplane._rust import rust_available
from featureplane.bench import per_message, replay, scaling, timing
from featureplane.bench.kernel import (
    HBT,
    HBT_HASHMAP,
    HBT_ROI,
    PY_BOOK,
    PY_REF,
    RUST_BATCH,
    RUST_BOOK,
    RUST_MSG,
)
from featureplane.cli import main
from tests.support.datapaths import shared_data

pytestmark = [pytest.mark.slow]


@pytest.mark.realdata
def test_bench_quick_rows_are_correct(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not rust_available():
        pytest.skip("the kernel benchmark compares the Rust backend")
    capture = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    out, chart = tmp_path / "bench.json", tmp_path / "bench.png"
    args = [
        "bench",
        "--quick",
        "--capture",
        str(capture),
        "--json",
        str(out),
        "--chart",
        str(chart),
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "x python ref" in table and "peak MB" in table and "featureplane replay" in table
    report = json.loads(out.read_text())
    kernel = [s for s in report["sections"] if s["title"].startswith("kernel")]
    assert len(kernel) == 2  # the capture and the simulator
    for section in kernel:
        rows = section["rows"]
        names = {r["name"] for r in rows}
        assert names >= {PY_BOOK, RUST_BOOK, PY_REF, RUST_BATCH, RUST_MSG}
        assert all(r["correct"] for r in rows)
        assert len({r["events"] for r in rows}) == 1  # every row counts the same events
        assert all(r["min_s"] <= r["median_s"] <= r["max_s"] for r in rows)
    assert {HBT, HBT_ROI, HBT_HASHMAP} <= {r["name"] for r in kernel[0]["rows"]}
    assert "x hbt OFI+imb" in table
    (latency,) = [s for s in report["sections"] if s["title"].startswith("per message")]
    by_name = {r["name"]: r for r in latency["rows"]}
    assert set(by_name) == {per_message.PY_BOOK, per_message.PY_TRADE, per_message.PY_INTO_BOOK,
                            per_message.PY_INTO_TRADE, per_message.RUST_BOOK,
                            per_message.RUST_TRADE}  # fmt: skip
    # Each row checks its frames (Python calls against the batch, their records byte for byte,
    # the Rust-only path against the research replay of the capture) and orders its quantiles.
    assert all(r["correct"] and 0 < r["p50_ns"] <= r["p99_ns"] <= r["p999_ns"]
               for r in by_name.values())  # fmt: skip
    (replay_section,) = [s for s in report["sections"] if s["title"].startswith("replay")]
    process = {r["name"]: r for r in replay_section["rows"]}[replay.FP_PROCESS]
    # The fresh process wrote the frames the in-process replay did, and its start-up is timed.
    assert process["correct"] and 0 < process["start_up_ms"] < process["median_s"] * 1e3
    assert all(r["correct"] for s in report["sections"] for r in s["rows"])
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_scaling_points_and_session_are_measured(tmp_path: Path) -> None:
    if not rust_available():
        pytest.skip("the scaling curves measure the Rust kernel")
    spec = scaling.CurveSpec("depth", "levels", (10, 100), lambda x: scaling.Shape(depth=x), 10)
    c = scaling.curve(spec, events=20_000, python_events=2_000, runs=2)
    assert {(p.x, p.backend) for p in c.points} == {
        (10, scaling.RUST), (10, scaling.RUST_BOOKS), (10, scaling.PYTHON),
        (100, scaling.RUST), (100, scaling.RUST_BOOKS),
    }  # fmt: skip
    # Whole messages of 71 rows: a little under the events asked for.
    want = {scaling.RUST: 20_000, scaling.RUST_BOOKS: 20_000, scaling.PYTHON: 2_000}
    assert all(p.ns_per_event > 0 and want[p.backend] - 71 < p.events <= want[p.backend]
               for p in c.points)  # fmt: skip
    snap = scaling.snapshot_curve((100, 1_000), runs=2, python_max=100)
    assert {(p.x, p.backend, p.events) for p in snap.points} == {
        (100, scaling.RUST, 201), (100, scaling.RUST_BOOKS, 201), (100, scaling.PYTHON, 201),
        (1_000, scaling.RUST, 2_001), (1_000, scaling.RUST_BOOKS, 2_001),
    }  # fmt: skip
    s = scaling.session(2_000_000, chunk_events=200_000)
    assert s.events[-1] >= 2_000_000 and len(s.events) == len(s.rss) == len(s.ns_per_event)
    assert s.frames > 0 and all(r > 0 for r in s.rss)
    from featureplane.bench import chart

    chart.scaling_chart(scaling.ScalingResult([c, c, c, snap], s), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_debug_build_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    core = pytest.importorskip("featureplane._core")
    monkeypatch.setattr(core, "BUILD_PROFILE", "debug")
    with pytest.raises(timing.DebugBuildError, match="debug build"):
        timing.require_release_build()


def test_matrix_chart_draws_a_panel_per_section(tmp_path: Path) -> None:
    from featureplane.bench import backtest, chart, matrix

    def rows(*names: str, events: int = 1_000) -> list[timing.Row]:
        return [timing.Row(n, events, [1e-4, 2e-4, 3e-4], correct=True) for n in names]

    sections = [
        matrix.SectionResult("kernel: capture", rows(PY_REF, RUST_BATCH), {}, 1.0),
        matrix.SectionResult("kernel: simulator", rows(PY_REF, RUST_BATCH), {}, 1.0),
        matrix.SectionResult("kernel: absent", [], {}, 0.0, skipped="no data"),
        matrix.SectionResult("replay: capture file", rows("featureplane replay"), {}, 1.0),
        matrix.SectionResult(
            "hftbacktest: stats_only vs lob_feature; decision latency",
            rows(backtest.STATS_NUMBA, backtest.PRE_NUMBA)
            + rows(backtest.LAT_LEGACY, backtest.LAT_FEATURE, events=1),
            {},
            1.0,
        ),
    ]
    path = tmp_path / "m.png"
    panels = chart.matrix_chart(matrix.MatrixResult(sections, "release"), path)
    assert [p.title for p in panels] == [
        "kernel: capture",
        "kernel: simulator",
        "replay: capture file",
        "hftbacktest: stats_only vs lob_feature",
        "hftbacktest: decision latency, ns per decision",
    ]
    assert [p.xlabel for p in panels] == [chart.PER_EVENT] * 4 + [chart.PER_DECISION]
    assert [r.name for r in panels[-1].rows] == [backtest.LAT_LEGACY, backtest.LAT_FEATURE]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
