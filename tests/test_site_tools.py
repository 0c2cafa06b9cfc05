"""The site tools (tools/check_links.py, site_report.py, site_test.py) on tiny synthetic trees.

Fast: no browser, no book build, no network.
"""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_links  # noqa: E402
import site_report  # noqa: E402
import site_test  # noqa: E402


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def site(tmp_path):
    """A small site: _build/html with two pages, a stylesheet, a font, an image."""
    html = tmp_path / "_build" / "html"
    write(html / "index.html",
          '<meta http-equiv="refresh" content="0; url=book/intro.html">')
    write(html / "book" / "intro.html", """<!DOCTYPE html><html><head>
<link rel="stylesheet" href="../_static/site.css?v=1">
<link rel="next" href="ch1.html">
<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
</head><body>
<a href="#top">top</a> <a href="#">menu</a> <a id="top"></a>
<a href="ch1.html#sec-1">ok</a> <a href="ch1.html#nope">bad fragment</a>
<a href="missing.html">bad file</a> <a href="#gone">bad local fragment</a>
<a href="https://example.org/x">ext</a> <a href="mailto:a@b.c">mail</a>
<a href="../book/">folder</a> <a href="ch%201.html">encoded</a>
<img src="../_images/fig.png" alt="a figure"> <img src="../_images/fig.png" alt="again">
<img srcset="../_images/fig.png 1x, ../_images/nothere.png 2x" alt="s">
<div style="background: url('../_images/fig.png')"></div>
</body></html>""")
    write(html / "book" / "index.html", "<p>folder index</p>")
    write(html / "book" / "ch 1.html", "<p>space in name</p>")
    write(html / "book" / "ch1.html", """<html><head>
<link rel="stylesheet" href="../_static/site.css"></head>
<body><section id="sec-1"><a name="old-anchor"></a><a href="intro.html#top">back</a>
<a href="#old-anchor">named</a></section></body></html>""")
    write(html / "_static" / "site.css",
          "/* url(commented.woff) */ @import 'more.css';\n"
          "body { background: url(\"data:image/png;base64,AAAA\"); }")
    write(html / "_static" / "more.css",
          "@font-face { src: url(fonts/f.woff2) format('woff2'), url(fonts/lost.woff); }")
    write(html / "_static" / "fonts" / "f.woff2", b"\0" * 3000)
    write(html / "_images" / "fig.png", b"\0" * 20_000)
    write(html / "_static" / "page.html", '<a href="nowhere.html">theme asset, not a page</a>')
    return html


def test_parsing_helpers():
    assert check_links.srcset_urls("a.png 1x, b.png 2x,c.png") == ["a.png", "b.png", "c.png"]
    assert check_links.css_urls("/* url(x) */ a{b:url( 'y.woff' )} @import \"z.css\";") == [
        "y.woff", "z.css"]
    assert check_links.kind("https://x.org") == "external"
    assert check_links.kind("//x.org/a.js") == "external"
    assert check_links.kind("mailto:a@b") == "other"
    assert check_links.kind("data:image/png;base64,AA") == "other"
    assert check_links.kind("../a.html#b") == "local"
    page = check_links.parse_html('<div id="a"><a name="b" href="#a"></a><span name="c">')
    assert page.ids == {"a", "b"}
    assert [r.url for r in page.refs] == ["#a"]


def test_html_pages_skips_theme_folders(site):
    rels = [p.relative_to(site).as_posix() for p in check_links.html_pages(site)]
    assert rels == ["book/ch 1.html", "book/ch1.html", "book/index.html", "book/intro.html",
                    "index.html"]


def test_check_links_finds_exactly_the_broken_links(site):
    report = check_links.check_site(site)
    broken = sorted((b.page, b.url, b.reason.split(" ")[0]) for b in report.broken)
    assert broken == [
        ("_static/more.css", "fonts/lost.woff", "missing"),
        ("book/intro.html", "#gone", "no"),
        ("book/intro.html", "../_images/nothere.png", "missing"),
        ("book/intro.html", "ch1.html#nope", "no"),
        ("book/intro.html", "missing.html", "missing"),
    ]
    assert report.external == {"cdn.jsdelivr.net": 1, "example.org": 1}
    assert report.css_files == 2


def test_check_links_main_exit_status(site, capsys):
    assert check_links.main([str(site)]) == 1
    out = capsys.readouterr().out
    assert "5 broken link(s)" in out and "ch1.html#nope" in out
    for page in ("intro.html", "ch1.html"):
        text = (site / "book" / page).read_text()
        for bad in ('<a href="ch1.html#nope">', '<a href="missing.html">', '<a href="#gone">',
                    ", ../_images/nothere.png 2x"):
            text = text.replace(bad, "<a>" if bad.startswith("<a") else "")
        (site / "book" / page).write_text(text)
    (site / "_static" / "more.css").write_text("@font-face { src: url(fonts/f.woff2); }")
    check_links._PAGE_CACHE.clear()
    assert check_links.main([str(site)]) == 0
    assert "check_links: OK" in capsys.readouterr().out


def test_page_weight_counts_loaded_site_files_once(site):
    weight = site_report.page_weight(site / "book" / "intro.html", site)
    html = (site / "book" / "intro.html").stat().st_size
    css = sum((site / "_static" / n).stat().st_size for n in ("site.css", "more.css"))
    # the image (referenced 4 times) once, both stylesheets, the one existing font;
    # not ch1.html (rel=next) nor any <a href>; the CDN script is listed, not counted
    assert weight["bytes"] == html + css + 3000 + 20_000
    assert weight["resources"] == 4
    assert weight["external"] == ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"]
    # of an @font-face src list only the first URL (the woff2) is fetched and counted
    assert weight["missing"] == ["../_images/nothere.png"]
    assert weight["by_type"]["png"] == 20_000


def test_css_loads_takes_the_first_font_format():
    css = ("@font-face{font-family:A;src:url(a.woff2) format('woff2'),url(a.ttf)}"
           "@font-face{font-family:B;src:local(B),url(b.woff2)} .x{background:url(i.png)}"
           "@import url(more.css);")
    assert site_report.css_loads(css) == ["a.woff2", "b.woff2", "i.png", "more.css"]


def test_site_report_limit_and_json(site, capsys):
    assert site_report.main([str(site), "--max-mb", "1"]) == 0
    data = json.loads((site.parent / "site_report.json").read_text())
    assert data["pages"][0]["page"] == "book/intro.html"  # heaviest first
    assert data["over_limit"] == []
    out = tmp = site.parent / "other.json"
    assert site_report.main([str(site), "--max-mb", "0.01", "--top", "2", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "OVER LIMIT" in text and "FAIL" in text
    assert json.loads(tmp.read_text())["over_limit"][0] == "book/intro.html"


def test_expected_blocks_counts_directives_outside_literal_code():
    source = """
```{prf:theorem} A
:label: thm-a
```
:::{prf:proof}
:::
::::{prf:lemma}
::::
```{exercise}
```
````{solution} ex-1
````
```{exercise-start}
```
```{exercise-end}
```
````markdown
```{prf:theorem} shown as syntax, not a theorem
```
````
```python
x = "```{exercise}"
```
"""
    assert site_test.expected_blocks(source) == {
        "prf:theorem": 1, "prf:proof": 1, "prf:lemma": 1, "exercise": 2, "solution": 1}


def test_check_blocks():
    blocks = [
        {"classes": ["proof", "theorem", "admonition"], "id": "thm-a", "title": "Theorem 1"},
        {"classes": ["proof", "admonition"], "id": "proof", "title": "Proof."},
        {"classes": ["exercise", "admonition"], "id": "ex-1", "title": "Exercise 1"},
        {"classes": ["solution", "admonition"], "id": "sol", "title": ""},
    ]
    ok = {"prf:theorem": 1, "prf:proof": 1, "exercise": 1}
    assert site_test.check_blocks({"blocks": blocks[:3]}, ok) == []
    fails = site_test.check_blocks({"blocks": blocks}, {**ok, "prf:lemma": 1, "solution": 1})
    assert fails == ["block without title: div#sol (solution admonition)",
                     "source has 1 {prf:lemma} block(s), page renders 0"]


def test_check_images():
    info = {"images": [
        {"src": "../_images/a.png", "alt": "A plot of x", "loaded": True, "visible": True,
         "where": "#f1"},
        {"src": "../_images/b.png", "alt": "", "loaded": True, "visible": True, "where": ""},
        {"src": "../_images/c.png", "alt": "../_images/c.png", "loaded": True, "visible": True,
         "where": "section#s"},
        {"src": "../_images/d.png", "alt": "d", "loaded": False, "visible": True, "where": ""},
    ], "figures": [{"id": "f1", "img": "../_images/a.png", "caption": "Figure 1: x",
                    "where": ""},
                   {"id": "f2", "img": "../_images/e.png", "caption": "", "where": "#s"}]}
    fails = site_test.check_images(info)
    assert fails == [
        "no alt text: <img src='../_images/b.png'> @ page",
        "alt text is the file name ('../_images/c.png'): <img src='../_images/c.png'> @ section#s",
        "image did not load: <img src='../_images/d.png'> @ page",
        "figure without caption: <figure id='f2'> (img '../_images/e.png') @ #s",
    ]


def test_check_math():
    info = {"math": 3, "mathjax": True, "unrendered": ["\\(x\\) @ #s"],
            "merrors": ["Undefined control sequence \\foo @ #s"], "raw": []}
    assert site_test.check_math(info) == ["math not rendered: \\(x\\) @ #s",
                                          "MathJax error: Undefined control sequence \\foo @ #s"]
    assert site_test.check_math({**info, "unrendered": [], "merrors": []}) == []
    assert site_test.check_math({**info, "unrendered": [], "merrors": [], "mathjax": False}) \
        == ["3 math element(s) but MathJax did not load"]


def test_colab_link(tmp_path):
    write(tmp_path / "_config.yml", "repository:\n  url: https://github.com/org/repo\n"
          "  branch: main\nlaunch_buttons:\n  colab_url: https://colab.research.google.com\n")
    want = "https://colab.research.google.com/github/org/repo/blob/main/book/01_x.ipynb"
    assert site_test.expected_colab(tmp_path / "_config.yml", "book/01_x") == want
    info = {"hasLaunch": True, "launch": ["https://mybinder.org/...", want]}
    fails, _ = site_test.check_launch(info, "book/01_x", tmp_path)
    assert fails == ["Colab link points at book/01_x.ipynb, which is not in the repository"]
    write(tmp_path / "book" / "01_x.ipynb", "{}")
    assert site_test.check_launch(info, "book/01_x", tmp_path) == ([], "colab ok")
    wrong = {"hasLaunch": True, "launch": [want.replace(".ipynb", ".md")]}
    assert "expected" in site_test.check_launch(wrong, "book/01_x", tmp_path)[0][0]
    # a page with a paired notebook must have the launch buttons
    none = {"hasLaunch": False, "launch": []}
    assert site_test.check_launch(none, "book/01_x", tmp_path)[0] == [
        "no launch buttons although book/01_x.ipynb exists"]
    assert site_test.check_launch(none, "book/notation", tmp_path) == ([], "")


def test_cdn_rules_map_to_pinned_npm_files(tmp_path):
    url = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/output/chtml/fonts/woff-v2/x.woff"
    rule = site_test.CDN_RULES[0]
    version = site_test.NPM_PINS["mathjax"]
    assert rule.local(url, tmp_path) == (tmp_path / f"mathjax@{version}" / "node_modules"
                                         / "mathjax" / "es5/output/chtml/fonts/woff-v2/x.woff")
    assert rule.local("https://cdn.jsdelivr.net/npm/mathjax@2/MathJax.js", tmp_path) is None
    assert site_test.needed_packages({
        "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js",
        "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
        "https://example.org/other.js"}) == {("mathjax", version), ("requirejs", "2.3.4")}
    assert site_test.ensure_packages(set(), tmp_path) == []


def test_site_test_skips_without_chromium(tmp_path, capsys):
    missing = str(tmp_path / "no-chromium")
    assert site_test.main(["--chromium", missing, str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == site_test.SKIP_MESSAGE
    assert site_test.main(["--chromium", missing, "--require", str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_drop_stale_sri(tmp_path):
    rule = site_test.CDN_RULES[1]  # cdnjs require.min.js -> npm requirejs require.js
    local = write(site_test.package_dir(tmp_path, rule.package, rule.version) / "require.js",
                  "requirejs();")
    url = "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js"
    html = (f'<script crossorigin="anonymous" integrity="sha256-AAAA" src="{url}"></script>'
            '<script integrity="sha256-BBBB" src="https://example.org/x.js"></script>')
    dropped = set()
    out = site_test.drop_stale_sri(html, tmp_path, dropped)
    assert out == (f'<script crossorigin="anonymous" src="{url}"></script>'
                   '<script integrity="sha256-BBBB" src="https://example.org/x.js"></script>')
    assert dropped == {url}
    good = f'<script integrity="sha256-{site_test.sri_digest(local, "sha256")}" src="{url}">'
    assert site_test.drop_stale_sri(good, tmp_path) == good  # a matching copy keeps its SRI


class _Msg:
    def __init__(self, type_, text, url=""):
        self.type, self.text, self.location = type_, text, {"url": url}


class _Req:
    def __init__(self, url, failure="net::ERR_ABORTED"):
        self.url, self.failure = url, failure


class _Resp:
    def __init__(self, url, status):
        self.url, self.status = url, status


def test_page_events_report_each_problem_once():
    base = "http://127.0.0.1:9999/"
    events = site_test.PageEvents(base)
    events.console(_Msg("warning", "just a warning"))
    events.console(_Msg("error", "Got invalid theme mode", base + "_static/theme.js"))
    events.console(_Msg("error", "Failed to load resource: 404", base + "book/x.woff2"))
    events.request_failed(_Req(base + "book/x.woff2"))
    events.response(_Resp(base + "book/x.woff2", 404))
    events.response(_Resp(base + "book/ok.css", 200))
    events.console(_Msg("error", "Failed to load resource: net::ERR_BLOCKED_BY_CLIENT",
                        "https://example.org/x.js"))
    events.request_failed(_Req("https://example.org/x.js", "net::ERR_BLOCKED_BY_CLIENT"))
    events.page_error(Exception("Identifier 'X' has already been declared"))
    assert events.failures() == [
        "uncaught page error: Identifier 'X' has already been declared",
        "console error: Got invalid theme mode (/_static/theme.js)",
        "HTTP 404: /book/x.woff2",
    ]
