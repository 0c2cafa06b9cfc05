# The book's two commands: `make book` and `make test` (see README.md).
# `book/` is also a folder, so every target is phony.
.PHONY: book test lint pytest execute venv clean help bench bench-quick notebooks \
        notebooks-check student instructor colab-test colab-check figures site-test \
        notebook-test pdf colab-pins reader-check assignments grade-test prose-check wheel

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
VENV_COLAB := .venv-colab
JB_FLAGS := -W --keep-going

help:
	@echo "make book   set up .venv, execute every chapter, build HTML into _build/html"
	@echo "make test   set up .venv, ruff, run the tests, execute every chapter (warnings are errors)"
	@echo "make bench  run the benchmarks (< 10 min on 2 cores), write benchmarks/RESULTS.md"
	@echo "make notebooks   install cells; export reader, student, instructor notebooks (commit)"
	@echo "make student     solution-free notebooks in _build/student (instructor: with solutions)"
	@echo "make notebook-test  every exported notebook rendered by nbconvert, checked in Chromium"
	@echo "make pdf         _build/pdf/book.pdf printed from _build/html by Chromium"
	@echo "make execute     run every page once in the Colab-like venv (.venv-colab), build the site"
	@echo "make wheel       sdist and wheel in _build/dist, twine check, release contents check"
	@echo "make colab-test  run the student notebooks in the Colab-like venv (.venv-colab)"
	@echo "make site-test   page weight, internal links, every page in headless Chromium"
	@echo "make assignments graded assignments (otter-grader) in _build/assignments/<chapter>/"
	@echo "make grade-test  otter run on them: solutions full marks, untouched zero, wrong answers"

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
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# Two workers (pytest-xdist), one thread each: the tests are small and mostly single-threaded,
# so the two cores halve the time; more threads per worker would oversubscribe them.
pytest: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

# The release's artefacts (issue 26): sdist and wheel, built once from pyproject.toml (the one
# version), checked by twine. The Colab-like runs install this wheel, not the checkout.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL   := _build/dist/diffnotes-$(VERSION)-py3-none-any.whl
wheel: $(STAMP)
	rm -rf _build/dist && mkdir -p _build
	$(BIN)/python -m build --outdir _build/dist . > _build/wheel.log 2>&1 || { cat _build/wheel.log; exit 1; }
	$(BIN)/twine check --strict _build/dist/*
	$(BIN)/python tools/release_check.py $(WHEEL)

$(WHEEL):
	$(MAKE) --no-print-directory wheel

# Forced execution (issue 31): every page runs once, from scratch, in the Colab-like venv (two at
# a time, one thread each, the package installed from the wheel by the page's install cell), and
# the site is built from those outputs (tools/execute_book.py).
execute: $(STAMP) $(VENV_COLAB)/.installed-stamp $(WHEEL)
	$(BIN)/python tools/execute_book.py --wheel $(WHEEL) --jobs 2

# Benchmarks (issue 9): the full run writes benchmarks/RESULTS.md and prints its tables; the
# quick run is a smoke test (seconds) that writes nothing.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

# Notebooks (issues 8, 15): the install cell of every chapter is written from _config.yml and
# pyproject.toml, and each chapter is exported (tools/export.py) in three versions: the reader's
# book/<page>.ipynb (what the Colab button opens), notebooks/student/ and notebooks/instructor/.
notebooks: $(STAMP)
	$(BIN)/python tools/notebooks.py sync

notebooks-check: $(STAMP)
	$(BIN)/python tools/notebooks.py check
	$(BIN)/python tools/chapter_map.py --check

# No hand-typed result in a chapter's prose (issue 25): every decimal is glued from the cell that
# computes it ({glue:text}), set by the page's code, or quoted from a paper ({quoted}).
prose-check: $(STAMP)
	$(BIN)/python tools/prose_numbers.py

# The landing page's map of the chapters (tools/chapter_map.py; committed as SVG).
figures: $(STAMP)
	$(BIN)/python tools/chapter_map.py

# Hand-outs: copies of the student (solutions removed) or instructor versions in _build/.
student: $(STAMP)
	$(BIN)/python tools/notebooks.py student

instructor: $(STAMP)
	$(BIN)/python tools/notebooks.py student --solutions

# A Colab-like venv: Colab's versions of the packages the chapters use (requirements-colab.txt),
# without diffnotes; each notebook's first cell installs it (make test: from the built wheel).
# Made afresh whenever the pins change, so that nothing of an older pin set stays behind.
$(VENV_COLAB)/.installed-stamp: requirements-colab.txt
	rm -rf $(VENV_COLAB)
	$(PYTHON) -m venv $(VENV_COLAB)
	$(VENV_COLAB)/bin/python -m pip install -q --upgrade pip
	$(VENV_COLAB)/bin/python -m pip install -q -r requirements-colab.txt
	touch $@

# Runs the reader notebooks (book/*.ipynb) and the student ones (notebooks/student/); a cell
# may take ten times its recorded time (colab/cell_times.json), a notebook three times its
# page's budget: a stall fails the run and names the cell (tools/colab_test.py).
# In make test only the student notebooks: the reader notebooks' code is the pages' own, run once
# by `make execute` in this same venv (tests/test_notebooks.py checks that the code is the same).
colab-test: $(VENV_COLAB)/.installed-stamp $(WHEEL)
	$(VENV_COLAB)/bin/python tools/colab_test.py --student-only --source $(abspath $(WHEEL))

# requirements-colab.txt, written from Colab's published freeze (colab/pip-freeze.txt).
colab-pins:
	$(PYTHON) tools/colab_pins.py

# The weekly check inside Colab's own runtime image (.github/workflows/colab.yml): its Python
# and its packages, whatever their versions.
colab-check:
	python3 tools/colab_test.py --any-versions

# Site checks on the built HTML (issue 10): page weight, internal links, every page in headless
# Chromium (Debian's /usr/bin/chromium). Needs _build/html (make book or make execute); without
# Chromium the browser test prints "SKIPPED: chromium not installed ..." and passes.
site-test: $(STAMP)
	$(BIN)/python tools/site_report.py _build/html
	$(BIN)/python tools/check_links.py _build/html
	$(BIN)/python tools/site_test.py _build/html
	$(BIN)/python tools/reader_check.py _build/html

# The exported notebooks as Jupyter shows them (issue 15): nbconvert's lab template, MathJax from
# the site test's pinned package, Chromium; links checked against _build/html. Screenshots in
# _build/screenshots/notebooks/.
notebook-test: $(STAMP)
	$(BIN)/python tools/notebook_test.py --site _build/html

# The whole book as one PDF (issue 15): _build/html printed by Chromium after MathJax, then its
# text checked with pdftotext (Debian's poppler-utils).
pdf: $(STAMP)
	$(BIN)/python tools/book_pdf.py _build/html --out _build/pdf/book.pdf

# Graded assignments (issue 17): one per chapter in otter-grader's format, written from the book
# by tools/assignments.py into _build/assignments/<chapter>/ (student/ the notebook to hand out,
# autograder/autograder.zip for otter run or Gradescope). grade-test proves the grader with
# otter's own runner, one `otter run` per chapter: every cell a student runs executes (each
# untouched answer cell right before its solution) and the solutions score full marks (one
# chapter for a variant other than the book's); the zip's test files, run on the answers
# alone, give the untouched answers zero and one wrong answer per kind of key (symbolic,
# number, tensor, choice) none of its points.
assignments: $(STAMP)
	$(BIN)/python tools/assignments.py build

grade-test: assignments $(WHEEL)
	$(BIN)/python tools/assignments.py grade --jobs 1 --wheel $(WHEEL)

# make test runs its stages one by one (tools/stages.py) and prints each stage's wall time; the
# Colab-like venv is built in the background meanwhile (it mostly unpacks wheels); the graded
# assignments are built and graded beside the Colab-like run (A+B: at the same time).
TEST_STAGES := lint notebooks-check prose-check wheel pytest bench-quick execute site-test \
               notebook-test pdf student colab-test+grade-test
test: $(STAMP)
	@$(BIN)/python tools/stages.py --background $(VENV_COLAB)/.installed-stamp:execute \
	    $(TEST_STAGES)

# Only the reader-first check of the built chapters (tools/reader_check.py); part of site-test.
reader-check: $(STAMP)
	$(BIN)/python tools/reader_check.py _build/html

clean:
	rm -rf _build build
