"""The parity gate itself: it must see drift, respect the tolerance and fail the command."""

from __future__ import annotations

import re

import numpy as np
import pytest

from featureplane.checks.parity import compare_batches
from featureplane.cli import main
from featureplane.demo import demo_config
from featureplane.engine.facade import FeatureEngine
from featureplane.frames.frame import FrameBatch
from featureplane.sources.sim import simulate


def _batch() -> FrameBatch:
    session = simulate(demo_config(seed=3, n_messages=600))
    return FeatureEngine(session.symbols, backend="python").process_batch(session.events)


def _copy(batch: FrameBatch) -> FrameBatch:
    return FrameBatch(
        batch.feature_set,
        batch.symbols,
        {k: v.copy() for k, v in batch.columns.items()},
        {k: v.copy() for k, v in batch.values.items()},
    )


def test_identical_batches_pass() -> None:
    batch = _batch()
    report = compare_batches("x", batch, _copy(batch), "python", "python")
    assert report.ok and report.mismatch_rate == 0.0
    assert report.compared == len(batch) * (8 + 22)


def test_drift_is_caught_per_column() -> None:
    ref = _batch()
    cand = _copy(ref)
    cand.values["ofi_l5"][10] += 1
    cand.values["microprice"][20] *= 1 + 1e-6  # beyond 1e-9 relative
    cand.values["spread_ema8"][30] *= 1 + 1e-12  # within tolerance
    cand.columns["quality_flags"][40] ^= 4
    i = int(np.flatnonzero(~np.isnan(ref.values["tfi_decay_1s"]))[0])
    cand.values["tfi_decay_1s"][i] = np.nan  # NaN where the reference has a value
    report = compare_batches("x", ref, cand, "python", "candidate")
    bad = {c.name: c for c in report.columns if c.mismatches}
    assert set(bad) == {"ofi_l5", "microprice", "quality_flags", "tfi_decay_1s"}
    assert bad["ofi_l5"].first_mismatch == 10 and bad["ofi_l5"].max_abs_diff == 1.0
    assert report.mismatches == 4 and not report.ok


def test_missing_frames_count_as_mismatches() -> None:
    ref = _batch()
    report = compare_batches("x", ref, ref.truncate(len(ref) - 3), "python", "short")
    assert report.mismatches == 3


def test_cli_parity_passes_on_generated_streams(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    code = main(["parity", "--generated", "1", "--messages", "3000", "--candidate", backend])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "feature_engine_parity_mismatch_rate 0 " in out


def test_cli_parity_fails_on_drift(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import featureplane.checks.parity as parity

    real = parity.compare_batches

    def drifting(name, ref, cand, reference, candidate):  # type: ignore[no-untyped-def]
        cand = _copy(cand)
        cand.values["mid"][5] += 1
        return real(name, ref, cand, reference, candidate)

    monkeypatch.setattr(parity, "compare_batches", drifting)
    code = main(["parity", "--generated", "1", "--messages", "1000", "--candidate", "python"])
    out = capsys.readouterr().out
    assert code == 1
    rate = re.search(r"feature_engine_parity_mismatch_rate (\S+) \((\d+) of", out)
    assert rate is not None and float(rate.group(1)) > 0 and rate.group(2) == "1"
    assert re.search(r"^  mid +[\d,]+ +1 ", out, re.MULTILINE)
