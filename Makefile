# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
# DATABASE_URL / REDIS_URL are used when set; otherwise embedded PostgreSQL 16 and Redis
# start under .data/ for the duration of the command (see aegis/devservices.py).

PYTHON ?= python3.11
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
WITH_SERVICES := $(PY) -m aegis.devservices run --
DATA_DIR := $(or $(AEGIS_DATA_DIR),.data)
export DJANGO_SETTINGS_MODULE ?= aegis.settings.dev

.PHONY: venv run test pytest lint check migrate seed services services-status services-stop clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# honcho: -e /dev/null so a docker-compose `.env` (production settings) is never read here;
# -p: the web process gets $(PORT). Ctrl-C (SIGINT, exit 130) or SIGTERM (143) is how `make run`
# is meant to end, so those count as success; the embedded services stop after honcho.
# The tenants' OpenClaw gateways run in sessions of their own (in production they outlive the
# control plane, like containers), so Ctrl-C does not reach them: `runtime start --all --queue`
# has the worker start them, and `runtime stop --all` stops them after honcho has exited (whatever
# its exit status), while the embedded PostgreSQL and Redis are still up. For that the shell
# outlives the Ctrl-C that ends honcho (trap INT; honcho gets it from the terminal itself), hands
# a SIGTERM/SIGHUP sent to it alone (devservices forwards signals to its child) on to honcho, and
# ignores Ctrl-C during the stop, so a second Ctrl-C cannot leave gateways behind. The exit
# status stays honcho's.
SERVE := $(PY) manage.py migrate_platform -v 0 \
	&& $(PY) manage.py seed_demo \
	&& $(PY) manage.py runtime start --all --queue || exit $$?; \
	trap : INT; $(VENV)/bin/honcho -f aegis/Procfile -d . -e /dev/null start -p $(PORT) & honcho=$$!; \
	trap "kill -TERM $$honcho 2>/dev/null" TERM HUP; \
	while wait $$honcho; rc=$$?; kill -0 $$honcho 2>/dev/null; do :; done; \
	trap "" INT; $(PY) manage.py runtime stop --all; exit $$rc

## make run: set up everything, load demo data, serve web (HTTP + WebSocket), Celery worker and beat.
## Ctrl-C stops it all, the tenants' gateways included; the next `make run` starts them again.
run: venv openclaw
	@mkdir -p $(DATA_DIR)
	@$(WITH_SERVICES) sh -c '$(SERVE)'; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 130 ] || [ $$rc -eq 143 ] || exit $$rc

## make test: set up and run the whole suite, then lint and the deployment checks.
test: venv openclaw
	$(WITH_SERVICES) $(MAKE) --no-print-directory pytest lint check

pytest: venv
	DJANGO_SETTINGS_MODULE=aegis.settings.test $(WITH_SERVICES) $(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

## check: migrations in step with models, deploy checklist clean under production settings.
check: venv
	DJANGO_SETTINGS_MODULE=aegis.settings.test $(WITH_SERVICES) $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=aegis.settings.prod \
	  SECRET_KEY=check-deploy-only-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ \
	  FIELD_ENCRYPTION_KEYS=Y2hlY2stZGVwbG95LW9ubHktMDEyMzQ1Njc4OWFiY2Q= \
	  ALLOWED_HOSTS=aegis.example.com \
	  $(WITH_SERVICES) $(PY) manage.py check --deploy --fail-level WARNING
	$(MAKE) --no-print-directory check-openapi check-types

migrate: venv
	$(WITH_SERVICES) $(PY) manage.py migrate_platform

seed: venv
	$(WITH_SERVICES) $(PY) manage.py seed_demo

## services: start the embedded servers and keep them up (until `make services-stop`).
services: venv
	$(PY) -m aegis.devservices env

services-status: venv
	$(PY) -m aegis.devservices status

services-stop: venv
	$(PY) -m aegis.devservices stop

clean: services-stop
	rm -rf $(DATA_DIR) $(VENV) staticfiles

# --- API documentation (docs/openapi.yaml, docs/api-contract.md, TypeScript types) ------------------
# Generated from the code; tests/api/test_openapi.py and `make check-types` fail when they drift.
API_DOCS_ENV := DJANGO_SETTINGS_MODULE=aegis.settings.test
TS_CLIENT := clients/typescript
OPENAPI_TS := $(TS_CLIENT)/node_modules/.bin/openapi-typescript

.PHONY: openapi check-openapi types check-types

## make openapi: regenerate docs/openapi.yaml and the generated tables of docs/api-contract.md.
openapi: venv
	$(API_DOCS_ENV) $(PY) manage.py spectacular --validate --file docs/openapi.yaml
	$(API_DOCS_ENV) $(PY) -m aegis.api.contract

## make check-openapi: no drf-spectacular warnings, and docs/openapi.yaml and docs/api-contract.md are current.
check-openapi: venv
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(API_DOCS_ENV) $(PY) manage.py spectacular --validate --fail-on-warn --file "$$tmp/openapi.yaml" && \
	if ! diff -u docs/openapi.yaml "$$tmp/openapi.yaml"; then \
	  echo "docs/openapi.yaml is out of date: run 'make openapi'." >&2; exit 1; fi
	$(API_DOCS_ENV) $(PY) -m aegis.api.contract --check

$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package.json $(TS_CLIENT)/package-lock.json
	npm ci --prefix $(TS_CLIENT)
	touch $@

## make types: regenerate the TypeScript types (clients/typescript/aegis-api.d.ts) from docs/openapi.yaml.
types: $(TS_CLIENT)/node_modules/.installed
	$(OPENAPI_TS) docs/openapi.yaml --output $(TS_CLIENT)/aegis-api.d.ts

## make check-types: the committed TypeScript types match docs/openapi.yaml, and compile.
check-types: $(TS_CLIENT)/node_modules/.installed
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(OPENAPI_TS) docs/openapi.yaml --output "$$tmp/aegis-api.d.ts" >/dev/null 2>&1 && \
	if ! diff -u $(TS_CLIENT)/aegis-api.d.ts "$$tmp/aegis-api.d.ts"; then \
	  echo "$(TS_CLIENT)/aegis-api.d.ts is out of date: run 'make types'." >&2; exit 1; fi
	$(TS_CLIENT)/node_modules/.bin/tsc --noEmit --strict $(TS_CLIENT)/aegis-api.d.ts

# --- OpenClaw tenant runtime (versions pinned in apps/agents/openclaw/versions.env) ----------------
OPENCLAW_DIR := apps/agents/openclaw
.PHONY: openclaw openclaw-schema

## make openclaw: install the pinned OpenClaw runtime (Node 24 + openclaw) under .data/openclaw/ (idempotent).
openclaw:
	$(OPENCLAW_DIR)/install.sh

## make openclaw-schema: regenerate the pinned config JSON Schema, apps/agents/openclaw/config.schema.json.
openclaw-schema: openclaw
	@tmp=$$(mktemp -d) && \
	  OPENCLAW_STATE_DIR=$$tmp/state OPENCLAW_CONFIG_PATH=$$tmp/state/openclaw.json \
	  "$$($(OPENCLAW_DIR)/install.sh --print)" config schema >$$tmp/config.schema.json && \
	  mv $$tmp/config.schema.json $(OPENCLAW_DIR)/config.schema.json; \
	  rc=$$?; rm -rf $$tmp; test $$rc -eq 0 && echo "wrote $(OPENCLAW_DIR)/config.schema.json"; exit $$rc
