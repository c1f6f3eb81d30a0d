# One entry point for set-up, running and checking. Every target installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

SCAN   := .venv-scan

.PHONY: install run reset load sql compact test lint types check bench deploy package scan teardown clean

PLAYGROUND := playground
BROWSER    := tests/browser
AUDIT      := tests/http_audit
WS_CLIENT  := tests/ws_client
NPM_CI     := npm ci --no-audit --no-fund --loglevel=error

## Python in .venv; GET /graphql's GraphiQL built from playground/ (npm packages pinned by
## its lock) into playground/dist/, which the app inlines (no CDN); playwright-core for
## the browser test (tests/browser/, it drives Debian's chromium); graphql-http's server
## audit (tests/http_audit/); graphql-ws's client (tests/ws_client/). Each step runs again only when what it is made from changes.
install: $(VENV)/.installed $(PLAYGROUND)/dist/versions.json $(BROWSER)/node_modules/.installed \
		$(AUDIT)/node_modules/.installed $(WS_CLIENT)/node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-layer.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# npm ci empties node_modules/ first, so a stamp there says the last one succeeded.
%/node_modules/.installed: %/package.json %/package-lock.json
	$(NPM_CI) --prefix $*
	touch $@

$(PLAYGROUND)/dist/versions.json: $(PLAYGROUND)/node_modules/.installed $(PLAYGROUND)/build.mjs \
		$(wildcard $(PLAYGROUND)/src/*)
	npm run build --silent --prefix $(PLAYGROUND)

## Run the app on the embedded local default (moto + DuckDB) with the GraphQL explorer.
## Its data is kept in .local/ across restarts. No auto-reload: every lake write would
## restart the server.
run: install
	PORT=$(PORT) $(BIN)/chalice local --stage local --port $(PORT) --no-autoreload

## Load JSON Lines into the running `make run` through its API (docs/local.md): FILE=data.jsonl
load: install
	$(BIN)/python -m chalicelib.local.load $(FILE) --url http://127.0.0.1:$(PORT)/graphql

## Ask the local lake a question, as a task reads it (docs/lake.md): Q='SELECT count(*) FROM "user"'
sql: install
	$(BIN)/python -m chalicelib.local.sql "$$Q"

## Compact the local lake (.local/lake) now, beside a running `make run` or not
## (docs/lake.md). A deployed stage: `python -m deploy compact --stage <stage>`.
compact: install
	$(BIN)/python -m chalicelib.lake.compaction

## Start over: forget the local default's table, queues, tasks and lake (.local/).
reset:
	@if [ -f .local/.lock ] && ! flock -n .local/.lock true; then \
		echo "make run is using .local/: stop it first"; exit 1; fi
	rm -rf .local

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

$(SCAN)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN)
	$(SCAN)/bin/pip install --quiet --upgrade pip
	$(SCAN)/bin/pip install --quiet -r requirements-scan.txt
	touch $@

## Both paths' templates through cfn-lint (informational rules included) and checkov
## (.checkov.yaml lists the skipped checks and why). Path b's stack is made for an
## example account: only names depend on it.
scan: package $(SCAN)/.installed
	OCG_ACCOUNT_ID=111111111111 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
		$(BIN)/python -m deploy resources --stage $(STAGE) > out/resources.json
	$(BIN)/cfn-lint --include-checks I -- out/sam.json out/resources.json
	$(SCAN)/bin/checkov --config-file .checkov.yaml -f out/sam.json -f out/resources.json

## Delete the stage's stack (DATA=1 also deletes its table, lake and access logs).
teardown: install
	$(BIN)/python -m deploy teardown --stage $(STAGE) $(if $(DATA),--delete-data)

clean:
	rm -rf $(VENV) $(SCAN) out .local .pytest_cache .mypy_cache .ruff_cache \
	  $(PLAYGROUND)/node_modules $(PLAYGROUND)/dist $(BROWSER)/node_modules $(AUDIT)/node_modules \
	  $(WS_CLIENT)/node_modules \
	  chalicelib/graphql/playground_assets
