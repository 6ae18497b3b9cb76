# One entry point for newcomers and CI. Targets create their own virtual environment.
PYTHON ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
PY := $(VENV)/bin/python

.PHONY: serve test train evaluate bench setup setup-dev system-deps clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	touch $@

setup: $(VENV)/.installed          ## runtime only: what serving needs
setup-dev: $(VENV)/.installed-dev  ## plus training extras and the test tools

serve: setup                       ## serve the shipped model on http://127.0.0.1:8000
	$(PY) -m eurosat_service.entrypoints.api

system-deps:                       ## Docker engine, local registry, Chromium... (root, Debian)
	bash .ci/system-deps.sh

test: setup-dev system-deps        ## the whole test suite, with every service it needs
	bash .ci/test.sh

train: setup-dev                   ## train on EuroSAT (DATA=path to the folder holding 2750/)
	$(PY) -m eurosat_service.entrypoints.train --data-dir $(or $(DATA),data)

# The service runs on the CPU-only torch venv when .ci/api-cpu-check.sh has made it (docs/benchmarks.md).
bench: setup-dev
	$(PY) bench/bench_api.py --service-python $(or $(wildcard .venv-cpu/bin/python),$(PY))

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
