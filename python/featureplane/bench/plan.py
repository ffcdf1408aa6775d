"""Plan rows of the kernel matrix: the generic Rust plan evaluator (`_core.PlanEngine`) beside
the specialised lob_shared_v1 kernel, and the cost per event of a wide declared set.

Rows (every one counts the dataset's events, so ratios with the other kernel rows are time
ratios; the matrix prints the ratio to the specialised Rust batch row):

- the generic evaluator on the lob_shared_v1 plan (a declared copy under another id, so the
  engine takes the plan path): its frames must equal the specialised kernel's bit for bit;
- the generic evaluator on `examples/feature-sets/research_v1.toml` (48 features over every
  family of the catalogue): its frames must equal the Python reference's generic evaluator,
  checked on the dataset's first `CHECK_MESSAGES` messages (the reference is slow on a wide
  set; the random-declaration parity tests hold it everywhere else).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from featureplane.bench.datasets import Dataset
from featureplane.bench.timing import Measured, Row, measure
from featureplane.engine.facade import FeatureEngine
from featureplane.events import message_bounds
from featureplane.features.plan import builtin_plan, compile_plan
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FrameBatch
from featureplane.schema import FeatureSet

RUST_PLAN = "book+features: rust generic plan, lob_shared_v1 (batch)"
RUST_PLAN_WIDE = "book+features: rust generic plan, research_v1 (batch)"
RESEARCH_V1 = Path(__file__).resolve().parents[3] / "examples" / "feature-sets" / "research_v1.toml"
CHECK_MESSAGES = 5_000


def lob_shared_v1_declared() -> FeatureSet:
    """lob_shared_v1's plan under another id: the same nodes, run by the plan evaluator."""
    decl = dataclasses.replace(builtin_plan().to_declaration(), id="lob_shared_v1_plan")
    return compile_plan(decl).feature_set()


def research_v1() -> FeatureSet | None:
    """The research_v1 example set, or None where the examples are not on disk."""
    return resolve_feature_set(RESEARCH_V1) if RESEARCH_V1.exists() else None


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint64) if a.dtype == np.float64 else a


def same_frames(a: FrameBatch, b: FrameBatch) -> bool:
    """Headers equal and every value bit for bit (NaN payloads included)."""
    if len(a) != len(b) or list(a.values) != list(b.values):
        return False
    if not all(np.array_equal(a.columns[c], b.columns[c]) for c in a.columns):
        return False
    return all(np.array_equal(_bits(col), _bits(b.values[n])) for n, col in a.values.items())


def _prefix(events: np.ndarray, messages: int) -> np.ndarray:
    bounds = message_bounds(events)
    return events[: int(bounds[min(messages, len(bounds) - 1)])]


def plan_rows(ds: Dataset, specialised: FrameBatch, runs: int) -> list[Row]:
    """The plan rows of one dataset; `specialised` is the specialised Rust batch's frames
    (`kernel.run_dataset` calls this; the import is there, so this module may import it)."""
    rows: list[Row] = []
    declared = lob_shared_v1_declared()
    m = measure(
        lambda: FeatureEngine(ds.symbols, backend="rust", feature_set=declared).process_batch(
            ds.events
        ),
        runs,
    )
    rows.append(_row(ds, RUST_PLAN, m, same_frames(specialised, m.result),
                     "the plan evaluator on lob_shared_v1's plan; frames equal the specialised "
                     "kernel's bit for bit"))  # fmt: skip

    wide = research_v1()
    if wide is not None:
        m = measure(
            lambda: FeatureEngine(ds.symbols, backend="rust", feature_set=wide).process_batch(
                ds.events
            ),
            runs,
        )
        head = _prefix(ds.events, CHECK_MESSAGES)
        ref = FeatureEngine(ds.symbols, backend="python", feature_set=wide).process_batch(head)
        got = FeatureEngine(ds.symbols, backend="rust", feature_set=wide).process_batch(head)
        rows.append(_row(ds, RUST_PLAN_WIDE, m, same_frames(ref, got),
                         f"{len(wide.features)} features; equal to the Python reference on the "
                         f"first {CHECK_MESSAGES:,} messages"))  # fmt: skip
    return rows


def _row(ds: Dataset, name: str, m: Measured, correct: bool, note: str) -> Row:
    return Row(
        name, ds.n_events, m.times_s, correct=correct, note=note, messages=ds.n_messages,
        level_changes=ds.n_level_changes, peak_rss_bytes=m.peak_rss_bytes,
    )  # fmt: skip
