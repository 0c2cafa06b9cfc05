"""The notebook mechanism (tools/notebooks.py): install cells, pairs, student versions."""

import re
import subprocess
import sys
import types
from pathlib import Path

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
    nb = notebooks.paired_notebook(page)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code[0] == notebooks.install_cell_source()
    for source in code[1:]:
        assert not re.search(r"pip\s+install|%pip|!pip|conda\s+install", source), source[:200]


def run_install_cell(monkeypatch, in_colab: bool):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
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
    calls = run_install_cell(monkeypatch, in_colab=True)
    assert len(calls) == 1
    (cmd,), kwargs = calls[0]
    cfg = notebooks.config()
    assert cmd[1:5] == ["-m", "pip", "install", "-q"] and "--no-deps" in cmd
    assert cmd[-1] == f"git+{cfg['url']}@v{cfg['version']}"
    assert "--upgrade" not in cmd and "-U" not in cmd and kwargs == {"check": True}


def test_one_place_holds_the_repository():
    """The install cell's URL comes from _config.yml, which the launch buttons also use."""
    cfg = notebooks.config()
    assert cfg["url"].startswith("https://github.com/")
    config = (ROOT / "_config.yml").read_text()
    assert config.count(cfg["url"]) == 1
    assert "colab_url" in config
    assert notebooks.install_cell_source().count(cfg["url"]) == 1


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

```python
secret_inline = 1
```

```{code-cell} ipython3
secret_code = 2
```

More secret.

````{solution-end}
````

````{solution} ex-x-other
:class: dropdown

Old-style secret.

```python
old_secret = 3
```
````

Kept text.
"""


def synthetic_notebook(tmp_path, text=SYNTHETIC):
    path = tmp_path / "01_x.md"
    path.write_text("---\nkernelspec:\n  name: python3\n  display_name: Python 3\n"
                    "  language: python\njupytext:\n  text_representation:\n"
                    "    extension: .md\n    format_name: myst\n---\n" + text)
    return path


def test_stripper_removes_gated_and_plain_solutions(tmp_path):
    student = notebooks.student_notebook(synthetic_notebook(tmp_path))
    text = "\n".join(c.source for c in student.cells)
    assert "secret" not in text.lower()
    assert "solution" not in text.replace(notebooks.STUDENT_BANNER, "")
    assert "ex-x-sum" in text and "Kept text." in text and "Student version" in text
    instructor = notebooks.student_notebook(synthetic_notebook(tmp_path), solutions=True)
    assert "secret_code = 2" in "\n".join(c.source for c in instructor.cells)


def test_stripper_rejects_an_unclosed_solution(tmp_path):
    text = SYNTHETIC.replace("````{solution-end}\n````\n", "")
    with pytest.raises(ValueError, match="solution-end"):
        notebooks.student_notebook(synthetic_notebook(tmp_path, text))


def solution_code_lines(page):
    """Non-trivial lines of every code cell inside a gated solution of ``page``."""
    lines, inside = set(), False
    for cell in notebooks.paired_notebook(page).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.split("\n"):
                if "{solution-start}" in line:
                    inside = True
                elif "{solution-end}" in line:
                    inside = False
        elif inside:
            lines |= {ln.strip() for ln in cell.source.split("\n")
                      if len(ln.strip()) > 25 and not ln.strip().startswith(("#", "from ",
                                                                              "import "))}
    return lines


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_survives_in_a_student_notebook(page):
    student = notebooks.student_notebook(page)
    text = "\n".join(c.source for c in student.cells)
    assert not re.search(r"\{solution(-start|-end)?\}", text)
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    leaked = [ln for ln in solution_code_lines(page) if ln in code]
    assert leaked == []
    labels = re.findall(r":label: (ex-[\w-]+)", page.read_text())
    assert labels, "a chapter has exercises"
    for label in labels:
        assert f'check("{label}", answer)' in code, f"{label}: no answer cell"
    instructor = notebooks.student_notebook(page, solutions=True)
    assert len(instructor.cells) > len(student.cells)


def test_student_versions_written(tmp_path):
    written = notebooks.write_student_versions(tmp_path)
    assert {p.name for p in written} == {p.with_suffix(".ipynb").name for p in PAGES}
