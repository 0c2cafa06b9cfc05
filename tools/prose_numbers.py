"""Hand-typed numbers in the chapters' prose: every decimal the text states must come from a cell.

A number that a cell of the page computes is inserted into the text with myst-nb's
``{glue:text}`key:fmt``` role (:func:`diffnotes.glue`), so the sentence and the computation
cannot drift apart. This check reads every chapter's MyST source (``book/NN*_*.md``: its
markdown cells, as jupytext splits the page, solutions and captions included) and flags each
*decimal* number (``0.78``, ``−1.5``, ``40.46``) of the prose or its formulas that is none of

* **glued**: inside a ``{glue:text}`` role (it is then not typed at all);
* **a constant of the set-up**: the same literal appears in a code cell of the page (``t_min =
  0.02``, ``gamma=1.5``): the page sets it, it does not compute it;
* **quoted**: marked ``{quoted}`0.45``` because it is a value reported by a cited paper (the
  role, from ``book/_ext/quoted.py``, renders as the plain number);
* a **cross-reference typed as text** ("Theorem 4.2", "Fig. 3.1", "eq. (4.3)", "§5.2") or a
  version ("2.13.0", "Python 3.11").

Integers are not flagged (they are mostly sizes, counts of a set-up and indices); a computed
count belongs glued all the same, which a referee checks. Code, inline code, labels, directive
options, comments, URLs and the targets of links are not prose and are skipped.

    python tools/prose_numbers.py [PAGE ...] [--report]

prints one line per flagged number (page, line, the number, its context) and the count per page;
exit status 1 when any is flagged. ``--report`` prints the counts and always exits 0.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = "book/[0-9][0-9]*_*.md"

# the roles whose content is not prose (glued values, quoted values, keys and labels)
SKIP_ROLE = re.compile(r"\{(glue:text|glue:any|glue|quoted|cite(:\w+)?|ref|eq|numref|prf:ref|doc|"
                       r"download|code|label|term|abbr)\}`[^`]*`")
INLINE_CODE = re.compile(r"(`+)(?!\{).+?\1")
LINK_TARGET = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+")
HTML_COMMENT = re.compile(r"(?s)<!--.*?-->")
# a cross-reference or a version typed as text
REF_WORDS = (r"(?:Theorem|Lemma|Proposition|Corollary|Definition|Remark|Example|Exercise|"
             r"Fig\.|Figure|Figures|Table|Section|Sections|Chapter|Chapters|chapter|chapters|"
             r"section|sections|Appendix|eq\.|Eq\.|eqs\.|equation|equations|Eqs\.|§|arXiv:|"
             r"Python|torch|version|v)")
REF_BEFORE = re.compile(REF_WORDS + r"\s*\(?\s*$")
DECIMAL = re.compile(r"(?<![\w.\\])(\d+\.\d+)(?![\w.]*\d*\.\d)(?![\w])")
FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*(\{([\w:-]+)\})?\s*(.*)$")
OPTION = re.compile(r"^\s*:[\w-]+:")
LABEL = re.compile(r"^\s*\([\w:.-]+\)=\s*$")
NO_TITLE = {"figure", "image", "include", "literalinclude", "glue:figure", "glue:math"}


_NOT_SETUP = re.compile(r"^(plt|ax\w*|axs|axes|fig|tally|t)\.|^(check_\w+|Tally|print|glue)$")


def _literals(code: str) -> set[str]:
    """The decimal constants the page's code *sets* (normalised ``float`` text): the value of
    an assignment or of a keyword argument (inside tuples, lists and dicts too), but not a
    positional argument, nor anything given to a plotting or checking call."""
    import ast

    out: set[str] = set()

    def take(node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            take(node.operand)
        elif isinstance(node, ast.Constant) and isinstance(node.value, float):
            out.add(repr(float(node.value)))
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            for e in node.elts:
                take(e)
        elif isinstance(node, ast.Dict):
            for e in node.values:
                take(e)

    for cell in code.split("\x00"):
        lines = cell.strip("\n").split("\n")
        if lines and lines[0].strip() == "---":  # the cell's YAML options block
            end = next((i for i, ln in enumerate(lines[1:], 1) if ln.strip() == "---"), 0)
            lines = lines[end + 1:]
        lines = [ln for ln in lines if not re.match(r"^\s*(:[\w-]+:|%|!)", ln)]
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value:
                take(node.value)
            elif isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                if not _NOT_SETUP.search(name):
                    for kw in node.keywords:
                        take(kw.value)
            elif isinstance(node, ast.FunctionDef):
                for d in node.args.defaults + node.args.kw_defaults:
                    if d is not None:
                        take(d)
    return out


def _norm(text: str) -> str:
    try:
        return repr(float(text))
    except ValueError:
        return text


def _cells(path: Path) -> tuple[list[tuple[int, str]], str]:
    """The page's markdown cells (with their first line in the file) and all of its code."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    md, code, buf, start, in_code, fence = [], [], [], 0, False, ""
    i = 0
    if lines and lines[0].strip() == "---":  # front matter
        i = lines.index("---", 1) + 1
        start = i
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(`{3,})\{code-cell\}", line)
        if not in_code and m:
            md.append((start + 1, "\n".join(buf)))
            buf, in_code, fence = [], True, m.group(1)
        elif in_code and line.strip() == fence:
            in_code, start = False, i + 1
            code.append("\x00")
        elif in_code:
            code.append(line)
        else:
            buf.append(line)
        i += 1
    md.append((start + 1, "\n".join(buf)))
    return md, "\n".join(code)


def prose_lines(markdown: str):
    """(offset, text) of each line of ``markdown`` that is prose or a formula."""
    markdown = HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), markdown)
    for k, line in enumerate(markdown.split("\n")):
        if OPTION.match(line) or LABEL.match(line) or line.lstrip().startswith("%") \
                or line.lstrip().startswith("+++"):
            continue
        m = FENCE.match(line)
        if m:
            if m.group(3) in NO_TITLE:
                continue
            line = m.group(4)  # a directive's title is prose
        yield k, line


def flags(path: Path) -> list[tuple[int, str, str]]:
    """(line, number, context) of every hand-typed decimal of one page."""
    md, code = _cells(path)
    allowed = _literals(code)
    out = []
    for first, cell in md:
        for k, line in prose_lines(cell):
            clean = SKIP_ROLE.sub(" ", line)
            clean = INLINE_CODE.sub(" ", clean)
            clean = LINK_TARGET.sub(" ", clean)
            for m in DECIMAL.finditer(clean):
                num = m.group(1)
                if REF_BEFORE.search(clean[:m.start()]):
                    continue
                pm = re.search(r"(\\pm|±)\s*$", clean[:m.start()]) or \
                    re.match(r"\s*(\\pm|±)", clean[m.end():])
                if _norm(num) in allowed and not pm:
                    continue
                a, b = max(0, m.start() - 30), min(len(clean), m.end() + 30)
                out.append((first + k, num, clean[a:b].strip()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pages", nargs="*", type=Path)
    ap.add_argument("--report", action="store_true", help="print the counts; never fail")
    args = ap.parse_args(argv)
    pages = args.pages or sorted(ROOT.glob(CHAPTERS))
    total = 0
    for page in pages:
        found = flags(page)
        total += len(found)
        name = page.relative_to(ROOT) if page.is_absolute() and ROOT in page.parents else page
        if not args.report:
            for line, num, ctx in found:
                print(f"{name}:{line}: {num} typed by hand: …{ctx}…")
        print(f"{name}: {len(found)} hand-typed decimal(s)")
    print(f"{total} hand-typed decimal number(s) in {len(pages)} page(s)"
          + ("" if total or args.report else ": every decimal of the prose is glued, a "
             "constant of its code, or quoted"))
    return 0 if args.report or total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
