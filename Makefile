# `make run` sets everything up and serves the app (gunicorn, Celery worker and beat: scripts/run.sh);
# `make test` sets up and runs every test (after ruff and the import layer rules in pyproject.toml).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test lint format bench demo setup setup-dev check-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Writes a development .env when there is none; refuses (with what to do) one that cannot start the app here.
setup: $(VENV)/.runtime
	$(BIN)/python scripts/dev_env.py .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

setup-dev: $(VENV)/.dev
	$(BIN)/python scripts/dev_env.py .env

run: setup
	./scripts/run.sh

demo: setup
	DEMO=1 ./scripts/run.sh

test: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: setup-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Throwaway production values on a throwaway, empty database: var/'s secrets were encrypted with .env's keys,
# not these. To check stored rows, run `manage.py check --deploy` with the real environment (README › Production).
check-deploy: setup-dev
	scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	env -u DATABASE_URL -u REDIS_URL ENV_FILE=none VAR_DIR="$$scratch" DEBUG=false ALLOWED_HOSTS=example.com \
	  SECRET_KEY=$$($(BIN)/python -c 'import secrets;print(secrets.token_urlsafe(50))') \
	  FERNET_KEYS=$$($(BIN)/python -c 'import secrets;print(secrets.token_urlsafe(48))') \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING

bench: setup-dev
	$(BIN)/python -m bench.parse_bench
	$(BIN)/python -m bench.import_bench
	$(BIN)/python -m bench.export_bench
	$(BIN)/python -m bench.findings_bench

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
