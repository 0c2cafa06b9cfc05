"""Reader-first check of the built chapters: checks and plotting folded, short visible output.

For every page of ``_build/html`` that holds code cells (myst-nb's ``div.cell``), it fails when

* a code cell whose input is in view (not folded by the ``hide-input`` or ``hide-cell`` tag,
  not removed) runs a check (``check_mc``, ``check_identity``, ``check_close``, a ``Tally``,
  an ``assert``) or draws (``plt.``, ``fig``/``ax`` methods, ``subplots``, the book's plotting
  helpers): such a cell is verification or figure code and belongs folded, behind its result;
* an output in view (not folded by ``hide-output``/``hide-cell``) has more than ``MAX_LINES``
  lines of text;
* a chapter page (``book/NN_*``) lacks its opening box (an admonition titled "In this
  chapter": what the reader will learn and what it assumes) or its closing "Summary" section.

A visible code cell is one a reader should read or change; this is the mechanical half of that
rule. One line per failing cell, a summary, exit status 1 on any failure.

    python tools/reader_check.py [HTML_DIR] [--pages GLOB]
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

DEFAULT_HTML = Path(__file__).resolve().parent.parent / "_build" / "html"
MAX_LINES = 10

CHECK = re.compile(r"\b(check_mc|check_identity|check_close|Tally)\s*\(|\btally\.\w+\(|"
                   r"^\s*assert\b", re.M)
PLOT = re.compile(r"\bplt\.|\b(fig|ax|axes|ax\d|axs)\b(\[[^\]]*\])?\.\w+\(|\bsubplots\(|"
                  r"\b(figure|error_band|use_book_style)\(|\bsavefig\(")

CHAPTER = re.compile(r"book/\d\d[a-z]?_[^/]*\.html")
FOLD_INPUT = {"tag_hide-input", "tag_hide-cell", "tag_remove-input", "tag_remove-cell"}
FOLD_OUTPUT = {"tag_hide-output", "tag_hide-cell", "tag_remove-output", "tag_remove-cell"}


def _text_lines(node) -> int:
    text = node.get_text("\n")
    return len([line for line in text.strip("\n").split("\n")]) if text.strip() else 0


def check_page(html: str) -> tuple[int, int, list[str]]:
    """(code cells, cells in view, failures) of one built page."""
    soup = BeautifulSoup(html, "html.parser")
    cells = soup.select("div.cell")
    failures, n_visible = [], 0
    for i, cell in enumerate(cells, start=1):
        classes = set(cell.get("class", []))
        source_node = cell.select_one("div.cell_input")
        source = source_node.get_text() if source_node is not None else ""
        first = next((ln for ln in source.splitlines() if ln.strip()), "")[:60]
        where = f"cell {i} ({first.strip()!r})"
        if source_node is not None and not classes & FOLD_INPUT:
            n_visible += 1
            if CHECK.search(source):
                failures.append(f"{where}: a check in view (fold it with hide-input)")
            elif PLOT.search(source):
                failures.append(f"{where}: plotting code in view (fold it with hide-input)")
        if classes & FOLD_OUTPUT:
            continue
        for out in cell.select("div.cell_output div.output"):
            if out.find("img") is not None:
                continue
            n = _text_lines(out)
            if n > MAX_LINES:
                failures.append(f"{where}: {n} lines of output in view (at most {MAX_LINES})")
    return len(cells), n_visible, failures


def check_frame(html: str) -> list[str]:
    """The opening box and the closing summary of a chapter page."""
    soup = BeautifulSoup(html, "html.parser")
    failures = []
    titles = [t.get_text(" ", strip=True) for t in soup.select(".admonition .admonition-title")]
    if not any(t.lower().startswith("in this chapter") for t in titles):
        failures.append("no opening box (an admonition titled 'In this chapter')")
    heads = [h.get_text(" ", strip=True).rstrip("#").strip().lower()
             for h in soup.select("article h2, main h2")]
    if not any(re.sub(r"^[\d.]+\s*", "", h).startswith("summary") for h in heads):
        failures.append("no closing 'Summary' section")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML)
    parser.add_argument("--pages", default="book/*.html", help="glob of pages, relative")
    args = parser.parse_args(argv)
    pages = sorted(p for p in args.html_dir.rglob("*.html")
                   if fnmatch.fnmatch(p.relative_to(args.html_dir).as_posix(), args.pages))
    if not pages:
        print(f"reader check: no pages matching {args.pages} under {args.html_dir}")
        return 1
    n_fail = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        n_cells, n_visible, failures = check_page(html)
        rel = page.relative_to(args.html_dir).as_posix()
        if CHAPTER.fullmatch(rel):
            failures = check_frame(html) + failures
        elif not n_cells:
            continue
        status = "ok" if not failures else f"{len(failures)} FAILED"
        print(f"{rel:40s} {n_cells:3d} code cells, {n_visible:3d} in view: {status}")
        for f in failures:
            print(f"    {f}")
        n_fail += len(failures)
    print(f"reader check: {n_fail} failure(s) in {len(pages)} page(s)")
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
