"""The benchmark matrix: a list of sections, each a titled group of rows with its own anchors.

A section is a title, a function returning checked `Row`s, and the anchor rows its ratio
columns divide by (only rows counting the same events get a ratio). Adding a group of rows
is one more `Section` in the list `sections()` returns.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featureplane.bench import datasets, kernel
from featureplane.bench.timing import Anchor, Row, format_table, require_release_build
from featureplane.schema import FeatureSet


@dataclass
class Section:
    """A titled group of rows: `run()` measures and checks them."""

    title: str
    run: Callable[[], list[Row]]
    anchors: Mapping[str, Anchor] = field(default_factory=dict)


@dataclass
class SectionResult:
    title: str
    rows: list[Row]
    anchors: Mapping[str, Anchor]
    seconds: float
    skipped: str = ""

    def format(self) -> str:
        head = f"== {self.title} ({self.seconds:.0f} s)"
        if self.skipped:
            return f"{head}\n   skipped: {self.skipped}"
        return f"{head}\n\n{format_table(self.rows, self.anchors)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "anchors": dict(self.anchors),
            "seconds": self.seconds,
            "skipped": self.skipped,
            "rows": [r.to_json() for r in self.rows],
        }


@dataclass
class MatrixResult:
    sections: list[SectionResult]
    build: str

    @property
    def rows(self) -> list[Row]:
        return [r for s in self.sections for r in s.rows]

    @property
    def correct(self) -> bool:
        return all(r.correct is not False for r in self.rows)

    def format(self) -> str:
        parts = [s.format() for s in self.sections]
        bad = [r.name for r in self.rows if r.correct is False]
        tail = (
            f"rows with wrong output: {', '.join(bad)}" if bad else "every row checked its output"
        )
        return "\n\n".join([*parts, tail])

    def to_json(self) -> dict[str, Any]:
        return {"machine": machine(), "build": self.build,
                "sections": [s.to_json() for s in self.sections]}  # fmt: skip


def machine() -> dict[str, Any]:
    import os

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def kernel_section(spec: datasets.DatasetSpec, runs: int, python_runs: int) -> Section:
    def run() -> list[Row]:
        return kernel.run_dataset(datasets.load(spec), runs=runs, python_runs=python_runs)

    return Section(f"kernel: {spec.name}", run, kernel.ANCHORS)


def sim_section(n_messages: int, runs: int, python_runs: int) -> Section:
    def run() -> list[Row]:
        return kernel.run_dataset(datasets.simulated(n_messages), runs=runs,
                                  python_runs=python_runs)  # fmt: skip

    return Section(f"kernel: simulator ({n_messages:,} book messages)", run, kernel.ANCHORS)


def per_message_section(spec: datasets.DatasetSpec, root: Path, runs: int) -> Section:
    from featureplane.bench import per_message

    def run() -> list[Row]:
        ds = datasets.load(spec, root)
        return per_message.run(ds, ds.usdm_capture, runs)

    return Section(f"per message, by kind: {spec.name}", run)


def replay_section(capture: Path, runs: int) -> Section:
    from featureplane.bench import replay

    def run() -> list[Row]:
        return replay.run(capture, runs=runs).rows

    return Section("replay: capture file -> Parquet feature file, end to end", run,
                   replay.ANCHORS)  # fmt: skip


def backtest_section(capture: Path, runs: int) -> Section:
    from featureplane.bench import backtest

    def run() -> list[Row]:
        return backtest.run(capture, runs=runs).rows

    return Section(
        "hftbacktest: stats_only vs lob_feature (streaming, precomputed); decision latency",
        run,
        {"stats_only numba": backtest.STATS_NUMBA, "legacy signal": backtest.LAT_LEGACY},
    )


def feature_set_section(
    spec: datasets.DatasetSpec, fs: FeatureSet, runs: int, python_runs: int
) -> Section:
    from featureplane.bench import featureset

    def run() -> list[Row]:
        return featureset.run_dataset(datasets.load(spec), fs, runs=runs, python_runs=python_runs)

    return Section(f"feature set {fs.feature_set_id}: {spec.name}", run, featureset.ANCHORS)


def sections(
    *, capture: Path | None = None, runs: int = 5, quick: bool = False,
    root: Path = datasets.SHARED_DATA, feature_set: FeatureSet | None = None,
) -> tuple[list[Section], list[str]]:  # fmt: skip
    """The matrix, and the datasets skipped because their folder is absent.

    `quick`: the BTCUSDT capture (or `capture`) and a small simulated session, three runs.
    `feature_set`: only the feature-set rows (`bench.featureset`) of that set, on the same
    datasets.
    """
    python_runs = 1 if quick else 2
    runs = min(runs, 3) if quick else runs
    specs = [s for s in datasets.REAL if not quick or s is datasets.REAL[0]]
    if capture is not None:
        path = capture
        specs = [datasets.DatasetSpec(f"binance usdm {capture.name}", None,
                                      lambda _root: datasets.load_capture(path))]  # fmt: skip
        specs += [] if quick else list(datasets.REAL[1:])
    out: list[Section] = []
    missing: list[str] = []
    if feature_set is not None:
        from featureplane.bench import featureset

        for spec in specs:
            if spec.available(root):
                out.append(feature_set_section(spec, feature_set, runs, python_runs))
            else:
                missing.append(f"{spec.name} (no {root / str(spec.folder)})")
        why = featureset.skipped(feature_set)
        return out, [*missing, *([why] if why else [])]
    for spec in specs:
        if spec.available(root):
            out.append(kernel_section(spec, runs, python_runs))
        else:
            missing.append(f"{spec.name} (no {root / str(spec.folder)})")
    if specs[0].available(root):
        out.append(per_message_section(specs[0], root, runs))
    out.append(sim_section(20_000 if quick else 100_000, runs, python_runs))
    replay_capture = capture or root / "binance-usdm-btcusdt-20240808" / "btcusdt_20240808.gz"
    if replay_capture.exists():
        out.append(replay_section(replay_capture, 1 if quick else 3))
        if _hftbacktest_installed():
            out.append(backtest_section(replay_capture, 1 if quick else 3))
        else:
            missing.append("hftbacktest rows (hftbacktest is not installed)")
    return out, missing


def _hftbacktest_installed() -> bool:
    from featureplane.bench import hftbacktest_baseline

    return hftbacktest_baseline.available()


def run(sections: list[Section], *, progress: Callable[[str], None] | None = None) -> MatrixResult:
    """Run every section in order; print each as it completes through `progress`."""
    build = require_release_build()
    results = []
    for section in sections:
        t0 = time.perf_counter()
        rows = section.run()
        result = SectionResult(section.title, rows, section.anchors, time.perf_counter() - t0)
        results.append(result)
        if progress is not None:
            progress(result.format())
    return MatrixResult(results, build)
