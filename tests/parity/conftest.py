"""The parity suites compare the two backends and the two parsers: every test needs the
extension, by the project's rule (skip locally, fail under CI=true), checked per test."""

from __future__ import annotations

import pytest

from tests.support.rust import require_rust


@pytest.fixture(autouse=True)
def _rust_engine() -> None:
    require_rust("engine")
