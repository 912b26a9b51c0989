# Two commands a newcomer needs:  make run   (demo on SQLite + in-repo sandbox)
#                                 make test  (the whole suite, lint and types)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test test-clock-ahead lint typecheck bench bench-quick setup clean

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
	$(BIN)/ruff check watchdog tests bench alembic setup.py

typecheck: $(STAMP)
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/pytest -q
	$(MAKE) test-clock-ahead

# The tests that read the real clock, once more with every Python process a year ahead: a fixed
# date that only works until its window closes fails here long before it fails on main.
test-clock-ahead: $(STAMP)
	WATCHDOG_TEST_CLOCK_AHEAD_DAYS=365 PYTHONPATH=tests/support/clock_ahead \
	    $(BIN)/pytest -q -m wallclock -p no:cacheprovider -W ignore::pytest.PytestAssertRewriteWarning

bench: setup
	$(BIN)/python -m bench.run_all

bench-quick: setup
	$(BIN)/python -m bench.run_all --quick

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
