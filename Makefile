# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The first call creates .venv and builds the Rust extension in release (maturin via pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUST_SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml

.PHONY: demo test lint unit cargo-test perf-gate perf-canary bench clean

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

# The perf gate (docs/performance.md): instruction counts of the Rust kernel under callgrind
# against perf/baseline.json; cargo builds crates/featureplane-core's perf_gate binary first.
perf-gate: $(STAMP)
	$(VENV)/bin/featureplane perf-gate --baseline perf/baseline.json --config perf/gate.toml

# The gate catches a slowed kernel: the perf-canary build fails it (also part of `unit`).
perf-canary: $(STAMP)
	$(PY) -m pytest -q tests/unit/bench/test_perf_gate.py -k canary

test: lint cargo-test unit perf-gate

bench: $(STAMP)
	$(VENV)/bin/featureplane bench

clean:
	rm -rf $(VENV) target out
