"""`featureplane bench --transport --quick` runs and every row checks itself (seq continuity,
received + lost = sent); timings are not asserted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from featureplane.cli import main
from tests.support.rust import require_rust

pytestmark = [pytest.mark.slow, pytest.mark.benchmark]


def test_transport_rows_check_their_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_rust("engine")
    out = tmp_path / "transport.json"
    assert main(["bench", "--transport", "--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["correct"]
    rows = {r["transport"]: r for r in result["rows"]}
    assert rows["ring (core loops)"]["received"] > 0
    assert "ring (core loops)" in capsys.readouterr().out
    if len(os.sched_getaffinity(0)) >= 2:
        # The tuned rows ran and checked every frame (a refused FIFO is said in the note).
        for label in ("ring pinned + spin", "ring pinned+spin+FIFO"):
            row = rows[label]
            assert row["correct"] and row["received"] + row["lost"] == row["sent"] > 0
    assert result["clock_read_ns"] > 0
