"""Benchmark rows of a declared feature set beside lob_shared_v1 (`bench --feature-set`).

Rows on one dataset, each counting its events (so ratios are time ratios):

- lob_shared_v1, Python reference: the specialised state, then the generic plan evaluator on
  the built-in plan (checked bit-identical to the specialised frames);
- the declared set, Python generic evaluator;
- Rust: the specialised lob_shared_v1 kernel, and the Rust plan kernel on the declared set
  where the extension has it (checked against the Python reference, frame by frame); without
  it the row is skipped with the reason.
"""

from __future__ import annotations

from featureplane import _rust
from featureplane.bench.datasets import Dataset
from featureplane.bench.kernel import _row
from featureplane.bench.timing import Measured, Row, measure
from featureplane.checks.parity import compare_batches
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.python import ReferenceKernel
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.plan import builtin_plan, plan_of
from featureplane.frames.frame import FrameBatch
from featureplane.schema import FeatureSet

PY_SPECIAL = "lob_shared_v1: python specialised"
PY_GENERIC = "lob_shared_v1: python generic plan"
RUST_SPECIAL = "lob_shared_v1: rust specialised"
ANCHORS = {"python specialised": PY_SPECIAL}


def _py(ds: Dataset, fs: FeatureSet, generic: bool, runs: int) -> Measured:
    def run() -> FrameBatch:
        kernel = ReferenceKernel(ds.symbols, fs, EngineConfig(), generic=generic)
        return kernel.process_batch(ds.events)

    return measure(run, runs)


def _identical(a: FrameBatch, b: FrameBatch) -> bool:
    return (
        len(a) == len(b)
        and all(col.tobytes() == b.values[name].tobytes() for name, col in a.values.items())
        and all(col.tobytes() == b.columns[name].tobytes() for name, col in a.columns.items())
    )


def shared_features_agree(fs: FeatureSet, batch: FrameBatch, builtin: FrameBatch) -> bool | None:
    """The check of a declared set's row: its outputs declared as lob_shared_v1 declares them
    (same id, family, parameters and input) equal the specialised frames bit for bit; None
    when the set shares none."""
    plan, base = plan_of(fs), builtin_plan()
    mine = {n.id: n for n in plan.nodes}
    theirs = {n.id: n for n in base.nodes}

    def same(node_id: str) -> bool:
        a, b = mine.get(node_id), theirs.get(node_id)
        if a is None or b is None or (a.family, dict(a.params)) != (b.family, dict(b.params)):
            return False
        if a.input is None or b.input is None:
            return a.input is None and b.input is None
        return same(plan.nodes[a.input].id) and plan.nodes[a.input].id == base.nodes[b.input].id

    shared = [n.id for n in plan.nodes if n.output and n.id in builtin.values and same(n.id)]
    if not shared or len(batch) != len(builtin):
        return None if not shared else False
    return all(batch.values[k].tobytes() == builtin.values[k].tobytes() for k in shared)


def run_dataset(ds: Dataset, fs: FeatureSet, *, runs: int = 3, python_runs: int = 1) -> list[Row]:
    """The rows of the module docstring for `fs` on `ds`."""
    rows: list[Row] = []
    special = _py(ds, LOB_SHARED_V1, False, python_runs)
    generic = _py(ds, LOB_SHARED_V1, True, python_runs)
    same = _identical(special.result, generic.result)
    rows.append(_row(ds, PY_SPECIAL, special, same, "hand-written lob_shared_v1 state"))
    rows.append(_row(ds, PY_GENERIC, generic, same, "bit-identical to the specialised frames"))
    declared = special if fs is LOB_SHARED_V1 else _py(ds, fs, fs.plan is None, python_runs)
    name = f"{fs.feature_set_id}: python generic plan"
    if fs is not LOB_SHARED_V1:
        ok = shared_features_agree(fs, declared.result, special.result)
        rows.append(_row(ds, name, declared, ok,
                         f"{len(fs)} features; those lob_shared_v1 shares checked"))  # fmt: skip
    if _rust.rust_available("engine"):
        rust = measure(
            lambda: FeatureEngine(ds.symbols, backend="rust").process_batch(ds.events), runs
        )
        ok = compare_batches(ds.name, special.result, rust.result, "python", "rust").ok
        rows.append(_row(ds, RUST_SPECIAL, rust, ok, "the specialised Rust kernel"))
        if fs is not LOB_SHARED_V1 and _rust.rust_available("plan"):
            plan = measure(
                lambda: FeatureEngine(ds.symbols, fs, backend="rust").process_batch(ds.events),
                runs,
            )
            ok = compare_batches(ds.name, declared.result, plan.result, "python", "rust").ok
            rows.append(_row(ds, f"{fs.feature_set_id}: rust plan kernel", plan, ok,
                             f"{len(fs)} features"))  # fmt: skip
    return rows


def skipped(fs: FeatureSet) -> str | None:
    """Why the Rust plan row is absent, or None."""
    if fs is LOB_SHARED_V1 or _rust.rust_available("plan"):
        return None
    return "rust plan kernel rows (the extension is built without the plan kernel)"
