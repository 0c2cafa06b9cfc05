"""Page weight of the built HTML book.

For every HTML page: the page itself plus every file of the site that it loads (stylesheets,
scripts, images, icons, fonts, ... referenced by ``src``/``href``/``srcset``, inline
``style``/``<style>`` and, recursively, ``url(...)``/``@import`` in the stylesheets), each
file counted once per page. Fonts referenced by the CSS are all counted although the browser
fetches only those it uses, so the figure is an upper bound (of an ``@font-face`` ``src`` list
only the first URL is counted: the woff2 a current browser takes). Navigation links (``<a href>``,
``<link rel="next">`` ...) are not loads; external URLs are listed but not counted.

Prints the heaviest pages, writes a JSON report (default ``<HTML_DIR>/../site_report.json``,
i.e. ``_build/site_report.json``) and exits 1 if a page weighs more than ``--max-mb``.

    python tools/site_report.py [HTML_DIR] [--max-mb 5] [--top 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_links import (  # noqa: E402  (tools/ is not a package)
    CSS_COMMENT,
    DEFAULT_HTML,
    Ref,
    css_urls,
    html_pages,
    inside,
    kind,
    load_page,
    resolve,
)

MB = 1_000_000
FONT_SRC = re.compile(r"(@font-face\s*\{[^}]*?)\bsrc\s*:\s*([^;}]*)", re.IGNORECASE)

# <link rel=...> values whose target the browser fetches while loading the page.
LOADED_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload",
               "manifest", "mask-icon"}
# Elements whose src/href/srcset/data the browser fetches.
LOADED_TAGS = {"img", "script", "source", "video", "audio", "track", "iframe", "embed",
               "object", "input", "image", "use"}


def is_load(ref: Ref) -> bool:
    """Whether the browser fetches this reference while loading the page."""
    if ref.attr in ("style", "url()"):
        return True
    if ref.tag == "link":
        return bool(LOADED_RELS & set(ref.rel.split()))
    return ref.tag in LOADED_TAGS and ref.attr in ("src", "srcset", "data", "poster", "href")


def css_loads(text: str) -> list[str]:
    """The URLs a browser fetches for a stylesheet: ``url()``/``@import``, but of each
    ``@font-face`` ``src`` list only the first URL (the browser stops at the first format it
    supports; themes list woff2 first)."""
    firsts: list[str] = []

    def first_only(match: re.Match) -> str:
        urls = css_urls(match.group(2))
        firsts.extend(urls[:1])
        return match.group(1)

    rest = FONT_SRC.sub(first_only, CSS_COMMENT.sub("", text))
    return firsts + css_urls(rest)


def _css_closure(css: Path, html_dir: Path, seen: set[Path], external: set[str],
                 missing: set[str]) -> None:
    for url in css_loads(css.read_text(encoding="utf-8", errors="replace")):
        k = kind(url)
        if k == "external":
            external.add(url)
            continue
        if k != "local" or url.startswith("#"):
            continue
        target, _ = resolve(url, css, html_dir)
        _add(target, url, html_dir, seen, external, missing)


def _add(target: Path | None, url: str, html_dir: Path, seen: set[Path], external: set[str],
         missing: set[str]) -> None:
    if target is None:
        return
    if not target.is_file() or not inside(target, html_dir):
        missing.add(url)
        return
    target = target.resolve()
    if target in seen:
        return
    seen.add(target)
    if target.suffix == ".css":
        _css_closure(target, html_dir, seen, external, missing)


def page_weight(page_path: Path, html_dir: Path) -> dict:
    """Bytes of the page and of everything it loads from the site; external URLs listed."""
    html_dir = html_dir.resolve()
    page = load_page(page_path)
    seen: set[Path] = set()
    external: set[str] = set()
    missing: set[str] = set()
    for ref in page.refs:
        if not is_load(ref):
            continue
        k = kind(ref.url)
        if k == "external":
            external.add(ref.url)
        elif k == "local":
            target, _ = resolve(ref.url, page_path, html_dir)
            _add(target, ref.url, html_dir, seen, external, missing)
    html_bytes = page_path.stat().st_size
    by_type: dict[str, int] = {}
    for path in seen:
        ext = path.suffix.lower().lstrip(".") or "other"
        by_type[ext] = by_type.get(ext, 0) + path.stat().st_size
    resources = sum(by_type.values())
    return {
        "page": page_path.relative_to(html_dir).as_posix(),
        "bytes": html_bytes + resources,
        "html_bytes": html_bytes,
        "resource_bytes": resources,
        "resources": len(seen),
        "by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "external": sorted(external),
        "missing": sorted(missing),
    }


def site_report(html_dir: Path, max_bytes: int) -> dict:
    html_dir = html_dir.resolve()
    pages = [page_weight(p, html_dir) for p in html_pages(html_dir)]
    pages.sort(key=lambda r: -r["bytes"])
    hosts = sorted({urlsplit(u).netloc for r in pages for u in r["external"]})
    return {
        "html_dir": str(html_dir),
        "max_bytes": max_bytes,
        "pages": pages,
        "over_limit": [r["page"] for r in pages if r["bytes"] > max_bytes],
        "external_hosts": hosts,
    }


def human(n: int) -> str:
    if n >= MB:
        return f"{n / MB:.2f} MB"
    return f"{n / 1000:.0f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML,
                        help="built HTML folder (default: _build/html)")
    parser.add_argument("--max-mb", type=float, default=5.0,
                        help="fail when a page weighs more than this (MB = 10^6 bytes)")
    parser.add_argument("--top", type=int, default=10, help="how many pages to print")
    parser.add_argument("--json", type=Path, default=None,
                        help="report file (default: site_report.json beside HTML_DIR)")
    args = parser.parse_args(argv)
    html_dir = args.html_dir
    if not html_pages(html_dir):
        print(f"site_report: no HTML pages in {html_dir} (run `make book` first)")
        return 1
    max_bytes = int(args.max_mb * MB)
    report = site_report(html_dir, max_bytes)
    out = args.json or html_dir.resolve().parent / "site_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    pages = report["pages"]
    print(f"site_report: {len(pages)} pages; heaviest {min(args.top, len(pages))} "
          f"(page + site files it loads; limit {human(max_bytes)}):")
    width = max(len(r["page"]) for r in pages[: args.top])
    for r in pages[: args.top]:
        mark = "  OVER LIMIT" if r["bytes"] > max_bytes else ""
        print(f"  {r['page']:<{width}}  {human(r['bytes']):>9}  (html {human(r['html_bytes'])}, "
              f"{r['resources']} files {human(r['resource_bytes'])}){mark}")
    if report["external_hosts"]:
        print(f"site_report: external (not counted): {', '.join(report['external_hosts'])}")
    print(f"site_report: wrote {out}")
    if report["over_limit"]:
        print(f"site_report: FAIL: {len(report['over_limit'])} page(s) over {human(max_bytes)}: "
              + ", ".join(report["over_limit"]))
        return 1
    print("site_report: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
