"""Fixtures of the backend parity tests: skip cleanly where the Rust extension is not built."""

from __future__ import annotations

import pytest

from featureplane.backends import rust_available


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if rust_available():
        return
    skip = pytest.mark.skip(reason="featureplane._core has no Rust engine here (build it first)")
    for item in items:
        if "tests/parity/" in str(item.path).replace("\\", "/"):
            item.add_marker(skip)
