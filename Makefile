# kafka-s3-archiver: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-stamp
REQUIREMENTS := requirements.txt requirements-dev.txt functions/archiver/requirements.txt pyproject.toml
# pip's progress, one line per package, instead of 90 silent seconds.
PIP_PROGRESS := grep -E --line-buffered '^(Collecting|Installing collected|Successfully installed|ERROR)' || true

.PHONY: help venv lint format test unit fuzz synth deploy schema bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create or refresh .venv (Python 3.13) and install the kafka-s3-archiver command into it

$(STAMP): $(REQUIREMENTS)
	@test -n "$(PYTHON)" || { echo "no Python 3.13/3.12 found (see scripts/find-python)"; exit 1; }
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))'; then \
		echo "creating $(VENV) with $(PYTHON)"; rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	@echo "installing the pinned requirements into $(VENV) (about 90 s the first time)"
	@set -o pipefail; $(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt \
		| { $(PIP_PROGRESS); }
	@echo "installing the kafka-s3-archiver command (editable: it runs this checkout's code)"
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
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

# --- CDK: the pinned CLI and Node.js 24 (package.json) and the synth of every example config ---------------------
# node_modules/.bin first on PATH: the pinned Node runs the CDK CLI and the jsii kernel of every Python process
# (app.py, the infra tests) that make starts (infra/toolchain.py).
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NODE_STAMP := node_modules/.package-lock.json
CDK := CDK_DISABLE_CLI_TELEMETRY=true node_modules/.bin/cdk
CDK_SYNTH := $(CDK) synth --quiet --no-notices

.PHONY: node-modules
node-modules: $(NODE_STAMP) ## Install the pinned CDK CLI and cdklocal into node_modules (npm ci)

# npm ci writes node_modules/.package-lock.json; it is stale when package.json or the lock file changes.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# CONFIG=FILE synthesizes (or deploys) that one config through the command; without it, synth does every example.
synth: venv $(NODE_STAMP) ## Synth + cfn-lint: CONFIG=FILE for one config (cdk.out/<name>), else every shipped example
ifdef CONFIG
	$(VENV)/bin/kafka-s3-archiver synth --config $(CONFIG)
else
	@echo "synthesizing the 4 example configs (the first synth bundles the Lambda assets: about 2 minutes)"
	$(CDK_SYNTH) -c config=config/msk.example.json -o cdk.out/msk
	$(CDK_SYNTH) -c config=config/self-managed.example.json -o cdk.out/self-managed
	$(CDK_SYNTH) -c config=config/typed.example.json -o cdk.out/typed
	$(CDK_SYNTH) -c config=config/local.json -c withEventSource=false -o cdk.out/local
	@# W3005: CDK's own DependsOn on the role, redundant with Role's GetAtt (see tests/infra/test_cfn_lint.py ACCEPTED)
	$(VENV)/bin/cfn-lint --format parseable --ignore-checks W3005 -- cdk.out/*/*.template.json
endif

deploy: venv $(NODE_STAMP) ## Deploy one config to AWS: make deploy CONFIG=config/prod.json (ARGS="--require-approval never")
	@test -n "$(CONFIG)" || { echo "make deploy needs CONFIG=FILE, e.g. make deploy CONFIG=config/prod.json"; exit 2; }
	$(VENV)/bin/kafka-s3-archiver deploy --config $(CONFIG) -- $(ARGS)

schema: venv ## Regenerate config/schema.json (the config's JSON Schema) from infra/config.py
	$(PY) -m infra.config schema > config/schema.json

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

verify: venv ## Completeness audit of the local stack's archive (kafka-s3-archiver verify; options in ARGS="...")
	@set -e; eval "$$($(PY) -m local.stack env)"; \
		$(VENV)/bin/kafka-s3-archiver verify --config $(or $(CONFIG),config/local.json) --output text $(ARGS)

# A long randomized fault soak on its own stack instance ("soak"); `make test` runs a short one (tests/e2e/test_soak.py).
FAULTS ?= 200
RECORDS ?= 50000
SEED ?= $(shell date +%s)
.PHONY: soak
soak: local-install ## Randomized fault soak: FAULTS=200 RECORDS=50000 SEED=<n>; exit 1 on a lost offset or a conflict
	$(PY) -m local.soak --faults $(FAULTS) --records $(RECORDS) --seed $(SEED)

# Archive operations: the kafka-s3-archiver command (docs/operations.md; `.venv/bin/kafka-s3-archiver --help`).

# --- Benchmarks (docs/benchmarks.md); not part of `make test` ---------------------------------------------------
# BENCH_ARGS=--quick for a fast look; the end-to-end rows start and stop their own local stack (instance "bench").
# Results go to bench/out/results.json (untracked); PUBLISH=1 writes the tracked bench/results.json that
# docs/benchmarks.md quotes.
BENCH_RESULTS := $(if $(PUBLISH),bench/results.json,bench/out/results.json)
bench: venv ## Benchmarks -> bench/out/results.json (untracked); PUBLISH=1 updates the tracked bench/results.json
	$(PY) -m bench --e2e --output $(BENCH_RESULTS) $(BENCH_ARGS)

clean: ## Remove the venv and build outputs
	rm -rf $(VENV) cdk.out .mypy_cache .pytest_cache .ruff_cache
