# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The first call creates .venv and builds the Rust extension in release (maturin via pip).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUST_SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml

.PHONY: demo test lint unit cargo-test fuzz-smoke fuzz-long fuzz-py-deps fuzz-py-smoke fuzz-py-long perf-gate perf-canary bench clean

$(STAMP): pyproject.toml $(RUST_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/featureplane demo --out out/demo

lint: $(STAMP)
	$(VENV)/bin/ruff check python tests fuzz/python
	$(VENV)/bin/ruff format --check python tests fuzz/python
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest featureplane._core
	cargo clippy --quiet --all-targets -- -D warnings
	cargo fmt --check

# The core's tests, the bounded fuzz run among them (tests/fuzz_smoke.rs, a few seconds).
cargo-test:
	cargo test --quiet -p featureplane-core

# The bounded fuzz run alone (docs/reliability.md): every fuzz target on stable over the seeds
# and their mutations, and the engine API through both backends under hypothesis. Both also
# run in `make test` (cargo-test and unit).
fuzz-smoke: $(STAMP)
	cargo test --quiet -p featureplane-core --test fuzz_smoke
	$(PY) -m pytest -q tests/parity/test_engine_fuzz.py tests/parity/test_hostile_input.py \
	  tests/parity/test_plan_state_fuzz.py

# The long run of docs/reliability.md: 1M inputs per cargo-fuzz target (needs a nightly
# toolchain and cargo-fuzz), then 20,000 hypothesis examples of the engine API. Not in `test`.
FUZZ_RUNS ?= 1000000
FUZZ_TARGETS := binance events engine state fpf1 plan plan_json plan_state
fuzz-long: $(STAMP)
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/target/corpus-$$t && \
	  (cd fuzz && cargo +nightly fuzz run -s none $$t target/corpus-$$t corpus/$$t -- \
	    -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 -print_final_stats=1) || exit 1; \
	done
	FEATUREPLANE_FUZZ_EXAMPLES=20000 $(PY) -m pytest -q tests/parity/test_engine_fuzz.py
	FEATUREPLANE_PLAN_EXAMPLES=5000 $(PY) -m pytest -q tests/parity/test_plan_fuzz.py \
	  tests/parity/test_plan_state_fuzz.py

# The Python sources' long run (docs/reliability.md): 1M inputs per source through the atheris
# harnesses of fuzz/python/ (coverage-guided; the `fuzz` extra), one source after the other.
# What the fuzzer learns stays in fuzz/target/py-corpus-<source>; a crash or hang is written to
# fuzz/target/py-artifacts/ and stops the run. RUST_BACKTRACE=0: databento_dbn's decoder panics
# on some damaged records (caught, a SourceFormatError); a backtrace each time would flood the log.
# -rss_limit_mb=8192: under atheris's instrumentation a harness grows by up to ~5 KB an input
# (hftbacktest; the same harness uninstrumented holds steady), past libFuzzer's default 2 GB
# within a million inputs.
# Not in `test`.
PY_FUZZ_SOURCES ?= binance lobster databento tardis hftbacktest
PY_FUZZ_SMOKE_RUNS ?= 2000
fuzz-py-deps: $(STAMP)
	$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet "atheris>=3.0,<4"
	mkdir -p fuzz/target/py-artifacts

# `make fuzz-smoke` also runs each source's atheris harness (fuzz/python/) on its seeds and
# PY_FUZZ_SMOKE_RUNS inputs with -seed=1, seconds a source: what it learns goes to
# fuzz/target/py-smoke-<source>, the seeds stay as they are. Not in `make test`, which does not
# install atheris (the `fuzz` extra).
fuzz-smoke: fuzz-py-smoke
fuzz-py-smoke: fuzz-py-deps
	for s in $(PY_FUZZ_SOURCES); do \
	  rm -rf fuzz/target/py-smoke-$$s && mkdir -p fuzz/target/py-smoke-$$s && \
	  RUST_BACKTRACE=0 $(PY) fuzz/python/run.py $$s -seed=1 -runs=$(PY_FUZZ_SMOKE_RUNS) \
	    -max_len=4096 -timeout=10 -artifact_prefix=fuzz/target/py-artifacts/$$s- \
	    fuzz/target/py-smoke-$$s fuzz/python/corpus/$$s > fuzz/target/py-smoke-$$s.log 2>&1 \
	    || { tail -40 fuzz/target/py-smoke-$$s.log; exit 1; }; \
	  echo "$$s: $$(grep -E '^Done' fuzz/target/py-smoke-$$s.log)"; \
	done

fuzz-py-long: $(STAMP) fuzz-py-deps
	for s in $(PY_FUZZ_SOURCES); do \
	  mkdir -p fuzz/target/py-corpus-$$s && \
	  RUST_BACKTRACE=0 nice -n 10 $(PY) fuzz/python/run.py $$s -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 \
	    -print_final_stats=1 -rss_limit_mb=8192 -artifact_prefix=fuzz/target/py-artifacts/$$s- \
	    fuzz/target/py-corpus-$$s fuzz/python/corpus/$$s || exit 1; \
	done

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
