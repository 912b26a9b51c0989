# Two commands a newcomer needs:  make run   (demo on SQLite + in-repo sandbox)
#                                 make test  (the whole suite, lint and types)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint typecheck bench bench-quick setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)
	bash scripts/ci-setup.sh

run: $(STAMP)
	$(BIN)/expiry-watchdog demo --dir demo

lint: $(STAMP)
	$(BIN)/ruff check watchdog tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python -m bench.run_all

bench-quick: setup
	$(BIN)/python -m bench.run_all --quick

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
