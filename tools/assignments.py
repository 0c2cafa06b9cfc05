"""Graded assignments in otter-grader's format, one per chapter (issue 17), and the proof that
the grader grades.

``build`` writes, for every chapter with exercises, an otter-assign master notebook
(``_build/assignments/<chapter>/master/<chapter>.ipynb``) and runs ``otter assign`` on it, which
writes the student notebook (``student/``) and the autograder (``autograder/``, with
``autograder.zip``). The master is exported from the book (:mod:`export`), never edited by hand:

* the setup: the Colab install cell, the otter and graded-mode cell, the student's variant
  (``set_seed``), and only those code cells of the chapter that the exercises' solutions
  need, found by following the names the solutions use back to the cells that define them
  (an ``ast`` slice, not the whole chapter);
* one otter question per exercise: its statement with its points; the answer cell, whose
  master holds the book's own solution code and whose student version reads ``answer = ...``;
  a public test that checks only the form of the answer and a hidden test that judges it with
  the exercise's key (:mod:`diffnotes.grading`);
* for an explain exercise also a manually graded question for the written answer, whose
  master holds the book's solution and the rubric.

``grade`` proves the grader with otter's own runner (``otter run``, no Docker): the
instructor's solutions score full marks, the untouched student notebook scores zero without
an error, a notebook with one wrong answer per kind of key (symbolic, number, tensor,
choice) loses exactly the points of those exercises, and the solutions of the first chapter
with varying exercises score full marks for a student's variant other than the book's
(``SEED = 7``), graded against that variant's keys.

Usage::

    python tools/assignments.py build [--out DIR] [CHAPTER ...]
    python tools/assignments.py grade [--out DIR] [--jobs N] [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import ast
import builtins
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export  # noqa: E402

import notebooks  # noqa: E402

ROOT = notebooks.ROOT
OUT = ROOT / "_build" / "assignments"
BIN = Path(sys.executable).parent

# Points of an autograded answer by the exercise's difficulty; the written answer of an
# explain exercise is worth its rubric's total and is graded by hand.
POINTS = {"routine": 2, "standard": 3, "challenging": 4, None: 3}
CHOICE_POINTS = 2

# In Colab, otter-grader and the four packages it needs that Colab lacks, without their
# dependencies: a plain install would upgrade Colab's ipywidgets 7.7.1 to 8 and downgrade its
# wrapt. Checked: with Colab's versions (requirements-colab.txt and colab/pip-freeze.txt),
# `import otter` and grader.check work.
OTTER_COLAB = ("otter-grader==7.0.0", "fica==0.4.1", "ipylab==1.1.0", "python-frontmatter==1.3.0",
               "python-on-whales==0.81.0")

INIT_CELL = '''\
# Otter-Grader runs this assignment's public checks (grader.check). In Colab it is installed
# here once, without touching Colab's own packages. Self-checks are in graded mode: a hint names
# the kind of mistake, never its size.
import os
import sys

try:
    import otter
except ImportError:
    if "google.colab" not in sys.modules:
        raise ImportError("this assignment needs otter-grader: pip install otter-grader") from None
    import subprocess

    packages = [{packages}]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *packages],
                   check=True)
    import otter
from diffnotes import selfcheck

if "google.colab" in sys.modules and not os.path.isdir("tests"):
    raise FileNotFoundError("upload the assignment's tests/ folder next to this notebook (the "
                            "Files pane, on the left) and run this cell again: grader.check "
                            "reads the public tests from it")
selfcheck.set_mode("graded")
grader = otter.Notebook("{name}.ipynb")'''

SEED_CELL = '''\
# Your variant: the number your instructor gave you (0 gives the book's own numbers). The
# exercises marked "varies" read their numbers from it, and so does the grader.
SEED = 0
selfcheck.set_seed(SEED)'''

INTRO = """\
# Assignment: {title}

Graded exercises of the chapter {page} (read it first; its theorem and equation numbers are
the ones used here). Total: **{auto} points graded automatically**{manual}.

{table}

**How to work.** Run the setup cells, then for each exercise set `answer` in its answer cell
and run it: `check` says whether the form and the value are right, in graded mode (the kind of
mistake, never how far off), and `grader.check` runs the public test, which checks only the
form of the answer. The autograder runs hidden tests with the same keys. Do not rename
`answer`, and keep the cells in their order: each exercise is graded where its `grader.check`
cell stands. Written answers go into the markdown cells marked *Type your answer here*."""


# --------------------------------------------------------------------------------------------
# The chapter's cells, and the setup the solutions need


class _Names(ast.NodeVisitor):
    """The module-level names a cell defines, and every name it reads (also inside functions,
    which read globals when called); names bound inside functions, lambdas and
    comprehensions are local to them and define nothing."""

    def __init__(self) -> None:
        self.defined: set[str] = set()
        self.used: set[str] = set()
        self.bound: set[str] = set()    # bound anywhere: module level or local
        self.depth = 0

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.used.add(node.id)
        else:
            self.bound.add(node.id)
            if self.depth == 0:
                self.defined.add(node.id)

    def visit_arg(self, node: ast.arg) -> None:
        self.bound.add(node.arg)

    def _scope(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_FunctionDef(self, node) -> None:
        self.bound.add(node.name)
        if self.depth == 0:
            self.defined.add(node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.depth += 1
            self.visit(node.args)
            self.depth -= 1
        for deco in node.decorator_list:
            self.visit(deco)
        self.depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef
    visit_Lambda = _scope
    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _scope

    def visit_Import(self, node) -> None:
        for alias in node.names:
            name = (alias.asname or alias.name).split(".")[0]
            self.bound.add(name)
            if self.depth == 0:
                self.defined.add(name)

    visit_ImportFrom = visit_Import


def _names(source: str) -> tuple[set[str], set[str]]:
    """Names a code cell defines at module level, and names it reads before (or without)
    defining them: statement by statement, so that ``tally = Tally(...)`` followed by
    ``tally.report()`` reads no earlier ``tally`` (IPython magics and shell lines skipped)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    defined: set[str] = set()
    free: set[str] = set()
    for stmt in ast.parse("\n".join(lines)).body:
        visitor = _Names()
        visitor.visit(stmt)
        free |= visitor.used - defined - (visitor.bound - visitor.defined)
        defined |= visitor.defined
    return defined, free


def _is_answer_slot(source: str) -> bool:
    """Whether a code cell is an exercise's answer cell (``answer = None``, then a check)."""
    return "answer = None" in source and 'check("ex-' in source


class SliceError(ValueError):
    """A solution uses a name that no setup cell of its chapter defines."""


def setup_cells(cells: list[export.Cell]) -> list[export.Cell]:
    """The chapter's code cells (outside solutions) that the exercises' solutions need: the
    first code cell (the install cell) and, for each name a solution reads, the last cell
    that defines it, followed back through the names those cells read in turn. Raises
    :class:`SliceError` when a solution reads a name that no such cell defines."""
    code = [c for c in cells if c.kind == "code"]
    slots = [c for c in code if c.solution is None and _is_answer_slot(c.source)]
    plain = [c for c in code if c.solution is None and not _is_answer_slot(c.source)]
    known = set(dir(builtins))
    for c in plain:
        known |= _names(c.source)[0]
    need: set[str] = set()
    by_label: dict[str, tuple[set[str], set[str]]] = {}
    for c in code:
        if c.solution is not None:
            d, u = _names(c.source)
            old = by_label.get(c.solution, (set(), set()))
            by_label[c.solution] = (old[0] | d, old[1] | u)
    for i, c in enumerate(slots):   # an answer cell reads names too (variant, check)
        by_label[f"answer cell {i}"] = _names(c.source)
    for label, (d, u) in by_label.items():
        free = u - d - set(dir(builtins))
        missing = free - known
        if missing:
            raise SliceError(f"the solution of {label} reads {sorted(missing)}, which no "
                             "code cell of its chapter outside the solutions defines")
        need |= free
    # walking back, a needed name is met by the last cell before the use that defines it; that
    # cell's own reads are needed in turn (a cell that updates a name, x = f(x), reads it too)
    chosen: list[export.Cell] = []
    for c in reversed(plain):
        d, u = _names(c.source)
        if c is plain[0] or d & need:
            chosen.append(c)
            need = (need - d) | (u - set(dir(builtins)))
    return list(reversed(chosen))


# --------------------------------------------------------------------------------------------
# The master notebook


def question_name(label: str, written: bool = False) -> str:
    return label.replace("-", "_") + ("_written" if written else "")


def _raw(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_raw_cell(text)


def _test_cell(label: str, *, hidden: bool, points: int) -> nbformat.NotebookNode:
    fn, call = (("test_value", "require_correct") if hidden else ("test_form", "require_form"))
    return nbformat.v4.new_code_cell(
        f'""" # BEGIN TEST CONFIG\npoints: {points}\nhidden: {str(hidden).lower()}\n'
        f'""" # END TEST CONFIG\n'
        f"def {fn}(answer):\n"
        f"    from diffnotes.grading import {call}\n\n"
        f"    {call}({label!r}, answer)\n\n"
        f"{fn}(answer)")


def _answer_master(slot: str, solution_code: list[str]) -> str:
    """The answer cell of the master: the book's answer cell with its ``answer = None`` line
    replaced by the book's solution in a solution block and the student's ``answer = ...`` as
    the prompt; its other lines (the comment, a variant's numbers, the self-check) stay where
    they are."""
    body = "\n\n".join(s.strip("\n") for s in solution_code)
    out = []
    for line in slot.splitlines():
        if line.strip().startswith("answer ="):
            out += ["# BEGIN SOLUTION NO PROMPT", body, "# END SOLUTION",
                    '""" # BEGIN PROMPT', "answer = ...", '"""; # END PROMPT']
        else:
            out.append(line)
    return "\n".join(out)


def exercise_points(ex) -> tuple[int, int]:
    """(points graded automatically, points of the written answer graded by hand)."""
    if ex.kind == "explain":
        return CHOICE_POINTS, ex.points
    return POINTS[ex.difficulty], 0


def master_notebook(md: Path) -> tuple[nbformat.NotebookNode, dict]:
    """The otter-assign master notebook of chapter ``md`` and a summary of its questions:
    ``{question name: (label, key type, points, manual)}``."""
    from diffnotes.selfcheck import exercises

    keys = exercises()
    b = notebooks.book()
    doc = notebooks._docname(md, b.root)
    cells, _ = export.export_cells(b, doc)
    name = md.stem
    labels = [c.role.split(":", 1)[1] for c in cells if c.role.startswith("exercise:")]
    if not labels:
        raise ValueError(f"md must be a chapter with exercises; {md.name} has none")
    statements = {c.role.split(":", 1)[1]: c.source for c in cells
                  if c.role.startswith("exercise:")}
    solution_code: dict[str, list[str]] = {lab: [] for lab in labels}
    solution_text: dict[str, list[str]] = {lab: [] for lab in labels}
    slots: dict[str, str] = {}
    for c in cells:
        if c.solution in solution_code:
            (solution_code if c.kind == "code" else solution_text)[c.solution].append(c.source)
        elif c.kind == "code":
            for lab in labels:
                if _is_answer_slot(c.source) and f'check("{lab}", answer)' in c.source:
                    slots[lab] = c.source
    missing = [lab for lab in labels if lab not in slots or not solution_code[lab]]
    if missing:
        raise ValueError(f"{md.name}: exercises without an answer cell or solution code: "
                         f"{missing}")

    summary: dict[str, tuple[str, str, int, bool]] = {}
    rows = ["| Exercise | Kind | Points |", "| --- | --- | --- |"]
    varies = {lab for lab in labels if getattr(keys[lab], "varies", False)}
    for lab in labels:
        ex = keys[lab]
        auto, manual = exercise_points(ex)
        num = b.numbered(lab)
        pts = f"{auto}" + (f" + {manual} written (by hand)" if manual else "")
        rows.append(f"| {num}{' (varies)' if lab in varies else ''} | {ex.kind} | {pts} |")
        summary[question_name(lab)] = (lab, type(ex.key).__name__, auto, False)
        if manual:
            summary[question_name(lab, True)] = (lab, "written", manual, True)
    auto_total = sum(p for _, _, p, m in summary.values() if not m)
    manual_total = sum(p for _, _, p, m in summary.values() if m)
    title = b.titles.get(doc, name)

    release = notebooks.config()
    config = {
        "name": name,
        # what the grading image installs on top of otter (Gradescope): the book's release
        "requirements": [f"diffnotes=={release['version']}"],
        "init_cell": False,
        "check_all_cell": False,
        "export_cell": False,
        "run_tests": False,
        "solutions_pdf": False,
        "generate": {"pdf": False, "show_stdout": True},
        "tests": {"files": True, "ok_format": False},
    }
    out = [_raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False).strip())]
    out.append(nbformat.v4.new_markdown_cell(INTRO.format(
        title=title, page=f"[{title}]({b.url(doc)})", auto=auto_total,
        manual=(f" and **{manual_total} points for written answers**, graded by hand with "
                "the rubrics of the teaching page" if manual_total else ""),
        table="\n".join(rows))))
    setup = setup_cells(cells)
    out.append(nbformat.v4.new_code_cell(setup[0].source))
    out.append(nbformat.v4.new_code_cell(INIT_CELL.format(
        name=name, packages="".join(f'\n        "{p}",' for p in OTTER_COLAB) + "\n    ")))
    from diffnotes import selfcheck

    if hasattr(selfcheck, "set_seed"):
        out.append(nbformat.v4.new_code_cell(SEED_CELL))
    out.append(nbformat.v4.new_markdown_cell(
        "## Setup\n\nThe code of the chapter that the exercises use, in the chapter's order. "
        "Run it; change nothing here."))
    for c in setup[1:]:
        out.append(nbformat.v4.new_code_cell(c.source))
    out.append(nbformat.v4.new_markdown_cell("## Exercises"))
    for lab in labels:
        ex = keys[lab]
        auto, manual = exercise_points(ex)
        qname = question_name(lab)
        out.append(_raw(f"# BEGIN QUESTION\nname: {qname}"))
        out.append(nbformat.v4.new_markdown_cell(
            f"{statements[lab]}\n\n*{auto} points*" + (
                f" *for the letter; the written answer below is worth {manual} points.*"
                if manual else "")))
        out.append(_raw("# BEGIN SOLUTION"))
        out.append(nbformat.v4.new_code_cell(_answer_master(slots[lab], solution_code[lab])))
        out.append(_raw("# END SOLUTION"))
        out.append(_raw("# BEGIN TESTS"))
        out.append(_test_cell(lab, hidden=False, points=0))
        out.append(_test_cell(lab, hidden=True, points=auto))
        out.append(_raw("# END TESTS"))
        out.append(_raw("# END QUESTION"))
        if manual:
            out.append(_raw(f"# BEGIN QUESTION\nname: {question_name(lab, True)}\n"
                            f"manual: true\npoints: {manual}"))
            out.append(nbformat.v4.new_markdown_cell(
                f"**Written answer to {num_of(b, lab)}** ({manual} points, graded by hand): "
                "explain in your own words, as the exercise asks."))
            out.append(_raw("# BEGIN SOLUTION"))
            out.append(nbformat.v4.new_markdown_cell(
                "\n\n".join(solution_text[lab]) + "\n\n"
                + notebooks.rubric_markdown(ex, num_of(b, lab))))
            out.append(_raw("# END SOLUTION"))
            out.append(_raw("# END QUESTION"))
    out.append(nbformat.v4.new_markdown_cell(notebooks.LICENCE_CELL.format(page=b.url(doc))))
    kernelspec = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return export.new_notebook(out, kernelspec), summary


def num_of(b, label: str) -> str:
    return b.numbered(label).split(" (")[0]


def chapters(names: list[str] | None = None) -> list[Path]:
    """The chapters with exercises, in the book's order (all, or those whose file stem is in
    ``names``)."""
    pages = [md for md in notebooks.notebook_pages() if "```{exercise}" in md.read_text()]
    if names:
        unknown = set(names) - {p.stem for p in pages}
        if unknown:
            raise ValueError(f"chapter must be one of {[p.stem for p in pages]}; got "
                             f"{sorted(unknown)}")
        pages = [p for p in pages if p.stem in names]
    return pages


def student_leaks(path: Path, summary: dict) -> list[str]:
    """What of the solutions the student notebook at ``path`` would show: solution markers,
    a rubric, a line of a solution's code in an answer cell (comments, blank lines and the
    lines the answer cell has anyway aside)."""
    from diffnotes.selfcheck import exercise

    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    lines = {ln.strip() for c in nb.cells if c.cell_type == "code"
             and "otter_answer_cell" in c.metadata.get("tags", []) for ln in c.source.splitlines()}
    found = [m for m in ("BEGIN SOLUTION", "END SOLUTION", "Rubric for") if m in text]
    for label in {lab for lab, *_ in summary.values()}:
        found += [f"the rubric of {label}" for c in exercise(label).rubric
                  if c.full_credit in text]
    master = nbformat.read(path.parent.parent / "master" / path.name, as_version=4)
    for c in master.cells:
        if c.cell_type == "code" and "# BEGIN SOLUTION NO PROMPT" in c.source:
            solution = c.source.split("# BEGIN SOLUTION NO PROMPT")[1].split("# END SOLUTION")[0]
            found += [f"solution line {ln.strip()!r}" for ln in solution.splitlines()
                      if ln.strip() and not ln.strip().startswith("#")
                      and ln.strip() in lines and not ln.strip().startswith(("v = variant(",
                                                                              "answer ="))]
    return found


def build(out: Path = OUT, names: list[str] | None = None) -> dict[str, dict]:
    """Write every chapter's master and run ``otter assign``; return the summaries."""
    summaries = {}
    for md in chapters(names):
        nb, summary = master_notebook(md)
        base = out / md.stem
        if base.exists():
            shutil.rmtree(base)
        master = base / "master" / f"{md.stem}.ipynb"
        master.parent.mkdir(parents=True)
        nbformat.write(nb, master)
        (base / "questions.json").write_text(json.dumps(summary, indent=1))
        run = subprocess.run([str(BIN / "otter"), "assign", "--no-run-tests", "--no-pdfs",
                              str(master), str(base)], capture_output=True, text=True,
                             cwd=base)
        zips = sorted((base / "autograder").glob("*-autograder_*.zip"))
        if run.returncode != 0 or len(zips) != 1:
            raise RuntimeError(f"otter assign failed for {md.stem}:\n{run.stdout}\n{run.stderr}")
        zips[0].rename(base / "autograder" / "autograder.zip")   # a name without a timestamp
        leaks = student_leaks(base / "student" / f"{md.stem}.ipynb", summary)
        if leaks:
            raise RuntimeError(f"{md.stem}: the student notebook shows {leaks}")
        summaries[md.stem] = summary
        print(f"assignment {md.stem}: {len(summary)} questions -> "
              f"{base.relative_to(ROOT) if base.is_relative_to(ROOT) else base}")
    return summaries


# --------------------------------------------------------------------------------------------
# Grading with otter's own runner


def otter_run(autograder: Path, notebook: Path, workdir: Path,
              wheel: Path | None = None) -> dict:
    """Grade ``notebook`` with ``otter run`` (no Docker); the results JSON, plus ``seconds``.
    With ``wheel``, the grading kernel imports diffnotes from that wheel (it is first on the
    kernel's ``PYTHONPATH``), not from the checkout."""
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    env = None if wheel is None else dict(os.environ, PYTHONPATH=str(wheel.resolve()))
    # --debug: an error in any cell fails the run (otter otherwise grades past it)
    run = subprocess.run([str(BIN / "otter"), "run", "--debug", "--no-logo", "-a", str(autograder),
                          "-o", str(workdir), str(notebook)], capture_output=True, text=True,
                         cwd=workdir, env=env)
    results = workdir / "results.json"
    if run.returncode != 0 or not results.exists():
        raise RuntimeError(f"otter run failed on {notebook}:\n{run.stdout[-3000:]}\n"
                           f"{run.stderr[-3000:]}")
    out = json.loads(results.read_text())
    out["seconds"] = time.time() - t0
    return out


def question_scores(results: dict) -> dict[str, float]:
    """Points per question from otter's results (its Gradescope format: one entry per
    question, manually graded ones absent)."""
    scores: dict[str, float] = {}
    for test in results.get("tests", []):
        name = str(test.get("name", "")).split(" ")[0]
        if name:
            scores[name] = scores.get(name, 0.0) + float(test.get("score") or 0.0)
    return scores


def wrong_value_line(key) -> str:
    """A line that replaces a right ``answer`` by one of the same form with a wrong value."""
    from diffnotes.selfcheck import Choice

    if isinstance(key, Choice):
        wrong = sorted(set(key.options) - set(key.correct.lower()))[0]
        return f"answer = {wrong!r}   # a wrong option"
    return "answer = 2 * answer + 1   # the same form, a wrong value"


def with_seed(nb: nbformat.NotebookNode, seed: int) -> nbformat.NotebookNode:
    """The notebook with the student's variant set to ``seed`` (its ``SEED = 0`` line)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    hits = [c for c in nb.cells if c.cell_type == "code" and "\nSEED = 0\n" in f"\n{c.source}\n"]
    if len(hits) != 1:
        raise ValueError(f"expected one cell with SEED = 0, found {len(hits)}")
    hits[0].source = hits[0].source.replace("SEED = 0", f"SEED = {seed}")
    return nb


OTHER_SEED = 7   # a student's variant other than the book's, for the full-marks run


KEY_KINDS = ("Symbolic", "Number", "Tensor", "Choice")


def wrong_plan(summaries: dict[str, dict]) -> dict[str, list[str]]:
    """One exercise per kind of key (symbolic, number, tensor, choice): the first chapter, in
    the book's order, that has it; ``{chapter: [labels]}``."""
    plan: dict[str, list[str]] = {}
    for kind in KEY_KINDS:
        for chapter, summary in summaries.items():
            hit = [lab for lab, typ, _, manual in summary.values() if typ == kind and not manual]
            if hit:
                plan.setdefault(chapter, []).append(hit[0])
                break
        else:
            raise ValueError(f"no exercise has a {kind} key")
    return plan


def _varies(label: str) -> bool:
    from diffnotes.selfcheck import exercise

    return bool(getattr(exercise(label), "varies", False))


def zip_requirements(path: Path) -> list[str]:
    """The pip requirements an otter autograder zip installs: otter 7 merges them into
    ``environment.yml``'s pip list; older versions wrote ``requirements.txt``."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        reqs = z.read("requirements.txt").decode().splitlines() \
            if "requirements.txt" in names else []
        if "environment.yml" in names:
            env = yaml.safe_load(z.read("environment.yml")) or {}
            for dep in env.get("dependencies", []):
                if isinstance(dep, dict):
                    reqs += [str(r) for r in dep.get("pip", [])]
    return [r.strip() for r in reqs if r.strip()]


def requirement_problems(out: Path, names: list[str] | None, wheel: Path) -> list[str]:
    """Each autograder zip's requirements name diffnotes by the wheel's version, and that
    requirement resolves to the wheel alone (pip, no index, the wheel's folder as the only
    source): what Gradescope installs is what was graded here."""
    version = wheel.name.split("-")[1]
    found = []
    for p in chapters(names):
        reqs = zip_requirements(out / p.stem / "autograder" / "autograder.zip")
        lines = [ln.strip() for ln in reqs if "diffnotes" in ln]
        if lines != [f"diffnotes=={version}"]:
            found.append(f"{p.stem}: autograder requirements name diffnotes as {lines}, not "
                         f"diffnotes=={version}")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([str(BIN / "python"), "-m", "pip", "download", "-q", "--no-deps",
                              "--no-index", "--find-links", str(wheel.parent), "-d", tmp,
                              f"diffnotes=={version}"], capture_output=True, text=True)
        got = sorted(Path(tmp).iterdir())
        if run.returncode != 0 or [g.name for g in got] != [wheel.name]:
            found.append(f"diffnotes=={version} does not resolve to {wheel.name}: "
                         f"{run.stderr[-500:]}")
    return found


# What otter's tests give an answer, without executing a notebook: each test file of a zip, run
# by otter's own test-file runner (otter.test_files) on a given value of ``answer``, in one
# subprocess whose diffnotes is the wheel's. For the untouched notebook (``answer = ...``), for
# a wrong value of the right form and, as the control that makes a zero mean something, for
# the key's own value (full points). The points depend on ``answer`` alone (the tests read
# nothing else: _test_cell), so they need no execution of the chapter.
_TEST_FILE_RUNNER = r"""
import json, sys, tempfile, zipfile
from pathlib import Path
import otter.test_files as tf
import sympy
from diffnotes import grading, selfcheck
from diffnotes.selfcheck import Choice, Symbolic

sys.path.insert(0, sys.argv[2])
from assignments import wrong_value_line

selfcheck.set_mode("graded")
out = {}
for zip_path, plan in json.loads(sys.argv[1]):
    scores = out.setdefault(zip_path, {})
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(zip_path) as z:
        for what, labels in plan.items():
            for label in labels:
                name = label.replace("-", "_")
                path = Path(tmp) / f"{name}.py"
                path.write_bytes(z.read(f"tests/{name}.py"))
                key = grading._key(label)
                env = {"answer": key.correct if isinstance(key, Choice)
                       else grading._reference(key)}
                if isinstance(key, Symbolic):
                    env["answer"] = sympy.sympify(env["answer"])
                if what == "untouched":
                    env["answer"] = ...
                elif what == "wrong":   # the book's answer made wrong in value, right in form
                    exec(wrong_value_line(key), env)
                test = tf.create_test_file(str(path), None)
                test.run({"answer": env["answer"]})
                scores[f"{what} {name}"] = [test.score, test.possible]
print(json.dumps(out))
"""


def test_file_scores(plans: dict[Path, dict[str, list[str]]],
                     wheel: Path | None = None) -> dict[Path, dict[str, tuple[float, float]]]:
    """``{zip: {"<what> <question>": (score, possible)}}`` from each autograder zip's test
    files run on the answers of its plan (``{"right" | "untouched" | "wrong": labels}``)."""
    env = None if wheel is None else dict(os.environ, PYTHONPATH=str(wheel.resolve()))
    arg = json.dumps([[str(z), plan] for z, plan in plans.items()])
    run = subprocess.run([str(BIN / "python"), "-c", _TEST_FILE_RUNNER, arg,
                          str(Path(__file__).resolve().parent)],
                         capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"the autograders' test files did not run:\n{run.stderr[-3000:]}")
    got = json.loads(run.stdout.splitlines()[-1])
    return {Path(z): {k: tuple(v) for k, v in got[str(z)].items()} for z in plans}


def with_stubs_first(solutions: nbformat.NotebookNode,
                     student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The solutions notebook with, before each answer cell, the student's own version of it
    (``answer = ...`` and its self-check): one otter run then executes every cell a student
    runs, the untouched answer cells included, and grades the solutions."""
    def slot(c):
        return c.cell_type == "code" and any(ln.strip() == "answer = ..."
                                             for ln in c.source.splitlines())
    stubs = [c for c in student.cells if slot(c)]
    answers = [c for c in solutions.cells
               if c.cell_type == "code" and "# BEGIN SOLUTION" in c.source]
    if len(stubs) != len(answers):
        raise ValueError(f"{len(stubs)} answer cells in the student notebook, "
                         f"{len(answers)} in the solutions")
    nb = nbformat.from_dict(json.loads(json.dumps(solutions)))
    pos = {id(c): i for i, c in enumerate(solutions.cells)}
    for k, (stub, ans) in reversed(list(enumerate(zip(stubs, answers, strict=True)))):
        copy = nbformat.from_dict(json.loads(json.dumps(stub)))
        copy["id"] = f"untouched-answer-{k}"
        nb.cells.insert(pos[id(ans)], copy)
    return nb


def grade(out: Path = OUT, names: list[str] | None = None, jobs: int = 2,
          wheel: Path | None = None) -> list[str]:
    """The grading checks on the built assignments; returns the failures (empty: all passed)
    and prints one line per check. With ``wheel``, every check grades against it.

    One ``otter run`` per chapter executes its graded notebook once: the solutions, each answer
    cell preceded by the student's untouched version of it (:func:`with_stubs_first`), so the
    run proves that every cell a student runs executes and that the solutions score full marks
    (in the first chapter whose exercises vary, for the variant ``SEED = 7``, not the book's).
    The zero of an untouched notebook and the lost points of a wrong answer (one exercise per
    kind of key) depend on the answer alone and are graded by the zip's own test files, run by
    otter's test-file runner, with no second execution (:func:`test_file_scores`)."""
    summaries = {p.stem: json.loads((out / p.stem / "questions.json").read_text())
                 for p in chapters(names)}
    plan = wrong_plan(summaries) if names is None else {}
    first_varying = next((ch for ch, summary in summaries.items()
                          if any(_varies(lab) for lab, _, _, _ in summary.values())), None)
    runs = []   # (chapter, what, notebook, expected scores per question)
    tmp = Path(tempfile.mkdtemp(prefix="grade-"))
    for chapter, summary in summaries.items():
        base = out / chapter
        auto = {q: pts for q, (_, _, pts, manual) in summary.items() if not manual}
        nb = with_stubs_first(nbformat.read(base / "autograder" / f"{chapter}.ipynb", 4),
                              nbformat.read(base / "student" / f"{chapter}.ipynb", 4))
        what = "solutions (after the untouched cells)"
        varying = [lab for lab, _, _, _ in summary.values() if _varies(lab)]
        if varying and chapter == first_varying:
            nb = with_seed(nb, OTHER_SEED)
            what = f"solutions, SEED = {OTHER_SEED} (varies: {', '.join(sorted(set(varying)))})"
        path = tmp / "graded" / f"{chapter}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
        runs.append((chapter, what, path, auto))

    def one(i_run):
        i, (chapter, what, nb, expected) = i_run
        try:
            res = otter_run(out / chapter / "autograder" / "autograder.zip", nb,
                            tmp / f"run{i}", wheel)
        except RuntimeError as err:
            return f"FAIL {chapter} {what}: {err}"
        got = question_scores(res)
        got = {q: got.get(q, None) for q in expected}
        total = sum(v or 0 for v in got.values())
        full = sum(pts for _, _, pts, manual in summaries[chapter].values() if not manual)
        line = f"{chapter:22s} {what:40s} {total:g}/{full:g} points ({res['seconds']:.1f} s)"
        if got != {q: float(v) for q, v in expected.items()}:
            bad = {q: (got[q], expected[q]) for q in expected if got[q] != expected[q]}
            return f"FAIL {line}: (got, expected) per question {bad}"
        return "ok   " + line

    def answers_alone() -> list[str]:
        t0 = time.time()
        zips, auto = {}, {}
        for chapter, summary in summaries.items():
            auto[chapter] = {q: (lab, pts) for q, (lab, _, pts, manual) in summary.items()
                             if not manual}
            labels = [lab for lab, _ in auto[chapter].values()]
            zips[out / chapter / "autograder" / "autograder.zip"] = {
                "right": labels, "untouched": labels, "wrong": plan.get(chapter, [])}
        try:
            scores = test_file_scores(zips, wheel)
        except RuntimeError as err:
            return [f"FAIL untouched and wrong answers: {err}"]
        lines = []
        for (z, p), chapter in zip(zips.items(), summaries, strict=True):
            bad = {}
            for what in ("right", "untouched", "wrong"):
                for lab in p[what]:
                    q = question_name(lab)
                    pts = auto[chapter][q][1]
                    got = scores[z].get(f"{what} {q}")
                    if got is None or got != ((pts if what == "right" else 0), pts):
                        bad[f"{what} {q}"] = got
            wrong = p["wrong"]
            what = "test files: the key's value full, untouched 0" + (
                f", wrong {', '.join(wrong)} 0" if wrong else "")
            line = f"{chapter:22s} {what}"
            lines.append(f"FAIL {line}: (score, possible) {bad}" if bad else "ok   " + line)
        lines.append(f"     (the test files of {len(zips)} autograders in "
                     f"{time.time() - t0:.1f} s)")
        return lines

    failures = [] if wheel is None else requirement_problems(out, names, wheel)
    for line in failures:
        print("FAIL " + line)
    for line in answers_alone():
        print(line, flush=True)
        if line.startswith("FAIL"):
            failures.append(line)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for line in pool.map(one, enumerate(runs)):
            print(line, flush=True)
            if line.startswith("FAIL"):
                failures.append(line)
    shutil.rmtree(tmp, ignore_errors=True)
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in ("build", "grade"):
        p = sub.add_parser(cmd)
        p.add_argument("--out", type=Path, default=OUT)
        p.add_argument("chapters", nargs="*")
        if cmd == "grade":
            p.add_argument("--jobs", type=int, default=2, help="grading runs at once")
            p.add_argument("--wheel", type=Path, default=None,
                           help="grade against this built wheel (make test: _build/dist)")
    args = parser.parse_args(argv)
    t0 = time.time()
    if args.command == "build":
        build(args.out, args.chapters or None)
        print(f"built in {time.time() - t0:.1f} s")
        return 0
    failures = grade(args.out, args.chapters or None, args.jobs, args.wheel)
    print(f"graded in {time.time() - t0:.1f} s: "
          + ("all as expected" if not failures else f"{len(failures)} run(s) FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
