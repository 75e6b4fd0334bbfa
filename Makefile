# kafka-s3-archiver: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp
REQUIREMENTS := requirements.txt requirements-dev.txt functions/archiver/requirements.txt

.PHONY: help venv lint format test unit synth demo bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create or refresh .venv (Python 3.13) from the requirements files

$(STAMP): $(REQUIREMENTS)
	@test -n "$(PYTHON)" || { echo "no Python 3.13/3.12 found (see scripts/find-python)"; exit 1; }
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))'; then \
		rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

lint: venv ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

unit: venv ## Unit tests only (fast loop)
	$(PY) -m pytest tests/unit -q

test: venv lint ## The whole suite: lint, unit, infra and end-to-end tests (CI runs exactly this)
	$(PY) -m pytest -q

clean: ## Remove the venv and build outputs
	rm -rf $(VENV) cdk.out .mypy_cache .pytest_cache .ruff_cache
