"""Replay benchmark: recorded capture -> feature file, end to end, beside hftbacktest's own
converter of the same capture (which only converts), and LOBSTER GOOG throughput.

Every row is checked: the feature file reads back with one row per applied message and the
schema it was written with; hftbacktest's array is non-empty and ordered as its validator
wants.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from featureplane.bench import hftbacktest_baseline as hbt
from featureplane.bench.timing import Row, format_table, repeat, require_release_build
from featureplane.featurefile import read_feature_file
from featureplane.replay import replay_binance, replay_events

FP_REPLAY = "featureplane replay: parse+book+22 features+Parquet"
HBT_CONVERT = "hftbacktest binancefutures.convert (convert only)"
LOBSTER = "featureplane replay LOBSTER GOOG (msgs: rows)"

DEFAULT_LOBSTER = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "data"
    / "lobster-goog-2012-06-21-l10"
    / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
)


@dataclass
class ReplayBench:
    rows: list[Row]

    def format(self) -> str:
        return format_table(self.rows, {"hftbacktest convert": HBT_CONVERT})

    def to_json(self) -> dict[str, object]:
        return {"rows": [r.to_json() for r in self.rows]}


def _frames_in(path: Path) -> int:
    return len(read_feature_file(path).table)


def run(capture: Path, *, runs: int = 3, lobster: Path | None = DEFAULT_LOBSTER) -> ReplayBench:
    require_release_build()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "btc.parquet"
        times, summary = repeat(lambda: replay_binance([capture], out, progress=False), runs)
        ok = summary.frames == _frames_in(out) and summary.frames > 0
        rows.append(Row(FP_REPLAY, summary.events, times, correct=ok,
                        note=f"{summary.frames:,} frames written"))  # fmt: skip

        if hbt.available():
            from hftbacktest.data.utils import binancefutures

            times, data = repeat(
                lambda: binancefutures.convert(str(capture), combined_stream=True), runs
            )
            rows.append(Row(HBT_CONVERT, summary.events, times, correct=len(data) > 0,
                            note=f"{len(data):,} hftbacktest rows; no features"))  # fmt: skip

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
