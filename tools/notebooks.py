"""The book's notebooks: the Colab install cell, the paired ``.ipynb`` files, student versions,
and the table of exercises on the teaching page.

Every page of the table of contents that is a notebook (its front matter has a ``kernelspec``)
gets three things from this one mechanism, so that a new chapter needs nothing by hand:

* its first code cell is the Colab install cell, written from the template below with the
  repository URL of ``_config.yml`` (the one place that holds it) and the release of
  ``pyproject.toml``;
* a paired ``.ipynb`` beside the ``.md``, made by jupytext and committed without outputs, which
  the book's launch buttons open in Colab;
* a student version (solutions removed, answer cells kept) and an instructor version under
  ``_build/student`` and ``_build/instructor``.

Usage::

    python tools/notebooks.py sync                  # rewrite install cells, regenerate .ipynb
    python tools/notebooks.py check                 # exit 1 if any pair is out of sync
    python tools/notebooks.py student [--solutions] [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import jupytext
import nbformat
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent

INSTALL_TEMPLATE = '''\
# Colab only: install diffnotes {version}, the release this page was built with. Elsewhere this
# cell does nothing. --no-deps: nothing that Colab ships is upgraded.
import os
import sys

if "google.colab" in sys.modules:
    import subprocess

    source = os.environ.get("DIFFNOTES_SOURCE",  # a fork, a branch or a local checkout
                            "git+{url}@v{version}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", source],
                   check=True)'''

STUDENT_BANNER = """\
**Student version.** The solutions are removed. After each exercise there is an answer cell:
set `answer` and run it, and `check` tells you whether you are right, with a hint when you are
not. Nothing is sent anywhere; the checks run in this notebook."""

INSTRUCTOR_BANNER = """\
**Instructor version.** Solutions included. Each reference solution ends with
`check(...).require()`, the same self-check the students use."""


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


def paired_notebook(md_path: Path) -> nbformat.NotebookNode:
    """The ``.ipynb`` paired with ``md_path``: jupytext's conversion, without outputs."""
    nb = jupytext.read(md_path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _comparable(nb) -> list:
    return [(c.cell_type, c.source, {k: v for k, v in c.metadata.items() if k != "id"})
            for c in nb.cells] + [nb.metadata.get("kernelspec")]


def out_of_sync() -> list[str]:
    """Problems found: install cells that differ from the template, stale or missing pairs."""
    problems = []
    if with_exercise_table(TEACHING.read_text()) != TEACHING.read_text():
        problems.append(f"{TEACHING.relative_to(ROOT)}: the table of exercises is stale")
    for md in notebook_pages():
        rel = md.relative_to(ROOT)
        text = md.read_text()
        if with_install_cell(text) != text:
            problems.append(f"{rel}: first code cell is not the install cell")
        ipynb = md.with_suffix(".ipynb")
        if not ipynb.exists():
            problems.append(f"{ipynb.relative_to(ROOT)}: missing")
            continue
        saved = nbformat.read(ipynb, as_version=4)
        if any(c.get("outputs") for c in saved.cells if c.cell_type == "code"):
            problems.append(f"{ipynb.relative_to(ROOT)}: committed with outputs")
        if _comparable(saved) != _comparable(paired_notebook(md)):
            problems.append(f"{ipynb.relative_to(ROOT)}: out of sync with {rel}")
    return problems


TEACHING = ROOT / "book" / "teaching.md"
_TABLE = re.compile(r"(<!-- exercises:start -->\n).*?(<!-- exercises:end -->)", re.S)
EXERCISE_DIRECTIVE = re.compile(
    r"^(`{3,}|:{3,})\{exercise\}\s*(?P<title>.*)\n:label: (?P<label>ex-[\w-]+)", re.M)


def exercise_table() -> str:
    """The list-table of every exercise (chapter, label, kind, what the answer is)."""
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
            where = f"{{ref}}`{chapter.group(1)}`" if chapter else page.stem
            rows.append(f"* - {where}\n  - {{ref}}`{label}`\n  - {kind}\n  - {expects}")
    return ("```{list-table}\n:header-rows: 1\n:name: tab-exercises\n\n"
            "* - chapter\n  - exercise\n  - kind\n  - answer\n" + "\n".join(rows) + "\n```\n")


def with_exercise_table(text: str) -> str:
    if not _TABLE.search(text):
        raise ValueError("text must contain the <!-- exercises:start/end --> markers")
    return _TABLE.sub(lambda m: m.group(1) + exercise_table() + m.group(2), text)


def sync() -> list[Path]:
    """Rewrite every install cell, regenerate every pair and the teaching page's table of
    exercises; return the files written."""
    written = []
    text = TEACHING.read_text()
    if with_exercise_table(text) != text:
        TEACHING.write_text(with_exercise_table(text))
        written.append(TEACHING)
    for md in notebook_pages():
        text = md.read_text()
        new = with_install_cell(text)
        if new != text:
            md.write_text(new)
            written.append(md)
        ipynb = md.with_suffix(".ipynb")
        nb = paired_notebook(md)
        if not ipynb.exists() or _comparable(nbformat.read(ipynb, as_version=4)) != \
                _comparable(nb):
            jupytext.write(nb, ipynb, fmt="ipynb")
            written.append(ipynb)
    return written


# --------------------------------------------------------------------------------------------
# Student and instructor versions

_FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})\s*\{(solution|solution-start|solution-end)\}")


def _strip_solutions_md(lines: list[str], state: dict) -> list[str]:
    """Drop solution text from markdown ``lines``; ``state['in']`` carries a gated solution
    (``solution-start`` ... ``solution-end``) across cells."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        m = _FENCE_OPEN.match(line)
        if m:
            fence, name = m.group(1), m.group(2)
            # skip the directive block up to its closing fence (same character, as long or longer)
            j = i + 1
            close = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$")
            while j < len(lines) and not close.match(lines[j]):
                j += 1
            i = j + 1
            if name == "solution-start":
                state["in"] = True
            elif name == "solution-end":
                state["in"] = False
            continue
        if not state["in"]:
            out.append(line)
        i += 1
    return out


def student_notebook(md_path: Path, *, solutions: bool = False) -> nbformat.NotebookNode:
    """The notebook handed to students (``solutions=False``) or instructors (``True``)."""
    nb = paired_notebook(md_path)
    state = {"in": False}
    cells = []
    for cell in nb.cells:
        if solutions:
            cells.append(cell)
            continue
        if cell.cell_type == "markdown":
            text = "\n".join(_strip_solutions_md(cell.source.split("\n"), state)).strip("\n")
            if text.strip():
                cell = copy.deepcopy(cell)
                cell.source = text
                cells.append(cell)
        elif not state["in"]:
            cells.append(cell)
    if state["in"]:
        raise ValueError(f"{md_path.name}: a solution-start has no matching solution-end")
    banner = nbformat.v4.new_markdown_cell(INSTRUCTOR_BANNER if solutions else STUDENT_BANNER)
    # after the title cell, so the notebook still opens with the chapter's title
    nb.cells = cells[:1] + [banner] + cells[1:]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


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
