"""Internal link check of the built HTML book (no network).

Every ``href``/``src``/``srcset`` of every HTML page that points at a local file must resolve
to an existing file, and every ``#fragment`` (same page or another page) must exist as an
``id`` or ``<a name>`` in the target page. Local CSS files are checked too: their ``url(...)``
and ``@import`` targets must exist. External ``http(s)`` links are not fetched (there is no
network on CI); they are counted and summarised. Exit status 1 when anything is broken.

    python tools/check_links.py [HTML_DIR]         # default: _build/html

The HTML parsing helpers here are shared with tools/site_report.py.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HTML = ROOT / "_build" / "html"

# Sphinx output folders that are not pages of the book (copied sources, theme assets, images).
NON_PAGE_DIRS = ("_static", "_sources", "_images", "_downloads", ".doctrees")

# Attributes that hold one URL, and the ones that hold a srcset list.
URL_ATTRS = {"href", "src", "data", "poster", "action"}
SRCSET_ATTRS = {"srcset", "imagesrcset"}
# Schemes that are neither local files nor fetched web links.
OTHER_SCHEMES = {"mailto", "javascript", "data", "tel", "about", "blob"}

CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.IGNORECASE | re.DOTALL)
CSS_IMPORT = re.compile(r"""@import\s+(['"])(.*?)\1""", re.IGNORECASE)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass
class Ref:
    """One URL found in a page: the element, the attribute and the raw value."""

    tag: str
    attr: str
    url: str
    line: int
    rel: str = ""


@dataclass
class Page:
    """What the link checker and the page-weight report need from one HTML file."""

    ids: set[str] = field(default_factory=set)
    refs: list[Ref] = field(default_factory=list)
    base: str | None = None


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._in_style = False
        self._style_line = 0

    def handle_starttag(self, tag, attrs):
        self._start(tag, attrs)
        if tag == "style":
            self._in_style = True
            self._style_line = self.getpos()[0]

    def handle_startendtag(self, tag, attrs):
        self._start(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            for url in css_urls(data):
                self.page.refs.append(Ref("style", "url()", url, self._style_line))

    def _start(self, tag, attrs):
        line = self.getpos()[0]
        attrs = [(k.lower(), v) for k, v in attrs if v is not None]
        rel = " ".join(v for k, v in attrs if k == "rel").lower()
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.page.ids.add(value)
            if tag == "base" and key == "href":
                self.page.base = value
            elif key in URL_ATTRS and not (tag == "meta" or (tag == "form" and not value)):
                self.page.refs.append(Ref(tag, key, value.strip(), line, rel))
            elif key in SRCSET_ATTRS:
                for url in srcset_urls(value):
                    self.page.refs.append(Ref(tag, key, url, line, rel))
            elif key == "style":
                for url in css_urls(value):
                    self.page.refs.append(Ref(tag, "style", url, line, rel))
            elif tag == "meta" and key == "content" and _is_refresh(attrs):
                # <meta http-equiv="refresh" content="0; url=book/intro.html">
                match = re.search(r"url\s*=\s*['\"]?([^'\";]+)", value, re.IGNORECASE)
                if match:
                    self.page.refs.append(Ref(tag, "refresh", match.group(1).strip(), line))


def _is_refresh(attrs) -> bool:
    return any(k == "http-equiv" and v.lower() == "refresh" for k, v in attrs)


def srcset_urls(value: str) -> list[str]:
    """The URLs of a ``srcset`` value ("a.png 1x, b.png 2x")."""
    urls = []
    for part in value.split(","):
        part = part.strip()
        if part:
            urls.append(part.split()[0])
    return urls


def css_urls(text: str) -> list[str]:
    """Targets of ``url(...)`` and ``@import "..."`` in CSS text (data: URIs included)."""
    text = CSS_COMMENT.sub("", text)
    found = [m.group(2).strip() for m in CSS_URL.finditer(text)]
    found += [m.group(2).strip() for m in CSS_IMPORT.finditer(text)]
    return [u for u in found if u]


def parse_html(text: str) -> Page:
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector.page


_PAGE_CACHE: dict[Path, Page] = {}


def load_page(path: Path) -> Page:
    path = path.resolve()
    if path not in _PAGE_CACHE:
        _PAGE_CACHE[path] = parse_html(path.read_text(encoding="utf-8", errors="replace"))
    return _PAGE_CACHE[path]


def html_pages(html_dir: Path) -> list[Path]:
    """Every HTML page of the book (theme assets and copied sources excluded), sorted."""
    pages = []
    for path in sorted(html_dir.rglob("*.html")):
        rel = path.relative_to(html_dir)
        if rel.parts and rel.parts[0] in NON_PAGE_DIRS:
            continue
        pages.append(path)
    return pages


def kind(url: str) -> str:
    """'external' (http/https or //host), 'other' (mailto:, data:, ...), or 'local'."""
    if url.startswith("//"):
        return "external"
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return "external"
    if scheme:  # a real scheme (Windows drive letters do not occur in built HTML)
        return "other"
    return "local"


def resolve(url: str, source: Path, html_dir: Path) -> tuple[Path | None, str]:
    """The local file a relative URL points at (None for a pure ``#fragment``) and its fragment.

    A URL that ends in ``/`` (or names a folder) means that folder's ``index.html``. A path
    that starts with ``/`` is taken relative to the site root (the HTML folder).
    """
    parts = urlsplit(url)
    fragment = unquote(parts.fragment)
    path = unquote(parts.path)
    if not path:
        return None, fragment
    if path.startswith("/"):
        target = html_dir / path.lstrip("/")
    else:
        target = source.parent / path
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return Path(_normalise(target)), fragment


def _normalise(path: Path) -> str:
    # Like os.path.normpath, but without resolving symlinks (the site is served as is).
    return os.path.normpath(str(path))


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


@dataclass
class Broken:
    page: str
    line: int
    tag: str
    attr: str
    url: str
    reason: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: <{self.tag} {self.attr}={self.url!r}>: {self.reason}"


@dataclass
class LinkReport:
    pages: int = 0
    css_files: int = 0
    local_links: int = 0
    fragments: int = 0
    external: Counter = field(default_factory=Counter)  # host -> count
    broken: list[Broken] = field(default_factory=list)


def check_site(html_dir: Path) -> LinkReport:
    html_dir = html_dir.resolve()
    report = LinkReport()
    css_seen: set[Path] = set()
    css_todo: list[tuple[Path, str]] = []
    for page_path in html_pages(html_dir):
        report.pages += 1
        page = load_page(page_path)
        rel_page = page_path.relative_to(html_dir).as_posix()
        for ref in page.refs:
            k = kind(ref.url)
            if k == "external":
                report.external[urlsplit(ref.url).netloc or "?"] += 1
                continue
            if k == "other" or not ref.url:
                continue
            # No theme link needs an exception (sphinx-book-theme 1.3.0, pydata 0.17.1): the
            # theme's toggles use href="#", an empty fragment, which is never checked.
            target, fragment = resolve(ref.url, page_path, html_dir)
            if target is None:
                target = page_path
            else:
                report.local_links += 1
                if not inside(target, html_dir):
                    report.broken.append(Broken(rel_page, ref.line, ref.tag, ref.attr, ref.url,
                                                "points outside the site"))
                    continue
                if not target.is_file():
                    report.broken.append(Broken(rel_page, ref.line, ref.tag, ref.attr, ref.url,
                                                f"missing file {_rel(target, html_dir)}"))
                    continue
                if target.suffix == ".css" and target not in css_seen:
                    css_seen.add(target)
                    css_todo.append((target, rel_page))
            if fragment and target.suffix in (".html", ".htm"):
                report.fragments += 1
                if fragment not in load_page(target).ids:
                    where = "this page" if target == page_path else _rel(target, html_dir)
                    report.broken.append(Broken(rel_page, ref.line, ref.tag, ref.attr, ref.url,
                                                f"no id {fragment!r} in {where}"))
    # Stylesheets: url(...) and @import, recursively.
    while css_todo:
        css, _ = css_todo.pop()
        report.css_files += 1
        rel_css = _rel(css, html_dir)
        for url in css_urls(css.read_text(encoding="utf-8", errors="replace")):
            k = kind(url)
            if k == "external":
                report.external[urlsplit(url).netloc or "?"] += 1
                continue
            if k == "other" or url.startswith("#"):
                continue
            target, _ = resolve(url, css, html_dir)
            report.local_links += 1
            if target is None or not target.is_file() or not inside(target, html_dir):
                report.broken.append(Broken(rel_css, 0, "css", "url()", url,
                                            f"missing file {_rel(target, html_dir)}"))
            elif target.suffix == ".css" and target not in css_seen:
                css_seen.add(target)
                css_todo.append((target, rel_css))
    return report


def _rel(path: Path | None, root: Path) -> str:
    if path is None:
        return "?"
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML,
                        help="built HTML folder (default: _build/html)")
    args = parser.parse_args(argv)
    html_dir = args.html_dir
    if not (html_dir / "index.html").is_file() and not html_pages(html_dir):
        print(f"check_links: no HTML pages in {html_dir} (run `make book` first)")
        return 1
    report = check_site(html_dir)
    ext = sum(report.external.values())
    hosts = ", ".join(f"{h} ({n})" for h, n in report.external.most_common())
    print(f"check_links: {report.pages} pages, {report.css_files} stylesheets, "
          f"{report.local_links} local links, {report.fragments} fragments checked; "
          f"{ext} external links not fetched{': ' + hosts if hosts else ''}")
    if report.broken:
        print(f"check_links: {len(report.broken)} broken link(s):")
        for item in report.broken:
            print(f"  {item}")
        return 1
    print("check_links: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
