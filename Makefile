# The two commands a newcomer types are `make run` and `make test`; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser run call test chaos lint bench lock clean

install: $(VENV)/.installed

# Reinstall only when a lock file changes; --require-hashes makes the install reproducible.
$(VENV)/.installed: requirements-dev.lock requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	@touch $@

# The browser tests drive Debian's Chromium (never a browser a tool downloads).
CHROMIUM := /usr/bin/chromium
browser: $(CHROMIUM)
$(CHROMIUM):
	apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium)

# Embedded defaults: SQLite, in-memory channel layer, in-process Celery (unless DATABASE_URL/REDIS_URL are set).
run: export DEBUG ?= 1
run: export PUBLIC_BASE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py load_demo
	@echo "Serving on http://$(HOST):$(PORT). To place a test call, in another terminal: make call"
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --no-access-log

# A simulated caller phones the demo number of the server `make run` started (see README).
call: export DEBUG ?= 1
call: export PUBLIC_BASE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
call: install
	$(BIN)/python manage.py simulate_call $(ARGS)

# The suite runs against real PostgreSQL and Redis; override either URL on the command line.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchboard
test: export REDIS_URL ?= redis://127.0.0.1:6379/1
test: export SECRET_KEY ?= insecure-key-for-tests-only
test: export FIELD_ENCRYPTION_KEYS ?= dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5ISE=
test: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

# The fault scenarios (tests/chaos/), the slow ones too, each printing what it checked.
chaos: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchboard
chaos: export REDIS_URL ?= redis://127.0.0.1:6379/1
chaos: export SECRET_KEY ?= insecure-key-for-tests-only
chaos: export FIELD_ENCRYPTION_KEYS ?= dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5ISE=
chaos: export LOG_LEVEL ?= ERROR
chaos: install
	$(BIN)/pytest tests/chaos -m "" -s -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The benchmarks run the real server processes against their own database (re-created each run).
bench: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchboard_bench
bench: export REDIS_URL ?= redis://127.0.0.1:6379/2
bench: export SECRET_KEY ?= insecure-key-for-benchmarks-only
bench: export FIELD_ENCRYPTION_KEYS ?= dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5ISE=
bench: install
	$(BIN)/python -m tests.benchmarks $(ARGS)

# Re-resolve the pins (needs the package index); commit both lock files.
lock: install
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
