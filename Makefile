# One entry point for set-up, running and checking. Every target installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: install run test lint types check bench deploy package clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-layer.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## Run the app on the embedded local default (moto + DuckDB) with the GraphQL explorer.
## No auto-reload: a restart would empty the in-memory AWS, and lake writes would trigger it.
run: install
	$(BIN)/chalice local --stage local --port $(PORT) --no-autoreload

## The test suite (what CI runs).
test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

check: lint types test

bench: install
	$(BIN)/python -m bench

## Deployment (README, "Deploying"). STAGE is a stage of .chalice/config.json.
STAGE ?= dev

## Path (b): the resources stack and the stage's config, chalice deploy, then the mappings and API key.
deploy: install
	$(BIN)/python -m deploy prepare --stage $(STAGE)
	$(BIN)/chalice deploy --stage $(STAGE)
	$(BIN)/python -m deploy finish --stage $(STAGE)

## Path (a): one SAM template with everything in out/, for `aws cloudformation deploy`.
package: install
	$(BIN)/python -m deploy package --stage $(STAGE) --out out

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
