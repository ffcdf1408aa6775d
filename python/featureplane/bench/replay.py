"""Replay benchmark: recorded capture -> feature file, end to end, beside hftbacktest's own
converter of the same capture (which only converts), and LOBSTER GOOG throughput.

The capture is replayed twice per run: with the default line parser (Rust where built) and
with the Python reference parser. Every row is checked: the feature file reads back with one
row per applied message, the two parsers' files are byte for byte the same, hftbacktest's array
is non-empty.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from featureplane._rust import rust_available
from featureplane.bench import hftbacktest_baseline as hbt
from featureplane.bench import startup
from featureplane.bench.datasets import data_root
from featureplane.bench.timing import Row, format_table, repeat, require_release_build
from featureplane.frames.parquet import read_feature_file
from featureplane.replay.parallel import ReplaySettings, replay_chain
from featureplane.replay.run import ReplaySummary, replay_events
from featureplane.sources.format import Chain, SourceOptions

FP_REPLAY = "featureplane replay: parse+book+22 features+Parquet"
FP_REPLAY_PYTHON = "featureplane replay, Python line parser"
HBT_CONVERT = "hftbacktest binancefutures.convert (convert only)"
FP_PROCESS = "featureplane replay, fresh process"
HBT_PROCESS = "hftbacktest convert, fresh process"
LOBSTER = "featureplane replay LOBSTER GOOG (msgs: rows)"

DEFAULT_LOBSTER = (
    data_root() / "lobster-goog-2012-06-21-l10" / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
)


ANCHORS = {
    "hftbacktest convert": HBT_CONVERT,
    "hftbacktest process": HBT_PROCESS,
    "Python parser": FP_REPLAY_PYTHON,
}


@dataclass
class ReplayBench:
    rows: list[Row]

    def format(self) -> str:
        return format_table(self.rows, ANCHORS)

    def to_json(self) -> dict[str, object]:
        return {"rows": [r.to_json() for r in self.rows]}


def _replay(capture: Path, out: Path, parser: str) -> ReplaySummary:
    """The capture through `featureplane replay`'s own path, with the given line parser."""
    chain = Chain("binance", out.stem, (str(capture),))
    settings = ReplaySettings(options=SourceOptions(parser=parser))
    return replay_chain(chain, out, settings)


def _processes(capture: Path, tmp: Path, runs: int, summary: ReplaySummary) -> list[Row]:
    """The replay and the converter as the fresh processes a user starts, interleaved, with
    the replay's start-up in the note."""
    fp_times: list[float] = []
    hbt_times: list[float] = []
    written = converted = 0
    out = tmp / "process.parquet"
    for _ in range(runs):
        wall, written = startup.replay_process(capture, out)
        fp_times.append(wall)
        if hbt.available():
            wall, converted = startup.convert_process(capture)
            hbt_times.append(wall)
    up = startup.start_up(capture, tmp / "probe.parquet", 2 * runs + 1)
    events = summary.events
    rows = [
        Row(
            FP_PROCESS,
            events,
            fp_times,
            correct=written == summary.frames,
            note=f"{written:,} frames, as in process; {up.note()}",
            extra={"start_up_ms": up.first_read_ms, "interpreter_ms": up.interpreter_ms},
        )
    ]
    if hbt_times:
        rows.append(
            Row(
                HBT_PROCESS,
                events,
                hbt_times,
                correct=converted > 0,
                note=f"{converted:,} hftbacktest rows; numba compiles in the process",
            )
        )
    return rows


def _frames_in(path: Path) -> int:
    return len(read_feature_file(path).table)


def run(capture: Path, *, runs: int = 3, lobster: Path | None = DEFAULT_LOBSTER) -> ReplayBench:
    require_release_build()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "btc.parquet"
        ref_out = Path(tmp) / "btc-python.parquet"
        parser: Literal["rust", "python"] = "rust" if rust_available("parser") else "python"
        # One untimed run each first: imports, the page cache and numba's compilation of
        # hftbacktest's converter would otherwise land in the first timed run of each row.
        _replay(capture, out, parser)
        _replay(capture, ref_out, "python")
        times, summary = repeat(lambda: _replay(capture, out, parser), runs)
        ref_times, ref = repeat(lambda: _replay(capture, ref_out, "python"), runs)
        # The parsers must agree on every byte of the file (frames, schema, source stats).
        same = out.read_bytes() == ref_out.read_bytes()
        ok = summary.frames == _frames_in(out) and summary.frames > 0 and same
        if parser == "rust":
            check = f"file {'identical to' if same else 'DIFFERS from'} the Python parser's"
        else:
            check = "the Rust parser is not built: both rows ran the Python parser"
        rows.append(Row(FP_REPLAY, summary.events, times, correct=ok,
                        note=f"{summary.frames:,} frames written; {parser} line parser; "
                             f"{check}"))  # fmt: skip
        ref_ok = ref.frames == summary.frames and ref.events == summary.events
        rows.append(Row(FP_REPLAY_PYTHON, ref.events, ref_times, correct=ref_ok,
                        note="the reference parser (orjson, per line in Python)"))  # fmt: skip

        if hbt.available():
            from hftbacktest.data.utils import binancefutures

            def convert() -> Any:
                # The converter prints its timestamp corrections; keep the table readable.
                with contextlib.redirect_stdout(io.StringIO()):
                    return binancefutures.convert(str(capture), combined_stream=True)

            convert()
            times, data = repeat(convert, runs)
            rows.append(Row(HBT_CONVERT, summary.events, times, correct=len(data) > 0,
                            note=f"{len(data):,} hftbacktest rows; no features"))  # fmt: skip
        rows += _processes(capture, Path(tmp), runs, summary)

        if lobster is not None and lobster.exists():
            from featureplane.sources.lobster import LobsterReader

            def goog() -> tuple[int, int]:
                reader = LobsterReader(lobster)
                lob_out = Path(tmp) / "goog.parquet"
                s = replay_events(iter(reader), reader.symbols, lob_out, progress=False)
                return s.messages, _frames_in(lob_out)

            times, (messages, frames) = repeat(goog, 1)
            rows.append(Row(LOBSTER, messages, times, correct=frames == messages,
                            note="events counted as LOBSTER messages"))  # fmt: skip
    return ReplayBench(rows)
