"""The seed corpus of the sources' coverage-guided harnesses (fuzz/python/), run once through
each harness without the fuzzer: every seed, the inputs the long run found (`found-*`) among
them, passes the harness's checks (only featureplane errors, valid rows counted in the stats,
the rows accounted for, both Binance parsers equal, both engine backends equal). Keeps the
harnesses in step with the readers; atheris itself is not needed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.support.rust import require_rust

FUZZ = Path(__file__).resolve().parents[3] / "fuzz" / "python"
SOURCES = ("binance", "lobster", "databento", "tardis", "hftbacktest")


@pytest.mark.parametrize("source", SOURCES)
def test_every_seed_passes_its_harness(source: str, tmp_path: Path) -> None:
    require_rust("engine")
    if source == "binance":
        require_rust("parser")
    if source == "hftbacktest":
        pytest.importorskip("hftbacktest")
    target = importlib.import_module(f"fuzz.python.targets.{source}")
    target.setup(tmp_path)
    seeds = sorted((FUZZ / "corpus" / source).iterdir())
    assert len(seeds) >= 3
    for seed in seeds:
        target.one_input(seed.read_bytes())  # a broken invariant raises


def test_a_broken_invariant_is_reported() -> None:
    common = importlib.import_module("fuzz.python.targets.common")
    with pytest.raises(common.Finding, match=r"stats\.events 3 != 0 rows"):
        common.check_events(common.concat([]), 1, 3)
