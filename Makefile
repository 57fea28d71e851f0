# Circulate: the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Tools whose pinned dependencies must not meet the project's: a virtualenv of their own.
CHECKOV := .venv-tools/bin/checkov
export CIRCULATE_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/circulate_test
export CIRCULATE_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/circulate_test

.PHONY: help install lock system-packages promtool browser kubectl services fmt lint docs typecheck unit integration faults e2e test demo bench chaos clean checkov pgbouncer pgbouncer-binary

help:  ## List the targets and what each needs
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

$(STAMP): requirements-dev.lock pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

install: $(STAMP)  ## Create .venv: the pinned tools of requirements-dev.lock, then the project

# Python 3.11 on Linux, whatever machine runs it. The dev lock is compiled first and constrains the
# runtime one, so the image (requirements.lock) runs the versions the tests ran.
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --python-version 3.11 --python-platform linux \
	--custom-compile-command "make lock" --annotation-style line --upgrade

lock:  ## Regenerate requirements-dev.lock and requirements.lock from pyproject.toml (uv)
	@[ -x $(BIN)/python ] || python3 -m venv $(VENV)
	@[ -x $(BIN)/uv ] || $(BIN)/pip install --quiet uv
	$(LOCK) --extra dev -o requirements-dev.lock
	$(LOCK) --constraint requirements-dev.lock -o requirements.lock

# Debian packages some tests need and pip cannot provide; each is installed only by the targets
# that need it, and only when missing.
system-packages: promtool browser kubectl  ## Install promtool, Chromium and kubectl when missing (apt, as root)

promtool:  ## Install Debian's prometheus for promtool (deploy/prometheus checks)
	bash scripts/install-system-packages.sh

browser:  ## Install Debian's Chromium (the console's browser test)
	bash scripts/install-browser.sh

kubectl:  ## Make sure kubectl (with kustomize v4+) renders deploy/k8s (tests/unit/test_deploy_k8s.py)
	bash scripts/install-kubectl.sh

services:  ## Make sure PostgreSQL and RabbitMQ answer on loopback (starts them if not)
	bash scripts/services.sh

fmt: $(STAMP)  ## Format and fix what ruff can fix
	$(BIN)/ruff format shared tasks workers tests
	$(BIN)/ruff check --fix shared tasks workers tests

lint: $(STAMP)  ## ruff (lint and format check), import contracts (lint-imports), the strict docs build
	$(BIN)/ruff check shared tasks workers tests docs/_hooks
	$(BIN)/ruff format --check shared tasks workers tests docs/_hooks
	$(BIN)/lint-imports --no-cache
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir artifacts/site

docs: $(STAMP)  ## Build the docs site strictly (a dead link fails) into artifacts/site
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir artifacts/site

typecheck: $(STAMP)  ## mypy strict on shared, tasks and workers
	$(BIN)/mypy

unit: $(STAMP)  ## Unit tests: no services, no system packages (deploy checks skip without promtool)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP) services  ## Integration tests against the machine's PostgreSQL and RabbitMQ
	$(BIN)/pytest -q tests/integration

faults: $(STAMP) services  ## Fault tests (start PostgreSQL and RabbitMQ instances of their own)
	$(BIN)/pytest -q tests/faults

e2e: $(STAMP) system-packages services  ## End-to-end: demo, Prometheus, the console in Chromium
	$(BIN)/pytest -q tests/e2e

test: $(STAMP) system-packages checkov services lint typecheck  ## The CI gate: lint, mypy, every test layer (own-instance tests alongside)
	BIN=$(BIN) bash scripts/run-tests.sh

$(CHECKOV): scripts/install-checkov.sh
	bash scripts/install-checkov.sh

checkov: $(CHECKOV)  ## Install checkov into .venv-tools (deploy/terraform's policy checks in make test)

pgbouncer-binary:  ## Install Debian's pgbouncer (the binary only; its service is never started)
	bash scripts/install-pgbouncer.sh

pgbouncer: $(STAMP) services pgbouncer-binary  ## tests/integration through a PgBouncer of its own in transaction pooling (~5 min)
	BIN=$(BIN) bash scripts/pgbouncer-suite.sh

demo: $(STAMP) services  ## 200 orders through every process, then the report
	CIRCULATE_DATABASE_URL=$${CIRCULATE_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/circulate_demo} \
	CIRCULATE_AMQP_URL=$${CIRCULATE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/circulate_demo} \
	$(BIN)/circulate demo --orders $${ORDERS:-200} --json artifacts/demo-report.json

bench: $(STAMP) services  ## Throughput, CPU and memory figures, 3 interleaved runs (printed, never asserted)
	bash scripts/install-wrk.sh
	$(BIN)/python -m workers.harness.bench --json artifacts/bench.json

chaos: $(STAMP)  ## Every chaos scenario's faults in turn on one stream of 5,000 orders, on instances of its own; artifacts/chaos-report.json (not in make test)
	$(BIN)/python -m workers.harness.chaos --stream --orders $${ORDERS:-5000} --timeout 7200 --json artifacts/chaos-report.json

clean:  ## Remove .venv and every cache
	rm -rf $(VENV) .venv-tools artifacts .mypy_cache .ruff_cache .pytest_cache
