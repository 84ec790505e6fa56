# Two commands on a fresh machine (Python 3.11, git, make):
#   make run   - set up the locked environment and run the whole DVC pipeline on the synthetic CRM
#   make test  - set up the locked environment and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup run test lint bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

run: setup
	$(BIN)/dvc repro
	$(BIN)/leadscore metrics

test: setup
	$(BIN)/ruff check src pipelines tests benchmarks notebooks
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check src pipelines tests benchmarks notebooks
	$(BIN)/ruff format --check src pipelines tests benchmarks

bench: setup
	$(BIN)/python benchmarks/features.py

clean:
	rm -rf $(VENV) $(TOOLS)
