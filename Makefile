# Two commands: `make demo` and `make test`. Both create the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo
export HEADEND_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: demo test test-setup test-sqlite test-postgresql lint bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "headend needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/.installed
	BIN=$(BIN) DEMO_DIR=$(DEMO_DIR) scripts/demo.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test-sqlite: $(BIN)/.installed
	HEADEND_TEST_DATABASE=sqlite $(BIN)/pytest -q

# Only the tests that touch the store run again on PostgreSQL.
test-postgresql: $(BIN)/.installed
	HEADEND_TEST_DATABASE=postgresql $(BIN)/pytest -q -m db

# Debian's chromium installed and PostgreSQL started when they are not (see the script).
test-setup:
	@scripts/test-setup.sh

# The two stores' runs go side by side, one to each core; each prints when it ends.
test: test-setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-sqlite test-postgresql

bench: $(BIN)/.installed
	$(BIN)/python bench/registry_import.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
