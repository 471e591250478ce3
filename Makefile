# Alliance — set-up, serve, test. Everything a fresh machine needs is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
DEMO_DB := data/demo.duckdb
DB ?= $(DEMO_DB)
PORT ?= 5006
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k client"
PYTEST_ARGS ?=

.PHONY: install serve test lint demo bench validate clean

install: $(STAMP)

# Reinstall only when the package metadata changes; a second `make serve` installs nothing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The demo database is built only when missing (and only at the default path).
$(DEMO_DB): | $(STAMP)
	$(BIN)/alliance demo --out $(DEMO_DB)

demo: $(STAMP)
	$(BIN)/alliance demo --out $(DEMO_DB) --force

# Bound to this machine only (127.0.0.1): there is no sign-in yet.
serve: $(STAMP)
	@if [ "$(DB)" = "$(DEMO_DB)" ]; then $(MAKE) --no-print-directory $(DEMO_DB); fi
	@test -f "$(DB)" || { echo "Database '$(DB)' not found. Give an existing DuckDB file: make serve DB=path/to/file.duckdb"; exit 2; }
	ALLIANCE_DB="$(abspath $(DB))" $(BIN)/panel serve dashboards/*.ipynb --port $(PORT) --num-threads 4 --disable-index-redirect --index $(CURDIR)/alliance/templates/index.html --address 127.0.0.1 --allow-websocket-origin=localhost:$(PORT) --allow-websocket-origin=127.0.0.1:$(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check alliance tests

# What a person waits for, and server memory, on a large generated service (docs/performance.md).
# BENCH_ARGS="--db PATH --repeats N --users N --no-browser" adjusts it.
EPISODES ?= 200000
bench: $(STAMP)
	$(BIN)/python -m alliance.bench --episodes $(EPISODES) $(BENCH_ARGS)

# The validation report (docs/methods.md §13) on the demo, or on DB=path: one self-contained HTML file and the
# same figures as CSV beside it (build/validation_csv/).
VALIDATION ?= build/validation.html
validate: $(STAMP)
	@if [ "$(DB)" = "$(DEMO_DB)" ]; then $(MAKE) --no-print-directory $(DEMO_DB); fi
	$(BIN)/alliance validate --db "$(DB)" --out $(VALIDATION)

clean:
	rm -rf $(VENV) $(DEMO_DB) .pytest_cache
