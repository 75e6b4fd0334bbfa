# kafka-s3-archiver: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp
REQUIREMENTS := requirements.txt requirements-dev.txt functions/archiver/requirements.txt

.PHONY: help venv lint format test unit fuzz synth bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

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

# FUZZ_ARGS="--events 1000 --seed 7" for a shorter or another run; make test runs a seeded subset (tests/fuzz).
fuzz: venv ## Fuzz the archiver with 100,000 mutated events and print the counts (exit 1 on any finding)
	PYTHONPATH=functions/archiver:. $(PY) -m tests.fuzz $(FUZZ_ARGS)

test: venv lint node_modules/.package-lock.json local-install ## The whole suite: lint, unit, infra and end-to-end tests (CI runs exactly this)
	$(PY) -m pytest -q

# --- CDK: the pinned CLI (package.json) and the synth of every example config -------------------------------
NODE_STAMP := node_modules/.package-lock.json
CDK := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk
CDK_SYNTH := $(CDK) synth --quiet --no-notices

.PHONY: node-modules
node-modules: $(NODE_STAMP) ## Install the pinned CDK CLI and cdklocal into node_modules (npm ci)

# npm ci writes node_modules/.package-lock.json; it is stale when package.json or the lock file changes.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

synth: venv $(NODE_STAMP) ## CDK CLI synth of config/msk.example, self-managed.example, typed.example and local (no ESM) into cdk.out/<name>
	$(CDK_SYNTH) -c config=config/msk.example.json -o cdk.out/msk
	$(CDK_SYNTH) -c config=config/self-managed.example.json -o cdk.out/self-managed
	$(CDK_SYNTH) -c config=config/typed.example.json -o cdk.out/typed
	$(CDK_SYNTH) -c config=config/local.json -c withEventSource=false -o cdk.out/local

# --- Local pipeline: Tansu broker + LocalStack on 127.0.0.1, cdklocal deploy, ESM emulator (docs/local.md) ---------
# LOCAL_INSTANCE=<name> keeps several local stacks apart; KEEP=1 leaves the demo's stack running.
.PHONY: local-install local-up local-down demo verify

local-install: venv $(NODE_STAMP) ## Install the local stack under .local/ (LocalStack + host Lambda executor, Tansu, runtime)
	$(PY) -m local.stack install

local-up: local-install ## Start the Kafka-protocol broker and LocalStack on free 127.0.0.1 ports (a second run is harmless)
	$(PY) -m local.stack up

local-down: venv ## Stop what local-up started (by PID); external services are left alone
	$(PY) -m local.stack down

demo: local-install ## The whole pipeline locally: stack, cdklocal deploy, sample stream, emulator, S3/DLQ/audit report
	$(PY) -m local.demo

verify: venv ## Completeness audit of the local archive: offset ranges, gaps, overlaps per partition (JSON; exit 1 on gaps)
	$(PY) -m local.verify

# --- Archive operations (docs/operations.md); ARGS passes options, e.g. ARGS="--bucket B --dry-run" -------------
.PHONY: compact replay

compact: venv ## Merge small archive objects into large ones (options in ARGS="...")
	$(PY) -m tools.compact $(ARGS)

replay: venv ## Stream archived records back into a Kafka topic (options in ARGS="...")
	$(PY) -m tools.replay $(ARGS)

# --- Benchmarks (docs/benchmarks.md); not part of `make test` ---------------------------------------------------
# BENCH_ARGS=--quick for a fast look; the end-to-end rows start and stop their own local stack (instance "bench").
bench: venv ## Benchmarks: throughput vs raw limit and naive baseline, memory, cold start, cost/TB -> bench/results.json
	$(PY) -m bench --e2e $(BENCH_ARGS)

clean: ## Remove the venv and build outputs
	rm -rf $(VENV) cdk.out .mypy_cache .pytest_cache .ruff_cache
