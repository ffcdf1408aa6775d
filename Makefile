# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The first call creates .venv and builds the Rust extension in release (maturin via pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUST_SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml

.PHONY: demo test lint unit cargo-test bench clean

$(STAMP): pyproject.toml $(RUST_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/featureplane demo --out out/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check python tests
	$(VENV)/bin/ruff format --check python tests
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest featureplane._core
	cargo clippy --quiet --all-targets -- -D warnings
	cargo fmt --check

cargo-test:
	cargo test --quiet -p featureplane-core

unit: $(STAMP)
	$(PY) -m pytest -q

test: lint cargo-test unit

bench: $(STAMP)
	$(VENV)/bin/featureplane bench

clean:
	rm -rf $(VENV) target out
