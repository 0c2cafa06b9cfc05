"""Export the book's MyST pages to notebooks that read like the site.

The ``.md`` pages are the single source. This module turns one into a Jupyter notebook in which
every construct the site renders is written as plain notebook markdown, numbered as on the site:

* ``{prf:theorem}`` and its kin, ``{exercise}``: a bold lead, "**Theorem 4.2 (Title).**";
  ``{prf:proof}``: "*Proof.*"; ``{admonition}`` and the like: a bold lead with the title;
* labelled display maths: ``\\tag{4.3}``; ``{eq}``, ``{prf:ref}``, ``{ref}``, ``{numref}`` and
  ``{doc}``: the site's text ("(4.3)", "Theorem 4.2", the section title), linked to the site's
  anchor; ``{cite}``: "(Biroli et al., 2024)", with the references of the notebook at its end;
* the book's TeX macros (``mathjax3_config`` in ``_config.yml``) expanded in every formula, so
  that no renderer needs them defined;
* a code cell that draws a figure (``mystnb.figure``) is followed by its caption, in markdown;
* ``(label)=`` lines, comments and block breaks are dropped; no directive fence or role is left.

Nothing is matched by regular expressions over the markdown: each markdown cell (jupytext's
split of the page) is parsed by myst-parser's own markdown-it parser, with the book's MyST
extensions, and rewritten from its tokens. Block tokens carry their source lines; inline roles
and inline maths are replaced at their exact source text, in order. A directive this module does
not know is an error (:class:`ExportError`), so new syntax cannot slip through unrendered.

Numbers follow Sphinx's rules for ``numfig`` (``numfig_secnum_depth`` 1) as the site is built:
documents in the order of the table of contents, the root page first; in a numbered chapter a
number is "chapter.k" with one counter per kind (theorem, lemma, exercise, displaymath, figure,
...); pages outside the numbered part share one plain counter per kind across the book.
``tools/notebook_test.py`` checks every exported reference against the built site.

Gated solutions (``{solution-start}`` ... ``{solution-end}``, and ``{solution}``) are marked on
the cells they cover, so that :mod:`notebooks` can write the three versions (reader, student,
instructor) from one export.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent

MYST_EXTENSIONS = ("amsmath", "dollarmath", "colon_fence", "deflist", "substitution")

# sphinx-proof's directive types (all enumerable, one counter per type, as configured here).
PROOF_TYPES = ("theorem", "lemma", "definition", "remark", "conjecture", "corollary",
               "algorithm", "example", "property", "observation", "proposition", "assumption",
               "axiom", "criterion", "notation")
ADMONITIONS = ("note", "tip", "hint", "important", "warning", "caution", "attention", "danger",
               "error", "seealso")
FIGNAME = {"figure": "Fig.", "table": "Table", "code-block": "Listing",
           "displaymath": "Equation", "exercise": "Exercise",
           **{t: t.capitalize() for t in PROOF_TYPES}}


class ExportError(ValueError):
    """A page uses syntax the export cannot render (or a reference it cannot resolve)."""


@dataclass
class Target:
    """Something a reference can point at, with its number and its anchor on the site."""

    label: str
    kind: str  # "section", "displaymath", "figure", "exercise", a proof type, "doc"
    doc: str  # docname, e.g. "book/04_symmetry_breaking"
    anchor: str  # id in the site's HTML ("" for the page itself)
    number: tuple[int, ...] | None = None
    title: str = ""  # section title, directive title or figure caption

    @property
    def numtext(self) -> str:
        return ".".join(map(str, self.number or ()))


# --- parsing --------------------------------------------------------------------------------

def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    return create_md_parser(MdParserConfig(enable_extensions=set(MYST_EXTENSIONS)),
                            RendererHTML)


_MD = None


def parse(text: str):
    """The markdown-it tokens of ``text``, as myst-parser (with the book's extensions) sees it."""
    global _MD
    if _MD is None:
        _MD = _parser()
    return _MD.parse(text, {})


def directive_parts(token) -> tuple[str, str, dict, str]:
    """``(name, argument, options, body)`` of a ``{name}`` fence (backtick or colon)."""
    info = token.info.strip()
    if not info.startswith("{") or "}" not in info:
        raise ExportError(f"not a directive: {info!r}")
    name, arg = info[1:].split("}", 1)
    lines = token.content.split("\n")
    options: dict = {}
    if lines and lines[0].strip() == "---":  # a YAML block of options
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
        if end is None:
            raise ExportError(f"{{{name}}}: unclosed option block")
        options = yaml.safe_load("\n".join(lines[1:end])) or {}
        lines = lines[end + 1:]
    else:
        while lines and lines[0].startswith(":") and ":" in lines[0][1:]:
            key, _, value = lines.pop(0)[1:].partition(":")
            options[key.strip()] = value.strip()
    return name.strip(), arg.strip(), options, "\n".join(lines).strip("\n")


def _block_ranges(tokens):
    """Top-level blocks: ``(first, last)`` token indices (an open token to its close)."""
    i = 0
    while i < len(tokens):
        j, depth = i, tokens[i].nesting
        while depth > 0:
            j += 1
            depth += tokens[j].nesting
        yield i, j
        i = j + 1


def _find(raw: str, text: str, start: int) -> tuple[int, str] | None:
    """Where the token text ``raw`` sits in the source ``text`` (from ``start``), and the
    source's spelling of it: a token spanning lines of a list item or a directive has lost
    their indentation, so a run of white space matches any run of white space."""
    at = text.find(raw, start)
    if at >= 0:
        return at, raw
    pattern = r"\s+".join(re.escape(part) for part in raw.split())
    m = re.compile(pattern).search(text, start)
    return (m.start(), m.group(0)) if m else None


def _role_source(name: str, content: str, text: str, start: int) -> tuple[int, str]:
    """Where the role ``{name}`content``` starts in ``text`` (from ``start``), and its text."""
    for ticks in ("`", "``", "```"):
        found = _find(f"{{{name}}}{ticks}{content}{ticks}", text, start)
        if found:
            return found
    raise ExportError(f"role {{{name}}}`{content}` not found in its block")


# --- TeX macros ------------------------------------------------------------------------------

_CONTROL_SEQUENCE = re.compile(r"\\([A-Za-z]+)")


def book_macros(config_path: Path = ROOT / "_config.yml") -> dict[str, str]:
    """The book's TeX macros, from ``mathjax3_config`` in ``_config.yml`` (name -> expansion)."""
    cfg = yaml.safe_load(config_path.read_text())
    macros = (((cfg.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {})
    macros = (macros.get("tex") or {}).get("macros") or {}
    out = {}
    for name, value in macros.items():
        if not isinstance(value, str):
            raise ExportError(f"macro \\{name}: only macros without arguments are supported")
        out[name] = value
    return out


def expand_macros(tex: str, macros: dict[str, str]) -> str:
    """``tex`` with each control sequence ``\\name`` of ``macros`` replaced by its expansion
    (TeX's own rule: a control word is a backslash and the longest run of letters)."""

    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in macros:
            return m.group(0)
        value = macros[name]
        # keep "\E x" from becoming "\mathbb{E}x"? A control word ends at the first non-letter,
        # and its expansion ends with "}" or a letter: a letter would glue to what follows.
        nxt = tex[m.end():m.end() + 1]
        if value[-1:].isalpha() and nxt.isalpha():
            value += " "
        return value

    return _CONTROL_SEQUENCE.sub(sub, tex)


# --- bibliography ----------------------------------------------------------------------------

@dataclass
class BibEntry:
    key: str
    cite: str  # "Biroli et al., 2024"
    cite_t: str  # "Biroli et al. (2024)"
    reference: str  # one line for the reference list


def _latex_text(s: str) -> str:
    from pybtex.richtext import Text

    return Text.from_latex(s).render_as("text")


def load_bibliography(path: Path = ROOT / "references.bib") -> dict[str, BibEntry]:
    """Author-year citations and reference lines, as the site's ``author_year`` style gives."""
    from pybtex.database import parse_file

    entries = {}
    for key, e in parse_file(str(path)).entries.items():
        people = e.persons.get("author") or e.persons.get("editor") or []
        lasts = [_latex_text(" ".join(p.last_names)) or _latex_text(str(p)) for p in people]
        year = e.fields.get("year", "n.d.")
        if len(lasts) >= 3:
            who = f"{lasts[0]} et al."
        elif len(lasts) == 2:
            who = f"{lasts[0]} and {lasts[1]}"
        else:
            who = lasts[0] if lasts else key
        names = [_latex_text(" ".join([*p.first_names, *p.middle_names, *p.prelast_names,
                                       *p.last_names])) or _latex_text(str(p)) for p in people]
        authors = ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] \
            if names else key
        title = _latex_text(e.fields.get("title", ""))
        venue = _latex_text(e.fields.get("journal") or e.fields.get("booktitle")
                            or e.fields.get("publisher") or "")
        reference = f"{authors} ({year}). {title}." + (f" *{venue}*." if venue else "")
        entries[key] = BibEntry(key, f"{who}, {year}", f"{who} ({year})", reference)
    return entries


# --- the book: pages, numbers, targets --------------------------------------------------------

def _toc_entries(entries, numbered: bool, out: list) -> None:
    for entry in entries or []:
        if "file" in entry:
            out.append((entry["file"], numbered))
        for key in ("chapters", "sections"):
            _toc_entries(entry.get(key), numbered, out)


def toc_documents(root: Path = ROOT) -> list[tuple[str, tuple[int, ...]]]:
    """``(docname, secnum)`` in the order Sphinx numbers them: the root page, then the table of
    contents; ``secnum`` is ``(n,)`` for the n-th page of a numbered part, else ``()``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [(toc["root"], ())]
    chapter = 0
    for part in toc.get("parts") or [{"chapters": toc.get("chapters"),
                                      "numbered": toc.get("numbered", False)}]:
        flat: list = []
        _toc_entries(part.get("chapters"), bool(part.get("numbered")), flat)
        for docname, numbered in flat:
            if numbered:
                chapter += 1
                docs.append((docname, (chapter,)))
            else:
                docs.append((docname, ()))
    return docs


def site_url(root: Path = ROOT) -> str:
    """The published site: ``html.baseurl`` of ``_config.yml``, else the GitHub Pages address
    of ``repository.url``."""
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    base = ((cfg.get("html") or {}).get("baseurl") or "").strip()
    if base:
        return base.rstrip("/") + "/"
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?",
                     (cfg.get("repository") or {}).get("url", ""))
    if not m:
        raise ExportError("_config.yml: repository.url is not a GitHub URL and html.baseurl "
                          "is not set; the export links to the site")
    return f"https://{m[1]}.github.io/{m[2]}/"


@dataclass
class Cell:
    """One exported cell, before the version (reader, student, instructor) is chosen."""

    kind: str  # "markdown" or "code"
    source: str
    metadata: dict = field(default_factory=dict)
    solution: str | None = None  # the exercise label, for a cell of a gated solution
    role: str = ""  # "title", "exercise:<label>", "caption", "answer-slot:<label>" ...


class Book:
    """The whole book, read once: every page's cells, and every numbered target."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self.site = site_url(root)
        self.macros = book_macros(root / "_config.yml")
        self.bib = load_bibliography(root / "references.bib")
        self.docs = toc_documents(root)
        self.targets: dict[str, Target] = {}
        self.titles: dict[str, str] = {}
        counters: dict[str, dict[tuple, int]] = {}
        for docname, secnum in self.docs:
            path = root / f"{docname}.md"
            if not path.exists():
                raise ExportError(f"{docname}.md (in _toc.yml) does not exist")
            page = _Page(self, docname, secnum, counters, collect=True)
            page.run()

    def raw_url(self, path: str) -> str:
        """A file of the repository, as GitHub serves it raw (for images in notebooks)."""
        cfg = yaml.safe_load((self.root / "_config.yml").read_text())["repository"]
        m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", cfg["url"])
        return f"https://raw.githubusercontent.com/{m[1]}/{m[2]}/{cfg.get('branch', 'main')}/{path}"

    def url(self, doc: str, anchor: str = "") -> str:
        return f"{self.site}{doc}.html" + (f"#{anchor}" if anchor else "")

    def numbered(self, label: str) -> str:
        """ "Exercise 4.1 (Title)": a target's lead as the site writes it (title rendered)."""
        t = self.target(label, "ref")
        page = _Page(self, t.doc, dict(self.docs)[t.doc], {}, collect=False)
        num = f" {t.numtext}" if t.number else ""
        title = f" ({page.inline(t.title)})" if t.title else ""
        return f"{FIGNAME.get(t.kind, t.kind.capitalize())}{num}{title}"

    def target(self, label: str, role: str) -> Target:
        t = self.targets.get(label)
        if t is None:
            raise ExportError(f"{{{role}}}`{label}`: no such label in the book")
        return t


class _Page:
    """One pass over one page: numbering (``collect=True``) or rendering (``False``).

    Both passes walk the page in the same order with the same code, so the numbers the
    rendering pass reads back are the ones the collecting pass assigned.
    """

    def __init__(self, book: Book, docname: str, secnum: tuple, counters: dict,
                 collect: bool) -> None:
        self.book, self.doc, self.secnum = book, docname, secnum
        self.counters, self.collect = counters, collect
        self.cells: list[Cell] = []
        self.solution: str | None = None  # label of the gated solution we are in
        self.pending_label: str | None = None  # a (label)= waiting for its heading
        self.headings = [0, 0, 0, 0, 0, 0]
        self.cited: list[str] = []
        self.seq = 0  # this page's numbered items, in order (for the rendering pass)

    # numbering -------------------------------------------------------------------------
    def enumerate(self, kind: str, label: str | None, anchor: str, title: str = "",
                  numbered: bool = True) -> Target | None:
        """Register a numbered item (collect pass) or find it again (render pass)."""
        if not self.collect:
            return self.book.targets.get(label) if label else None
        number = None
        if numbered and anchor:
            counter = self.counters.setdefault(kind, {})
            counter[self.secnum] = counter.get(self.secnum, 0) + 1
            number = (*self.secnum, counter[self.secnum])
        target = Target(label or anchor, kind, self.doc, anchor, number, title)
        if label:
            if label in self.book.targets:
                raise ExportError(f"{self.doc}: label {label!r} defined twice")
            self.book.targets[label] = target
        return target

    # the walk ---------------------------------------------------------------------------
    def run(self) -> None:
        text = (self.book.root / f"{self.doc}.md").read_text()
        nb = jupytext.reads(text, fmt="md:myst")
        for cell in nb.cells:
            if cell.cell_type == "code":
                self.code_cell(cell)
            elif cell.cell_type == "markdown":
                self.markdown(cell.source)
            # raw cells are not part of the site's text
        if self.solution:
            raise ExportError(f"{self.doc}: solution-start {self.solution} has no "
                              "solution-end")

    def emit(self, kind: str, source: str, **kw) -> None:
        if self.collect:
            return
        solution = kw.pop("solution", self.solution)
        if kind == "markdown" and self.cells and self.cells[-1].kind == "markdown" \
                and self.cells[-1].solution == solution and not self.cells[-1].role \
                and not kw.get("role"):
            self.cells[-1].source += "\n\n" + source
            return
        self.cells.append(Cell(kind, source, solution=solution, **kw))

    def code_cell(self, cell) -> None:
        meta = {k: copy.deepcopy(v) for k, v in cell.metadata.items()}
        fig = ((meta.get("mystnb") or {}).get("figure") or {})
        caption = fig.get("caption")
        target = None
        if caption is not None:
            name = fig.get("name")
            target = self.enumerate("figure", name, name or "", caption, numbered=bool(name))
        self.emit("code", cell.source, metadata=meta)
        if caption is not None and not self.collect:
            num = target.numtext if target and target.number else ""
            lead = f"**Fig. {num}.**" if num else "**Figure.**"
            self.emit("markdown", f"{lead} {self.inline(caption.strip())}", role="caption")

    def markdown(self, text: str) -> None:
        out = self.blocks(text)
        if out:
            self.emit("markdown", out)

    def blocks(self, text: str) -> str:
        """Render markdown ``text`` block by block; directive blocks may emit cells of their
        own (solutions), in which case the text before them is emitted first."""
        tokens = parse(text)
        lines = text.split("\n")
        parts: list[str] = []
        for first, last in _block_ranges(tokens):
            tok = tokens[first]
            if tok.type in ("myst_target",):
                self.pending_label = tok.content.strip()
                continue
            if tok.type in ("myst_line_comment", "myst_block_break", "front_matter"):
                continue
            if tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
                name = tok.info.strip()[1:].split("}", 1)[0].strip()
                if name in ("solution-start", "solution-end", "solution", "exercise"):
                    if parts:
                        self.emit("markdown", "\n\n".join(parts))
                        parts = []
                if name in ("solution-start", "solution-end", "solution"):
                    self.solution_directive(tok)
                    continue
                parts.append(self.directive(tok))
                continue
            if tok.type in ("math_block", "math_block_label", "amsmath"):
                parts.append(self.math_block(tok))
                continue
            src = "\n".join(lines[tok.map[0]:tok.map[1]])
            if tok.type == "heading_open":
                src = self.heading(tok, tokens[first + 1], src)
            parts.append(self.substitute(src, tokens[first:last + 1]))
            self.pending_label = None
        return "\n\n".join(p for p in parts if p.strip())

    # blocks -----------------------------------------------------------------------------
    def heading(self, tok, inline, src: str) -> str:
        level = int(tok.tag[1])
        self.headings[level - 1] += 1
        self.headings[level:] = [0] * (6 - level)
        title = self.plain(inline)
        number = ""
        if self.secnum:
            parts = [self.secnum[0], *self.headings[1:level]]
            number = ".".join(map(str, parts)) + "."
        label = self.pending_label
        if self.collect:
            if label:
                if label in self.book.targets:
                    raise ExportError(f"{self.doc}: label {label!r} defined twice")
                self.book.targets[label] = Target(label, "section", self.doc, label,
                                                  None, title)
            if level == 1 and self.doc not in self.book.titles:
                self.book.titles[self.doc] = title
        if not number:
            return src
        hashes, _, rest = src.partition(" ")
        return f"{hashes} {number} {rest.lstrip()}"

    def math_block(self, tok) -> str:
        tex = expand_macros(tok.content.strip("\n"), self.book.macros)
        if tok.type == "amsmath":
            return f"$$\n{tex}\n$$"
        if tok.type == "math_block_label":
            label = tok.info.strip()
            target = self.enumerate("displaymath", label, f"equation-{label}")
            if target is not None and target.number:
                tex = f"{tex} \\tag{{{target.numtext}}}"
        return f"$$\n{tex}\n$$"

    def solution_directive(self, tok) -> None:
        name, arg, options, body = directive_parts(tok)
        if name == "solution-end":
            if not self.solution:
                raise ExportError(f"{self.doc}: solution-end without solution-start")
            self.solution = None
            return
        if not arg:
            raise ExportError(f"{self.doc}: {{{name}}} needs the exercise's label")
        if self.solution:
            raise ExportError(f"{self.doc}: {{{name}}} {arg} inside the solution to "
                              f"{self.solution}")
        self.solution = arg
        if body.strip():
            self.markdown(body)
        if name == "solution":
            self.solution = None

    def directive(self, tok) -> str:
        name, arg, options, body = directive_parts(tok)
        label = options.get("label") or options.get("name")
        if name.startswith("prf:"):
            typ = name[4:]
            if typ == "proof":
                return self.lead("*Proof.*", body)
            if typ not in PROOF_TYPES:
                raise ExportError(f"{self.doc}: unknown sphinx-proof directive {{{name}}}")
            numbered = "nonumber" not in options
            anchor = label or ""
            target = self.enumerate(typ, label, anchor, arg, numbered=numbered)
            return self.lead(self.numbered_title(typ, target, arg), body)
        if name == "exercise":
            numbered = "nonumber" not in options
            target = self.enumerate("exercise", label, label or "", arg, numbered=numbered)
            text = self.lead(self.numbered_title("exercise", target, arg), body)
            self.emit("markdown", text, role=f"exercise:{label or ''}")
            return ""
        if name == "admonition":
            return self.lead(f"**{self.inline(arg)}**" if arg else "", body)
        if name in ADMONITIONS:
            title = arg or name.capitalize()
            return self.lead(f"**{self.inline(title)}.**", body)
        if name == "dropdown":
            inner = self.blocks(body)
            return f"<details>\n<summary>{self.inline(arg)}</summary>\n\n{inner}\n\n</details>"
        if name in ("code-block", "code", "sourcecode"):
            return f"```{arg}\n{body}\n```"
        if name == "math":
            tex = expand_macros(body, self.book.macros)
            if label:
                target = self.enumerate("displaymath", label, f"equation-{label}")
                if target is not None and target.number:
                    tex = f"{tex} \\tag{{{target.numtext}}}"
            return f"$$\n{tex}\n$$"
        if name == "figure":
            caption = body.strip()
            target = self.enumerate("figure", label, label or "", caption,
                                    numbered=bool(label and caption))
            src = self.book.raw_url(str(Path(self.doc).parent / arg).replace("\\", "/"))
            alt = options.get("alt", "")
            num = target.numtext if target and target.number else ""
            lead = f"**Fig. {num}.** " if num else ""
            return f"![{alt}]({src})\n\n{lead}{self.inline(caption)}" if caption else \
                f"![{alt}]({src})"
        if name == "bibliography":
            return ""
        if name == "list-table":
            return self.list_table(arg, body, options)
        if self.collect:  # a page that is never exported may use other directives
            self.blocks(body)
            return ""
        raise ExportError(f"{self.doc}: the export does not know the directive {{{name}}}")

    def numbered_title(self, kind: str, target: Target | None, title: str) -> str:
        name = FIGNAME[kind]
        num = f" {target.numtext}" if target and target.number else ""
        title = f" ({self.inline(title)})" if title else ""
        return f"**{name}{num}{title}.**"

    def lead(self, lead: str, body: str) -> str:
        inner = self.blocks(body)
        return f"{lead}\n\n{inner}" if lead else inner

    def list_table(self, title: str, body: str, options: dict) -> str:
        tokens = parse(body)
        rows: list[list[str]] = []
        lines = body.split("\n")
        depth = 0
        for i, tok in enumerate(tokens):
            if tok.type == "bullet_list_open":
                depth += 1
            elif tok.type == "bullet_list_close":
                depth -= 1
            elif tok.type == "list_item_open" and depth == 1:
                rows.append([])
            elif tok.type == "list_item_open" and depth == 2:
                j, d = i, 1
                while d:
                    j += 1
                    d += tokens[j].nesting if tokens[j].type.startswith("list_item") else 0
                src = " ".join(ln.strip() for ln in lines[tok.map[0]:tok.map[1]])
                src = src[1:].strip() if src.startswith(("*", "-")) else src
                rows[-1].append(self.substitute(src, tokens[i:j + 1]))
        if not rows:
            return ""
        n = max(len(r) for r in rows)
        rows = [r + [""] * (n - len(r)) for r in rows]
        header = int(options.get("header-rows", 0) or 0)
        head, rest = (rows[0], rows[1:]) if header else ([""] * n, rows)
        out = ["| " + " | ".join(head) + " |", "|" + " --- |" * n]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rest]
        return (f"**{self.inline(title)}**\n\n" if title else "") + "\n".join(out)

    # inline -----------------------------------------------------------------------------
    def inline(self, text: str) -> str:
        """Inline markdown ``text`` (a title, a caption) with roles resolved, maths expanded."""
        if not text.strip():
            return text
        tokens = parse(text)
        return self.substitute(text, tokens).strip()

    def plain(self, inline_token) -> str:
        out = []
        for child in inline_token.children or []:
            if child.type in ("text", "code_inline"):
                out.append(child.content)
            elif child.type == "math_inline":
                out.append(f"${child.content}$")
            elif child.type == "softbreak":
                out.append(" ")
        return "".join(out).strip()

    def substitute(self, src: str, tokens) -> str:
        """``src`` with every role and inline formula of ``tokens`` (its parse) rewritten."""
        pos = 0
        for tok in tokens:
            for child in tok.children or []:
                if child.type == "myst_role":
                    name = child.meta.get("name", "")
                    at, raw = _role_source(name, child.content, src, pos)
                    new = self.role(name, child.content)
                elif child.type in ("math_inline", "math_inline_double"):
                    delim = "$$" if child.type == "math_inline_double" else "$"
                    found = _find(f"{delim}{child.content}{delim}", src, pos)
                    if not found:
                        raise ExportError(f"{self.doc}: formula {delim}{child.content}{delim} "
                                          "not found in its block")
                    at, raw = found
                    new = f"{delim}{expand_macros(child.content, self.book.macros)}{delim}"
                else:
                    continue
                src = src[:at] + new + src[at + len(raw):]
                pos = at + len(new)
        return src

    def role(self, name: str, content: str) -> str:
        explicit, label = None, content.strip()
        m = re.fullmatch(r"(?s)(.*?)\s*<([^<>]+)>", label)  # "text <label>", MyST's own form
        if m and name not in ("math", "cite", "cite:p", "cite:t"):
            explicit, label = m.group(1).strip(), m.group(2).strip()
        if name == "math":
            return f"${expand_macros(content, self.book.macros)}$"
        if name in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
            keys = [k.strip() for k in content.split(",") if k.strip()]
            for k in keys:
                if k not in self.book.bib:
                    raise ExportError(f"{self.doc}: {{cite}}`{k}`: not in references.bib")
                if k not in self.cited:
                    self.cited.append(k)
            entries = sorted((self.book.bib[k] for k in keys), key=lambda e: e.cite)
            if name.startswith("cite:t"):
                return ", ".join(e.cite_t for e in entries)
            return "(" + "; ".join(e.cite for e in entries) + ")"
        if name in ("code", "samp", "kbd", "file", "command", "program", "abbr"):
            return f"`{content}`"
        if name == "quoted":  # a number quoted from a cited paper (book/_ext/quoted.py)
            return content
        if name == "glue:text":
            # A number the page computes (diffnotes.glue): the notebook has no outputs yet, so
            # the text names the key, and the cell that computes it prints "key = value".
            key = content.split("::")[-1]
            return f"`{key.rsplit(':', 1)[0] if ':' in key else key}`"
        if name not in ("eq", "prf:ref", "ref", "numref", "doc", "download"):
            raise ExportError(f"{self.doc}: the export does not know the role {{{name}}}")
        if self.collect:
            return content
        if name == "doc":
            doc = str(Path(self.doc).parent / label) if not label.startswith("/") \
                else label.lstrip("/")
            doc = str(Path(doc)).replace("\\", "/")
            if doc not in self.book.titles:
                raise ExportError(f"{self.doc}: {{doc}}`{content}`: no such page")
            return f"[{explicit or self.book.titles[doc]}]({self.book.url(doc)})"
        if name == "download":
            return f"`{explicit or label}`"
        t = self.book.target(label, name)
        url = self.book.url(t.doc, t.anchor)
        if name == "eq":
            if not t.number:
                raise ExportError(f"{self.doc}: {{eq}}`{label}` has no number")
            return f"[({t.numtext})]({url})"
        if name == "ref":
            if explicit:
                text = explicit
            elif t.kind == "section":
                text = t.title
            elif t.kind in ("exercise", *PROOF_TYPES):
                num = f" {t.numtext}" if t.number else ""
                text = f"{FIGNAME[t.kind]}{num}" + (f" ({self.inline(t.title)})" if t.title
                                                    else "")
            else:
                text = self.inline(t.title) or t.label
            return f"[{text}]({url})"
        # numref and prf:ref: "Theorem 4.2", "Fig. 4.1"
        if t.kind == "section":
            return f"[{explicit or t.title}]({url})"
        if not t.number:
            return f"[{explicit or FIGNAME.get(t.kind, t.kind)}]({url})"
        if explicit:
            text = explicit.replace("{number}", t.numtext).replace("%s", t.numtext) \
                .replace("{name}", t.title)
        else:
            text = f"{FIGNAME.get(t.kind, t.kind.capitalize())} {t.numtext}"
        return f"[{text}]({url})"


# --- the notebook ----------------------------------------------------------------------------

def references_cell(book: Book, keys: list[str]) -> str:
    lines = ["## References", ""]
    for entry in sorted((book.bib[k] for k in keys), key=lambda e: e.reference):
        lines.append(f"- {entry.reference}")
    return "\n".join(lines)


def export_cells(book: Book, docname: str) -> tuple[list[Cell], list[str]]:
    """The page's cells and the citation keys it uses (in order of first use)."""
    page = _Page(book, docname, dict(book.docs)[docname], {}, collect=False)
    page.run()
    cells = [c for c in page.cells if c.kind == "code" or c.source.strip()]
    if cells and cells[0].kind == "markdown":
        cells[0].role = "title"
    return cells, page.cited


def new_notebook(cells: list[nbformat.NotebookNode], kernelspec: dict | None = None):
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = kernelspec or {"display_name": "Python 3", "language": "python",
                                               "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["colab"] = {"provenance": []}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb
