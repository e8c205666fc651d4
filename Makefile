# Airloop: `make demo` runs the main job on embedded defaults; `make test` runs the tests.
# Both set everything up first (`make setup`: venv, pinned install, secrets, Airflow DB); idempotent.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STATE := $(ROOT)/.airloop
PYTHON ?= python3.11

export AIRLOOP_ROOT := $(ROOT)
export AIRFLOW_HOME := $(STATE)/airflow
export AIRFLOW_CONFIG := $(ROOT)/airflow.cfg
export PATH := $(VENV)/bin:$(PATH)
export GX_ANALYTICS_ENABLED := false
export PYTHONWARNINGS := ignore::DeprecationWarning,ignore::FutureWarning,ignore::UserWarning

# Generated secrets (export KEY=VALUE lines); make re-reads this file once the rule below made it.
-include $(AIRFLOW_HOME)/secrets.env

INSTALLED := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml 2>/dev/null | sha1sum | cut -c1-12)
DB_READY := $(AIRFLOW_HOME)/.db-ready

# make demo USE_CASE=<name> runs another registered use case; its declaration's demo span gives the days
# (DEMO_FIRST/DEMO_LAST/DEMO_LIVE_DAYS/DEMO_AFTER_DAYS override it).
ifdef USE_CASE
export AIRLOOP_USE_CASE := $(USE_CASE)
endif
DEMO_ARGS := $(if $(DEMO_FIRST),--first-day $(DEMO_FIRST)) $(if $(DEMO_LAST),--last-day $(DEMO_LAST)) \
	$(if $(DEMO_LIVE_DAYS),--live-days $(DEMO_LIVE_DAYS)) $(if $(DEMO_AFTER_DAYS),--after-days $(DEMO_AFTER_DAYS))

.PHONY: help setup demo test lint lock lock-check bench airflow serve mlflow bento clean feast-plan feast-apply \
	images images-clean compose-test compose-up compose-down bench-containers

help:
	@echo "make setup    create .venv, install pinned requirements, generate secrets, migrate the Airflow DB"
	@echo "make lint     ruff check + ruff format --check + mypy on the typed core (run by .ci/run)"
	@echo "make lock     regenerate requirements.txt (the lock) from pyproject.toml; make lock-check diffs them"
	@echo "make demo     the whole loop (flights: ingest 2013-01..06, train, serve July, drift -> retrain, batch);"
	@echo "              make demo USE_CASE=grid_peak runs the second use case"
	@echo "make test     run the test suite (real Airflow, GX; PostgreSQL/Redis tests use the local services)"
	@echo "make bench    run the benchmarks under bench/ and print their tables"
	@echo "make airflow  Airflow UI + scheduler + dag-processor + triggerer on http://127.0.0.1:8080"
	@echo "make serve    the BentoML prediction service on http://127.0.0.1:3000 (needs a champion: make demo)"
	@echo "make mlflow   MLflow UI on http://127.0.0.1:5000 (experiments, registry, drift reports)"
	@echo "make bento    build the service into a bento (no Docker), stored under .airloop/bentoml"
	@echo "make feast-plan / feast-apply   Feast CLI on the configuration generated from the settings"
	@echo "make images   build the runtime, serving and mlflow images offline (debootstrap base + wheelhouse)"
	@echo "make compose-test  the production stack end to end on a private Docker engine (what CI runs)"
	@echo "make compose-up / compose-down   the compose stack with .env (copy .env.example first)"
	@echo "make bench-containers  image sizes, build times, stack memory, DockerOperator and serving overheads"
	@echo "make clean    remove .venv and all local state (.airloop)"

setup: $(INSTALLED) $(DB_READY)

$(INSTALLED): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $@

$(AIRFLOW_HOME)/secrets.env:
	$(PYTHON) $(ROOT)/include/airloop_tools/bootstrap.py

$(DB_READY): $(INSTALLED) $(AIRFLOW_HOME)/secrets.env
	airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	@touch $@

demo: setup
	$(PY) -m airloop.cli demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider --ignore=tests/compose $(PYTEST_ARGS)

# Dev tools (ruff, uv) live in requirements-dev.txt, outside the lock the images install; mypy is in the lock.
DEV_INSTALLED := $(VENV)/.dev-installed-$(shell cat requirements-dev.txt 2>/dev/null | sha1sum | cut -c1-12)
$(DEV_INSTALLED): $(INSTALLED)
	$(PY) -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.dev-installed-* && touch $@

LINT_PATHS := include dags plugins tests bench docker
lint: $(DEV_INSTALLED)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy

# The lock: requirements.txt generated from pyproject.toml's ranges (+ the dev extra) for the one platform the
# images and CI run on. uv keeps the pins already in requirements.txt unless a range excludes them, so a
# re-run after a pyproject change moves only what it must. lock-check regenerates into a copy and diffs.
LOCK_ARGS := pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--no-strip-markers --no-annotate --find-links /opt/wheels --custom-compile-command "make lock" --quiet
lock: $(DEV_INSTALLED)
	$(VENV)/bin/uv pip compile $(LOCK_ARGS) -o requirements.txt

lock-check: $(DEV_INSTALLED)
	@tmp=$$(mktemp -d) && cp requirements.txt $$tmp/requirements.txt \
	  && $(VENV)/bin/uv pip compile $(LOCK_ARGS) -o $$tmp/requirements.txt \
	  && diff -u requirements.txt $$tmp/requirements.txt \
	  || { echo "requirements.txt is not the lock of pyproject.toml: run make lock" >&2; exit 1; }

bench: setup
	$(PY) bench/run_all.py

airflow: setup
	@echo "Log in at http://127.0.0.1:8080 as admin, password in $(AIRFLOW_HOME)/simple_auth_manager_passwords.json"
	airflow standalone

serve: setup
	bentoml serve airloop.serving.service:PredictionService --host 127.0.0.1 --port 3000

mlflow: setup
	mlflow ui --backend-store-uri "$$($(PY) -c 'from airloop.settings import load_settings; print(load_settings().mlflow_tracking_uri)')" \
		--host 127.0.0.1 --port 5000

# The bento store is BENTOML_HOME=.airloop/bentoml. The bentofile turns locking off; BentoML still looks for
# `uv` first and pip-installs it into .venv when missing, so a stub that fails loudly stands in for it.
bento: setup
	@mkdir -p $(STATE)/bentoml/bin
	@printf '#!/bin/sh\necho "make bento: BentoML ran uv ($$*), but the bentofile does not lock" >&2\nexit 1\n' \
		> $(STATE)/bentoml/bin/uv && chmod +x $(STATE)/bentoml/bin/uv
	BENTOML_HOME=$(STATE)/bentoml BENTOML_DO_NOT_TRACK=true PATH=$(STATE)/bentoml/bin:$$PATH \
		bentoml build -f include/airloop/serving/bentofile.yaml include
	@BENTOML_HOME=$(STATE)/bentoml bentoml list airloop_serving

feast-plan: setup
	cd "$$($(PY) -m airloop.cli feast-repo)" && feast plan

feast-apply: setup
	cd "$$($(PY) -m airloop.cli feast-repo)" && feast apply

# Containers (docker/README.md). Without a reachable engine, docker/with-engine.sh runs a private dockerd for
# the command; its images stay in $(AIRLOOP_IMAGE_CACHE)/engine between runs (the build cache; `make
# images-clean`). AIRLOOP_ENGINE_KEEP=1 leaves that engine running (then: export DOCKER_HOST=unix:///run/airloop-docker/docker.sock).
export AIRLOOP_IMAGE_CACHE ?= /var/cache/airloop-images
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

images:
	docker/with-engine.sh docker/images.sh

images-clean:
	docker/engine.sh stop
	rm -rf $(AIRLOOP_IMAGE_CACHE)

compose-test: setup
	docker/with-engine.sh docker/compose-test.sh

bench-containers: setup
	AIRLOOP_TEST_IMAGES=1 docker/with-engine.sh bash -c 'docker/images.sh && $(PY) bench/bench_containers.py $(BENCH_ARGS)'

compose-up:
	@test -f .env || (echo "copy .env.example to .env and set POSTGRES_PASSWORD first" >&2; exit 1)
	$(COMPOSE) up -d

compose-down:
	$(COMPOSE) down

clean:
	rm -rf $(VENV) $(STATE)
