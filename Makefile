# GPU Cloud: `make run` and `make test` are all a new user needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PORT    ?= 8000
WORKERS ?= 2
DAY     ?=

.PHONY: install run test lint unit package bench audit rollup dlq redrive clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "GPU Cloud needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'pip==26.2'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: install
	PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/python -m infra.local

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy app.py chalicelib infra tests bench tools

test: lint
	$(BIN)/python -m pytest

package: install
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $${STAGE:-dev} \
		--merge-template infra/template.json build/package
	$(BIN)/python -m infra.package_lambda build/package/deployment.zip
	$(BIN)/python -m infra.http_api build/package/sam.json
	$(BIN)/cfn-lint build/package/sam.json
	@ls -l build/package

bench: install
	$(BIN)/python -m bench

# Needs the package index: kept out of `make test` so a newly published advisory never breaks a build.
audit: install
	$(BIN)/python -m tools.audit

rollup: install
	$(BIN)/python -m infra.local.rollup_cli $(DAY)

dlq: install
	$(BIN)/python -m infra.local.dlq_cli list

redrive: install
	$(BIN)/python -m infra.local.dlq_cli redrive

clean:
	rm -rf $(VENV) build .local .pytest_cache .mypy_cache .ruff_cache
