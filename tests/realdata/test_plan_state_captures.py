"""Checkpoints of a declared set on real captures: research_v1 (every catalogue family, ten
levels) on the Binance USD-M BTCUSDT capture and on LOBSTER GOOG, a checkpoint mid-capture
taken on one backend, sent through JSON and restored on the other (Rust -> Python and
Python -> Rust), then the rest of the capture: every frame equals an uninterrupted run's, bit
for bit, and both end in the same state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PlanEngineState
from featureplane.events import message_bounds
from featureplane.features.resolve import resolve_feature_set
from featureplane.frames.frame import FrameBatch
from featureplane.instruments import SymbolTable
from featureplane.sources import read_binance
from featureplane.sources.lobster import read_lobster
from tests.realdata.test_plan_captures import assert_same_frames
from tests.support.datapaths import shared_data
from tests.support.rust import require_rust

pytestmark = pytest.mark.realdata

RESEARCH = Path(__file__).resolve().parents[2] / "examples" / "feature-sets" / "research_v1.toml"
MESSAGES = 8_000
"""Enough for every window of research_v1 to fill on the capture, few enough for `make test`."""


def _joined(head: FrameBatch, tail: FrameBatch) -> FrameBatch:
    columns = {k: np.concatenate([v, tail.columns[k]]) for k, v in head.columns.items()}
    values = {k: np.concatenate([v, tail.values[k]]) for k, v in head.values.items()}
    return FrameBatch(head.feature_set, head.symbols, columns, values)


def _check(symbols: SymbolTable, events: np.ndarray) -> None:
    require_rust("plan")
    fs = resolve_feature_set(RESEARCH)
    bounds = message_bounds(events)
    events = events[: int(bounds[min(MESSAGES, len(bounds) - 1)])]
    cut = int(bounds[min(MESSAGES, len(bounds) - 1) * 5 // 8])
    whole_engine = FeatureEngine(symbols, fs, backend="python")
    whole = whole_engine.process_batch(events)
    for first, second in (("rust", "python"), ("python", "rust")):
        a = FeatureEngine(symbols, fs, backend=first)
        head = a.process_batch(events[:cut])
        text = json.dumps(a.export_state().to_dict())
        state = PlanEngineState.from_dict(json.loads(text))
        windows = [n for n in state.symbols[0]["features"]["nodes"] if n.get("samples")]
        assert windows, "no time window holds samples at the cut"
        b = FeatureEngine(symbols, fs, backend=second)
        b.import_state(state)
        tail = b.process_batch(events[cut:])
        # input_index counts from each batch's start: compare it as one run's.
        tail.columns["input_index"] = tail.columns["input_index"] + cut
        assert_same_frames(whole, _joined(head, tail))
        assert b.export_state() == whole_engine.export_state(), (first, second)


def test_binance_usdm_checkpoint_across_backends() -> None:
    path = shared_data("binance-usdm-btcusdt-20240808") / "btcusdt_20240808.gz"
    replay = read_binance(path)
    _check(replay.symbols, replay.events)


def test_lobster_checkpoint_across_backends() -> None:
    folder = shared_data("lobster-goog-2012-06-21-l10")
    replay = read_lobster(folder / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip")
    _check(replay.symbols, replay.events)
