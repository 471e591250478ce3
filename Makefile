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

.PHONY: install serve test lint demo bench bench-pack validate clean

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

# Sign-in (docs/deployment.md): USERS=path/to/users.json (made with `alliance users add`) turns it on, and so
# does a users file beside the database (<db stem>.users.json). Without one this is the demo: no sign-in,
# bound to this machine only (127.0.0.1), every page saying so. With sign-in the cookie secret comes from
# $PANEL_COOKIE_SECRET (else one is made at each start: sign-ins end when the server restarts); ADDRESS
# (default 127.0.0.1: put a TLS reverse proxy in front), PUBLIC_HOST=the public site name (websocket origin)
# and PROXY=1 (trust the proxy's X-Forwarded-* headers) are for a deployment.
USERS ?=
ADDRESS ?= 127.0.0.1
PUBLIC_HOST ?=
PROXY ?=
SERVE_ARGS = dashboards/*.ipynb --port $(PORT) --reuse-sessions --disable-index-redirect --index $(CURDIR)/alliance/templates/index.html --setup $(CURDIR)/alliance/warmup.py --allow-websocket-origin=localhost:$(PORT) --allow-websocket-origin=127.0.0.1:$(PORT)
serve: $(STAMP)
	@if [ "$(DB)" = "$(DEMO_DB)" ]; then $(MAKE) --no-print-directory $(DEMO_DB) && $(BIN)/alliance refresh --db $(DEMO_DB) --if-stale; fi
	@test -f "$(DB)" || { echo "Database '$(DB)' not found. Give an existing DuckDB file: make serve DB=path/to/file.duckdb"; exit 2; }
	@db="$(abspath $(DB))"; users="$(USERS)"; users="$${users:-$$ALLIANCE_USERS}"; \
	if [ -z "$$users" ] && [ -f "$${db%.*}.users.json" ]; then users="$${db%.*}.users.json"; fi; \
	if [ -z "$$users" ]; then \
	  echo "No users file: the demo without sign-in, on this machine only: http://localhost:$(PORT)"; \
	  ALLIANCE_DB="$$db" exec $(BIN)/panel serve $(SERVE_ARGS) --address 127.0.0.1; \
	fi; \
	test -f "$$users" || { echo "Users file '$$users' not found: add a user with: $(BIN)/alliance users add NAME --role ROLE --users $$users"; exit 2; }; \
	if [ -z "$$PANEL_COOKIE_SECRET" ]; then \
	  echo "PANEL_COOKIE_SECRET is not set: a new cookie secret for this run (sign-ins end at a restart)."; \
	  export PANEL_COOKIE_SECRET="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))')"; \
	fi; \
	echo "Sign-in on (users file $$users), listening on $(ADDRESS):$(PORT)"; \
	ALLIANCE_DB="$$db" ALLIANCE_USERS="$$(realpath "$$users")" exec $(BIN)/panel serve $(SERVE_ARGS) \
	  --auth-module $(CURDIR)/alliance/signin.py --address $(ADDRESS) \
	  $(if $(PUBLIC_HOST),--allow-websocket-origin=$(PUBLIC_HOST)) $(if $(PROXY),--use-xheaders)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check alliance tests

# What a person waits for, and server memory, on a large generated service (docs/performance.md).
# BENCH_ARGS="--db PATH --repeats N --users N --no-browser" adjusts it.
EPISODES ?= 200000
bench: $(STAMP)
	$(BIN)/python -m alliance.bench --episodes $(EPISODES) $(BENCH_ARGS)

# The meeting pack of 25 clients on the demo (or DB=path): seconds on the clock and of CPU against 15 s.
bench-pack: $(STAMP)
	@if [ "$(DB)" = "$(DEMO_DB)" ]; then $(MAKE) --no-print-directory $(DEMO_DB) && $(BIN)/alliance refresh --db $(DEMO_DB) --if-stale; fi
	$(BIN)/python -m alliance.pack_bench --db "$(DB)"

# The validation report (docs/methods.md §13) on the demo, or on DB=path: one self-contained HTML file and the
# same figures as CSV beside it (build/validation_csv/).
VALIDATION ?= build/validation.html
validate: $(STAMP)
	@if [ "$(DB)" = "$(DEMO_DB)" ]; then $(MAKE) --no-print-directory $(DEMO_DB) && $(BIN)/alliance refresh --db $(DEMO_DB) --if-stale; fi
	$(BIN)/alliance validate --db "$(DB)" --out $(VALIDATION)

clean:
	rm -rf $(VENV) $(DEMO_DB) .pytest_cache
