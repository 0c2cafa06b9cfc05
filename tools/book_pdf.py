"""The whole book as one PDF, printed from the built HTML by Chromium (no LaTeX).

Every page of the table of contents (``_toc.yml``, the landing page first) is opened from
``_build/html`` in Debian's Chromium (``/usr/bin/chromium``, driven by Playwright, MathJax
served from the pinned npm package of ``tools/site_test.py``), printed with the theme's print
style once MathJax has typeset it, and the pages are joined with ``pdfunite`` (Debian's
poppler-utils). The result, ``_build/pdf/book.pdf``, is also copied to ``_build/html/book.pdf``
so the published site serves it at the address the landing page links.

Then the PDF is checked from its text (``pdftotext``): no raw ``$$``, ``\\(``, ``\\[`` or
directive/role syntax (``{prf:``, ``{eq}``, ```` ```{ ````, ...) is left, the page count is
plausible (at least two printed pages per chapter, at most 60 per page of the book), and every
figure caption of the site ("Fig. 4.1") is in it. Without Chromium or poppler-utils it prints
``SKIPPED: ...`` and exits 0, unless ``--require`` is given.

    python tools/book_pdf.py [_build/html] [--out _build/pdf/book.pdf] [--check-only]
"""

from __future__ import annotations

import argparse
import html as html_lib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import export  # noqa: E402
import site_test  # noqa: E402

ROOT = export.ROOT
PRINT_CSS = """
@page { size: A4; margin: 16mm 14mm; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article, .prev-next-area,
.bd-footer, .bd-footer-article, .bd-footer-content, #pst-back-to-top, .headerlink,
.header-article-items { display: none !important; }
.bd-page-width, .bd-container, .bd-container__inner, .bd-main, .bd-main .bd-content,
.bd-main .bd-content .bd-article-container, .bd-article {
  max-width: 100% !important; width: 100% !important; margin: 0 !important;
  padding-left: 0 !important; padding-right: 0 !important; flex: 1 1 100% !important; }
pre, div.highlight pre { white-space: pre-wrap !important; word-break: break-word; }
"""
RAW = re.compile(r"\$\$|\\\(|\\\[|\{(?:prf:[\w-]+|eq|ref|numref|cite(?::\w+)?|doc|exercise|"
                 r"solution(?:-start|-end)?|code-cell|admonition|math|figure)\}|```\{|:::\{")
CAPTION = re.compile(r"Fig\. (\d+(?:\.\d+)*)")


def pages_in_order(html_dir: Path) -> list[Path]:
    pages = []
    for docname, _ in export.toc_documents(ROOT):
        path = html_dir / f"{docname}.html"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: build the book first (make book)")
        pages.append(path)
    return pages


def print_pages(pages: list[Path], html_dir: Path, out: Path, args) -> None:
    from playwright.sync_api import sync_playwright

    npm_dir = (args.npm_cache or html_dir.parent / "site_cache" / "npm").resolve()
    errors = site_test.ensure_packages({("mathjax", site_test.NPM_PINS["mathjax"])}, npm_dir)
    if errors:
        raise RuntimeError("; ".join(errors))
    server, base = site_test.serve(html_dir)

    def on_route(route):
        for rule in site_test.CDN_RULES:
            local = rule.local(route.request.url, npm_dir)
            if local is not None and local.is_file():
                route.fulfill(path=str(local), headers={"Access-Control-Allow-Origin": "*"})
                return
        route.abort("blockedbyclient")

    with tempfile.TemporaryDirectory(prefix="book-pdf-") as tmp, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"), executable_path=args.chromium, headless=True,
            args=site_test.CHROMIUM_ARGS)
        context.set_default_timeout(args.timeout * 1000)
        context.route(lambda url: not url.startswith(base), on_route)
        parts = []
        for i, path in enumerate(pages):
            page = context.new_page()
            page.goto(base + path.relative_to(html_dir).as_posix(), wait_until="load")
            if page.evaluate("() => !!document.querySelector('.math')"):
                page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                       "MathJax.startup.promise")
                page.evaluate("() => MathJax.startup.promise.then(() => true)")
            page.add_style_tag(content=PRINT_CSS)
            page.evaluate("() => document.fonts.ready.then(() => true)")
            part = Path(tmp) / f"{i:03d}.pdf"
            page.pdf(path=str(part), format="A4", print_background=True,
                     prefer_css_page_size=True)
            page.close()
            parts.append(str(part))
            print(f"book_pdf: {path.relative_to(html_dir)}", flush=True)
        context.close()
        server.shutdown()
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["pdfunite", *parts, str(out)], check=True)


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))


def site_figures(pages: list[Path]) -> set[str]:
    """The numbers of the site's figure captions ("4.1"), from the built HTML."""
    numbers = set()
    for path in pages:
        html = path.read_text(encoding="utf-8")
        numbers |= set(re.findall(r'<span class="caption-number">Fig\. (\d+(?:\.\d+)*)', html))
    return numbers


def site_code(pages: list[Path]) -> str:
    """All code shown on the site (``<pre>`` blocks), white space squeezed: syntax quoted in a
    code cell (a comment naming an equation label) is the code's, not the printed text's."""
    blobs = []
    for path in pages:
        for pre in re.findall(r"<pre[^>]*>(.*?)</pre>", path.read_text(encoding="utf-8"), re.S):
            blobs.append(html_lib.unescape(re.sub(r"<[^>]+>", "", pre)))
    return " ".join(" ".join(blobs).split())


def check_pdf(pdf: Path, pages: list[Path]) -> list[str]:
    """Problems of the printed book, from its text."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    failures = []
    code = site_code(pages)
    in_code = 0
    for m in RAW.finditer(text):
        line_start = text.rfind("\n", 0, m.start()) + 1
        line_end = text.find("\n", m.end())
        line = " ".join(text[line_start:line_end].split())
        around = " ".join(text[max(line_start, m.start() - 25):min(line_end, m.end() + 25)]
                          .split())
        if around and around in code:
            in_code += 1
            continue
        if len(failures) < 10:
            failures.append(f"raw syntax {m.group(0)!r} in the text: ...{line[:120]}...")
    if in_code:
        print(f"book_pdf: note: {in_code} directive/role spelling(s) inside code cells "
              "(printed as code, not counted)")
    n = pdf_pages(pdf)
    chapters = sum(1 for p in pages if re.match(r"\d\d", p.name))
    if not 2 * chapters <= n <= 60 * len(pages):
        failures.append(f"{n} pages for {len(pages)} pages of the book ({chapters} chapters)")
    want = site_figures(pages)
    got = set(CAPTION.findall(text))
    missing = sorted(want - got, key=lambda s: [int(x) for x in s.split(".")])
    if missing:
        failures.append(f"{len(missing)} of the site's {len(want)} figure captions missing: "
                        f"Fig. {', '.join(missing[:10])}")
    if not want:
        failures.append("the site has no figure captions: is the build complete?")
    print(f"book_pdf: {pdf}: {n} pages, {len(want & got)} of {len(want)} figure captions, "
          f"{len(text)} characters of text")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "pdf" / "book.pdf")
    parser.add_argument("--check-only", action="store_true", help="check an existing PDF")
    parser.add_argument("--require", action="store_true",
                        help="fail when Chromium or poppler-utils is missing")
    parser.add_argument("--chromium", default=site_test.CHROMIUM)
    parser.add_argument("--npm-cache", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)
    missing = [tool for tool in ("pdfunite", "pdftotext", "pdfinfo") if not shutil.which(tool)]
    if not Path(args.chromium).exists():
        missing.append(args.chromium)
    if missing:
        message = f"{', '.join(missing)} not installed (apt-get install chromium poppler-utils)"
        if args.require:
            print(f"book_pdf: FAIL: {message}; --require was given")
            return 1
        print(f"SKIPPED: {message}")
        return 0
    t0 = time.monotonic()
    html_dir = args.html_dir.resolve()
    pages = pages_in_order(html_dir)
    if not args.check_only:
        print_pages(pages, html_dir, args.out, args)
        shutil.copyfile(args.out, html_dir / "book.pdf")
    failures = check_pdf(args.out, pages)
    for f in failures:
        print(f"  - {f}")
    print(f"book_pdf: {'FAIL' if failures else 'OK'} ({time.monotonic() - t0:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
