# The two commands: `make run` (amends with its embedded runtime) and
# `make test` (the whole suite). Each builds the virtualenv it needs from
# pyproject.toml first, so a fresh clone needs nothing but python3 >= 3.11.
# `make test-fast` runs only the fast tier (tests/unit: no server, seconds).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast docs schema clean

run: $(VENV)/.installed-dev
	$(BIN)/amends dev

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

# Regenerate what is derived from the code (tests fail when these are stale).
docs: $(VENV)/.installed-dev
	$(BIN)/python -m workflows.stages
schema: $(VENV)/.installed-dev
	$(BIN)/amends schema --out schema

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

clean:
	rm -rf $(VENV) .data
