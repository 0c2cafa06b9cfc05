"""The book's notebooks: the Colab install cell, the exported notebooks in three versions,
and the table of exercises on the teaching page.

Every page of the table of contents that is a notebook (its front matter has a ``kernelspec``)
gets these from this one mechanism, so that a new chapter needs nothing by hand:

* its first code cell is the Colab install cell, written from the template below with the
  repository URL of ``_config.yml`` (the one place that holds it) and the release of
  ``pyproject.toml``;
* three notebooks exported from the page by :mod:`export` (numbered theorems, equations and
  references as on the site, macros expanded, captions in markdown), committed without
  outputs, never edited by hand:

  - *reader*, ``book/<page>.ipynb``, what the site's Colab button opens: solutions present
    but hidden until asked for (prose in ``<details>``, code in a collapsed cell);
  - *student*, ``notebooks/student/<page>.ipynb``: no solutions, the answer cells kept, and a
    markdown cell for the answer to each explain exercise;
  - *instructor*, ``notebooks/instructor/<page>.ipynb``: the solutions shown, and after the
    solution of each explain exercise the rubric for its written answer;

* the teaching page's generated parts (:func:`with_generated_lists`): the table of exercises
  (kind, minutes, difficulty, answer, the numbers that vary per student), the student
  notebooks, each chapter's objectives and prerequisites (from its "In this chapter" box) and
  the rubrics.

Usage::

    python tools/notebooks.py sync                  # install cells, export all three versions
    python tools/notebooks.py check                 # exit 1 if anything is out of date
    python tools/notebooks.py student [--solutions] [--out DIR]   # copies under _build/
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import tomllib
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

INSTALL_TEMPLATE = '''\
# Colab only: install diffnotes {version} from PyPI, the release this page was built with.
# Elsewhere this cell does nothing. --no-deps: nothing that Colab ships is upgraded.
import os
import sys

if "google.colab" in sys.modules:
    import subprocess

    # DIFFNOTES_SOURCE: anything pip installs instead (a fork, a branch, a wheel, a checkout)
    source = os.environ.get("DIFFNOTES_SOURCE", "diffnotes=={version}")
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source]
                      ).returncode != 0:
        raise RuntimeError(
            f"pip could not install {{source}}. Check that the runtime is online (Runtime > "
            "Disconnect and delete runtime, then run this cell again). To install from "
            "GitHub instead, set os.environ['DIFFNOTES_SOURCE'] = "
            "'git+{url}@v{version}' above this line.")'''

READER_BANNER = """\
This notebook is the book's page {page}, exported for Colab and Jupyter: theorem, equation
and figure numbers are the site's, and every reference links there. Run the cells in order.
The solutions of the exercises are hidden: click **Solution** to open one (its code is in a
collapsed cell; run it to check)."""

STUDENT_BANNER = """\
**Student version** of {page}. The solutions are removed. After each exercise there is an
answer cell: set `answer` and run it, and `check` tells you whether you are right, with a
hint when you are not. Nothing is sent anywhere; the checks run in this notebook."""

INSTRUCTOR_BANNER = """\
**Instructor version** of {page}. Solutions included and shown. Each reference solution
ends with `check(...).require()`, the same self-check the students use."""


LICENCE_CELL = """\
---
*The text and figures of this notebook are licensed under
[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/); its code under the MIT licence
(`LICENSE` and `LICENSE-TEXT.md` of the book's repository). From* {page}"""

BANNERS = {"reader": READER_BANNER, "student": STUDENT_BANNER,
           "instructor": INSTRUCTOR_BANNER}
# Where each version of a page's notebook is committed (Colab opens them from GitHub).
VERSIONS = {"reader": ROOT / "book", "student": ROOT / "notebooks" / "student",
            "instructor": ROOT / "notebooks" / "instructor"}


def config() -> dict:
    """Repository URL, branch and release: from ``_config.yml`` and ``pyproject.toml``."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    repo = cfg["repository"]
    return {"url": repo["url"].rstrip("/"), "branch": repo.get("branch", "main"),
            "version": project["version"]}


def install_cell_source() -> str:
    """The source of every notebook page's first code cell."""
    c = config()
    return INSTALL_TEMPLATE.format(url=c["url"], version=c["version"])


def _toc_files(entries) -> list[str]:
    out = []
    for entry in entries or []:
        if "file" in entry:
            out.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            out += _toc_files(entry.get(key))
    return out


def notebook_pages() -> list[Path]:
    """The ``.md`` pages of ``_toc.yml`` that are notebooks (front matter with a kernelspec)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"], *_toc_files(toc.get("parts")), *_toc_files(toc.get("chapters"))]
    pages = []
    for f in files:
        path = ROOT / f"{f}.md"
        if path.exists() and "kernelspec:" in path.read_text().split("\n---", 1)[0]:
            pages.append(path)
    return pages


_FIRST_CODE_CELL = re.compile(r"(```\{code-cell\}[^\n]*\n)(.*?)(\n```[ \t]*\n)", re.S)


def with_install_cell(text: str) -> str:
    """``text`` (a MyST notebook) with its first code cell replaced by the install cell."""
    m = _FIRST_CODE_CELL.search(text)
    if m is None:
        raise ValueError("text must contain a code cell; the install cell goes first")
    return text[: m.start(2)] + install_cell_source() + text[m.end(2):]


def _docname(md_path: Path, root: Path = ROOT) -> str:
    return md_path.resolve().relative_to(root.resolve()).with_suffix("").as_posix()


_BOOK = {}


def book(refresh: bool = False):
    """The whole book, read and numbered once per process (:class:`export.Book`)."""
    if refresh or "book" not in _BOOK:
        _BOOK["book"] = export.Book(ROOT)
    return _BOOK["book"]


def _code_metadata(cell, *, hidden_title: str | None = None) -> tuple[str, dict]:
    """A code cell's source and metadata: its tags kept; a cell hidden on the site (tag
    ``hide-input``) or a solution's code collapsed in Colab (``cellView: form`` and a
    ``# @title`` line) and in Jupyter (``source_hidden``)."""
    tags = list(cell.metadata.get("tags", []))
    meta = {"tags": tags} if tags else {}
    source = cell.source
    if hidden_title is None and "hide-input" in tags:
        hidden_title = "Code of the output below (hidden on the site)"
    if hidden_title is not None:
        source = f"# @title {hidden_title}\n{source}"
        meta["cellView"] = "form"
        meta["jupyter"] = {"source_hidden": True}
    return source, meta


def exported_notebook(md_path: Path, version: str = "reader",
                      the_book: export.Book | None = None) -> nbformat.NotebookNode:
    """One page exported (:mod:`export`) as the ``reader``, ``student`` or ``instructor``
    notebook; ``the_book`` is this repository's book unless given (tests give their own)."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {sorted(VERSIONS)}, not {version!r}")
    b = the_book or book()
    doc = _docname(md_path, b.root)
    cells, cited = export.export_cells(b, doc)
    from diffnotes.selfcheck import exercises

    keys = exercises()
    out: list = []
    seen: set[str] = set()
    pending: list[str] = []   # instructor: a rubric follows the last cell of its solution

    def flush_rubric():
        while pending:
            ex = keys[pending.pop()]
            out.append(nbformat.v4.new_markdown_cell(
                rubric_markdown(ex, b.numbered(ex.label).split(" (")[0])))

    for cell in cells:
        label = cell.solution
        if pending and label != pending[0]:
            flush_rubric()
        if label is not None:
            if version == "student":
                continue
            first = label not in seen
            seen.add(label)
            ex = keys.get(label)
            if version == "instructor" and first and ex is not None and ex.rubric:
                pending.append(label)
            lead = "Solution to " + b.numbered(label)
            if cell.kind == "code":
                title = lead + " (code)" if version == "reader" else None
                source, meta = _code_metadata(cell, hidden_title=title)
                out.append(nbformat.v4.new_code_cell(source, metadata=meta))
            elif version == "reader":
                summary = lead if first else lead + ", continued"
                out.append(nbformat.v4.new_markdown_cell(
                    f"<details>\n<summary><b>{summary}</b> (click to show)</summary>\n\n"
                    f"{cell.source}\n\n</details>"))
            else:
                text = f"**{lead}.**\n\n{cell.source}" if first else cell.source
                out.append(nbformat.v4.new_markdown_cell(text))
            continue
        if cell.kind == "code":
            source, meta = _code_metadata(cell)
            out.append(nbformat.v4.new_code_cell(source, metadata=meta))
            continue
        out.append(nbformat.v4.new_markdown_cell(cell.source))
        if cell.role.startswith("exercise:") and version == "student":
            ex = cell.role.split(":", 1)[1]
            key = keys.get(ex)
            if key is not None and key.kind == "explain":
                out.append(nbformat.v4.new_markdown_cell(
                    f"**Your answer to {b.numbered(ex).split(' (')[0]}** (double-click this "
                    "cell and write it here; then set `answer` below and run the check):\n\n"
                    "..."))
    flush_rubric()
    if cited:
        out.append(nbformat.v4.new_markdown_cell(export.references_cell(b, cited)))
    banner = BANNERS[version].format(page=b.url(doc))
    out = out[:1] + [nbformat.v4.new_markdown_cell(banner)] + out[1:]
    out.append(nbformat.v4.new_markdown_cell(LICENCE_CELL.format(page=b.url(doc))))
    kernelspec = jupytext.read(md_path).metadata.get("kernelspec")
    return export.new_notebook(out, kernelspec)


def rubric_items(ex) -> str:
    """An explain exercise's rubric as a markdown list: criterion, points, full-credit answer."""
    return "\n".join(f"- **{c.criterion}** ({c.points} point{'s' if c.points > 1 else ''}): "
                     f"{c.full_credit}" for c in ex.rubric)


def rubric_markdown(ex, name: str) -> str:
    """The instructor notebook's cell after an explain exercise's solution: its rubric."""
    return (f"**Rubric for the written answer to {name}** ({ex.points} points; "
            "instructor version only). A full-credit answer says:\n\n" + rubric_items(ex))


def notebook_path(md_path: Path, version: str) -> Path:
    """Where a page's notebook of ``version`` is committed (the reader's beside the page)."""
    return VERSIONS[version] / md_path.with_suffix(".ipynb").name


def _comparable(nb) -> list:
    return [(c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k != "id"})
            for c in nb.cells] + [nb.metadata.get("kernelspec")]


def out_of_sync() -> list[str]:
    """Problems found: install cells that differ from the template, stale or missing
    notebooks (any version), a stale table of exercises."""
    problems = []
    if with_generated_lists(TEACHING.read_text()) != TEACHING.read_text():
        problems.append(f"{TEACHING.relative_to(ROOT)}: the table of exercises, the list of "
                        "student notebooks, the objectives or the rubrics are stale")
    if with_notebooks_table(NOTEBOOKS_PAGE.read_text()) != NOTEBOOKS_PAGE.read_text():
        problems.append(f"{NOTEBOOKS_PAGE.relative_to(ROOT)}: the table of notebooks is stale")
    for md in notebook_pages():
        rel = md.relative_to(ROOT)
        text = md.read_text()
        if with_install_cell(text) != text:
            problems.append(f"{rel}: first code cell is not the install cell")
        for version in VERSIONS:
            ipynb = notebook_path(md, version)
            name = ipynb.relative_to(ROOT)
            if not ipynb.exists():
                problems.append(f"{name}: missing")
                continue
            saved = nbformat.read(ipynb, as_version=4)
            if any(c.get("outputs") for c in saved.cells if c.cell_type == "code"):
                problems.append(f"{name}: committed with outputs")
            try:
                fresh = exported_notebook(md, version)
            except export.ExportError as exc:
                problems.append(f"{rel}: cannot be exported: {exc}")
                break
            if _comparable(saved) != _comparable(fresh):
                problems.append(f"{name}: out of date with {rel}")
    stale = {p for v in VERSIONS for p in VERSIONS[v].glob("*.ipynb")} - {
        notebook_path(md, v) for md in notebook_pages() for v in VERSIONS}
    problems += [f"{p.relative_to(ROOT)}: no page of the book exports it" for p in sorted(stale)]
    return problems


TEACHING = ROOT / "book" / "teaching.md"
_TABLE = re.compile(r"(<!-- exercises:start -->\n).*?(<!-- exercises:end -->)", re.S)
EXERCISE_DIRECTIVE = re.compile(
    r"^(`{3,}|:{3,})\{exercise\}\s*(?P<title>.*)\n:label: (?P<label>ex-[\w-]+)", re.M)


def exercise_table() -> str:
    """The list-table of every exercise (chapter, label, kind, minutes, difficulty, what the
    answer is, and which of its numbers vary per student)."""
    from diffnotes.selfcheck import exercises

    keys = exercises()
    rows = []
    for page in notebook_pages():
        text = page.read_text()
        chapter = re.search(r"^\((ch-[\w-]+)\)=", text, re.M)
        for m in EXERCISE_DIRECTIVE.finditer(text):
            label = m.group("label")
            key = keys.get(label)
            expects = key.key.expects if key else "(no self-check)"
            kind = key.kind if key else "?"
            minutes = key.minutes if key and key.minutes else "?"
            difficulty = key.difficulty if key and key.difficulty else "?"
            where = f"{{ref}}`{chapter.group(1)}`" if chapter else page.stem
            rows.append(f"* - {where}\n  - {{ref}}`{label}`\n  - {kind}\n  - {minutes}\n"
                        f"  - {difficulty}\n  - {expects}\n  - {varies(key)}")
    return ("```{list-table}\n:header-rows: 1\n:name: tab-exercises\n\n"
            "* - chapter\n  - exercise\n  - kind\n  - minutes\n  - difficulty\n  - answer\n"
            "  - varies\n" + "\n".join(rows) + "\n```\n")


def varies(ex) -> str:
    """The numbers an exercise draws per seed, with the book's value and the range, or "no"."""
    if ex is None or not ex.varies:
        return "no"
    parts = [f"`{name}` = {d.default:g} in the book, {d.describe()}"
             for name, d in ex.variant.draws.items()]
    return "; ".join(parts + ([ex.variant.note] if ex.variant.note else []))


def with_exercise_table(text: str) -> str:
    if not _TABLE.search(text):
        raise ValueError("text must contain the <!-- exercises:start/end --> markers")
    return _TABLE.sub(lambda m: m.group(1) + exercise_table() + m.group(2), text)


NOTEBOOKS_PAGE = ROOT / "book" / "notebooks.md"
_NB_TABLE = re.compile(r"(<!-- notebooks:start -->\n).*?(<!-- notebooks:end -->)", re.S)


def colab_url(path: Path) -> str:
    """The address at which Colab opens a committed notebook from the repository."""
    c = config()
    org_repo = c["url"].removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{org_repo}/blob/{c['branch']}/"
            f"{path.relative_to(ROOT).as_posix()}")


def notebooks_table() -> str:
    """The Notebooks page's table: an "Open in Colab" link per chapter and version, and the
    PDF."""
    rows = []
    for md in notebook_pages():
        label = re.search(r"^\(([\w-]+)\)=\s*\n#", md.read_text(), re.M)
        where = f"{{ref}}`{label.group(1)}`" if label else md.stem
        links = " | ".join(f"[{version}]({colab_url(notebook_path(md, version))})"
                           for version in VERSIONS)
        rows.append(f"| {where} | {links} |")
    header = "| chapter | " + " | ".join(VERSIONS) + " |\n|" + " --- |" * (len(VERSIONS) + 1)
    pdf = export.site_url(ROOT) + "book.pdf"
    return ("Open in Colab:\n\n" + header + "\n" + "\n".join(rows) + "\n\n"
            f"The whole book is also one [PDF]({pdf}), printed from the site's pages by "
            "`make pdf`.\n")


_STUDENT_LIST = re.compile(r"(<!-- student:start -->\n).*?(<!-- student:end -->)", re.S)


def student_links() -> str:
    """The teaching page's list of the student notebooks, each opened in Colab."""
    lines = []
    for md in notebook_pages():
        label = re.search(r"^\(([\w-]+)\)=\s*\n#", md.read_text(), re.M)
        where = f"{{ref}}`{label.group(1)}`" if label else md.stem
        lines.append(f"- {where}: [student notebook in Colab]"
                     f"({colab_url(notebook_path(md, 'student'))})")
    return "\n".join(lines) + "\n"


_OBJECTIVES = re.compile(r"(<!-- objectives:start -->\n).*?(<!-- objectives:end -->)", re.S)
_RUBRICS = re.compile(r"(<!-- rubrics:start -->\n).*?(<!-- rubrics:end -->)", re.S)
_IN_THIS_CHAPTER = re.compile(
    r"^:::\{admonition\} In this chapter\n(?::class:[^\n]*\n)?(?P<body>.*?)\n:::[ \t]*$",
    re.S | re.M)


def objectives() -> str:
    """Learning objectives and prerequisites of every chapter: the **You will learn** and
    **It assumes** of its "In this chapter" box, copied from the page."""
    parts = []
    for md in notebook_pages():
        text = md.read_text()
        box = _IN_THIS_CHAPTER.search(text)
        label = re.search(r"^\(([\w-]+)\)=\s*\n#", text, re.M)
        if box is None or label is None:
            continue
        body = box.group("body").strip()
        body = body.replace("**You will learn**", "*Objectives.* The student will learn")
        body = body.replace("**It assumes**", "*Prerequisites.* It assumes")
        parts.append(f"**{{ref}}`{label.group(1)}`**\n\n{body}\n")
    return "\n".join(parts)


def rubrics() -> str:
    """The rubric of every explain exercise, chapter by chapter, from the answer keys."""
    from diffnotes.selfcheck import exercises

    keys = exercises()
    parts = []
    for page in notebook_pages():
        for m in EXERCISE_DIRECTIVE.finditer(page.read_text()):
            ex = keys.get(m.group("label"))
            if ex is None or not ex.rubric:
                continue
            parts.append(f"**{{ref}}`{ex.label}`** ({ex.points} points, about {ex.minutes} "
                         f"minutes, {ex.difficulty}). A full-credit answer says:\n\n"
                         + rubric_items(ex) + "\n")
    return "\n".join(parts)


def with_generated_lists(text: str) -> str:
    """The teaching page with its generated parts: the table of exercises, the list of student
    notebooks, each chapter's objectives and prerequisites, and the rubrics."""
    text = with_exercise_table(text)
    for pattern, name, make in ((_STUDENT_LIST, "student", student_links),
                                (_OBJECTIVES, "objectives", objectives),
                                (_RUBRICS, "rubrics", rubrics)):
        if not pattern.search(text):
            raise ValueError(f"text must contain the <!-- {name}:start/end --> markers")
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + m.group(2), text)
    return text


def with_notebooks_table(text: str) -> str:
    if not _NB_TABLE.search(text):
        raise ValueError("text must contain the <!-- notebooks:start/end --> markers")
    return _NB_TABLE.sub(lambda m: m.group(1) + notebooks_table() + m.group(2), text)


def sync() -> list[Path]:
    """Rewrite every install cell, export every page's three notebooks and the teaching
    page's table of exercises; return the files written."""
    written = []
    text = TEACHING.read_text()
    if with_generated_lists(text) != text:
        TEACHING.write_text(with_generated_lists(text))
        written.append(TEACHING)
    text = NOTEBOOKS_PAGE.read_text()
    if with_notebooks_table(text) != text:
        NOTEBOOKS_PAGE.write_text(with_notebooks_table(text))
        written.append(NOTEBOOKS_PAGE)
    for md in notebook_pages():
        text = md.read_text()
        new = with_install_cell(text)
        if new != text:
            md.write_text(new)
            written.append(md)
    book(refresh=True)
    for md in notebook_pages():
        for version in VERSIONS:
            path = notebook_path(md, version)
            nb = exported_notebook(md, version)
            if not path.exists() or _comparable(nbformat.read(path, as_version=4)) != \
                    _comparable(nb):
                path.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, path)
                written.append(path)
    return written


def student_notebook(md_path: Path, *, solutions: bool = False) -> nbformat.NotebookNode:
    """The notebook handed to students (``solutions=False``) or instructors (``True``)."""
    return exported_notebook(md_path, "instructor" if solutions else "student")


def write_student_versions(out: Path, *, solutions: bool = False) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for md in notebook_pages():
        path = out / md.with_suffix(".ipynb").name
        nbformat.write(student_notebook(md, solutions=solutions), path)
        written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sync", help="rewrite install cells and regenerate the paired .ipynb")
    sub.add_parser("check", help="exit 1 when a pair or an install cell is out of sync")
    st = sub.add_parser("student", help="write student (or instructor) notebooks")
    st.add_argument("--solutions", action="store_true", help="keep solutions (instructor)")
    st.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "sync":
        for path in sync():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.command == "check":
        problems = out_of_sync()
        for p in problems:
            print(p)
        if problems:
            print("run `make notebooks` (python tools/notebooks.py sync) and commit the result")
            return 1
        print(f"{len(notebook_pages())} notebooks in sync")
        return 0
    out = args.out or ROOT / "_build" / ("instructor" if args.solutions else "student")
    for path in write_student_versions(out, solutions=args.solutions):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
