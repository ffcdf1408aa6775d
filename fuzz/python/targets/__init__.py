"""One coverage-guided harness per source (atheris): `run.py <source>` drives one of them.

Each module has `SOURCE` (its name), `MODULES` (the featureplane modules coverage follows,
imported under `atheris.instrument_imports()`), `setup(workdir)` and `one_input(data)`.
"""

from __future__ import annotations

SOURCES = ("binance", "lobster", "databento", "tardis", "hftbacktest")
