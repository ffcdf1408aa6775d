"""Where the real captures live: `../shared/data` next to the repository, never inside it.

`shared_data(name)` returns a data folder, or skips the calling test with the reason when the
folder is absent; under CI (`CI=true`) an absent folder fails the test instead, so a CI machine
without the data cannot pass by skipping every real-data test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rust import on_ci

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """The folder `../shared/data/<name>`; skip (fail under CI=true) when it is not there."""
    path = SHARED_DATA / name
    if path.is_dir():
        return path
    reason = f"real-data folder {path} is absent (expected next to the repository)"
    if on_ci():
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)
