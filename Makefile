# Strato's two set-up commands: `make demo` and `make test`. Both start from nothing but
# Python 3.11: they install a pinned uv into .tools/, create .venv from uv.lock, and run.

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
RUN := $(UV) run --frozen

export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
# Install with compiled bytecode: where PYTHONDONTWRITEBYTECODE is set, Python would otherwise
# compile pandas, pyarrow & co. from source on every start (1.3 s of a 2 s `strato get`).
export UV_COMPILE_BYTECODE := 1

.PHONY: engines demo test lint check typecheck layers unit bench format clean

## demo: create the environment and run the fraud-scoring quickstart on the embedded default
demo: .venv/.synced
	$(RUN) strato quickstart --dir demo

## test: create the environment, lint, type-check, check import layers, run the whole suite
test: lint engines
	$(RUN) pytest

## lint: ruff (lint + format check), mypy, import-linter layer contracts
lint: .venv/.synced
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench
	$(RUN) mypy
	$(RUN) lint-imports

## engines: install the servers the suite starts on loopback (redis-server, postgresql) when missing
engines:
	@scripts/ensure-test-engines

## bench: measure Strato against the raw engines; writes bench/results.json
bench: .venv/.synced engines
	@scripts/ensure-bench-tools
	$(RUN) python -m bench.run

## format: apply ruff's fixes and formatting
format: .venv/.synced
	$(RUN) ruff check --fix src tests bench
	$(RUN) ruff format src tests bench

$(UV):
	PYTHON=$(PYTHON) scripts/bootstrap-uv $(UV_VERSION)

# Depends on this Makefile too, so an environment made by an older rule gets compiled by the
# next make: with UV_COMPILE_BYTECODE, `uv sync` compiles everything in .venv, installed before
# or not; compileall adds Strato's own sources, which an editable install leaves uncompiled.
.venv/.synced: $(UV) pyproject.toml uv.lock Makefile
	$(UV) sync --frozen
	.venv/bin/python -m compileall -q -j 0 src
	@touch $@

clean:
	rm -rf .venv .tools demo .mypy_cache .ruff_cache .pytest_cache .hypothesis
