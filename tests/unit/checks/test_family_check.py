"""`featureplane feature check FAMILY`: the family's parity fuzz and benchmark, bounded."""

from __future__ import annotations

import pytest

from featureplane import _rust
from featureplane.checks.family import check_family, example_declaration
from featureplane.cli import main
from featureplane.features.catalogue import CATALOGUE
from featureplane.features.plan import compile_set


@pytest.mark.parametrize("family", sorted(CATALOGUE))
def test_every_family_has_an_example_set(family: str) -> None:
    fs = compile_set(example_declaration(family))
    assert f"{family}_x" in fs.names


def test_cli_runs_the_python_half_and_says_what_it_skipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["feature", "check", "rolling_std_time", "--sessions", "1", "--messages", "800"])
    out = capsys.readouterr().out
    assert code == 0 and out.rstrip().endswith("ok")
    assert "5 of 5 features ready somewhere" in out
    assert "python" in out and "events/s" in out
    if not _rust.rust_available("plan"):
        assert "skipped: rust half: the built extension lacks the plan kernel" in out


def test_a_lob_shared_v1_family_is_checked_against_the_specialised_kernel() -> None:
    result = check_family("zscore", sessions=1, messages=600)
    assert result.ok, result.failures


def test_unknown_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feature", "check", "no_such_family"]) == 1
    assert "unknown family 'no_such_family'" in capsys.readouterr().err
