"""The export of the book's pages to notebooks (tools/export.py), and every exported notebook."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import export  # noqa: E402

import notebooks  # noqa: E402

FRONT = ("---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
         "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n")

CHAPTER = FRONT + r"""(ch-one)=
# One

Intro {cite}`biroli2024dynamical` and {cite}`raya2023spontaneous,stancevic2026information`.

```{code-cell} ipython3
print("install")
```

## Part

```{prf:theorem} Curie–Weiss self-consistency
:label: thm-one

With $\E[x] = 0$,

$$
m = \tanh(m / T) \Var[x]
$$ (eq-one)
```

```{prf:proof}
By {eq}`eq-one` and {prf:ref}`thm-one`; see {ref}`ch-one`, {numref}`fig-one` and
{prf:ref}`the lemma <lem-app>`.
```

```{code-cell} ipython3
---
mystnb:
  figure:
    caption: A plot of $\tr A$ against {eq}`eq-one`.
    name: fig-one
---
print("draw")
```

:::{admonition} Note this
:class: tip
Text with $\R^d$.
:::
"""

APPENDIX = FRONT + r"""(ch-app)=
# Appendix

```{prf:lemma} Later
:label: lem-app

$$
x = 1
$$ (eq-app)
```
"""

INTRO = r"""# Intro

$$
y = 2
$$ (eq-intro)

```{prf:lemma} Front
:label: lem-front

Text.
```
"""


@pytest.fixture
def book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text(INTRO)
    (tmp_path / "book" / "01_one.md").write_text(CHAPTER)
    (tmp_path / "book" / "09_app.md").write_text(APPENDIX)
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: C\n    numbered: true\n"
        "    chapters:\n      - file: book/01_one\n  - caption: A\n    chapters:\n"
        "      - file: book/09_app\n")
    for name in ("_config.yml", "references.bib"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    return export.Book(tmp_path)


def markdown(cells):
    return "\n\n".join(c.source for c in cells if c.kind == "markdown")


def test_numbers_follow_sphinx(book):
    assert book.targets["thm-one"].number == (1, 1)
    assert book.targets["eq-one"].number == (1, 1)
    assert book.targets["fig-one"].number == (1, 1)
    # pages outside the numbered part share one counter per kind, the root page first
    assert book.targets["lem-front"].number == (1,)
    assert book.targets["lem-app"].number == (2,)
    assert book.targets["eq-app"].number == (2,)


def test_a_chapter_reads_like_the_site(book):
    cells, cited = export.export_cells(book, "book/01_one")
    text = markdown(cells)
    site = book.site + "book/01_one.html"
    assert text.startswith("# 1. One")
    assert "## 1.1. Part" in text
    assert "**Theorem 1.1 (Curie–Weiss self-consistency).**" in text
    assert r"\tag{1.1}" in text and r"\mathbb{E}[x]" in text and r"\operatorname{Var}[x]" in text
    assert f"[(1.1)]({site}#equation-eq-one)" in text
    assert f"[Theorem 1.1]({site}#thm-one)" in text
    assert f"[One]({site}#ch-one)" in text
    assert f"[Fig. 1.1]({site}#fig-one)" in text
    assert f"[the lemma]({book.site}book/09_app.html#lem-app)" in text
    assert "(Biroli et al., 2024)" in text
    assert "(Raya and Ambrogioni, 2023; Stančević and Ambrogioni, 2026)" in text
    assert cited == ["biroli2024dynamical", "raya2023spontaneous", "stancevic2026information"]
    assert "*Proof.*" in text and "**Note this**" in text and r"\mathbb{R}^d" in text
    # the caption follows the cell that draws it
    kinds = [(c.kind, c.source[:12]) for c in cells]
    draw = kinds.index(("code", 'print("draw"'))
    assert cells[draw + 1].source.startswith(r"**Fig. 1.1.** A plot of $\operatorname{tr} A$")
    assert "(ch-one)=" not in text and "{" + "eq}" not in text


def test_a_glued_number_is_named_by_its_key(book):
    page = book.root / "book" / "01_one.md"
    page.write_text(CHAPTER + "\nThe drop is {glue:text}`one-drop:.2f` nats of "
                    "{glue:text}`one-total`.\n")
    text = markdown(export.export_cells(book, "book/01_one")[0])
    assert "The drop is `one-drop` nats of `one-total`." in text
    assert "glue" not in text


def test_macros_expand_as_control_words():
    macros = {"E": r"\mathbb{E}", "tr": r"\operatorname{tr}"}
    assert export.expand_macros(r"\E[x] + \Ex + \tr A + \trace", macros) == \
        r"\mathbb{E}[x] + \Ex + \operatorname{tr} A + \trace"
    assert export.expand_macros(r"\tr\Sigma", macros) == r"\operatorname{tr}\Sigma"


def test_unknown_syntax_and_labels_are_errors(tmp_path, book):
    page = book.root / "book" / "01_one.md"
    page.write_text(CHAPTER + "\n```{mystery}\nx\n```\n")
    with pytest.raises(export.ExportError, match="mystery"):
        export.export_cells(book, "book/01_one")
    page.write_text(CHAPTER + "\nSee {prf:ref}`thm-nowhere`.\n")
    with pytest.raises(export.ExportError, match="thm-nowhere"):
        export.export_cells(book, "book/01_one")


# --- every exported notebook of the book --------------------------------------------------

PAGES = notebooks.notebook_pages()
VERSIONS = sorted(notebooks.VERSIONS)


def raw_syntax(source: str) -> list[str]:
    """Directive fences, roles and ``(label)=`` lines left in a markdown cell, as myst-parser
    (with the book's extensions) finds them."""
    found = []
    for tok in export.parse(source):
        if tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            found.append(f"directive {tok.info.strip()}")
        if tok.type == "myst_target":
            found.append(f"label line ({tok.content})=")
        for child in tok.children or []:
            if child.type == "myst_role":
                found.append(f"role {{{child.meta.get('name')}}}`{child.content}`")
    return found


@pytest.fixture(scope="module")
def exported():
    return {(page.stem, v): notebooks.exported_notebook(page, v) for page in PAGES
            for v in VERSIONS}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
@pytest.mark.parametrize("version", VERSIONS)
def test_no_raw_syntax_or_book_macro(exported, page, version):
    nb = exported[(page.stem, version)]
    macros = export.book_macros()
    problems = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        problems += raw_syntax(cell.source)
        for tok in export.parse(cell.source):
            maths = [tok.content] if tok.type.startswith(("math_block", "amsmath")) else []
            maths += [c.content for c in tok.children or [] if c.type.startswith("math")]
            for tex in maths:
                problems += [f"macro \\{m} in {tex[:60]!r}"
                             for m in export._CONTROL_SEQUENCE.findall(tex) if m in macros]
        problems += [f"unresolved {m!r}" for m in ("??", "{number}") if m in cell.source]
    assert problems == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_reader_hides_every_solution(exported, page):
    nb = exported[(page.stem, "reader")]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == notebooks.install_cell_source()
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith("# @title Solution"):
            assert cell.metadata["cellView"] == "form"
            assert cell.metadata["jupyter"] == {"source_hidden": True}
        if cell.cell_type == "markdown" and "Solution to" in cell.source:
            assert cell.source.startswith("<details>\n<summary>"), cell.source[:80]
            assert cell.source.endswith("</details>")
    labels = re.findall(r":label: (ex-[\w-]+)", page.read_text())
    hidden = "\n".join(c.source for c in code if c.metadata.get("cellView") == "form")
    for label in labels:
        assert f'check("{label}", answer).require()' in hidden or \
            f"check('{label}', answer).require()" in hidden or "require()" not in page.read_text()


@pytest.mark.parametrize("page", [p for p in PAGES if re.match(r"\d\d_", p.name)],
                         ids=lambda p: p.stem)
def test_student_has_an_answer_cell_for_each_explain_exercise(exported, page):
    from diffnotes.selfcheck import exercises

    keys = exercises()
    nb = exported[(page.stem, "student")]
    text = "\n".join(c.source for c in nb.cells)
    for label in re.findall(r":label: (ex-[\w-]+)", page.read_text()):
        if keys.get(label) is not None and keys[label].kind == "explain":
            number = notebooks.book().targets[label].numtext
            assert f"**Your answer to Exercise {number}**" in text
