"""Browser test of the exported notebooks: what a reader sees in Jupyter, checked in Chromium.

Every page of the book is exported afresh (``tools/notebooks.py``: reader, student and
instructor versions), each notebook rendered to HTML by ``jupyter nbconvert``'s lab template
(with one addition, below), served on localhost and opened in Debian's Chromium
(``/usr/bin/chromium``, driven by Playwright), with MathJax served from the npm package that
``tools/site_test.py`` pins (its CDN rules and npm cache are reused). It fails on

* any MathJax error (``mjx-merror``) or undefined TeX macro ("Undefined control sequence");
* any raw directive fence, role, ``(label)=`` line or TeX delimiter left in the text outside
  code, and any unresolved reference ("??");
* in the reader version, a solution visible without a click: every ``<details>`` closed and
  its content hidden, every solution code cell hidden by metadata.

The lab template ignores ``jupyter.source_hidden``, which JupyterLab shows as a collapsed input
(Colab shows a ``cellView: form`` cell's ``# @title`` and hides the code); the test's template
renders such an input inside a closed ``<details>``, as those front ends do. The lab template
loads MathJax 2 from a CDN; the test's pages load the site's MathJax 3 with the book's
delimiters instead (JupyterLab 4 typesets with MathJax 3).

Before the browser, every link into the site is checked against the built site when there is
one (``--site``, default ``_build/html``): the anchor exists on that page, and the number the
notebook writes ("Theorem 4.2", "(4.3)", "Fig. 4.1") is the one the site shows there.

Screenshots of a theorem, an exercise, a hidden solution and the same solution opened go to
``_build/screenshots/notebooks/``. Without Chromium it prints ``SKIPPED: ...`` (after the
checks that need no browser) and exits 0, unless ``--require`` is given.

    python tools/notebook_test.py [--site _build/html] [--require] [--versions reader ...]
"""

from __future__ import annotations

import argparse
import html as html_lib
import re
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nbformat  # noqa: E402
import site_test  # noqa: E402

import notebooks  # noqa: E402

ROOT = notebooks.ROOT

TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{% block input_group -%}
{%- if cell.metadata.get('jupyter', {}).get('source_hidden') -%}
<details class="nbtest-hidden-input"><summary>{{ cell.source.split('\\n')[0]
  | replace('# @title ', '') | e }} (code hidden: click to show)</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
"""

MATHJAX3 = """\
<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']],
        displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true},
  options: {ignoreHtmlClass: 'tex2jax_ignore|jp-CodeMirrorEditor|jp-OutputArea|highlight',
            processHtmlClass: 'tex2jax_process'}
};
</script>
<script defer src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
"""
_MATHJAX_BLOCK = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->",
                            re.S)


def render_html(nb_path: Path, out: Path, template_dir: Path) -> Path:
    """``nb_path`` as nbconvert's lab template renders it (hidden inputs collapsed, MathJax 3)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="nbtest", extra_template_basedirs=[str(template_dir)])
    body, _ = exporter.from_notebook_node(nbformat.read(nb_path, as_version=4))
    body, n = _MATHJAX_BLOCK.subn(lambda m: MATHJAX3, body)
    if n != 1:
        raise RuntimeError(f"{nb_path.name}: nbconvert's MathJax block not found ({n})")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def write_template(folder: Path) -> Path:
    tdir = folder / "nbtest"
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "index.html.j2").write_text(TEMPLATE)
    (tdir / "conf.json").write_text('{"base_template": "lab", "mimetypes": {"text/html": true}}')
    return folder


# --- checks without a browser ---------------------------------------------------------------

LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def site_links(nb) -> list[tuple[str, str]]:
    """``(text, url)`` of every markdown link in ``nb``."""
    out = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            out += LINK.findall(cell.source)
    return out


def _text_after(page: str, anchor: str, n: int = 4000) -> str | None:
    m = re.search(rf'id="{re.escape(anchor)}"', page)
    if not m:
        return None
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", page[m.start():m.start() + n]))


def check_against_site(nb, site_dir: Path, site_url: str, cache: dict) -> list[str]:
    """Every link into the site: the page and anchor exist, and the link's number is there."""
    failures = []
    for text, url in site_links(nb):
        if not url.startswith(site_url):
            continue
        cache["links"] = cache.get("links", 0) + 1
        parts = urlsplit(url[len(site_url) - 1:])
        page_file = site_dir / parts.path.lstrip("/")
        if page_file not in cache:
            cache[page_file] = page_file.read_text(encoding="utf-8") \
                if page_file.is_file() else None
        page = cache[page_file]
        if page is None:
            failures.append(f"link {text!r} -> {parts.path}: no such page on the site")
            continue
        if not parts.fragment:
            continue
        after = _text_after(page, parts.fragment)
        if after is None:
            failures.append(f"link {text!r} -> {parts.path}#{parts.fragment}: no such anchor")
            continue
        number = re.search(r"\d+(?:\.\d+)*", text)
        if number and re.fullmatch(r"\(?(?:Theorem|Lemma|Definition|Corollary|Proposition|"
                                   r"Remark|Example|Exercise|Fig\.|Table|Equation)?\s*"
                                   r"\d+(?:\.\d+)*\)?", text):
            want = re.sub(r"\s+", " ", text)
            got = re.sub(r"\s+", " ", after[:1500])
            if want not in got:
                failures.append(f"link {text!r} -> {parts.path}#{parts.fragment}: the site "
                                f"shows {got.strip()[:80]!r}")
    return failures


def check_reader_metadata(nb) -> list[str]:
    failures = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.startswith("# @title Solution"):
            if cell.metadata.get("cellView") != "form" or \
                    not cell.metadata.get("jupyter", {}).get("source_hidden"):
                failures.append(f"cell {i}: solution code not hidden by metadata")
        if cell.cell_type == "markdown" and "Solution to" in cell.source \
                and not cell.source.startswith("<details>"):
            failures.append(f"cell {i}: solution prose outside <details>")
    return failures


# --- the browser ----------------------------------------------------------------------------

INSPECT_JS = r"""
(reader) => {
  const short = (s, n = 80) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
  // checkVisibility() is false inside a closed <details> (content-visibility: hidden)
  const visible = (el) => (el.checkVisibility ? el.checkVisibility()
                           : !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length));
  const merrors = [...document.querySelectorAll('mjx-merror')].map(
    (e) => e.getAttribute('data-mjx-error') || short(e.textContent));
  const undefinedMacros = [];
  if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML) {
    for (const item of MathJax.startup.document.math) {
      const m = MathJax.startup.toMML(item.root).match(/<mtext mathcolor="red">(\\[^<]*)<\/mtext>/);
      if (m) undefinedMacros.push(m[1] + ' in ' + short(item.math, 60));
    }
  }
  const raw = [];
  const skip = 'pre, code, script, style, textarea, mjx-container, .jp-CodeMirrorEditor, '
               + '.jp-OutputArea';
  const names = 'prf:[\\w-]+|eq|ref|numref|cite(:\\w+)?|doc|exercise|solution(-start|-end)?|'
                + 'code-cell|admonition|math|figure';
  const rawRe = new RegExp('\\$\\$|\\\\\\(|\\\\\\[|\\{(' + names + ')\\}|^\\s*\\([\\w-]+\\)=\\s*$'
                           + '|```\\{|:::\\{|\\?\\?', 'm');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.textContent.match(rawRe);
    if (m && !n.parentElement.closest(skip)) {
      const i = n.textContent.indexOf(m[0]);
      raw.push(JSON.stringify(m[0]) + ' in "'
               + short(n.textContent.slice(Math.max(0, i - 30)), 70) + '"');
    }
  }
  const shown = [];
  if (reader) {
    for (const d of document.querySelectorAll('details')) {
      if (d.open) { shown.push('open <details>: ' + short(d.textContent)); continue; }
      for (const c of d.children) {
        if (c.tagName !== 'SUMMARY' && visible(c)) {
          shown.push('visible in closed <details>: ' + short(c.textContent));
        }
      }
    }
    const w2 = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = w2.nextNode(); n; n = w2.nextNode()) {
      if (/Solution to Exercise/.test(n.textContent) && !n.parentElement.closest('summary')
          && visible(n.parentElement)) {
        shown.push('solution text outside a summary: ' + short(n.textContent));
      }
    }
  }
  return {merrors, undefinedMacros, raw, shown,
          mjx: document.querySelectorAll('mjx-container').length,
          details: document.querySelectorAll('details').length,
          mathjax: !!(window.MathJax && MathJax.startup)};
}
"""


def screenshot_element(page, selector_js: str, path: Path) -> bool:
    handle = page.evaluate_handle(selector_js)
    element = handle.as_element()
    if element is None:
        return False
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(path))
    return True


THEOREM_JS = """() => [...document.querySelectorAll('.jp-MarkdownCell strong')]
  .find((s) => /^Theorem \\d/.test(s.textContent))?.closest('.jp-Cell') || null"""
EXERCISE_JS = """() => [...document.querySelectorAll('.jp-MarkdownCell strong')]
  .find((s) => /^Exercise \\d/.test(s.textContent))?.closest('.jp-Cell') || null"""
SOLUTION_JS = """() => [...document.querySelectorAll('.jp-MarkdownCell details')]
  .find((d) => /Solution to/.test(d.textContent))?.closest('.jp-Cell') || null"""


def browse(html_files: dict[str, Path], html_root: Path, args) -> list[str]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    npm_dir = (args.npm_cache or ROOT / "_build" / "site_cache" / "npm").resolve()
    failures = site_test.ensure_packages({("mathjax", site_test.NPM_PINS["mathjax"])}, npm_dir)
    server, base = site_test.serve(html_root)
    shots = args.screenshots
    shots.mkdir(parents=True, exist_ok=True)

    def on_route(route):
        url = route.request.url
        for rule in site_test.CDN_RULES:
            local = rule.local(url, npm_dir)
            if local is not None and local.is_file():
                route.fulfill(path=str(local), headers={"Access-Control-Allow-Origin": "*"})
                return
        route.abort("blockedbyclient")

    shot_done = False
    with tempfile.TemporaryDirectory(prefix="nb-test-chromium-") as profile, \
            sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, headless=True,
            args=site_test.CHROMIUM_ARGS, viewport={"width": 1100, "height": 900})
        context.set_default_timeout(args.timeout * 1000)
        context.route(lambda url: not url.startswith(base), on_route)
        for name, path in html_files.items():
            start = time.monotonic()
            page = context.new_page()
            rel = path.relative_to(html_root).as_posix()
            problems = []
            try:
                page.goto(base + rel, wait_until="load")
                page.wait_for_function("() => window.MathJax && MathJax.startup && "
                                       "MathJax.startup.promise")
                page.evaluate("() => MathJax.startup.promise.then(() => true)")
                info = page.evaluate(INSPECT_JS, name.startswith("reader/"))
                if not info["mathjax"]:
                    problems.append("MathJax did not load")
                problems += [f"MathJax error: {m}" for m in info["merrors"][:10]]
                problems += [f"undefined TeX macro: {m}" for m in info["undefinedMacros"][:10]]
                problems += [f"raw syntax: {m}" for m in info["raw"][:10]]
                problems += [f"solution shown without a click: {m}" for m in info["shown"][:10]]
                if name.startswith("reader/") and not shot_done:
                    ok = screenshot_element(page, THEOREM_JS, shots / "theorem.png")
                    ok &= screenshot_element(page, EXERCISE_JS, shots / "exercise.png")
                    ok &= screenshot_element(page, SOLUTION_JS, shots / "solution-hidden.png")
                    if ok:
                        page.evaluate(SOLUTION_JS.replace(
                            "?.closest('.jp-Cell') || null", "?.setAttribute('open', '')"))
                        screenshot_element(page, SOLUTION_JS, shots / "solution-opened.png")
                        shot_done = True
                note = f"{info['mjx']} formulas, {info['details']} details"
            except PlaywrightError as exc:
                problems.append(f"page did not load/settle: {str(exc).splitlines()[0]}")
                note = ""
            page.close()
            status = "FAIL" if problems else "ok  "
            print(f"{status} {name:<44} {time.monotonic() - start:5.1f} s  ({note})", flush=True)
            for p in problems:
                print(f"       - {p}")
            failures += [f"{name}: {p}" for p in problems]
        context.close()
    server.shutdown()
    if not shot_done:
        failures.append("no reader notebook had a theorem, an exercise and a solution to "
                        "screenshot")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "html",
                        help="built site to check links against (skipped when missing)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "notebook_test")
    parser.add_argument("--screenshots", type=Path,
                        default=ROOT / "_build" / "screenshots" / "notebooks")
    parser.add_argument("--versions", nargs="*", default=list(notebooks.VERSIONS))
    parser.add_argument("--pages", nargs="*", default=None, help="page stems, e.g. 04_sym*")
    parser.add_argument("--require", action="store_true", help="fail when Chromium is missing")
    parser.add_argument("--chromium", default=site_test.CHROMIUM)
    parser.add_argument("--npm-cache", type=Path, default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    out = args.out.resolve()
    pages = notebooks.notebook_pages()
    if args.pages:
        import fnmatch

        pages = [p for p in pages if any(fnmatch.fnmatch(p.stem, g) for g in args.pages)]
    failures: list[str] = []
    site_ok = (args.site / "index.html").is_file() or any(args.site.glob("book/*.html"))
    if not site_ok:
        print(f"notebook_test: no built site in {args.site}: links not checked against it")
    site_url = notebooks.book().site
    cache: dict = {}
    template_dir = write_template(out / "templates")
    html_files: dict[str, Path] = {}
    for version in args.versions:
        for md in pages:
            name = f"{version}/{md.stem}"
            nb = notebooks.exported_notebook(md, version)
            nb_path = out / "ipynb" / version / f"{md.stem}.ipynb"
            nb_path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, nb_path)
            problems = check_reader_metadata(nb) if version == "reader" else []
            if site_ok:
                problems += check_against_site(nb, args.site.resolve(), site_url, cache)
            failures += [f"{name}: {p}" for p in problems]
            for p in problems:
                print(f"FAIL {name}: {p}")
            html_files[name] = render_html(nb_path, out / "html" / version / f"{md.stem}.html",
                                           template_dir)
    checked = f"{cache.get('links', 0)} links checked against {args.site}" if site_ok \
        else "links not checked"
    print(f"notebook_test: {len(html_files)} notebooks exported and rendered, {checked} "
          f"({time.monotonic() - t0:.0f} s)", flush=True)
    if not Path(args.chromium).exists():
        if args.require:
            print(f"notebook_test: FAIL: {args.chromium} not found; --require was given")
            return 1
        print(site_test.SKIP_MESSAGE)
        return 1 if failures else 0
    failures += browse(html_files, out / "html", args)
    print(f"notebook_test: {len(html_files)} notebooks, {len(failures)} failures, "
          f"{time.monotonic() - t0:.0f} s; screenshots in {args.screenshots}")
    if failures:
        print("notebook_test: FAIL")
        return 1
    print("notebook_test: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
