"""Shadow parity on simulated sessions with every fault (gaps, duplicates, reorders, resets):
the serving backend against the reference, sampled windows from checkpoints, the queue policy,
and replayable mismatch slices."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from featureplane.cli import main
from featureplane.demo import demo_config
from featureplane.engine.facade import FeatureEngine
from featureplane.events import CLEAR, END_OF_MESSAGE
from featureplane.rollout.canary import Metrics
from featureplane.rollout.shadow import ShadowOptions, ShadowParity
from featureplane.rollout.slice import check_slice, load_slice
from featureplane.sources.sim import SimSession, simulate
from tests.support.faults import FEATURE, disagreeing_backend
from tests.support.rust import require_rust


@pytest.fixture(scope="module")
def session() -> SimSession:
    return simulate(demo_config(seed=3, n_messages=6_000))


def _messages(events: np.ndarray) -> list[np.ndarray]:
    ends = np.flatnonzero(events["flags"] & END_OF_MESSAGE) + 1
    return [events[a:b] for a, b in zip([0, *ends[:-1].tolist()], ends.tolist(), strict=True)]


def _serve(
    session: SimSession, backend: str, options: ShadowOptions, *, start: bool = True
) -> tuple[ShadowParity, FeatureEngine]:
    engine = FeatureEngine(session.symbols, backend=backend)
    shadow = ShadowParity(engine.symbols, engine.feature_set, engine.config, options)
    if start:
        shadow.start()
    for message in _messages(session.events):
        shadow.process(engine, message)
    return shadow, engine


class _Adapter:
    """A collector that yields a component's families, as the runtime's collector does."""

    def __init__(self, component: Any) -> None:
        self.component = component

    def collect(self) -> Iterable[Any]:
        return self.component.collect_metrics()


def _exposition(component: Any) -> str:
    registry = CollectorRegistry()
    registry.register(_Adapter(component))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_every_frame_compared_equal_on_a_healthy_backend(session: SimSession, backend: str) -> None:
    shadow, _ = _serve(session, backend, ShadowOptions(sample=1.0, window=50, queue_max=100_000))
    shadow.close()
    n = len(_messages(session.events))
    c = shadow.counters
    # Every message is in a window (dropped duplicates included: both sides drop them).
    assert c.frames_compared == n
    assert c.mismatched_frames == 0 and c.queue_dropped == 0 and c.errors == 0
    assert c.windows >= n // 50


def test_sampling_compares_about_the_sample_and_every_reset(session: SimSession) -> None:
    require_rust()
    messages = _messages(session.events)
    shadow, _ = _serve(session, "rust", ShadowOptions(sample=0.05, window=16, seed=5))
    shadow.close()
    c = shadow.counters
    assert c.mismatched_frames == 0
    resets = sum(int(m["kind"][0]) == CLEAR for m in messages)
    assert resets >= 2  # the demo session resyncs
    # The sample, plus a window around every reset: more than the sample, far less than all.
    assert 0.05 * len(messages) * 0.5 < c.frames_compared < 0.05 * len(messages) + resets * 17 + 400
    assert c.windows >= resets


def test_a_disagreeing_backend_is_found_and_sliced(
    session: SimSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    require_rust()
    made = disagreeing_backend(monkeypatch, "rust", every=5)
    options = ShadowOptions(sample=1.0, window=40, queue_max=100_000, slice_dir=tmp_path / "s",
                            max_slices=3)  # fmt: skip
    shadow, _ = _serve(session, "rust", options)
    shadow.close()
    c = shadow.counters
    assert made and made[0].perturbed_frames > 0
    # The wrapper perturbs one feature; only that one (and no header) differs. NaN + delta is
    # still NaN, so a perturbed frame of a not-ready value is no mismatch.
    assert set(shadow.mismatches) == {FEATURE}
    assert 0 < c.mismatched_frames <= made[0].perturbed_frames
    assert c.slices_saved == 3 == len(shadow.slices)
    sl = load_slice(shadow.slices[0])
    assert sl.mismatched == [FEATURE] and sl.serving == "rust"
    out = check_slice(sl)
    assert out.reproduced and not out.report.ok
    assert main(["parity", str(shadow.slices[0]), "--generated", "0"]) == 1
    assert "reproduced" in capsys.readouterr().out
    # The same slice on a healthy build: the input and the checkpoint are not the problem.
    monkeypatch.undo()
    assert check_slice(load_slice(shadow.slices[0])).report.ok
    assert main(["parity", str(shadow.slices[0]), "--generated", "0"]) == 0
    assert "not reproduced" in capsys.readouterr().out


def test_a_full_queue_drops_and_counts_and_never_mismatches(session: SimSession) -> None:
    require_rust()
    # The thread starts only after the stream: the queue fills, the hot path never waits.
    shadow, _ = _serve(session, "rust", ShadowOptions(sample=1.0, window=8, queue_max=5),
                       start=False)  # fmt: skip
    assert shadow.counters.queue_dropped > 0
    shadow.start()
    shadow.close()
    c = shadow.counters
    # What was queued is a gap-free prefix of a window from its checkpoint: compared, equal.
    assert 0 < c.frames_compared <= 5 and c.mismatched_frames == 0


def test_drops_resync_from_the_serving_state(session: SimSession) -> None:
    """A queue that overflows again and again mid-window: every window after a drop starts
    from a fresh checkpoint, so the reference never compares from a state that missed input."""
    require_rust()
    options = ShadowOptions(sample=1.0, window=64, queue_max=16)
    engine = FeatureEngine(session.symbols, backend="rust")
    shadow = ShadowParity(engine.symbols, engine.feature_set, engine.config, options)
    shadow.start()
    for i, message in enumerate(_messages(session.events)):
        shadow.process(engine, message)
        if i % 500 == 0:
            shadow.wait_idle(10)
    shadow.close()
    c = shadow.counters
    assert c.queue_dropped > 0 and c.frames_compared > 0
    assert c.mismatched_frames == 0


def test_metrics_render_and_parse(session: SimSession, backend: str) -> None:
    shadow, _ = _serve(session, backend, ShadowOptions(sample=0.2, window=10))
    shadow.close()
    metrics = Metrics.from_text(_exposition(shadow))
    assert metrics.total("featureplane_parity_frames_compared_total") == (
        shadow.counters.frames_compared
    )
    assert metrics.total("featureplane_parity_mismatched_frames_total") == 0
    assert metrics.has("featureplane_parity_slices_saved_total")
    assert metrics.has("featureplane_parity_queue_dropped_total")


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="positive"):
        ShadowOptions(sample=0.0)
    with pytest.raises(ValueError, match="max_slices"):
        ShadowOptions(max_slices=-1)


def test_a_slice_of_a_declared_set_replays_from_the_plan_it_carries(
    session: SimSession, tmp_path: Path
) -> None:
    """A declared set is not registered by id: its slice replays from the plan its checkpoint
    carries, on the reference and on Rust, from a Rust checkpoint."""
    require_rust("plan")
    from featureplane.events import concat
    from featureplane.features.resolve import resolve_feature_set
    from featureplane.rollout.slice import save_slice

    root = Path(__file__).resolve().parents[3]
    fs = resolve_feature_set(root / "examples" / "feature-sets" / "research_v1.toml")
    messages = _messages(session.events)
    serving = FeatureEngine(session.symbols, fs, backend="rust")
    for message in messages[:2_000]:
        serving.process(message)
    state = serving.export_state()
    ref = FeatureEngine(session.symbols, fs, backend="python")
    ref.import_state(state)
    window = messages[2_000:2_060]
    frames = [f for m in window if (f := ref.process(m)) is not None]
    path = save_slice(
        tmp_path / "slice", symbols=session.symbols, config=serving.config, serving="rust",
        reference="python", state=state, events=concat(window), serving_frame=frames[-1],
        reference_frame=frames[-1], mismatched=["frame"],
    )  # fmt: skip
    out = check_slice(load_slice(path))
    assert out.report.ok and out.report.compared >= len(frames)
    assert out.reference_reproduced and out.candidate_reproduced
