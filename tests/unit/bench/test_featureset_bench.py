"""`bench --feature-set` rows: each checks its output (generic = specialised bit for bit; a
declared set's shared features equal lob_shared_v1's)."""

from __future__ import annotations

from pathlib import Path

from featureplane.bench.datasets import Dataset
from featureplane.bench.featureset import PY_GENERIC, PY_SPECIAL, run_dataset
from featureplane.features.resolve import resolve_feature_set
from tests.support.sessions import SYMBOLS, session

RESEARCH = Path(__file__).resolve().parents[3] / "examples" / "feature-sets" / "research_v1.toml"


def test_rows_of_a_declared_set_check_their_output() -> None:
    fs = resolve_feature_set(RESEARCH)
    rows = run_dataset(Dataset("sim", SYMBOLS, session(200)), fs, runs=1, python_runs=1)
    by_name = {r.name: r for r in rows}
    assert by_name[PY_SPECIAL].correct and by_name[PY_GENERIC].correct
    assert by_name["research_v1: python generic plan"].correct is True
    assert all(r.correct is not False for r in rows)
    assert len({r.events for r in rows}) == 1
