"""The parity gate: every backend must give the Python reference's frames.

Both backends process the same event arrays; frames are compared one by one. Header fields,
masks, flags and integer features must be equal; f64 features must agree within the contract's
tolerance (1e-9 relative or 1e-12 absolute), with NaN exactly where the other has NaN.

`feature_engine_parity_mismatch_rate` = mismatching values / values compared, over every frame
and feature (header fields count as one value each).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import HEADER_COLUMNS, FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.schema import DEFAULT_FEATURE_SET_ID, FeatureSet

REL_TOL = 1e-9
ABS_TOL = 1e-12
METRIC = "feature_engine_parity_mismatch_rate"


@dataclass
class ColumnParity:
    """The comparison of one column (a header field or a feature) over every frame."""

    name: str
    compared: int = 0
    mismatches: int = 0
    max_abs_diff: float = 0.0
    first_mismatch: int | None = None
    """Frame index of the first mismatch."""


@dataclass
class ParityReport:
    """The comparison of one input's frames between a reference and a candidate backend."""

    input_name: str
    reference: str
    candidate: str
    frames_reference: int = 0
    frames_candidate: int = 0
    columns: list[ColumnParity] = field(default_factory=list)

    @property
    def compared(self) -> int:
        """Values compared, over every column and frame."""
        return sum(c.compared for c in self.columns)

    @property
    def mismatches(self) -> int:
        """Values that differ, plus the difference in frame counts."""
        frame_count_diff = abs(self.frames_reference - self.frames_candidate)
        return sum(c.mismatches for c in self.columns) + frame_count_diff

    @property
    def mismatch_rate(self) -> float:
        """`mismatches / compared`: the `feature_engine_parity_mismatch_rate` of one input."""
        return self.mismatches / max(self.compared, 1)

    @property
    def ok(self) -> bool:
        """No mismatch, and as many frames on both backends."""
        return self.mismatches == 0


def _column_parity(name: str, ref: np.ndarray, cand: np.ndarray) -> ColumnParity:
    out = ColumnParity(name, compared=len(ref))
    if ref.dtype.kind == "f":
        ref_nan = np.isnan(ref)
        cand_nan = np.isnan(cand)
        both = ~ref_nan & ~cand_nan
        diff = np.zeros(len(ref))
        diff[both] = np.abs(ref[both] - cand[both])
        within = diff <= np.maximum(ABS_TOL, REL_TOL * np.abs(np.where(both, ref, 0.0)))
        bad = (ref_nan != cand_nan) | (both & ~within)
        if both.any():
            out.max_abs_diff = float(diff.max())
    else:
        bad = ref != cand
        if bad.any():
            wide = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
            out.max_abs_diff = float(wide[bad].max())
    out.mismatches = int(bad.sum())
    if out.mismatches:
        out.first_mismatch = int(np.flatnonzero(bad)[0])
    return out


def compare_batches(
    name: str, ref: FrameBatch, cand: FrameBatch, reference: str, candidate: str
) -> ParityReport:
    """Frame-by-frame comparison of two batches of the same input."""
    report = ParityReport(name, reference, candidate, len(ref), len(cand))
    n = min(len(ref), len(cand))
    for col in HEADER_COLUMNS:
        report.columns.append(_column_parity(col, ref.columns[col][:n], cand.columns[col][:n]))
    for feat in ref.feature_set.names:
        report.columns.append(_column_parity(feat, ref.values[feat][:n], cand.values[feat][:n]))
    return report


def check_events(
    name: str,
    symbols: SymbolTable,
    events: np.ndarray,
    *,
    reference: str = "python",
    candidate: str = "rust",
    config: EngineConfig | None = None,
    feature_set: str | FeatureSet = DEFAULT_FEATURE_SET_ID,
) -> ParityReport:
    """Run both backends over one event array and compare their frames (of `feature_set`: a
    registered id, a declaration file or a `FeatureSet`)."""
    fs = resolve_feature_set(feature_set)
    ref = FeatureEngine(symbols, fs, backend=reference, config=config).process_batch(events)
    cand = FeatureEngine(symbols, fs, backend=candidate, config=config).process_batch(events)
    return compare_batches(name, ref, cand, reference, candidate)


@dataclass
class ParityInput:
    name: str
    symbols: SymbolTable
    events: np.ndarray
    notes: list[str] = field(default_factory=list)
    """The source's skips and warnings (`replay.run.source_notes`)."""


def inputs_from_paths(paths: Iterable[Path]) -> Iterator[ParityInput]:
    """Recorded files of any venue, each file's format detected from its content: the files of
    a venue that merges (Binance, tardis) read together as one stream, the others chain by
    chain (a LOBSTER archive, a DBN file, ...).

    Raises
    ------
    SourceFormatError
        A file of no known format, or an input of which nothing could be read: a parity check
        over no frames would pass without checking anything.
    """
    from featureplane.errors import SourceFormatError
    from featureplane.events import concat
    from featureplane.sources._common import source_notes
    from featureplane.sources.format import SourceOptions
    from featureplane.sources.registry import REGISTRY, detect_format, open_source

    by_format: dict[str, list[str]] = {}
    for path in paths:
        by_format.setdefault(detect_format(path), []).append(str(path))
    for fmt, members in by_format.items():
        venue = REGISTRY[fmt]
        chains = [list(c.files) for c in venue.plan(members, SourceOptions())]
        runs = [[f for files in chains for f in files]] if venue.merges else chains
        for files in runs:
            source = open_source(fmt, files)
            events = concat(list(source))
            name = "+".join(Path(f).name for f in files)
            if not len(events):
                raise SourceFormatError(
                    name, None, "nothing to compare: not one message could be read from it"
                )
            yield ParityInput(name, source.symbols, events, source_notes(source.stats))


def generated_inputs(n_sessions: int, n_messages: int, seed: int) -> Iterator[ParityInput]:
    """Simulated multi-symbol sessions with every injected fault (gap, duplicate, reorder)."""
    from featureplane.demo import demo_config
    from featureplane.sources.sim import simulate

    for i in range(n_sessions):
        session = simulate(demo_config(seed=seed + i, n_messages=n_messages))
        yield ParityInput(f"simulated seed {seed + i}", session.symbols, session.events)


def format_report(report: ParityReport) -> str:
    """A report as a table: one line per column (compared, mismatches, max |diff|)."""
    lines = [
        f"{report.input_name}: {report.candidate} vs {report.reference}, frames "
        f"{report.frames_candidate:,} vs {report.frames_reference:,}",
        f"  {'column':<22}{'compared':>12}{'mismatches':>12}{'max |diff|':>14}",
    ]
    lines.extend(
        f"  {c.name:<22}{c.compared:>12,}{c.mismatches:>12,}{c.max_abs_diff:>14.3g}"
        for c in report.columns
    )
    lines.append(
        f"  {METRIC} {report.mismatch_rate:.3g} ({report.mismatches:,} of {report.compared:,})"
    )
    return "\n".join(lines)
