# VB CRM — the README's commands. `make run` serves the app; `make demo` shows it working on
# the built-in WhatsApp simulator; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test lint format bench venv venv-dev messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin --login-url http://$(HOST):$(PORT)/login/
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

# The demo migrates and collects static files itself, in its own data folder (data/demo):
# it never touches the database of `make run`. EVERY: seconds between customer messages.
EVERY ?= 8
demo: venv
	$(BIN)/python manage.py demo --host $(HOST) --port $(PORT) --every $(EVERY)

# Tests need no server: SQLite and the in-memory layer by default. With DATABASE_URL /
# REDIS_URL set (CI sets both) the PostgreSQL- and Redis-only tests run too.
test: export DJANGO_SECRET_KEY ?= $(shell $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')
test: venv-dev node_modules/.package-lock.json
	$(BIN)/pytest $(PYTEST_ARGS)

# axe-core for the accessibility tests (package.json, pinned in package-lock.json): npm ci
# when node_modules is missing or older than the lock file. Without npm the tests skip.
node_modules/.package-lock.json: package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund || echo "npm ci failed: the accessibility tests will skip"; \
	else \
		echo "npm not found: the accessibility tests (axe-core) will skip"; \
	fi

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every UI string (templates and Python, the page scripts' strings included) lands in
# locale/pt_BR/LC_MESSAGES/django.po; translate the new entries, then commit the .po and .mo.
messages: venv
	$(BIN)/python manage.py makemessages -l pt_BR --no-obsolete \
		--ignore '.venv/*' --ignore 'data/*' --ignore 'tests/*' --ignore 'bench/*' \
		--ignore 'node_modules/*'
	$(BIN)/python manage.py compilemessages --ignore '.venv/*'

bench: venv-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache node_modules
