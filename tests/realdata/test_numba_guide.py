"""docs/numba.md runs: its ```python blocks, in order, in one namespace, on the real capture."""

from __future__ import annotations

import re

import pytest

from featureplane.adapters.hftbacktest import quiet_numba
from tests.support.datapaths import REPO_ROOT, shared_data

GUIDE = REPO_ROOT / "docs" / "numba.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the ```python fenced blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_python_blocks_are_found() -> None:
    blocks = python_blocks("a\n```python\nx = 1\n```\n```text\nno\n```\n```python\ny = 2\n```\n")
    assert blocks == ["x = 1\n", "y = 2\n"]


@pytest.mark.realdata
def test_the_numba_guide_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("hftbacktest")
    shared_data("binance-usdm-btcusdt-20240808")
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "numba_guide"}
    # hftbacktest's numba bindings warn on some calls; the suite turns warnings into errors.
    with quiet_numba():
        for i, block in enumerate(blocks):
            exec(compile(block, f"{GUIDE}:block{i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert re.search(r"\d+ decisions, \d+ orders, position", out)
    # The guide's loop decided and traded on the real capture.
    assert int(namespace["n"]) > 100  # type: ignore[call-overload]
    assert int(namespace["orders"]) > 0  # type: ignore[call-overload]
    # The two-asset loop read both symbols on the one clock.
    assert re.search(r"two assets: \d+ decisions, \d+ orders", out)
    assert int(namespace["n2"]) > 100  # type: ignore[call-overload]
