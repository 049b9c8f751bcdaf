# Entry points of the Express Entry backend. Local infrastructure: deploy/local/*.sh
# (Kafka from Maven Central in .local/kafka, PostgreSQL from Debian's packages, services under uvicorn).
#
#   make venv    .venv with Python 3.11 and `pip install -e '.[dev]'` (only when pyproject.toml changed)
#   make infra   PostgreSQL (+ role ee, databases) and Kafka (+ event topics), both left running
#   make up      infra, the services of deploy/services.conf (profile :8001, ranking :8002, draws :8003,
#                applications :8004), then the front door: HAProxy on :8000 (/docs, /openapi.json)
#   make down    stop the front door, the services and Kafka this checkout started; PostgreSQL (a system
#                service) keeps running
#   make cluster       a cluster on this machine: 3 Kafka nodes (KRaft, RF 3, min ISR 2) and 2 instances of
#                      every service behind the front door on :8000 (deploy/local/cluster.sh; .local/cluster)
#   make cluster-down  stop it (data kept; deploy/local/cluster.sh wipe deletes the brokers' data)
#   make reset   down, then wipe Kafka's data and drop + recreate the databases (default and _test)
#   make test    venv, infra, pytest with EE_DB_SUFFIX=_test and a fresh EE_TOPIC_PREFIX=test<unix time>.
#                (extra arguments: make test PYTEST_ARGS='-k outbox -x'; EE_KEEP_TEST_TOPICS=1 keeps its topics)
#                (deploy/local/browser.sh first: chromium + chromedriver for the console's browser test)
#   make bench   venv, infra, then deploy/local/bench.sh (or python -m bench) when there is one
#   make lint    ruff and mypy over shared, services and tests; lint-imports (layer contracts in pyproject)
#   make status  what is running
#   make console the ops console alone on :8006 (EE_PORT_BASE + 6) in the foreground (make up starts it too)
#   make asyncapi      regenerate docs/asyncapi.json from the event catalogue (a test fails when it is stale)
#   make event-schemas record the catalogue's event schemas in shared/events/schemas.json, refusing
#                      incompatible changes (the compatibility check runs in make test)
#
# Remote infrastructure: set KAFKA_BOOTSTRAP_SERVERS and/or EE_<SERVICE>_DATABASE_URL to other hosts and
# the scripts leave the local broker / cluster alone (see deploy/local/kafka.sh and postgres.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3.11
VENV := .venv
VENV_STAMP := $(VENV)/.ee-installed
LOCAL := deploy/local
PYTEST_ARGS ?=
LINT_DIRS := shared services bench deploy tests

.PHONY: help venv infra up down cluster cluster-down reset test bench lint status asyncapi event-schemas console

help:
	@sed -n 's/^#   make /  make /p' Makefile

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@$(LOCAL)/venv.sh $(PYTHON)
	@touch $@

# PostgreSQL and Kafka start side by side (Kafka's first start also fetches its jars).
infra: venv
	@$(LOCAL)/kafka.sh start & kafka=$$!; \
	$(LOCAL)/postgres.sh start && $(LOCAL)/postgres.sh createdbs || { wait $$kafka || true; exit 1; }; \
	wait $$kafka
	@$(VENV)/bin/python -m shared.kafka_admin ensure-topics --prefix "$${EE_TOPIC_PREFIX:-}"

up: infra
	@$(LOCAL)/services.sh start
	@$(LOCAL)/frontdoor.sh start

down:
	@$(LOCAL)/frontdoor.sh stop
	@$(LOCAL)/services.sh stop
	@$(LOCAL)/kafka.sh stop
	@echo "PostgreSQL keeps running (a system service other checkouts may use): $(LOCAL)/postgres.sh stop stops it"

cluster: venv
	@$(LOCAL)/cluster.sh start

cluster-down:
	@$(LOCAL)/cluster.sh stop

reset: down
	@$(LOCAL)/kafka.sh wipe
	@for suffix in "$${EE_DB_SUFFIX:-}" _test; do \
		$(LOCAL)/postgres.sh dropdbs "$$suffix" && $(LOCAL)/postgres.sh createdbs "$$suffix"; \
	done
	@echo "reset done: Kafka data wiped (a new cluster id on the next start), databases empty; 'make up' to start"

# Event topics keep their data forever, so test topics are cleaned up: the run's own after pytest
# (EE_KEEP_TEST_TOPICS=1 keeps them for a post-mortem), and those of runs killed over an hour ago.
# The exit status is pytest's (make reports any failure as its own "Error").
# TEST_DB_SUFFIX names the databases of the run (`profile_test`, ...): a second checkout testing at the
# same time on the same PostgreSQL gives its own (`make test TEST_DB_SUFFIX=_testci`).
TEST_DB_SUFFIX ?= _test

test: venv infra
	@prefix="test$$(date +%s)."; \
	$(LOCAL)/browser.sh; \
	$(LOCAL)/postgres.sh createdbs $(TEST_DB_SUFFIX); \
	$(VENV)/bin/python -m shared.kafka_admin purge-test-topics --older-than 3600; \
	$(VENV)/bin/python -m shared.kafka_admin ensure-topics --prefix "$$prefix"; \
	echo "pytest with EE_DB_SUFFIX=$(TEST_DB_SUFFIX) EE_TOPIC_PREFIX=$$prefix"; \
	rc=0; EE_DB_SUFFIX=$(TEST_DB_SUFFIX) EE_TOPIC_PREFIX="$$prefix" $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [[ -z "$${EE_KEEP_TEST_TOPICS:-}" ]]; then \
		$(VENV)/bin/python -m shared.kafka_admin delete-topics --prefix "$$prefix" || true; \
	fi; \
	exit $$rc

bench: venv infra
	@if [[ -x $(LOCAL)/bench.sh ]]; then \
		$(LOCAL)/bench.sh; \
	elif $(VENV)/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("bench") is None)' 2>/dev/null; then \
		$(VENV)/bin/python -m bench; \
	else \
		echo "no benchmarks yet: add $(LOCAL)/bench.sh or a 'bench' module"; \
	fi

# Both tools always run, so one pass shows every problem; mypy skips folders without Python files.
lint: venv
	@rc=0; $(VENV)/bin/ruff check $(LINT_DIRS) || rc=1; \
	$(VENV)/bin/ruff format --check $(LINT_DIRS) || rc=1; \
	dirs=(); for d in $(LINT_DIRS); do \
		[[ -n "$$(find "$$d" -name '*.py' -print -quit 2>/dev/null)" ]] && dirs+=("$$d"); \
	done; \
	$(VENV)/bin/mypy "$${dirs[@]}" || rc=1; \
	$(VENV)/bin/lint-imports --no-logo --no-cache || rc=1; \
	exit $$rc

status:
	@$(LOCAL)/postgres.sh status || true
	@$(LOCAL)/kafka.sh status || true
	@$(LOCAL)/services.sh status || true
	@$(LOCAL)/frontdoor.sh status || true

asyncapi: venv
	@$(VENV)/bin/python -m shared.asyncapi write

event-schemas: venv
	@$(VENV)/bin/python -m shared.events.compat update

console: venv
	@PYTHONPATH=.:services/console exec $(VENV)/bin/uvicorn console_service.main:app --host 127.0.0.1 \
		--port $$(( $${EE_PORT_BASE:-8000} + 6 ))
