"""The example notebooks run top to bottom and write their plots.

Each notebook is executed by nbclient in a temporary directory, with a kernel of this very
interpreter: a kernelspec written to a temporary Jupyter data dir (`JUPYTER_PATH`), so nothing
is installed into the user's Jupyter config and the kernel imports the featureplane of this
environment. Notebooks are stored without outputs (checked here too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.datapaths import REPO_ROOT, shared_data

NOTEBOOKS = REPO_ROOT / "examples" / "notebooks"
KERNEL = "featureplane-test"
TIMEOUT_S = 120
"""Per cell; a notebook takes seconds."""

PLOTS = {
    "research_replay.ipynb": "research_replay.png",
    "custom_analysis.ipynb": "custom_imbalance.png",
    "multi_asset_backtest.ipynb": "multi_asset_backtest.png",
}


def test_every_notebook_is_listed_and_stored_without_outputs() -> None:
    found = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert found == sorted(PLOTS)
    for name in found:
        nb = json.loads((NOTEBOOKS / name).read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code, name
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), name


def _needs_backtest() -> None:
    pytest.importorskip("hftbacktest")
    shared_data("binance-usdm-ethusdt-20240808")


NEEDS = {"multi_asset_backtest.ipynb": _needs_backtest}
"""What a notebook needs beyond the BTCUSDT capture."""


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running this interpreter, visible to jupyter_client through JUPYTER_PATH."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # Matplotlib writes files; no display is needed or wanted.
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return KERNEL


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(PLOTS))
def test_notebook_runs_and_writes_its_plot(name: str, kernel: str, tmp_path: Path) -> None:
    shared_data("binance-usdm-btcusdt-20240808")
    if name in NEEDS:
        NEEDS[name]()
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError with the cell and traceback on failure
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    plot = workdir / PLOTS[name]
    assert plot.is_file() and plot.stat().st_size > 1000
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
