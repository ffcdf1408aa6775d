"""The project's rule for tests that need the compiled extension: skip where it is not built,
fail under `CI=true`, where every test runs on both backends and both parsers."""

from __future__ import annotations

import os

import pytest

from featureplane._rust import Kind, rust_available


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_rust(kind: Kind = "engine") -> None:
    """Skip the calling test without the Rust `kind` ("engine" or "parser"); fail on CI."""
    if rust_available(kind):
        return
    what = {"engine": "the Rust engine", "parser": "the Rust Binance parser"}[kind]
    if on_ci():
        pytest.fail(f"{what} is not built; CI runs every test on both backends and parsers")
    pytest.skip(
        f"{what} is not built in this environment (pip install -e . builds it)",
        allow_module_level=True,
    )
