# Two commands do all the set-up: `make demo` and `make test`.
# Each bootstraps .venv from nothing (Python 3.11+ and PyPI only) and then runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# checkov (the template's security scan) pins an older boto3, so it lives in a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV      := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30
# The browser test drives Debian's Chromium with Playwright; no browser is ever downloaded.
CHROMIUM := /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# dynalite, a second DynamoDB for the ledger's tests and the benchmarks, from its committed lock
# file (Node is on every machine this builds on; no install script runs).
NODE_DIR   := testkit/node
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

.PHONY: demo test lint typecheck unit integration e2e bench torture clean venv checkov node

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'

## The template's security scan; every finding left is skipped in the template with its reason.
## --skip-download: no network (checkov would fetch guidelines from Prisma Cloud).
checkov: $(CHECKOV)
	$(CHECKOV) --file infra/template.yaml --framework cloudformation --skip-download --compact --quiet

$(NODE_STAMP): $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js and npm are needed (dynalite, the ledger's second DynamoDB)"; exit 1; }
	cd $(NODE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

node: $(NODE_STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

## Run the whole system on the embedded local stack: sample media goes phone → cloud → PC, verified.
demo: $(STAMP)
	$(BIN)/mobile-backup demo

## Lint, type-check and run every test (what CI runs).
test: $(STAMP) $(NODE_STAMP) $(CHROMIUM) $(CHECKOV)
	$(BIN)/ruff check src tests bench testkit
	$(BIN)/ruff format --check src tests bench testkit
	$(BIN)/mypy
	$(MAKE) --no-print-directory checkov
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench testkit
	$(BIN)/ruff format --check src tests bench testkit

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) $(NODE_STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP) $(CHROMIUM)
	$(BIN)/pytest -q tests/e2e

## Benchmarks vs s5cmd/rclone/boto3 on SeaweedFS and the emulator (not part of `test`).
## `make bench ARGS="B1 B3 --quick"`; writes bench/results/latest.{md,json}.
bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m bench.run $(ARGS)

## Crash-consistency torture, long run: 1,000 SIGKILLs of the client and the agent, then every
## invariant checked; writes bench/results/torture.{md,json}. `make torture ARGS="--seed N"` replays.
torture: $(STAMP)
	$(BIN)/python -m bench.torture $(ARGS)

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(NODE_DIR)/node_modules build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
