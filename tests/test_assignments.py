"""The graded assignments (tools/assignments.py, diffnotes.grading; issue 17 items 1-2).

The grading runs themselves (otter run: full marks, zero, exact losses) are `make grade-test`,
a stage of `make test`; these tests cover the parts that need no notebook to run: the setup
slice, the master notebook's otter format, the form and value tests, the wrong answers and the
stage runner that runs the grading beside the Colab-like run.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import sympy as sp
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import assignments  # noqa: E402
import export  # noqa: E402

from diffnotes import grading, selfcheck  # noqa: E402

with warnings.catch_warnings():   # ipylab (imported by otter) passes a trait type: third party
    warnings.simplefilter("ignore", DeprecationWarning)
    from otter.assign.solutions import replace_solutions


def cell(source, solution=None):
    return export.Cell("code", source, solution=solution)


# -- the setup slice ---------------------------------------------------------------------------

def test_the_slice_takes_the_last_definition_and_follows_its_reads():
    cells = [cell("import math"), cell("a = 1\nb = 2"), cell("c = a + 1"), cell("plot(b)"),
             cell("a = 5"), cell("d = c * math.pi"), cell("answer = d", solution="ex-x")]
    chosen = [c.source for c in assignments.setup_cells(cells)]
    # d <- c <- a (the first a: the later `a = 5` comes after c), math; b's cell is needed
    # for a; `plot(b)` and `a = 5` define nothing the solution reads
    assert chosen == ["import math", "a = 1\nb = 2", "c = a + 1", "d = c * math.pi"]


def test_names_local_to_functions_and_comprehensions_define_nothing():
    defined, used = assignments._names("def f(t):\n    return t + s\nq = [w for w in r]")
    assert defined == {"f", "q"}
    assert {"s", "r"} <= used and not {"t", "w"} & used


def test_a_solution_reading_an_undefined_name_is_an_error():
    with pytest.raises(assignments.SliceError, match="nowhere_defined"):
        assignments.setup_cells([cell("import math"),
                                 cell("answer = nowhere_defined", solution="ex-x")])


# -- the master notebook -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def chapter1():
    md = ROOT / "book" / "01_twenty_questions.md"
    return assignments.master_notebook(md)


def test_the_master_has_one_question_per_exercise_and_a_manual_one_per_explain(chapter1):
    nb, summary = chapter1
    labels = {lab for lab, ex in selfcheck.exercises().items() if ex.chapter == "twenty_questions"}
    auto = {q for q, (_, _, _, manual) in summary.items() if not manual}
    assert auto == {assignments.question_name(lab) for lab in labels}
    explain = {lab for lab in labels if selfcheck.exercise(lab).kind == "explain"}
    manual = {q for q, (_, _, _, m) in summary.items() if m}
    assert manual == {assignments.question_name(lab, written=True) for lab in explain}
    raw = [c.source for c in nb.cells if c.cell_type == "raw"]
    assert raw[0].startswith("# ASSIGNMENT CONFIG")
    begins = [r for r in raw if r.startswith("# BEGIN QUESTION")]
    assert len(begins) == len(summary) == raw.count("# END QUESTION")


def test_points_are_stated_and_the_tests_give_the_form_nothing_and_the_value_all(chapter1):
    nb, summary = chapter1
    intro = nb.cells[1].source
    total = sum(p for _, _, p, manual in summary.values() if not manual)
    assert f"**{total} points graded automatically**" in intro
    tests = [c.source for c in nb.cells if c.cell_type == "code" and "TEST CONFIG" in c.source]
    assert len(tests) == 2 * sum(not m for *_, m in summary.values())
    for public, hidden in zip(tests[::2], tests[1::2], strict=True):
        assert "hidden: false" in public and "points: 0" in public and "require_form" in public
        assert "hidden: true" in hidden and "require_correct" in hidden
        assert "points: 0" not in hidden


def test_the_student_sees_answer_dots_and_no_line_of_the_solution(chapter1):
    nb, _ = chapter1
    masters = [c.source for c in nb.cells
               if c.cell_type == "code" and "# BEGIN SOLUTION NO PROMPT" in c.source]
    assert masters
    for src in masters:
        student = "\n".join(replace_solutions(src.splitlines(), "python"))
        solution = src.split("# BEGIN SOLUTION NO PROMPT")[1].split("# END SOLUTION")[0]
        assert "answer = ..." in student and "check(" in student
        for line in solution.strip().splitlines():
            if line.strip() and not line.strip().startswith("#"):
                assert line not in student.splitlines(), line


def test_the_variant_cell_is_there_when_exercises_vary(chapter1):
    nb, _ = chapter1
    assert any("SEED = 0" in c.source and "set_seed(SEED)" in c.source for c in nb.cells)
    changed = assignments.with_seed(nb, 7)
    assert any("SEED = 7" in c.source for c in changed.cells)
    assert not any("SEED = 7" in c.source for c in nb.cells)


# -- the form and value tests ------------------------------------------------------------------

def _label(key_type):
    return next(lab for lab, ex in selfcheck.exercises().items()
                if type(ex.key) is key_type and not ex.varies)


def test_form_accepts_a_wrong_value_of_the_right_form_and_value_rejects_it():
    n = _label(selfcheck.Number)
    grading.require_form(n, 12345.0)
    with pytest.raises(AssertionError):
        grading.require_correct(n, 12345.0)
    t = _label(selfcheck.Tensor)
    ref = grading._reference(selfcheck.exercise(t).key)
    grading.require_form(t, torch.as_tensor(ref) * 0 + 7)
    with pytest.raises(AssertionError, match="shape"):
        grading.require_form(t, torch.zeros(99))
    s = _label(selfcheck.Symbolic)
    names = [sym.name for sym in selfcheck.exercise(s).key.symbols] or ["x"]
    grading.require_form(s, sp.Symbol(names[0]) + 17)
    with pytest.raises(AssertionError, match="zzz"):
        grading.require_form(s, sp.Symbol("zzz"))
    c = _label(selfcheck.Choice)
    key = selfcheck.exercise(c).key
    grading.require_form(c, sorted(set(key.options) - set(key.correct))[0])
    with pytest.raises(AssertionError, match="not an option"):
        grading.require_form(c, "q")


def test_a_missing_answer_fails_both_tests_with_an_assertion_only():
    for lab in selfcheck.exercises():
        for answer in (None, ...):
            with pytest.raises(AssertionError):
                grading.require_form(lab, answer)
            with pytest.raises(AssertionError):
                grading.require_correct(lab, answer)


def test_the_hidden_test_grades_a_variant_against_its_own_key():
    label = next(lab for lab, ex in selfcheck.exercises().items() if ex.varies)
    ex = selfcheck.exercise(label)
    book = grading._reference(ex.key)
    other = grading._reference(ex.key_for(assignments.OTHER_SEED))
    assert dict(selfcheck.variant(label, 0)) != dict(selfcheck.variant(label,
                                                                    assignments.OTHER_SEED))
    grading.require_correct(label, book, seed=0)
    grading.require_correct(label, other, seed=assignments.OTHER_SEED)
    with pytest.raises(AssertionError):
        grading.require_correct(label, book, seed=assignments.OTHER_SEED)


def test_the_hidden_message_is_the_graded_hint():
    n = _label(selfcheck.Number)
    ref = float(grading._reference(selfcheck.exercise(n).key))
    with pytest.raises(AssertionError) as err:
        grading.require_correct(n, ref * 1.7 + 3)
    assert "too large" not in str(err.value) and "too small" not in str(err.value)
    assert f"{ref * 1.7 + 3:.4g}" not in str(err.value)


# -- wrong answers -----------------------------------------------------------------------------

def test_the_wrong_answer_plan_covers_every_kind_of_key():
    summaries = {p.stem: assignments.master_notebook(p)[1] for p in assignments.chapters()[:3]}
    plan = assignments.wrong_plan(summaries)
    kinds = {type(selfcheck.exercise(lab).key).__name__ for labs in plan.values() for lab in labs}
    assert kinds == set(assignments.KEY_KINDS)


@pytest.mark.parametrize("key_type", [selfcheck.Number, selfcheck.Tensor, selfcheck.Symbolic,
                                      selfcheck.Choice])
def test_each_wrong_line_keeps_the_form_and_breaks_the_value(key_type):
    label = _label(key_type)
    key = selfcheck.exercise(label).key
    env = {"answer": grading._reference(key) if key_type is not selfcheck.Choice
           else key.correct}
    if key_type is selfcheck.Symbolic:
        env["answer"] = sp.sympify(env["answer"])
    grading.require_correct(label, env["answer"])
    exec(assignments.wrong_value_line(key), env)
    grading.require_form(label, env["answer"])
    with pytest.raises(AssertionError):
        grading.require_correct(label, env["answer"])


def test_graded_run_executes_each_untouched_answer_cell_before_its_solution(tmp_path):
    """The one otter run per chapter runs the student's own answer cells (answer = ...) right
    before the solutions that replace them; a count that does not match is refused."""
    def cell(src):
        return nbformat.v4.new_code_cell(src)
    sol = nbformat.v4.new_notebook(cells=[
        cell("x = 1"), cell("# BEGIN SOLUTION NO PROMPT\nanswer = 2\n# END SOLUTION"),
        cell("grader.check('a')"), cell("# BEGIN SOLUTION NO PROMPT\nanswer = 3")])
    stu = nbformat.v4.new_notebook(cells=[
        cell("x = 1"), cell("answer = ...\ncheck('ex-a', answer)"), cell("grader.check('a')"),
        cell("v = 1\nanswer = ...")])
    got = [c.source for c in assignments.with_stubs_first(sol, stu).cells]
    assert got == ["x = 1", "answer = ...\ncheck('ex-a', answer)", sol.cells[1].source,
                   "grader.check('a')", "v = 1\nanswer = ...", sol.cells[3].source]
    stu.cells.pop()
    with pytest.raises(ValueError, match="1 answer cells in the student"):
        assignments.with_stubs_first(sol, stu)


# -- the stage runner: A+B at the same time ----------------------------------------------------

def test_stages_run_a_plus_b_together_and_fail_if_either_fails(tmp_path):
    (tmp_path / "Makefile").write_text(
        "a:\n\t@sleep 2; echo A\n"
        "b:\n\t@sleep 2; echo $$OMP_NUM_THREADS B\n"
        "bad:\n\t@echo X; exit 3\n")
    (tmp_path / "tools").mkdir()
    stages = (ROOT / "tools" / "stages.py").read_text()
    (tmp_path / "tools" / "stages.py").write_text(stages)
    run = subprocess.run([sys.executable, "tools/stages.py", "a+b"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "_build" / "test_stages.json").read_text())
    seconds = {r["stage"]: r["seconds"] for r in report["stages"]}
    assert seconds["a+b"] < 3.5            # together (one after the other: 4 s or more)
    assert "1 B" in run.stdout              # b ran with one thread; its output printed
    assert 1.9 < seconds["b"] < 3.5
    run = subprocess.run([sys.executable, "tools/stages.py", "a+bad"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "FAILED" in run.stdout


def test_the_answer_cell_keeps_its_lines_in_order_around_the_solution(chapter1):
    nb, _ = chapter1
    src = next(c.source for c in nb.cells if 'check("ex-tq-compute", answer)' in c.source
               and "BEGIN SOLUTION" in c.source)
    student = replace_solutions(src.splitlines(), "python")
    code = [ln for ln in student if ln.strip() and not ln.lstrip().startswith("#")]
    # the variant's numbers first (the student needs them), then the answer, then the check
    assert code[0].startswith("v = variant(") and code[1] == "answer = ..."
    assert code[-1] == 'check("ex-tq-compute", answer)'


def test_answer_cells_are_not_setup_but_their_reads_are_needed():
    cells = [cell("# install"), cell("from diffnotes.selfcheck import check, variant"),
             cell("x = 3"), cell('v = variant("ex-x")\nanswer = None\ncheck("ex-x", answer)'),
             cell('v = variant("ex-x")\nanswer = 2 * v.n', solution="ex-x")]
    chosen = [c.source for c in assignments.setup_cells(cells)]
    assert chosen == ["# install", "from diffnotes.selfcheck import check, variant"]


def test_a_solution_line_or_rubric_in_the_student_notebook_is_found(tmp_path):
    label = next(lab for lab, ex in selfcheck.exercises().items() if ex.rubric)
    ex = selfcheck.exercise(label)
    master = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "# BEGIN SOLUTION NO PROMPT\nsecret = 41 + 1\n# END SOLUTION\nanswer = ...")])
    clean = nbformat.v4.new_code_cell("answer = ...", metadata={"tags": ["otter_answer_cell"]})
    leaky = nbformat.v4.new_code_cell("secret = 41 + 1\nanswer = ...",
                                      metadata={"tags": ["otter_answer_cell"]})
    summary = {"q": (label, "Choice", 2, False)}
    (tmp_path / "master").mkdir()
    (tmp_path / "student").mkdir()
    nbformat.write(master, tmp_path / "master" / "x.ipynb")
    student = tmp_path / "student" / "x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[clean]), student)
    assert assignments.student_leaks(student, summary) == []
    nbformat.write(nbformat.v4.new_notebook(cells=[
        leaky, nbformat.v4.new_markdown_cell(ex.rubric[0].full_credit)]), student)
    found = assignments.student_leaks(student, summary)
    assert "solution line 'secret = 41 + 1'" in found
    assert f"the rubric of {label}" in found


def test_the_colab_install_of_otter_adds_only_what_colab_lacks():
    """In Colab otter-grader goes in with --no-deps, so nothing Colab ships changes: the pins
    are the CI lock's, the packages are absent from Colab's freeze, and every other runtime
    requirement of otter is in that freeze."""
    from importlib.metadata import requires

    def pins(path):
        return {ln.split("==")[0].lower().replace("_", "-"): ln.split("==")[1].strip()
                for ln in path.read_text().splitlines() if "==" in ln and ln[0] != "#"}

    lock, colab = pins(ROOT / "requirements-lock.txt"), pins(ROOT / "colab" / "pip-freeze.txt")
    added = dict(p.split("==") for p in assignments.OTTER_COLAB)
    for name, version in added.items():
        assert lock[name] == version and name not in colab, name
    needed = {r.split(" ")[0].split(";")[0].split("[")[0].lower().replace("_", "-")
              for r in requires("otter-grader") if "extra ==" not in r}
    assert needed - set(added) - set(colab) == set()
    source = assignments.INIT_CELL.format(name="x", packages=", ".join(
        f'"{p}"' for p in assignments.OTTER_COLAB))
    assert '"--no-deps"' in source and "otter-grader==7.0.0" in source
