# The two commands of the README: `make demo` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: venv demo test lint typecheck unit clean install uninstall bench bench-quick bench-scale bench-memory

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-agent demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy edge_agent cloud_sync

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# Benchmarks: never part of `make test`. `make bench` runs the hot-path suite (< 15 min on two cores), prints
# the table and writes bench/results/<date>.json; scale and memory runs are separate (see docs/PERFORMANCE.md).
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --quick --out $(or $(BENCH_OUT),.bench-quick)

bench-scale: $(BENCH_STAMP)
	$(BIN)/python bench/scale.py --json bench/results/scale-$$(date -u +%F).json

bench-memory: $(BENCH_STAMP)
	$(BIN)/python bench/memory.py --json bench/results/memory-$$(date -u +%F).json

clean:
	rm -rf .demo-data .pytest_cache .mypy_cache .ruff_cache

install:
	systemd/install.sh install

uninstall:
	systemd/install.sh uninstall
