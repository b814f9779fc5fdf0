# HashInsight. `make dev` brings the whole system up natively; `make test` runs every test.
# Native stack: infra/stack.sh (PostgreSQL, Redis, Kafka, Apicurio Registry, Kafka Connect + Debezium, web, workers).
# Docker machines: `make up` / `make down` / `make logs` use docker-compose.yml instead.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK := bash infra/stack.sh
COMPOSE ?= docker compose

SUB ?= demo-user-1
TENANT ?= demo-tenant
SCOPES ?= miners:read miners:write portfolio:read intel:read treasury:trade ops:read ops:write market:write billing:write
SIZE ?= default

.PHONY: help venv fetch stack-up stack-down stack-status stack-logs apps-up apps-down dev stop \
        up down logs migrate seed generate contracts-check docs token topics register connect replay redrive \
        bench acceptance lint test test-unit test-order fuzz chaos \
        market market-fanout audit-verify audit-archive rotate-master-key

# Development mode for what these targets start (web and workers refuse the built-in JWT secret otherwise; see
# app/safe_defaults.py). Set HASHINSIGHT_ENV=production in the environment to try the production checks.
dev apps-up test test-order fuzz chaos bench: export HASHINSIGHT_ENV := $(or $(HASHINSIGHT_ENV),development)

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV)/.installed ## create .venv and install the Python dependencies from pyproject.toml
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> installing Python dependencies into $(VENV)" >&2
	@$(PY) -m pip install -q --upgrade pip >&2
	@$(PY) -m pip install -q -e '.[dev]' >&2
	@touch $@

fetch: ## gather the JVM pieces (Kafka, Connect, Debezium, Apicurio) from Maven Central
	@$(STACK) fetch

stack-up: venv ## start postgres, redis, kafka, schema registry, connect and its watchdog under supervisord (idempotent)
	@$(STACK) up

stack-down: ## stop every process of the stack, web and workers included
	@$(STACK) down

stack-status: ## show each service of the native stack
	@$(STACK) status

stack-logs: ## tail the native stack's logs
	@$(STACK) logs

apps-up: venv ## start web and workers on the running stack
	@$(STACK) up web worker-portfolio worker-intel

apps-down: ## stop web and workers, leave the stack running
	@$(STACK) stop web worker-portfolio worker-intel

dev: venv stack-up migrate seed topics register apps-up ## everything: stack, schema, data, topics, connector, web, workers
	@$(STACK) urls

stop: stack-down ## alias of stack-down

up: ## docker compose: start every service (machines with Docker); secrets from .env
	@test -f .env || { echo "make up: no .env here; copy .env.example to .env and change its secrets" >&2; exit 1; }
	$(COMPOSE) up -d --wait

down: ## docker compose: stop and remove the services
	$(COMPOSE) down

logs: ## docker compose: follow the logs
	$(COMPOSE) logs -f --tail=200

migrate: venv ## apply the SQL migrations (idempotent)
	@$(PY) -m tools.migrate

seed: venv ## load reference and demo data (SIZE=small|default|large)
	@$(PY) -m tools.seed --size $(SIZE)

generate: venv ## regenerate generated/ from contracts/
	@$(PY) -m tools.generate

contracts-check: venv ## validate OpenAPI, AsyncAPI and Avro contracts, and Avro backward compatibility
	@$(PY) -m tools.contracts_check

docs: venv ## regenerate docs/api-examples.md (curl examples) from the spec
	@$(PY) -m tools.api_docs

token: venv ## print a dev JWT: make token SUB=u1 TENANT=t1 SCOPES="miners:write portfolio:read"
	@$(PY) -m tools.token --sub "$(SUB)" --tenant "$(TENANT)" --scopes "$(SCOPES)"

topics: venv ## create/update Kafka topics from the AsyncAPI bindings
	@$(PY) -m tools.topics

register: venv ## create or update the Debezium outbox connector
	@$(PY) -m tools.connect register

connect: venv ## show connector and task state
	@$(PY) -m tools.connect status

replay: venv ## re-deliver a window: make replay CONSUMER=portfolio FROM=2026-11-24T10:00:00Z TO=2026-11-24T11:00:00Z [ARGS=--dry-run]
	@$(PY) -m tools.replay --consumer "$(CONSUMER)" --from "$(FROM)" --to "$(TO)" $(ARGS)

redrive: venv ## re-publish dead letters to their topics: make redrive [ARGS="--consumer hashinsight.portfolio --dry-run"]
	@$(PY) -m tools.redrive $(ARGS)

bench: dev ## open-loop write-to-visible benchmark, stage by stage, CPU per write (ARGS="--duration 20" shortens it)
	@$(PY) -m tools.bench $(ARGS)

acceptance: dev ## the end-to-end acceptance walk-through with evidence from every stage
	@$(PY) -m tools.acceptance

market: venv ## record a network snapshot: make market PRICE=97000 DIFFICULTY=1.1e14 [REWARD=3.125] [HASHRATE=800]
	@$(PY) -m tools.market --price "$(PRICE)" --difficulty "$(DIFFICULTY)" $(if $(REWARD),--reward "$(REWARD)") \
		$(if $(HASHRATE),--hashrate "$(HASHRATE)")

market-fanout: venv ## measure the market-data fan-out: make market-fanout [USERS=10000 TENANTS=10] [ARGS=--cleanup]
	@$(PY) -m tools.market_fanout --users $(or $(USERS),10000) --tenants $(or $(TENANTS),10) $(ARGS)

audit-verify: venv ## check every tenant's audit hash chain; names the first broken link
	@$(PY) -m tools.audit verify $(ARGS)

audit-archive: venv ## archive audit rows older than DAYS (default 365) to .stack/audit-archive/, keeping the chain verifiable
	@$(PY) -m tools.audit archive --older-than-days $(or $(DAYS),365) $(ARGS)

rotate-master-key: venv ## new KMS master key; re-wrap every data key under it while the API serves
	@$(PY) -m tools.rotate_master_key $(ARGS)

lint: venv ## ruff
	@$(VENV)/bin/ruff check .

test-order: venv fetch stack-up ## no order dependences: the schemathesis module alone, then the suites in reverse order
	@$(PY) -m pytest tests/e2e/test_schemathesis.py -q
	@# Reversed: every suite but the long end-to-end runs (chaos, bench smoke) and the private stack, which make
	@# test has just run and whose tests each set up what they need.
	@$(PY) -m pytest --reverse -q tests/unit tests/contracts tests/infra tests/integration/api tests/integration/db \
		tests/integration/redis tests/integration/pipeline tests/e2e/test_schemathesis.py

fuzz: venv fetch stack-up ## long schemathesis run (every phase, stateful included): FUZZ_MAX_EXAMPLES=300 FUZZ_STATEFUL_EXAMPLES=200
	@FUZZ=1 $(PY) -m pytest tests/e2e/test_schemathesis.py -q -s -p no:cacheprovider

test-unit: venv ## pure unit tests only (no services)
	@$(PY) -m pytest tests/unit -q

test: venv fetch stack-up ## every test, against the real stack
	@$(VENV)/bin/ruff check .
	@$(PY) -m tools.contracts_check
	@$(PY) -m pytest

chaos: venv ## fault injection on the running system (several minutes): make chaos [ARGS="--short --json out.json"]
	@$(STACK) up
	@$(PY) -m tools.chaos $(ARGS)
