# The README's commands. Everything installs from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SLUICE := $(BIN)/sluice
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install system-deps demo up down status test unit lint typecheck bench clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

install: system-deps $(BIN)/.installed

system-deps:
	@bash scripts/install-system-deps.sh

up: install
	$(SLUICE) stack up --with-app

down:
	@[ -x $(SLUICE) ] && $(SLUICE) stack down || true

status: $(BIN)/.installed
	$(SLUICE) stack status

demo: up
	$(SLUICE) demo $(DEMO_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

unit: $(BIN)/.installed
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

test: lint typecheck up
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks run on their own stack (own home and ports); BENCH_ARGS=--quick for ~2 minutes.
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean: down
	rm -rf .sluice
