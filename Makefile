# The book's two commands: `make book` and `make test` (see README.md).
# `book/` is also a folder, so every target is phony.
.PHONY: book test lint pytest execute venv clean help bench bench-quick

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JB_FLAGS := -W --keep-going

help:
	@echo "make book   set up .venv, execute every chapter, build HTML into _build/html"
	@echo "make test   set up .venv, ruff, run the tests, execute every chapter (warnings are errors)"
	@echo "make bench  run the benchmarks (< 10 min on 2 cores), write benchmarks/RESULTS.md"

# The environment: a venv with the pinned CI lock, plus diffnotes itself (editable).
$(STAMP): requirements-lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# Executes every chapter (cached between local rebuilds) and builds the HTML.
book: $(STAMP)
	$(BIN)/jupyter-book build . $(JB_FLAGS)
	@echo "Open _build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

# Forced execution: the execution cache is dropped so every chapter runs from scratch.
execute: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(BIN)/jupyter-book build . $(JB_FLAGS)

# Benchmarks (issue 9): the full run writes benchmarks/RESULTS.md and prints its tables; the
# quick run is a smoke test (seconds) that writes nothing.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

test: lint pytest bench-quick execute

clean:
	rm -rf _build
