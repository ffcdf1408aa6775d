"""Checkpoints of an engine of a declared set: export, JSON, import, the same frames after;
states of another set refused; malformed states refused before anything changes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PLAN_STATE_FORMAT, PlanEngineState
from featureplane.errors import InvalidStateError, SchemaMismatchError
from featureplane.events import message_bounds
from featureplane.features.plan import resolve_feature_set
from tests.support.sessions import SYMBOLS, session

RESEARCH = Path(__file__).resolve().parents[3] / "examples" / "feature-sets" / "research_v1.toml"


def test_checkpoint_through_json_gives_the_same_frames() -> None:
    fs = resolve_feature_set(RESEARCH)
    events = session(400)
    cut = int(message_bounds(events)[150])
    whole = FeatureEngine(SYMBOLS, fs, backend="python").process_batch(events)
    first = FeatureEngine(SYMBOLS, fs, backend="python")
    head = first.process_batch(events[:cut])
    state = first.export_state()
    assert isinstance(state, PlanEngineState) and state.format == PLAN_STATE_FORMAT
    assert state.feature_set["plan"] == fs.plan  # the checkpoint carries the declaration
    text = json.dumps(state.to_dict())
    assert PlanEngineState.from_dict(json.loads(text)) == state
    second = FeatureEngine(SYMBOLS, fs, backend="python")
    second.import_state(json.loads(text))
    tail = second.process_batch(events[cut:])
    assert len(head) + len(tail) == len(whole)
    for name, col in whole.values.items():
        assert np.concatenate([head.values[name], tail.values[name]]).tobytes() == col.tobytes()
    for name in ("warmup_ready_mask", "quality_flags", "changed_mask", "seq"):
        joined = np.concatenate([head.columns[name], tail.columns[name]])
        assert np.array_equal(joined, whole.columns[name]), name
    first.process_batch(events[cut:])
    assert second.export_state() == first.export_state()


def test_states_of_another_set_are_refused() -> None:
    fs = resolve_feature_set(RESEARCH)
    declared = FeatureEngine(SYMBOLS, fs, backend="python")
    declared.process_batch(session(60))
    builtin = FeatureEngine(SYMBOLS, backend="python")
    builtin.process_batch(session(60))
    with pytest.raises(InvalidStateError, match="format"):
        builtin.import_state(declared.export_state())
    with pytest.raises(InvalidStateError, match="format"):
        declared.import_state(builtin.export_state())
    other = dict(declared.export_state().to_dict())
    other["feature_set"] = dict(other["feature_set"], schema_hash="0" * 64)
    with pytest.raises(SchemaMismatchError):
        declared.import_state(other)


def test_malformed_states_change_nothing() -> None:
    fs = resolve_feature_set(RESEARCH)
    eng = FeatureEngine(SYMBOLS, fs, backend="python")
    eng.process_batch(session(60))
    before = eng.export_state()
    bad = before.to_dict()
    bad["symbols"][0]["features"]["nodes"][3] = {"no_such_field": 1}
    with pytest.raises(InvalidStateError):
        eng.import_state(bad)
    bad = before.to_dict()
    bad["symbols"][0]["book"]["bids"] = [[1, -5]]
    with pytest.raises(InvalidStateError):
        eng.import_state(bad)
    bad = before.to_dict()
    bad["symbols"][0]["features"]["nodes"] = bad["symbols"][0]["features"]["nodes"][:-1]
    with pytest.raises(InvalidStateError):
        eng.import_state(bad)
    assert eng.export_state() == before
