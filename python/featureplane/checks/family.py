"""`featureplane feature check FAMILY`: one family's parity fuzz and benchmark.

A small declared set exercises the family (its example parameters, an input of the right kind
for a transform), and runs on simulated sessions with every injected fault (gap, duplicate,
reorder, resets):

- Python half: the generic evaluator's batch frames equal its per-message frames, a
  checkpoint taken mid-session and restored gives the same frames after it, every value is of
  its dtype, and, for a family lob_shared_v1 uses, the generic evaluator equals the
  specialised reference on the built-in plan;
- Rust half: the Rust plan kernel equals the Python reference frame by frame (the parity
  gate), and a checkpoint taken mid-session on either backend, restored on the other through
  JSON, gives the same frames after it, when the built extension has the plan kernel;
  otherwise it is skipped, and says so;
- benchmark: events per second of each backend on the same input, side by side as a ratio.

Bounded: `sessions` x `messages` simulated messages (defaults 2 x 5,000).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featureplane import _rust
from featureplane.checks.parity import compare_batches, generated_inputs
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.python import ReferenceKernel
from featureplane.events import iter_messages, message_bounds
from featureplane.features.catalogue import CATALOGUE, Family
from featureplane.features.declare import FeatureSetDecl
from featureplane.features.lob_shared_v1 import LOB_SHARED_V1
from featureplane.features.plan import builtin_plan, compile_set
from featureplane.instruments import SymbolTable
from featureplane.schema import FeatureSet

__all__ = ["FamilyCheck", "check_family", "example_declaration"]

_EXAMPLE_PARAMS: dict[str, Any] = {
    "levels": 5,
    "decay": 0.5,
    "window_ns": 1_000_000_000,
    "half_life_ns": 1_000_000_000,
    "span": 8,
    "window": 16,
    "wide_spread_factor": 4.0,
}
"""The value each parameter takes in a family check."""


def example_declaration(name: str) -> FeatureSetDecl:
    """A small set computing `name` (and the input it needs) as an output.

    Raises
    ------
    KeyError
        No such family in the catalogue.
    """
    fam: Family = CATALOGUE[name]
    params = {p: _EXAMPLE_PARAMS[p] for p in fam.params}
    feats: list[dict[str, Any]] = []
    node: dict[str, Any] = {"id": f"{name}_x", "family": name, "params": params}
    if name == "book_regime":
        feats += [
            {"id": "spread", "family": "spread"},
            {"id": "spread_ema", "family": "ema", "input": "spread", "params": {"span": 8}},
        ]
        node["input"] = "spread_ema"
    elif fam.trigger == "input":
        if "price" in fam.input_units:
            feats.append({"id": "mid", "family": "mid"})
            node["input"] = "mid"
        elif fam.inputs == ("i64",):
            feats.append({"id": "ofi_l1", "family": "ofi", "params": {"levels": 1}})
            node["input"] = "ofi_l1"
        else:  # both: an f64 input here; the i64 path runs in the second node
            feats.append({"id": "microprice", "family": "microprice"})
            node["input"] = "microprice"
            feats.append({"id": "spread", "family": "spread"})
            feats.append({**node, "id": f"{name}_of_spread", "input": "spread"})
    feats.append(node)
    # trades and a second trigger, so every path of the frame runs
    feats.append({"id": "last_trade_px", "family": "last_trade_px"})
    return FeatureSetDecl.from_dict(
        {"feature_set": {"id": f"check_{name}", "version": 1}, "features": feats}
    )


@dataclass
class FamilyCheck:
    """What `check_family` found; `ok` when nothing failed (a skipped half is not a failure)."""

    family: str
    feature_set: FeatureSet
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    """Events per second by backend."""

    @property
    def ok(self) -> bool:
        return not self.failures

    def format(self) -> str:
        out = [f"feature check {self.family} ({self.feature_set.feature_set_id}, "
               f"{len(self.feature_set)} features)", *self.lines]  # fmt: skip
        out += [f"  skipped: {s}" for s in self.skipped]
        out += [f"  FAILED: {f}" for f in self.failures]
        if self.timings:
            base = self.timings.get("python")
            out.append("  benchmark (events/s, ratio to the python reference):")
            for name, eps in self.timings.items():
                ratio = f"{eps / base:8.2f}x" if base else ""
                out.append(f"    {name:<28}{eps:>14,.0f} {ratio}")
        out.append("ok" if self.ok else "FAILED")
        return "\n".join(out)


def _same(a: Any, b: Any) -> bool:
    return len(a) == len(b) and all(
        col.tobytes() == b.values[name].tobytes() for name, col in a.values.items()
    )


def check_family(
    name: str, *, sessions: int = 2, messages: int = 5_000, seed: int = 1
) -> FamilyCheck:
    """Run the family check of the module docstring."""
    fs = compile_set(example_declaration(name))
    result = FamilyCheck(name, fs)
    in_builtin = any(n.family == name for n in builtin_plan().nodes)
    plan_kernel = _rust.rust_available("plan")
    if not plan_kernel:
        result.skipped.append(
            "rust half: the built extension lacks the plan kernel (featureplane._core."
            "PlanEngine); Python reference only"
        )
    py_s = rs_s = 0.0
    n_events = 0
    for item in generated_inputs(sessions, messages, seed):
        t0 = time.perf_counter()
        batch = FeatureEngine(item.symbols, fs, backend="python").process_batch(item.events)
        py_s += time.perf_counter() - t0
        n_events += len(item.events)
        _python_half(result, item.name, item.symbols, item.events, fs, batch)
        if in_builtin:
            special = ReferenceKernel(item.symbols, LOB_SHARED_V1, EngineConfig())
            generic = ReferenceKernel(item.symbols, LOB_SHARED_V1, EngineConfig(), generic=True)
            if not _same(special.process_batch(item.events), generic.process_batch(item.events)):
                result.failures.append(f"{item.name}: generic != specialised on lob_shared_v1")
        if plan_kernel:
            t0 = time.perf_counter()
            rust = FeatureEngine(item.symbols, fs, backend="rust").process_batch(item.events)
            rs_s += time.perf_counter() - t0
            report = compare_batches(item.name, batch, rust, "python", "rust")
            result.lines.append(
                f"  {item.name}: rust plan kernel vs python, "
                f"{report.mismatches} mismatches of {report.compared:,}"
            )
            if not report.ok:
                result.failures.append(f"{item.name}: rust plan kernel differs")
            if not _checkpoint_crosses(item.symbols, item.events, fs, batch):
                result.failures.append(
                    f"{item.name}: frames after a cross-backend checkpoint differ"
                )
            else:
                result.lines.append(f"  {item.name}: checkpoints cross backends (rust <-> python)")
    result.timings["python"] = n_events / py_s if py_s else 0.0
    if plan_kernel and rs_s:
        result.timings["rust plan kernel"] = n_events / rs_s
    return result


def _checkpoint_crosses(
    symbols: SymbolTable, events: np.ndarray, fs: FeatureSet, batch: Any
) -> bool:
    """A checkpoint mid-session on one backend, through JSON into the other (both ways): the
    frames after it are the uninterrupted reference run's (`batch`), bit for bit."""
    cut = int(message_bounds(events)[len(message_bounds(events)) // 3])
    for first, second in (("rust", "python"), ("python", "rust")):
        a = FeatureEngine(symbols, fs, backend=first)
        head = a.process_batch(events[:cut])
        b = FeatureEngine(symbols, fs, backend=second)
        b.import_state(json.loads(json.dumps(a.export_state().to_dict())))
        tail = b.process_batch(events[cut:])
        for k, col in batch.values.items():
            if np.concatenate([head.values[k], tail.values[k]]).tobytes() != col.tobytes():
                return False
    return True


def _python_half(
    result: FamilyCheck,
    name: str,
    symbols: Any,
    events: np.ndarray,
    fs: FeatureSet,
    batch: Any,
) -> None:
    ready = np.bitwise_or.reduce(batch.columns["warmup_ready_mask"]) if len(batch) else 0
    n_ready = sum(1 for i in range(len(fs)) if int(ready) >> i & 1)
    result.lines.append(f"  {name}: {len(batch):,} frames, {n_ready} of {len(fs)} features "
                        "ready somewhere")  # fmt: skip
    one = FeatureEngine(symbols, fs, backend="python")
    frames = [f for m in iter_messages(events) if (f := one.process(m)) is not None]
    values = [tuple(f.values) for f in frames]
    cols = list(batch.values.values())
    same = len(frames) == len(batch) and all(
        all(a == col[i] or (a != a and col[i] != col[i]) for a, col in zip(v, cols, strict=True))
        for i, v in enumerate(values)
    )
    if not same:
        result.failures.append(f"{name}: per-message frames differ from the batch")
    cut = int(message_bounds(events)[len(message_bounds(events)) // 2])
    first = FeatureEngine(symbols, fs, backend="python")
    head = first.process_batch(events[:cut])
    second = FeatureEngine(symbols, fs, backend="python")
    second.import_state(json.loads(json.dumps(first.export_state().to_dict())))
    tail = second.process_batch(events[cut:])
    joined_ok = all(
        np.concatenate([head.values[k], tail.values[k]]).tobytes() == col.tobytes()
        for k, col in batch.values.items()
    )
    if not joined_ok:
        result.failures.append(f"{name}: frames after a checkpoint differ")
    if not ready:
        result.failures.append(f"{name}: no feature was ever ready")
