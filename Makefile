# The two commands: `make run` (amends with its embedded runtime) and
# `make test` (the whole suite). Each builds the virtualenv it needs from
# the lock (uv.lock, made from pyproject.toml) first, so a fresh clone needs
# nothing but python3 >= 3.11. `make test-fast` runs only the fast tier
# (tests/unit: no server, seconds). `make lock` updates the lock after a
# change to pyproject.toml's dependencies.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# uv installs exactly what uv.lock pins; the version bootstrapped is the one the lock pins itself.
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-fast docs schema lock clean

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

# The project itself is installed editable, every dependency at the version uv.lock pins
# (--locked: a lock that no longer matches pyproject.toml stops here; run `make lock`).
$(VENV)/.installed-%: pyproject.toml uv.lock $(BIN)/uv
	$(BIN)/uv sync --locked --inexact --quiet --extra $*
	touch $@

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'

# After changing dependencies in pyproject.toml; `$(BIN)/uv lock --upgrade-package NAME` moves one pin.
lock: $(BIN)/uv
	$(BIN)/uv lock

clean:
	rm -rf $(VENV) .data
