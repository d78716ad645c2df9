# The project's commands. `make test` sets everything up from a fresh clone (a local
# .venv with the Python tools) and runs every check; `make demo` runs the main job on
# built-in data.

SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export VIRTUAL_ENV := $(VENV)
export PATH := $(BIN):$(PATH)
export PYO3_PYTHON := $(BIN)/python
export CARGO_TERM_COLOR := never

.PHONY: test demo venv develop chromium rust-checks python-checks bench compare fmt clean

test: rust-checks python-checks

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=25.1"

$(VENV)/.dev-installed: python/pyproject.toml | $(BIN)/python
	cd python && $(BIN)/pip install --quiet --group dev
	touch $@

venv: $(VENV)/.dev-installed

develop: venv
	$(BIN)/maturin develop --quiet -m python/Cargo.toml

# Headless Chromium renders the HTML report: in the browser test, and for the demo's
# screenshot.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

rust-checks: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo test --workspace --locked
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

python-checks: develop chromium
	@java -version >/dev/null 2>&1 || { echo "Java 17 or later is needed by the Spark tests (crowdtally.spark)"; exit 1; }
	cd python && $(BIN)/ruff check py_src tests ../examples ../benches
	cd python && $(BIN)/ruff format --check py_src tests ../examples ../benches
	cd python && $(BIN)/mypy --strict py_src/crowdtally tests
	cd python && $(BIN)/python -m mypy.stubtest crowdtally._crowdtally
	cd python && $(BIN)/pytest -q

# The quarterly release of the synthetic kortrijk scenario: tables, the HTML report and a
# screenshot of it in out/.
demo: venv chromium
	$(BIN)/maturin develop --release --quiet -m python/Cargo.toml
	$(BIN)/python examples/kortrijk.py --out out

bench: venv
	cargo bench --bench ingest
	cargo bench --bench profile
	cargo bench --bench synth
	cargo bench --bench release
	cargo bench --bench risk
	$(BIN)/maturin develop --release --quiet -m python/Cargo.toml
	$(BIN)/python benches/ingest.py
	$(BIN)/python benches/release.py

# crowdtally against polars and DuckDB on the same Parquet input (PINGS=1e7 by default),
# then the large run from Parquet within a 4 GiB budget (LARGE=1e9 pings; needs about
# 20 GB of disk in /tmp).
PINGS ?= 1e7
LARGE ?= 1e9
compare: venv
	$(BIN)/maturin develop --release --quiet -m python/Cargo.toml
	$(BIN)/python benches/compare.py --pings $(PINGS)
	cargo run --release --example scale -- write /tmp/crowdtally-large $(LARGE) cell
	cargo run --release --example scale -- run /tmp/crowdtally-large 4GiB

fmt:
	cargo fmt --all
	cd python && $(BIN)/ruff format py_src tests ../examples ../benches

clean:
	cargo clean
	rm -rf $(VENV)
