# The two commands a newcomer types: `make quickstart` and `make test`. Each installs what it needs.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch==2.13.0 picks the CPU build; an unpinned torch may pull a multi-GB CUDA build.
TORCH ?= torch==2.13.0

.PHONY: install install-dev quickstart test test-fast lint clean

install:
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e .

install-dev:
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[dev]"

# `$(PYTHON) -m automodel`: the interpreter given (PYTHON=.venv/bin/python), not whatever
# `automodel` is first on PATH.
quickstart: install
	$(PYTHON) -m automodel run --out automodel_runs/quickstart

# The tests start their own Ray (own temp dir, ports and HOME) and stop exactly what they started:
# nothing here stops Ray or HAProxy processes, which may belong to another user or a running server.
test: install-dev
	$(PYTHON) -m pytest -q

test-fast: install-dev
	$(PYTHON) -m pytest -q -m "not ray and not slow"

lint:
	ruff check automodel serve_apps jobs benchmarks tests && ruff format --check automodel serve_apps jobs tests

clean:
	rm -rf automodel_runs .pytest_cache
