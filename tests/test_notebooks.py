"""The notebook mechanism (tools/notebooks.py): install cells, the three exported versions."""

import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import notebooks  # noqa: E402

PAGES = notebooks.notebook_pages()
CHAPTERS = [p for p in PAGES if re.match(r"\d\d_", p.name)]


def test_every_chapter_is_a_notebook_page():
    assert len(CHAPTERS) >= 7
    assert all(p.parent.name == "book" for p in PAGES)


def test_pairs_and_install_cells_in_sync():
    assert notebooks.out_of_sync() == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_only_the_first_code_cell_installs(page):
    nb = notebooks.exported_notebook(page, "reader")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0] == notebooks.install_cell_source()
    for source in code[1:]:
        assert not re.search(r"pip\s+install|%pip|!pip|conda\s+install", source), source[:200]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_reader_notebook_runs_the_code_the_book_runs(page):
    """make test executes the pages once (tools/execute_book.py) and not the reader notebooks:
    that is a run of the reader notebook only while its code cells are the page's, in order,
    as the book's build reads them (a ``# @title`` line, a comment, aside)."""
    import execute_book

    book = [c.source for c in execute_book.read_page(page).cells if c.cell_type == "code"]
    saved = nbformat.read(page.with_suffix(".ipynb"), as_version=4)
    reader = [re.sub(r"\A# @title [^\n]*\n", "", c.source)
              for c in saved.cells if c.cell_type == "code"]
    assert reader == book


def run_install_cell(monkeypatch, in_colab: bool, returncode: int = 0):
    calls = []

    def fake_run(*a, **k):
        calls.append((a, k))
        return types.SimpleNamespace(returncode=returncode)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("DIFFNOTES_SOURCE", raising=False)
    exec(notebooks.install_cell_source(), {})
    return calls


def test_install_cell_does_nothing_outside_colab(monkeypatch):
    assert run_install_cell(monkeypatch, in_colab=False) == []


def test_install_cell_pins_the_release_and_upgrades_nothing(monkeypatch):
    """The release from PyPI by version (no repository URL, no tag), without dependencies."""
    calls = run_install_cell(monkeypatch, in_colab=True)
    assert len(calls) == 1
    (cmd,), kwargs = calls[0]
    cfg = notebooks.config()
    assert cmd[1:5] == ["-m", "pip", "install", "-q"] and "--no-deps" in cmd
    assert cmd[-1] == f"diffnotes=={cfg['version']}"
    assert "--upgrade" not in cmd and "-U" not in cmd and kwargs == {}


def test_install_cell_says_what_to_do_when_pip_fails(monkeypatch):
    with pytest.raises(RuntimeError, match=r"could not install diffnotes==.*DIFFNOTES_SOURCE"):
        run_install_cell(monkeypatch, in_colab=True, returncode=1)


def test_install_cell_takes_the_override(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or
                        types.SimpleNamespace(returncode=0))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setenv("DIFFNOTES_SOURCE", "/tmp/some.whl")
    exec(notebooks.install_cell_source(), {})
    assert calls[0][0][-1] == "/tmp/some.whl"


def test_one_place_holds_the_repository():
    """The install cell's URL comes from _config.yml, which the launch buttons also use."""
    cfg = notebooks.config()
    assert cfg["url"].startswith("https://github.com/")
    config = (ROOT / "_config.yml").read_text()
    assert config.count(cfg["url"]) == 1
    assert "colab_url" in config
    assert notebooks.install_cell_source().count(cfg["url"]) == 1


def synthetic_notebook(tmp_path, text):
    path = tmp_path / "book" / "01_x.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n"
                    "  language: python\njupytext:\n  text_representation:\n"
                    "    extension: .md\n    format_name: myst\n---\n" + text)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    numbered: true\n"
        "    chapters:\n      - file: book/01_x\n")
    for name in ("_config.yml", "references.bib"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    return path


SYNTHETIC = """\
(ch-x)=
# Title

```{exercise} Sum (compute)
:label: ex-x-sum

Add.
```

````{solution-start} ex-x-sum
:class: dropdown
````

Secret prose.

```{code-cell} ipython3
secret_code = 2
```

More secret.

````{solution-end}
````

````{solution} ex-x-sum
:class: dropdown

Old-style secret.
````

Kept text.
"""


def test_versions_of_a_synthetic_page(tmp_path):
    path = synthetic_notebook(tmp_path, SYNTHETIC)
    b = notebooks.export.Book(tmp_path)
    student = notebooks.exported_notebook(path, "student", b)
    text = "\n".join(c.source for c in student.cells)
    assert "secret" not in text.lower() and "Solution" not in text
    assert "**Exercise 1.1 (Sum (compute)).**" in text and "Kept text." in text
    assert "Student version" in text
    reader = notebooks.exported_notebook(path, "reader", b)
    code = [c for c in reader.cells if "secret_code" in c.source]
    assert len(code) == 1 and code[0].metadata["cellView"] == "form"
    assert code[0].metadata["jupyter"]["source_hidden"] is True
    assert code[0].source.startswith("# @title Solution to Exercise 1.1")
    prose = [c.source for c in reader.cells if "secret" in c.source.lower() and c is not code[0]]
    assert len(prose) == 2 and all(p.startswith("<details>") for p in prose)
    instructor = notebooks.exported_notebook(path, "instructor", b)
    text = "\n".join(c.source for c in instructor.cells)
    assert "secret_code = 2" in text and "**Solution to Exercise 1.1 (Sum (compute)).**" in text
    assert "<details>" not in text


def test_an_unclosed_solution_is_an_error(tmp_path):
    text = SYNTHETIC.replace("````{solution-end}\n````\n", "")
    synthetic_notebook(tmp_path, text)
    with pytest.raises(notebooks.export.ExportError, match="solution"):
        notebooks.export.Book(tmp_path)


def solution_code_lines(page):
    """Non-trivial lines of every code cell of a solution (from the instructor version)."""
    lines = set()
    nb = notebooks.exported_notebook(page, "instructor")
    inside = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            inside = cell.source.startswith("**Solution to ") or (inside and not re.match(
                r"\*\*(Exercise|Theorem|Lemma|Definition)|#", cell.source))
        elif inside:
            lines |= {ln.strip() for ln in cell.source.split("\n")
                      if len(ln.strip()) > 25 and not ln.strip().startswith(("#", "from ",
                                                                              "import "))}
    return lines


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_survives_in_a_student_notebook(page):
    student = notebooks.exported_notebook(page, "student")
    text = "\n".join(c.source for c in student.cells)
    assert "Solution to" not in text and "<details>" not in text
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    leaked = [ln for ln in solution_code_lines(page) if ln in code and "check(" not in ln]
    assert leaked == []
    labels = re.findall(r":label: (ex-[\w-]+)", page.read_text())
    assert labels, "a chapter has exercises"
    for label in labels:
        assert f'check("{label}", answer)' in code, f"{label}: no answer cell"
    instructor = notebooks.exported_notebook(page, "instructor")
    assert len(instructor.cells) > len(student.cells)


def test_student_versions_written(tmp_path):
    written = notebooks.write_student_versions(tmp_path)
    assert {p.name for p in written} == {p.with_suffix(".ipynb").name for p in PAGES}


def test_every_version_ends_with_the_licence(tmp_path):
    path = synthetic_notebook(tmp_path, SYNTHETIC)
    b = notebooks.export.Book(tmp_path)
    for version in ("reader", "student", "instructor"):
        last = notebooks.exported_notebook(path, version, b).cells[-1]
        assert last.cell_type == "markdown" and "CC BY 4.0" in last.source, version
        assert "MIT licence" in last.source


def test_licence_files_exist():
    root = Path(__file__).resolve().parent.parent
    assert "MIT License" in (root / "LICENSE").read_text()
    assert "CC BY 4.0" in (root / "LICENSE-TEXT.md").read_text()
    assert "CC BY 4.0" in (root / "book" / "intro.md").read_text()


def explain_labels(page):
    from diffnotes.selfcheck import exercises

    keys = exercises()
    return [lb for lb in re.findall(r":label: (ex-[\w-]+)", page.read_text())
            if keys[lb].kind == "explain"]


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_rubrics_in_the_instructor_version_only(page):
    from diffnotes.selfcheck import exercises

    keys = exercises()
    labels = explain_labels(page)
    assert labels, "every chapter has an explain exercise"
    cells = {v: notebooks.exported_notebook(page, v).cells for v in notebooks.VERSIONS}
    texts = {v: "\n".join(c.source for c in cs) for v, cs in cells.items()}
    for label in labels:
        for criterion in keys[label].rubric:
            assert criterion.full_credit in texts["instructor"], (label, criterion.criterion)
            for version in ("reader", "student"):
                assert criterion.full_credit not in texts[version], (version, label)
    for version in ("reader", "student"):
        assert "Rubric for" not in texts[version]
    # each rubric follows its exercise's solution, before the next exercise
    sources = [c.source for c in cells["instructor"]]
    rubric_at = [i for i, s in enumerate(sources) if s.startswith("**Rubric for")]
    assert len(rubric_at) == len(labels)
    for i in rubric_at:
        before = [s for s in sources[:i] if s.startswith(("**Solution to", "**Exercise"))]
        assert before[-1].startswith("**Solution to"), sources[i][:80]


def test_teaching_page_generated_parts():
    from diffnotes.selfcheck import exercises

    text = notebooks.with_generated_lists(notebooks.TEACHING.read_text())
    for ex in exercises().values():
        for criterion in ex.rubric:
            assert criterion.full_credit in text
    for page in CHAPTERS:
        box = notebooks._IN_THIS_CHAPTER.search(page.read_text())
        assert box is not None, f"{page.name}: no 'In this chapter' box"
        first_objective = re.search(r"^- (.*)$", box.group("body"), re.M).group(1)
        assert first_objective in text, page.name
    table = notebooks.exercise_table()
    assert "  - minutes\n  - difficulty\n" in table
    assert "  - ?\n" not in table, "an exercise without time or difficulty"
    assert "Save a copy in Drive" in text
    # the grading how-to: otter locally and on Gradescope, and what make test proves
    assert "otter run -a autograder/autograder.zip" in text and "Gradescope" in text
    assert "`make assignments`" in text and "`make grade-test`" in text
