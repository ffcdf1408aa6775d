"""Parity slices: a mismatch of the serving backend, saved so that `featureplane parity SLICE`
replays it.

A slice is a directory of two files:

- `events.npy`: the `EVENT_DTYPE` rows from the shadow window's start to the mismatched
  message, inclusive (`numpy.save`, no pickle);
- `slice.json`: the format tag, the symbols (tick, lot, venue, depth), the engine options, the
  feature set and its schema hash, the two backends, the checkpoint the window started from
  (`EngineState.to_dict()`, or for a declared set `PlanEngineState.to_dict()`, which carries
  the set's plan: the slice replays without the declaration file; exact), and the two frames
  of the mismatched message (serving and reference) with the columns that differ.

Replaying restores the checkpoint into an engine of each backend and runs the events through
both: the candidate's frames against the reference's, column by column, and whether the last
frames are the recorded ones (the mismatch reproduces).
"""

from __future__ import annotations

import dataclasses
import json
import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from featureplane.checks.parity import ParityReport, compare_batches
from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PLAN_STATE_FORMAT, PlanEngineState
from featureplane.engine.state import EngineState
from featureplane.errors import SourceFormatError
from featureplane.events import EVENT_DTYPE
from featureplane.features.plan import feature_set_from_json
from featureplane.frames.frame import FeatureUpdateFrameV1, same_frame
from featureplane.instruments import InstrumentSpec, SymbolTable
from featureplane.schema import FeatureSet

SLICE_FORMAT = "featureplane.parity_slice.v1"
SLICE_FILE = "slice.json"
EVENTS_FILE = "events.npy"


@dataclass
class ParitySlice:
    """A saved mismatch (see the module doc)."""

    path: Path
    symbols: SymbolTable
    feature_set_id: str
    schema_hash: str
    serving: str
    reference: str
    config: EngineConfig
    state: dict[str, Any]
    events: np.ndarray
    serving_frame: FeatureUpdateFrameV1 | None
    reference_frame: FeatureUpdateFrameV1 | None
    mismatched: list[str]


@dataclass
class SliceReport:
    """The replay of a slice: the column report, and whether the recorded frames came back."""

    report: ParityReport
    reference_reproduced: bool
    """The reference's last frame equals the recorded reference frame."""
    candidate_reproduced: bool
    """The candidate's last frame equals the recorded serving frame."""

    @property
    def reproduced(self) -> bool:
        """The mismatch replays: both frames came back and they differ."""
        return self.reference_reproduced and self.candidate_reproduced and not self.report.ok


def _frame_out(frame: FeatureUpdateFrameV1 | None) -> dict[str, Any] | None:
    if frame is None:
        return None
    out = dataclasses.asdict(frame)
    out["values"] = [_value_out(v) for v in frame.values]
    return out


def _value_out(v: int | float) -> int | float | str:
    # JSON has no NaN or infinity (and one NaN only): a non-finite float goes as its bits.
    if isinstance(v, float) and not np.isfinite(v):
        bits: int = struct.unpack("<Q", struct.pack("<d", v))[0]
        return f"f64:{bits:016x}"
    return v


def _value_in(v: Any) -> int | float:
    if isinstance(v, str) and v.startswith("f64:"):
        x: float = struct.unpack("<d", struct.pack("<Q", int(v[4:], 16)))[0]
        return x
    return v  # type: ignore[no-any-return]


def _frame_in(data: dict[str, Any] | None) -> FeatureUpdateFrameV1 | None:
    if data is None:
        return None
    data = dict(data)
    data["values"] = tuple(_value_in(v) for v in data["values"])
    return FeatureUpdateFrameV1(**data)


def save_slice(
    directory: str | PathLike[str],
    *,
    symbols: SymbolTable,
    config: EngineConfig,
    serving: str,
    reference: str,
    state: EngineState | PlanEngineState,
    events: np.ndarray,
    serving_frame: FeatureUpdateFrameV1 | None,
    reference_frame: FeatureUpdateFrameV1 | None,
    mismatched: list[str],
) -> Path:
    """Write a slice directory (created; an existing one is refused) and return its path."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=False)
    np.save(path / EVENTS_FILE, np.ascontiguousarray(events, dtype=EVENT_DTYPE))
    doc = {
        "format": SLICE_FORMAT,
        "feature_set": state.feature_set_id,
        "schema_hash": state.schema_hash,
        "serving": serving,
        "reference": reference,
        "stale_after_ns": config.stale_after_ns,
        "symbols": [
            {
                "symbol": s.symbol,
                "tick": str(s.tick_size),
                "lot": str(s.lot_size),
                "venue": s.venue,
                "depth": s.depth,
            }
            for s in symbols.specs
        ],
        "mismatched": mismatched,
        "frames": {"serving": _frame_out(serving_frame), "reference": _frame_out(reference_frame)},
        "state": state.to_dict(),
    }
    (path / SLICE_FILE).write_text(json.dumps(doc, indent=1))
    return path


def is_slice(path: str | PathLike[str]) -> bool:
    """`path` is a slice directory (or its `slice.json`)."""
    p = Path(path)
    return (p.is_dir() and (p / SLICE_FILE).is_file()) or (p.name == SLICE_FILE and p.is_file())


def load_slice(path: str | PathLike[str]) -> ParitySlice:
    """Read a slice directory.

    Raises
    ------
    SourceFormatError
        Not a slice of this format, or a damaged one.
    """
    p = Path(path)
    if p.name == SLICE_FILE:
        p = p.parent
    try:
        doc = json.loads((p / SLICE_FILE).read_text())
        if doc.get("format") != SLICE_FORMAT:
            raise SourceFormatError(str(p), None, f"not a {SLICE_FORMAT} slice")
        events = np.load(p / EVENTS_FILE, allow_pickle=False)
        if events.dtype != EVENT_DTYPE or events.ndim != 1:
            raise SourceFormatError(str(p), None, "events.npy is not a 1-d EVENT_DTYPE array")
        specs = [
            InstrumentSpec(s["symbol"], s["tick"], s["lot"], s["venue"], s["depth"])
            for s in doc["symbols"]
        ]
        return ParitySlice(
            path=p,
            symbols=SymbolTable(specs),
            feature_set_id=doc["feature_set"],
            schema_hash=doc["schema_hash"],
            serving=doc["serving"],
            reference=doc["reference"],
            config=EngineConfig(stale_after_ns=doc["stale_after_ns"]),
            state=doc["state"],
            events=events,
            serving_frame=_frame_in(doc["frames"]["serving"]),
            reference_frame=_frame_in(doc["frames"]["reference"]),
            mismatched=list(doc["mismatched"]),
        )
    except SourceFormatError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceFormatError(str(p), None, f"not a readable parity slice: {exc}") from None


def check_slice(sl: ParitySlice, candidate: str | None = None) -> SliceReport:
    """Replay a slice on the reference and on `candidate` (default: the slice's serving
    backend), both from its checkpoint, and compare (see the module doc)."""
    cand_name = candidate or sl.serving
    batches = []
    lasts = []
    feature_set: str | FeatureSet = sl.feature_set_id
    if sl.state.get("format") == PLAN_STATE_FORMAT:  # a declared set: its plan is in the state
        feature_set = feature_set_from_json(sl.state["feature_set"])
    for backend in (sl.reference, cand_name):
        engine = FeatureEngine(sl.symbols, feature_set, backend=backend, config=sl.config)
        engine.import_state(sl.state)
        batch = engine.process_batch(sl.events)
        batches.append(batch)
        lasts.append(batch.frame(len(batch) - 1) if len(batch) else None)
    report = compare_batches(
        f"slice {sl.path.name}", batches[0], batches[1], sl.reference, cand_name
    )

    def same(a: FeatureUpdateFrameV1 | None, b: FeatureUpdateFrameV1 | None) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and same_frame(a, b))

    return SliceReport(
        report,
        reference_reproduced=same(lasts[0], sl.reference_frame),
        candidate_reproduced=same(lasts[1], sl.serving_frame),
    )
