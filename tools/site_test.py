"""Browser test of the built HTML book: every page in headless Chromium.

Serves HTML_DIR on localhost and opens every page in Debian's Chromium (``/usr/bin/chromium``)
driven by Playwright for Python (never a downloaded browser build). No network is needed: the
CDN files the site loads (MathJax 3, and require.js / the jupyter-widgets HTML manager if a page
uses them) are served from npm packages installed once into ``_build/site_cache/npm`` at pinned
versions (``NPM_PINS``); every other external request is aborted and listed, and is not counted
as an error of the site. (A local copy whose bytes differ from the CDN file, like npm's
unminified require.js for cdnjs's require.min.js, gets the page's ``integrity`` attribute
removed in the test's copy of the page, and this is said in the output.) Every page is opened
as by a first-time visitor (storage cleared). For each page it checks:

* no JavaScript console errors, no uncaught page errors, no failed request to the site itself;
* MathJax finished (``MathJax.startup.promise``) and rendered: every ``.math`` element holds
  an ``mjx-container``, no ``mjx-merror`` (a TeX error) or undefined macro, and no raw
  ``$$``, ``\\(``, ``\\[`` or unrendered MyST directive (``{prf:``, ``{exercise}``) left in
  the text outside code;
* chapter pages (those with the launch-buttons dropdown, and every page whose source has a
  paired ``.ipynb``): the Colab link is
  ``https://colab.research.google.com/github/<org>/<repo>/blob/<branch>/book/<page>.ipynb``
  (from ``_config.yml``) and that notebook exists;
* theorem-like blocks (sphinx-proof ``{prf:...}``) and exercises/solutions (sphinx-exercise)
  in the page's ``.md`` source are rendered: one block with the right classes and a title each;
* every ``<img>`` in the page content has a real alt text (not empty and not the image's file
  name, which is what a figure without ``:alt:`` and a notebook plot get) and loaded; every
  ``<figure>`` has a non-empty caption.

Screenshots of the landing page and of one chapter go to ``_build/screenshots/``. One line per
page, a summary, exit status 1 on any failure. Without ``/usr/bin/chromium`` it prints
``SKIPPED: ...`` and exits 0, unless ``--require`` is given.

    python tools/site_test.py [HTML_DIR] [--require] [--pages GLOB] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import functools
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_links import DEFAULT_HTML, html_pages, load_page  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SKIP_MESSAGE = "SKIPPED: chromium not installed (apt-get install chromium chromium-driver)"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
]


# --- CDN files served locally --------------------------------------------------------------

@dataclass(frozen=True)
class CdnRule:
    """A CDN URL the site loads, and the file of an npm package that answers it."""

    pattern: re.Pattern
    package: str
    version: str  # exact npm version installed (the pin)
    file: str = "{path}"  # path inside the package; {path} is the URL's "path" group

    def local(self, url: str, npm_dir: Path) -> Path | None:
        match = self.pattern.fullmatch(url.split("#")[0].split("?")[0])
        if not match:
            return None
        rel = self.file.format(**match.groupdict())
        return package_dir(npm_dir, self.package, self.version) / rel


NPM_PINS = {"mathjax": "3.2.2", "requirejs": "2.3.4", "@jupyter-widgets/html-manager": "1.0.6"}
CDN_RULES = [
    # Sphinx's default mathjax_path: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js
    # (MathJax then loads its fonts and extensions relative to that URL).
    CdnRule(re.compile(r"https://cdn\.jsdelivr\.net/npm/mathjax@3(?:\.[0-9.]+)?/(?P<path>.+)"),
            "mathjax", NPM_PINS["mathjax"]),
    # myst-nb, on pages with ipywidgets output (nb_ipywidgets_js).
    CdnRule(re.compile(r"https://cdnjs\.cloudflare\.com/ajax/libs/require\.js/2\.3\.4/"
                       r"require\.min\.js"), "requirejs", NPM_PINS["requirejs"], "require.js"),
    CdnRule(re.compile(r"https://cdn\.jsdelivr\.net/npm/@jupyter-widgets/html-manager@1\.0\.6/"
                       r"(?P<path>.+)"),
            "@jupyter-widgets/html-manager", NPM_PINS["@jupyter-widgets/html-manager"]),
]


def package_prefix(npm_dir: Path, package: str, version: str) -> Path:
    """The npm --prefix folder of one pinned package (one folder per package and version)."""
    return npm_dir / f"{package.replace('/', '__')}@{version}"


def package_dir(npm_dir: Path, package: str, version: str) -> Path:
    return package_prefix(npm_dir, package, version) / "node_modules" / package


SRI_ATTR = re.compile(r"""\s+integrity\s*=\s*(["'])([^"']*)\1""", re.IGNORECASE)
TAG_WITH_URL = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)\s*=\s*(["'])(https?://[^"']+)\1[^>]*>""",
                          re.IGNORECASE)


def sri_digest(path: Path, algorithm: str) -> str:
    return base64.b64encode(hashlib.new(algorithm, path.read_bytes()).digest()).decode()


def drop_stale_sri(html: str, npm_dir: Path, dropped: set[str] | None = None) -> str:
    """Remove the ``integrity`` attribute of CDN tags whose local stand-in has other bytes.

    myst-nb pins cdnjs's *minified* require.js by its SHA-256; npm's requirejs package has only
    the unminified file, so the browser would refuse it. The attribute is dropped for exactly
    those tags (and only in the test's copy of the page); a matching local file keeps it.
    """

    def fix(match: re.Match) -> str:
        tag, url = match.group(0), match.group(2)
        sri = SRI_ATTR.search(tag)
        if not sri:
            return tag
        for rule in CDN_RULES:
            local = rule.local(url, npm_dir)
            if local is None or not local.is_file():
                continue
            wanted = sri.group(2).split()
            if any(v.partition("-")[2] == sri_digest(local, v.partition("-")[0])
                   for v in wanted if v.partition("-")[0] in ("sha256", "sha384", "sha512")):
                return tag
            if dropped is not None:
                dropped.add(url)
            return SRI_ATTR.sub("", tag, count=1)
        return tag

    return TAG_WITH_URL.sub(fix, html)


def needed_packages(urls: set[str]) -> set[tuple[str, str]]:
    """The (package, version) pairs needed to answer these external URLs."""
    needed = set()
    for url in urls:
        for rule in CDN_RULES:
            if rule.pattern.fullmatch(url.split("#")[0].split("?")[0]):
                needed.add((rule.package, rule.version))
    return needed


def ensure_packages(needed: set[tuple[str, str]], npm_dir: Path) -> list[str]:
    """npm-install the missing pinned packages; return error messages (empty when all there)."""
    errors = []
    for package, version in sorted(needed):
        pkg = package_dir(npm_dir, package, version)
        manifest = pkg / "package.json"
        if manifest.is_file() and json.loads(manifest.read_text()).get("version") == version:
            continue
        npm = shutil.which("npm")
        if npm is None:
            errors.append(f"{package}@{version} is not in {npm_dir} and npm is not installed "
                          "(apt-get install npm)")
            continue
        prefix = package_prefix(npm_dir, package, version)
        prefix.mkdir(parents=True, exist_ok=True)
        print(f"site_test: npm install {package}@{version} into {prefix}", flush=True)
        cmd = [npm, "install", "--prefix", str(prefix), "--no-save", "--no-package-lock",
               "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
               f"{package}@{version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not manifest.is_file():
            errors.append(f"npm install {package}@{version} failed: "
                          f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return errors


# --- what the page's source says it should contain -----------------------------------------

FENCE = re.compile(r"(`{3,}|~{3,}|:{3,})\s*(.*)$")
COUNTED = re.compile(r"\{(prf:[\w-]+|exercise(?:-start)?|solution(?:-start)?)\}")
# Directives whose content is not MyST (nothing inside them is a block of the page).
LITERAL_DIRECTIVES = ("{code-cell}", "{code-block}", "{code}", "{math}", "{raw}", "{eval-rst}")


def expected_blocks(source: str) -> dict[str, int]:
    """Count sphinx-proof / sphinx-exercise directives in a MyST source.

    Keys: ``prf:<type>`` per type, ``exercise`` and ``solution`` (the gated ``-start`` forms
    count as one block each). Fences are tracked (nested directives included), so a directive
    shown inside a literal code block (documentation of the syntax) is not counted.
    """
    counts: dict[str, int] = {}
    stack: list[tuple[str, bool]] = []  # open fences: (fence string, literal content?)
    for line in source.splitlines():
        match = FENCE.match(line.strip())
        if stack and stack[-1][1]:  # inside literal content: only its closing fence matters
            if match and not match.group(2) and _closes(match.group(1), stack[-1][0]):
                stack.pop()
            continue
        if not match:
            continue
        fence, rest = match.groups()
        if not rest and stack and _closes(fence, stack[-1][0]):
            stack.pop()
        elif rest.startswith("{"):
            directive = COUNTED.match(rest)
            if directive:
                name = directive.group(1).removesuffix("-start")
                counts[name] = counts.get(name, 0) + 1
            stack.append((fence, rest.split()[0] in LITERAL_DIRECTIVES))
        elif fence[0] != ":":  # ```python, ```text, ``` ...: a literal code block
            stack.append((fence, True))
    return counts


def _closes(fence: str, opening: str) -> bool:
    return fence[0] == opening[0] and len(fence) >= len(opening)


def expected_colab(config_file: Path, pagename: str) -> str | None:
    """The Colab URL sphinx-book-theme should make for a page, from _config.yml."""
    try:
        import yaml

        config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    except (OSError, ImportError):
        return None
    repo_url = (config.get("repository") or {}).get("url", "").rstrip("/")
    branch = (config.get("repository") or {}).get("branch", "main")
    book_rel = (config.get("repository") or {}).get("path_to_book", "").strip("/")
    colab = (config.get("launch_buttons") or {}).get("colab_url", "").rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", repo_url)
    if not (colab and match):
        return None
    prefix = f"{book_rel}/" if book_rel else ""
    return f"{colab}/github/{match[1]}/{match[2]}/blob/{branch}/{prefix}{pagename}.ipynb"


# --- the page checks, run inside the page ---------------------------------------------------

INSPECT_JS = r"""
() => {
  const main = document.querySelector('article.bd-article') ||
               document.querySelector('main') || document.body;
  const short = (s, n = 80) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);
  const where = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 3; e = e.parentElement) {
      if (e.id) { parts.unshift('#' + e.id); break; }
    }
    const sec = el.closest('section[id]');
    return (sec && !parts.length ? 'section#' + sec.id : parts.join(' ')) || '';
  };
  const images = [...main.querySelectorAll('img')].map((img) => ({
    src: img.getAttribute('src') || '', alt: img.getAttribute('alt'),
    loaded: img.complete && img.naturalWidth > 0, where: where(img),
    visible: !!(img.offsetWidth || img.offsetHeight || img.getClientRects().length),
  }));
  const figures = [...main.querySelectorAll('figure')].map((f) => ({
    id: f.id || '', where: where(f),
    img: (f.querySelector('img') || {getAttribute: () => ''}).getAttribute('src') || '',
    caption: short((f.querySelector('figcaption') || {}).textContent || '', 200),
  }));
  const maths = [...document.querySelectorAll('.math')];
  const unrendered = maths.filter((m) => !m.querySelector('mjx-container'))
                          .map((m) => short(m.textContent) + ' @ ' + where(m));
  const merrors = [...document.querySelectorAll('mjx-merror')].map(
    (e) => (e.getAttribute('data-mjx-error') || short(e.textContent)) + ' @ ' + where(e));
  // Undefined macros are not errors for MathJax (its noundefined extension shows the name in
  // red): find them in the MathML of each typeset expression.
  const undefinedMacros = [];
  if (window.MathJax && MathJax.startup && MathJax.startup.document && MathJax.startup.toMML) {
    for (const item of MathJax.startup.document.math) {
      const mml = MathJax.startup.toMML(item.root);
      const m = mml.match(/<mtext mathcolor="red">(\\[^<]*)<\/mtext>/);
      if (m) {
        const el = item.start && item.start.node && item.start.node.parentElement;
        undefinedMacros.push(m[1] + ' in ' + short(item.math, 60) + (el ? ' @ ' + where(el) : ''));
      }
    }
  }
  // Raw TeX delimiters / directive syntax in text outside code and rendered math.
  const raw = [];
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, .math';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawRe = /\$\$|\\\(|\\\[|\{prf:|\{exercise\}|\{solution\}|```\{|:::\{/;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const m = n.textContent.match(rawRe);
    if (m && !n.parentElement.closest(skip)) {
      const i = n.textContent.indexOf(m[0]);
      raw.push(JSON.stringify(m[0]) + ' in "' + short(n.textContent.slice(Math.max(0, i - 30)), 70)
               + '" @ ' + where(n.parentElement));
    }
  }
  const blocks = [...main.querySelectorAll('div.proof, div.exercise, div.solution')].map((b) => ({
    classes: [...b.classList], id: b.id || '',
    title: short((b.querySelector('.admonition-title') || {}).textContent || ''),
    text: short(b.textContent, 40),
  }));
  const launch = [...document.querySelectorAll('.dropdown-launch-buttons a')].map(
    (a) => a.getAttribute('href') || '');
  return {
    url: location.href, title: document.title,
    hasLaunch: !!document.querySelector('.dropdown-launch-buttons'),
    launch, images, figures, math: maths.length,
    mjx: document.querySelectorAll('mjx-container').length,
    unrendered, merrors, undefinedMacros, raw, blocks,
    mathjax: typeof window.MathJax === 'object' && !!(window.MathJax.startup),
  };
}
"""

# Theorem-like directives of sphinx-proof whose HTML class is the type itself.
PROOF_TYPES = {"theorem", "lemma", "definition", "remark", "conjecture", "corollary",
               "algorithm", "example", "property", "observation", "proposition", "assumption",
               "axiom", "criterion", "notation"}


@dataclass
class Result:
    page: str
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocked: set[str] = field(default_factory=set)


def check_blocks(info: dict, expected: dict[str, int]) -> list[str]:
    failures = []
    blocks = info["blocks"]
    for block in blocks:
        plain_proof = "proof" in block["classes"] and not PROOF_TYPES & set(block["classes"])
        if plain_proof and block.get("text", "").startswith("Proof"):
            continue  # sphinx-proof writes "Proof." inline, without an admonition title
        if not block["title"]:
            classes = " ".join(block["classes"])
            failures.append(f"block without title: div#{block['id']} ({classes})")
    for name, n in sorted(expected.items()):
        if name.startswith("prf:"):
            typ = name[4:]
            if typ == "proof":
                got = sum(1 for b in blocks if "proof" in b["classes"]
                          and not PROOF_TYPES & set(b["classes"]))
            else:
                got = sum(1 for b in blocks if "proof" in b["classes"] and typ in b["classes"])
            what = f"{{{name}}}"
        else:
            got = sum(1 for b in blocks if name in b["classes"]
                      or f"{name}-start" in b["classes"])
            what = f"{{{name}}}"
        if got != n:
            failures.append(f"source has {n} {what} block(s), page renders {got}")
    return failures


def check_images(info: dict) -> list[str]:
    failures = []
    for img in info["images"]:
        alt = (img["alt"] or "").strip()
        name = img["src"].rsplit("/", 1)[-1]
        label = f"<img src={img['src']!r}> @ {img['where'] or 'page'}"
        if not alt:
            failures.append(f"no alt text: {label}")
        elif alt == img["src"] or alt.rsplit("/", 1)[-1] == name:
            failures.append(f"alt text is the file name ({alt!r}): {label}")
        if img["visible"] and not img["loaded"]:
            failures.append(f"image did not load: {label}")
    for fig in info["figures"]:
        if not fig["caption"]:
            failures.append(f"figure without caption: <figure id={fig['id']!r}> "
                            f"(img {fig['img']!r}) @ {fig['where'] or 'page'}")
    return failures


def check_math(info: dict) -> list[str]:
    failures = []
    if info["math"] and not info["mathjax"]:
        failures.append(f"{info['math']} math element(s) but MathJax did not load")
    failures += [f"math not rendered: {m}" for m in info["unrendered"][:10]]
    if len(info["unrendered"]) > 10:
        failures.append(f"... {len(info['unrendered']) - 10} more unrendered math elements")
    failures += [f"MathJax error: {m}" for m in info["merrors"][:10]]
    failures += [f"undefined TeX macro: {m}" for m in info.get("undefinedMacros", [])[:10]]
    failures += [f"raw TeX/directive text: {m}" for m in info["raw"][:10]]
    if len(info["raw"]) > 10:
        failures.append(f"... {len(info['raw']) - 10} more raw TeX/directive texts")
    return failures


def check_launch(info: dict, pagename: str, source_root: Path) -> tuple[list[str], str]:
    notebook = source_root / f"{pagename}.ipynb"
    if not info["hasLaunch"]:
        if notebook.is_file():
            return [f"no launch buttons although {pagename}.ipynb exists"], ""
        return [], ""
    colab = [u for u in info["launch"] if u.startswith("https://colab.research.google.com")]
    if not colab:
        return [f"launch dropdown has no Colab link (links: {info['launch']})"], ""
    want = expected_colab(source_root / "_config.yml", pagename)
    failures = []
    if want is None:
        pattern = (r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/"
                   + re.escape(pagename) + r"\.ipynb")
        if not re.fullmatch(pattern, colab[0]):
            failures.append(f"Colab link {colab[0]!r} is not .../github/<org>/<repo>/blob/"
                            f"<branch>/{pagename}.ipynb")
    elif colab[0] != want:
        failures.append(f"Colab link is {colab[0]!r}, expected {want!r}")
    if not notebook.is_file():
        failures.append(f"Colab link points at {pagename}.ipynb, which is not in the repository")
    return failures, "colab ok" if not failures else ""


class PageEvents:
    """Console errors, uncaught errors and failed requests to the site, from one page.

    A failed request to the site shows up three times (the HTTP status, the failed request and
    Chromium's "Failed to load resource" console line); ``failures`` reports it once. Requests
    to other hosts that the test aborted on purpose are not errors (they are listed apart).
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.console_errors: list[tuple[str, str]] = []  # (text, url of the source)
        self.page_errors: list[str] = []
        self.failed: dict[str, str] = {}  # local URL -> why

    def console(self, msg) -> None:
        if msg.type == "error":
            self.console_errors.append((msg.text, (msg.location or {}).get("url", "")))

    def page_error(self, exc) -> None:
        self.page_errors.append(str(exc))

    def request_failed(self, request) -> None:
        if request.url.startswith(self.base):
            self.failed.setdefault(request.url, f"request failed ({request.failure})")

    def response(self, response) -> None:
        if response.url.startswith(self.base) and response.status >= 400:
            self.failed[response.url] = f"HTTP {response.status}"

    def failures(self) -> list[str]:
        out = [f"uncaught page error: {text[:300]}" for text in self.page_errors]
        for text, url in self.console_errors:
            if text.startswith("Failed to load resource"):
                if url in self.failed:
                    continue  # reported below, once
                if "ERR_BLOCKED_BY_CLIENT" in text and not url.startswith(self.base):
                    continue  # an external request the test aborted: listed as blocked
            out.append(f"console error: {text[:300]}" + (f" ({url})" if url else ""))
        out += [f"{why}: {url}" for url, why in self.failed.items()]
        return [line.replace(self.base, "/") for line in out]  # no random port in the report


# --- serving and driving --------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's signature)
        pass


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def external_urls(pages: list[Path]) -> set[str]:
    urls = set()
    for path in pages:
        for ref in load_page(path).refs:
            if ref.url.startswith(("http://", "https://")) and ref.tag in ("script", "link"):
                urls.add(ref.url)
    return urls


def refresh_target(path: Path) -> str | None:
    for ref in load_page(path).refs:
        if ref.attr == "refresh":
            return ref.url
    return None


def run(args: argparse.Namespace) -> int:
    html_dir = args.html_dir.resolve()
    source_root = (args.source_root or html_dir.parent.parent).resolve()
    shots = (args.screenshots or html_dir.parent / "screenshots").resolve()
    npm_dir = (args.npm_cache or html_dir.parent / "site_cache" / "npm").resolve()
    pages = html_pages(html_dir)
    if args.pages:
        pages = [p for p in pages
                 if any(fnmatch.fnmatch(p.relative_to(html_dir).as_posix(), g) for g in args.pages)]
    if not pages:
        print(f"site_test: no HTML pages in {html_dir} (run `make book` first)")
        return 1

    t0 = time.monotonic()
    setup_errors = ensure_packages(needed_packages(external_urls(pages)), npm_dir)
    for err in setup_errors:
        print(f"site_test: ERROR: {err}")

    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    server, base = serve(html_dir)
    results: list[Result] = []
    current: list[Result] = []
    served: set[str] = set()
    sri_dropped: set[str] = set()
    shot_chapter = args.chapter_screenshot

    def on_route(route):
        url = route.request.url
        for rule in CDN_RULES:
            local = rule.local(url, npm_dir)
            if local is not None and local.is_file():
                served.add(url)
                route.fulfill(path=str(local), headers={"Access-Control-Allow-Origin": "*"})
                return
        if current:
            current[-1].blocked.add(url)
        route.abort("blockedbyclient")

    def on_page_html(route):
        response = route.fetch()
        body = response.text()
        fixed = drop_stale_sri(body, npm_dir, sri_dropped)
        route.fulfill(response=response, body=fixed)

    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="site-test-chromium-") as profile, \
            sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, service_workers="block")
        context.set_default_timeout(args.timeout * 1000)
        # Every page is checked as a first-time visitor's (no theme mode etc. remembered from
        # the page before), so a result does not depend on the order of the pages.
        context.add_init_script("try { localStorage.clear(); sessionStorage.clear(); } "
                                "catch (e) {}")
        context.route(lambda url: not url.startswith(base), on_route)
        context.route(lambda url: url.startswith(base)
                      and urlsplit(url).path.endswith((".html", "/")), on_page_html)
        print(f"site_test: Chromium {context.browser.version if context.browser else '?'}, "
              f"{len(pages)} pages served from {html_dir} at {base}", flush=True)
        for path in pages:
            rel = path.relative_to(html_dir).as_posix()
            pagename = rel.removesuffix(".html")
            result = Result(rel)
            current.append(result)
            start = time.monotonic()
            page = context.new_page()
            events = PageEvents(base)
            page.on("console", events.console)
            page.on("pageerror", events.page_error)
            page.on("requestfailed", events.request_failed)
            page.on("response", events.response)
            target = refresh_target(path)
            try:
                page.goto(base + rel, wait_until="load")
                if target:
                    page.wait_for_url(lambda u, t=target: urlsplit(u).path.endswith(
                        t.split("#")[0].lstrip("./")), timeout=args.timeout * 1000)
                    page.wait_for_load_state("load")
                    result.notes.append(f"redirects to {target}")
                has_math = page.evaluate("() => !!document.querySelector('.math')")
                if has_math:
                    page.wait_for_function(
                        "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                    page.evaluate("() => MathJax.startup.promise.then(() => true)")
                page.wait_for_timeout(100)  # let late console messages arrive
                info = page.evaluate(INSPECT_JS)
            except PlaywrightError as exc:
                result.failures.append(f"page did not load/settle: {str(exc).splitlines()[0]}")
                info = None
            if info is not None:
                if target:
                    pagename = urlsplit(info["url"]).path.lstrip("/").removesuffix(".html")
                result.failures += check_math(info)
                result.failures += check_images(info)
                launch_failures, note = check_launch(info, pagename, source_root)
                result.failures += launch_failures
                if note:
                    result.notes.append(note)
                source = source_root / f"{pagename}.md"
                expected = expected_blocks(source.read_text(encoding="utf-8")) \
                    if source.is_file() and not target else {}
                result.failures += check_blocks(info, expected)
                n_thm = sum(1 for b in info["blocks"] if "proof" in b["classes"])
                n_ex = sum(1 for b in info["blocks"] if "exercise" in b["classes"]
                           or "exercise-start" in b["classes"])
                result.notes[:0] = [f"{info['math']} math", f"{n_thm} prf", f"{n_ex} exercises",
                                    f"{len(info['images'])} img"]
                if rel == "index.html":  # the landing page (after its redirect, if any)
                    page.screenshot(path=str(shots / "landing.png"), full_page=args.full_page)
                if info["hasLaunch"] and not target and shot_chapter in (None, rel):
                    name = f"chapter-{Path(pagename).name}.png"
                    page.screenshot(path=str(shots / name), full_page=args.full_page)
                    shot_chapter = ""  # one chapter only
            result.failures[:0] = events.failures()
            page.close()
            result.seconds = time.monotonic() - start
            results.append(result)
            status = "FAIL" if result.failures else "ok  "
            print(f"{status} {rel:<40} {result.seconds:5.1f} s  ({', '.join(result.notes)})",
                  flush=True)
            for failure in result.failures:
                print(f"       - {failure}")
        context.close()
    server.shutdown()

    blocked: dict[str, int] = {}
    for r in results:
        for url in r.blocked:
            blocked[url] = blocked.get(url, 0) + 1
    if served:
        print(f"site_test: served {len(served)} CDN file(s) locally from {npm_dir}")
    for url in sorted(sri_dropped):
        print(f"site_test: note: {url}: the local copy differs from the CDN build, so the "
              "page's integrity attribute was dropped for the test")
    if blocked:
        print(f"site_test: {len(blocked)} external URL(s) blocked (not counted as errors):")
        for url, n in sorted(blocked.items()):
            print(f"  {url}  ({n} page{'s' if n > 1 else ''})")
    failed = [r for r in results if r.failures]
    distinct: dict[str, list[str]] = {}
    for r in failed:
        for failure in r.failures:
            distinct.setdefault(failure, []).append(r.page)
    if distinct:
        print(f"site_test: {len(distinct)} distinct failure(s):")
        for failure, where in sorted(distinct.items(), key=lambda kv: -len(kv[1])):
            pages_txt = ", ".join(where) if len(where) <= 3 else f"{len(where)} pages"
            print(f"  [{pages_txt}] {failure}")
    n_fail = sum(len(r.failures) for r in failed) + len(setup_errors)
    print(f"site_test: {len(results)} pages, {len(failed)} with failures ({n_fail} failures), "
          f"{time.monotonic() - t0:.0f} s; screenshots in {shots}")
    if failed or setup_errors:
        print("site_test: FAIL")
        return 1
    print("site_test: OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML,
                        help="built HTML folder (default: _build/html)")
    parser.add_argument("--require", action="store_true",
                        help="fail (instead of skipping) when Chromium is missing")
    parser.add_argument("--chromium", default=CHROMIUM, help="browser binary (Debian chromium)")
    parser.add_argument("--source-root", type=Path, default=None,
                        help="repository root with _config.yml and book/*.md "
                             "(default: HTML_DIR/../..)")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="screenshot folder (default: HTML_DIR/../screenshots)")
    parser.add_argument("--chapter-screenshot", default=None, metavar="PAGE",
                        help="chapter page to screenshot, e.g. book/01_twenty_questions.html "
                             "(default: the first page with launch buttons)")
    parser.add_argument("--full-page", action="store_true", help="full-page screenshots")
    parser.add_argument("--npm-cache", type=Path, default=None,
                        help="where the pinned CDN packages are installed "
                             "(default: HTML_DIR/../site_cache/npm)")
    parser.add_argument("--pages", nargs="*", default=None, metavar="GLOB",
                        help="only these pages (globs relative to HTML_DIR)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for a page load or for MathJax")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        if args.require:
            print(f"site_test: FAIL: {args.chromium} not found "
                  "(apt-get install chromium chromium-driver); --require was given")
            return 1
        print(SKIP_MESSAGE)
        return 0
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("site_test: ERROR: Chromium is installed but the Python package playwright is "
              "not (pip install -r requirements-lock.txt); never run `playwright install`")
        return 1
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
