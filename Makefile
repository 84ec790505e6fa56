# Two commands on a fresh machine (Python 3.11, git, make):
#   make run   - set up the locked environment and run the whole DVC pipeline on the synthetic CRM
#   make test  - set up the locked environment and run the test suite
#   make test-fast - the unit tests only (tests not marked slow)
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

.PHONY: setup chromium java run test test-fast lint bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

setup: $(VENV)/.synced

# Debian's chromium for the report's browser test (tests/test_report_browser.py); Playwright
# drives it and never downloads a browser. About 30 s and 115 MB on a fresh machine.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends chromium >/dev/null; }
	@chromium --version 2>/dev/null

# Java 17 for pyspark's local-mode tests (tests/spark). Debian's headless JRE, about 200 MB
# on a fresh machine.
java:
	@command -v java >/dev/null 2>&1 || { echo "installing Debian openjdk-17-jre-headless for the Spark tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    --no-install-recommends openjdk-17-jre-headless >/dev/null; }
	@java -version 2>&1

run: setup
	$(BIN)/dvc repro
	$(BIN)/leadscore metrics

test: setup chromium java
	$(BIN)/ruff check src pipelines tests benchmarks notebooks
	$(BIN)/pytest -q -n auto

# unit tests only (no LightGBM training, no whole stages, no browser): under a minute
test-fast: setup
	$(BIN)/pytest -q -n auto -m "not slow"

lint: setup
	$(BIN)/ruff check src pipelines tests benchmarks notebooks
	$(BIN)/ruff format --check src pipelines tests benchmarks

bench: setup
	$(BIN)/python benchmarks/features.py

clean:
	rm -rf $(VENV) $(TOOLS)
