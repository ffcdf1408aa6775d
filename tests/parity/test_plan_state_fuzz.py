"""Checkpoints of random declarations across backends (`featureplane.plan_state.v1`).

Hypothesis draws a declared set and a valid message stream (`test_plan_fuzz`'s), runs the
stream uninterrupted on the reference, and runs it again on one backend up to a random cut;
there the state is exported, sent through JSON (`to_dict` -> text -> `from_dict`), and
imported into a fresh engine of each backend, which runs the rest. Every frame after the cut
must equal the uninterrupted run's (headers, masks, flags, values bit for bit, NaN payloads
included), the imported state must export back unchanged, and both continuations must end in
the same state as the uninterrupted run.

Bounded here (`FEATUREPLANE_PLAN_EXAMPLES`, default 60, as the plan fuzz); the long run sets it
to 5,000.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from featureplane.engine.config import EngineConfig
from featureplane.engine.facade import FeatureEngine
from featureplane.engine.plan_state import PlanEngineState
from featureplane.frames.frame import FeatureUpdateFrameV1
from featureplane.schema import FeatureSet
from tests.parity.test_backend_parity import SPECS, Msg, Stream, assert_frames_equal, streams
from tests.parity.test_plan_fuzz import PLAN_FUZZ, declarations
from tests.support.rust import require_rust

BACKENDS = ("python", "rust")


def _engine(stream: Stream, fs: FeatureSet, backend: str) -> FeatureEngine:
    config = EngineConfig(stale_after_ns=stream.stale_after_ns)
    return FeatureEngine(stream.specs(), fs, backend=backend, config=config)


def _run(engine: FeatureEngine, msgs: list[Msg]) -> list[FeatureUpdateFrameV1 | None]:
    out: list[FeatureUpdateFrameV1 | None] = []
    for msg in msgs:
        if msg.reset:
            engine.reset_symbol(SPECS[msg.symbol_id].symbol)
        else:
            out.append(engine.process(msg.build()))
    return out


@PLAN_FUZZ
@given(
    fs=declarations(),
    stream=streams(max_messages=60, huge_sizes=True),
    at=st.floats(0.0, 1.0),
    first=st.sampled_from(BACKENDS),
)
def test_a_checkpoint_at_a_random_cut_continues_on_either_backend(
    fs: FeatureSet, stream: Stream, at: float, first: str
) -> None:
    check_cut(fs, stream, at, first)


def check_cut(fs: FeatureSet, stream: Stream, at: float, first: str) -> None:
    """A checkpoint of `first` at `at` (a fraction of the stream) continues alike on either
    backend, as the uninterrupted reference run."""
    require_rust("plan")
    cut = round(at * len(stream.msgs))
    head, tail = stream.msgs[:cut], stream.msgs[cut:]
    whole = _engine(stream, fs, "python")
    want = _run(whole, head) + _run(whole, tail)

    source = _engine(stream, fs, first)
    got_head = _run(source, head)
    exported = source.export_state()
    assert isinstance(exported, PlanEngineState)
    state = PlanEngineState.from_dict(json.loads(json.dumps(exported.to_dict())))
    assert state == exported
    for second in BACKENDS:
        target = _engine(stream, fs, second)
        target.import_state(state)
        assert target.export_state() == state, (first, second)
        got = got_head + _run(target, tail)
        assert len(got) == len(want)
        for w, g in zip(want, got, strict=True):
            assert_frames_equal(w, g)
        assert target.export_state() == whole.export_state(), (first, second)
