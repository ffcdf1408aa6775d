"""Fresh processes: `featureplane replay` as a user runs it, beside hftbacktest's converter in a
process of its own, and the start-up before the replay's first byte of work.

Start-up is the time from the benchmark's clock read before it starts the process to the
replay's first open of its capture (format detection reads the head), seen by an audit hook
(`sys.addaudithook`) that stamps `CLOCK_MONOTONIC` (one clock for both processes) and ends the
process there. The interpreter's own start is measured beside it (`python -c pass`): no Python
command starts faster than that.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

PROBE = textwrap.dedent(
    """
    import os, sys, time
    capture = sys.argv[1]

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, os.PathLike)) and (
            os.fspath(args[0]) == capture
        ):
            os.write(1, b"first-read %d\\n" % time.monotonic_ns())
            os._exit(0)

    sys.addaudithook(hook)
    from featureplane.cli import main
    main(["replay", capture, "--out", sys.argv[2], "--no-progress"])
    """
)

CONVERT = textwrap.dedent(
    """
    import contextlib, io, sys
    from hftbacktest.data.utils import binancefutures
    with contextlib.redirect_stdout(io.StringIO()):
        data = binancefutures.convert(sys.argv[1], combined_stream=True)
    print(len(data))
    """
)

GOAL_MS = 150.0
"""Start-up before the first byte of work, the goal (docs/performance.md)."""


@dataclass
class StartUp:
    """Medians over the runs, in ms."""

    interpreter_ms: float
    first_read_ms: float
    runs: int

    def note(self) -> str:
        verdict = "met" if self.first_read_ms < GOAL_MS else "NOT met"
        return (
            f"start-up to the first read of the capture {self.first_read_ms:.0f} ms "
            f"(goal {GOAL_MS:.0f} ms: {verdict}); the interpreter alone "
            f"{self.interpreter_ms:.0f} ms; medians of {self.runs}"
        )


def _wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    return time.perf_counter() - t0, done


def start_up(capture: Path, out: Path, runs: int) -> StartUp:
    """Medians of `runs` interleaved rounds: the interpreter alone, and exec -> first read."""
    bare: list[float] = []
    first: list[float] = []
    for _ in range(runs):
        bare.append(_wall([sys.executable, "-c", "pass"])[0] * 1e3)
        t0 = time.monotonic_ns()
        done = subprocess.run(
            [sys.executable, "-c", PROBE, os.fspath(capture), os.fspath(out)],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        stamp = [ln for ln in done.stdout.splitlines() if ln.startswith("first-read ")]
        if not stamp:
            raise RuntimeError(f"the replay never read its capture: {done.stderr[-2000:]}")
        first.append((int(stamp[0].split()[1]) - t0) / 1e6)
    return StartUp(statistics.median(bare), statistics.median(first), runs)


def replay_process(capture: Path, out: Path) -> tuple[float, int]:
    """Wall time of `featureplane replay` as a process, and the frames it wrote."""
    from featureplane.frames.parquet import read_feature_file

    wall, done = _wall(
        [sys.executable, "-m", "featureplane.cli", "replay", os.fspath(capture),
         "--out", os.fspath(out), "--no-progress"]
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"featureplane replay failed: {done.stderr[-2000:]}")
    return wall, len(read_feature_file(out).table)


def convert_process(capture: Path) -> tuple[float, int]:
    """Wall time of hftbacktest's converter as a process (numba compiles in it, as a user's
    run does), and the rows it made."""
    wall, done = _wall([sys.executable, "-c", CONVERT, os.fspath(capture)])
    if done.returncode != 0:
        raise RuntimeError(f"hftbacktest convert failed: {done.stderr[-2000:]}")
    return wall, int(done.stdout.split()[-1])
