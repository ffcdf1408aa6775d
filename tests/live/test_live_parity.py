"""Live equals research: the loopback venue serving the real captures at max speed, the live
path reading it, and research replay of the same captures give the same frames."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from featureplane.cli import main
from featureplane.frames.parquet import read_feature_file
from featureplane.live.parity import (
    DIFFERENT_BY_DESIGN,
    compare_batches,
    live_parity,
    research_batch,
)
from tests.support.live import SPOT, USDM, captures, run_live, slice_captures

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(
    ("name", "which"), [("usdm BTCUSDT+ETHUSDT", USDM), ("spot BTCUSDT chain", SPOT)]
)
def test_live_equals_research_on_full_captures(
    name: str, which: list[tuple[str, str]], tmp_path: Path, report: Callable[[str], None]
) -> None:
    result = live_parity(captures(which), name=name, workdir=tmp_path)
    report(
        f"live parity {name}: {result.frames:,} frames compared, {result.mismatches} mismatches, "
        f"order {'equal' if result.order_equal else 'different'}"
    )
    assert result.frames > 20_000
    assert result.ok, result.format()
    assert result.order_equal
    assert result.live is not None and result.live.ended_by == "end of stream"
    # Every message the venue sent was applied: nothing lost, nothing resynced.
    for sym, c in result.live.symbols.items():
        assert c["gaps"] == c["duplicates"] == c["late"] == 0, sym
        assert c["snapshots_applied"] == 1, sym


def test_compare_catches_a_changed_value(tmp_path: Path) -> None:
    """The comparison can fail: one value changed in one live frame is one mismatch."""
    paths = slice_captures(captures(SPOT), tmp_path / "cap", 20)
    research = research_batch(paths)
    live = research_batch(paths)
    live.values["mid"][100] += 1
    live.columns["local_ts_ns"][:] += 5  # a documented difference: not counted
    report = compare_batches("spot slice", live, research)
    assert report.mismatches == 1
    assert report.symbols[0].columns["mid"] == 1
    assert "local_ts_ns" in DIFFERENT_BY_DESIGN


def test_recording_replays_to_the_live_frames(tmp_path: Path) -> None:
    """`--record` writes what the live path applied; research replay of it gives the live
    frames exactly, `local_ts_ns` included."""
    paths = slice_captures(captures(USDM), tmp_path / "cap", 30)
    run = run_live(paths, tmp_path, record=True)
    recorded = run.summary.recorded
    assert len(recorded) == 2
    replayed = research_batch(recorded)
    report = compare_batches("recording", run.batch, replayed, ignore=("input_index",))
    assert report.ok, report.format()
    assert len(run.batch) > 1000


def _venue_process(paths: list[Path]) -> tuple[subprocess.Popen[str], int]:
    exe = [sys.executable, "-m", "featureplane.cli", "venue", "serve", *map(str, paths),
           "--wait-for-client-s", "60"]  # fmt: skip
    proc = subprocess.Popen(exe, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("venue listening on"):
            return proc, int(line.rsplit(":", 1)[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise AssertionError(f"the venue did not start: {err}")


def test_cli_venue_serve_live_out_equals_replay(tmp_path: Path) -> None:
    """The commands a person runs: `venue serve`, `live --out`, `replay`, compared."""
    paths = slice_captures(captures(USDM), tmp_path / "cap", 60)
    proc, port = _venue_process(paths)
    try:
        config = tmp_path / "live.toml"
        config.write_text(
            "[[symbols]]\nsymbol = 'BTCUSDT'\n[[symbols]]\nsymbol = 'ETHUSDT'\n"
            f"[feed]\nws_url = 'ws://127.0.0.1:{port}'\nrest_url = 'http://127.0.0.1:{port}'\n"
            "exit_on_end_of_stream = true\nmax_reconnects = 3\n"
        )
        assert main(["live", "--config", str(config), "--check"]) == 0
        out = tmp_path / "live.parquet"
        env = {**os.environ, "PYTHONWARNINGS": "error"}
        done = subprocess.run(
            [sys.executable, "-m", "featureplane.cli", "live", "--config", str(config),
             "--out", str(out), "--duration", "120"],
            capture_output=True, text=True, timeout=180, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "ended by end of stream" in done.stdout
    finally:
        proc.terminate()
        venue_out, _ = proc.communicate(timeout=30)
    assert '"finished": true' in venue_out
    replayed = tmp_path / "replay.parquet"
    # Exact ints on both sides: the live recording is scaled, so is the research replay.
    argv = ["replay", *map(str, paths), "--out", str(replayed), "--units", "scaled"]
    assert main([*argv, "--no-progress"]) == 0
    report = compare_batches(
        "cli", read_feature_file(out).to_batch(), read_feature_file(replayed).to_batch()
    )
    assert report.ok and report.order_equal, report.format()
    assert report.frames > 5_000


def test_cli_live_parity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = slice_captures(captures(SPOT), tmp_path / "cap", 30)
    assert main(["live", "parity", *map(str, paths), "--json", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "frames compared, 0 mismatches" in out
    assert np.isfinite(len(out))
