# AIMDS developer entry points. `make run` and `make test` work on a fresh Debian machine
# with Python 3.11, Java 17 and Maven: they install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
AIMDS := $(VENV)/bin/aimds
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test test-unit test-integration lint bench eval clean-broker

setup: $(VENV)/.installed
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }
	@command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch the Kafka jars"; exit 1; }
	@command -v java >/dev/null || { echo "Java 17+ is required to run the local Kafka broker"; exit 1; }

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## the main job end to end: broker + Redis, worker, sample prompts replayed, decisions printed
run: setup
	$(AIMDS) demo

## the whole test suite: unit, agent and integration tests (a real Kafka broker and Redis)
test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit tests/agents

test-integration: setup
	$(PY) -m pytest tests/integration

lint: setup
	$(VENV)/bin/ruff check app agents topics tests perf
	$(VENV)/bin/mypy

clean-broker:
	-$(AIMDS) broker stop
