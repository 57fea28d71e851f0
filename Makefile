# Circulate: the two set-up commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export CIRCULATE_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/circulate_test
export CIRCULATE_TEST_AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/circulate_test

.PHONY: install system-packages services test lint typecheck demo bench clean

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests need and pip cannot provide (promtool, Chromium); idempotent.
system-packages:
	bash scripts/install-system-packages.sh
	bash scripts/install-browser.sh

services:
	bash scripts/services.sh

lint: $(STAMP)
	$(BIN)/ruff check shared tasks workers tests
	$(BIN)/ruff format --check shared tasks workers tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-packages services lint typecheck
	$(BIN)/pytest -q

demo: $(STAMP) services
	CIRCULATE_DATABASE_URL=$${CIRCULATE_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/circulate_demo} \
	CIRCULATE_AMQP_URL=$${CIRCULATE_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/circulate_demo} \
	$(BIN)/circulate demo --orders $${ORDERS:-200} --json artifacts/demo-report.json

bench: $(STAMP) services
	$(BIN)/python -m workers.bench

clean:
	rm -rf $(VENV) artifacts .mypy_cache .ruff_cache .pytest_cache
