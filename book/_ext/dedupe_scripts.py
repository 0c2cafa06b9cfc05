"""Drop duplicate <script> entries from each page's head.

Jupyter Book 1.0.4 with sphinx-thebe 0.3.1 adds the thebe configuration script twice, and the
second copy throws "Identifier 'THEBE_JS_URL' has already been declared" in every browser
(the browser test, tools/site_test.py, found it). Same file and attributes: keep the first.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if not files:
        return
    seen, unique = set(), []
    for js in files:
        name = getattr(js, "filename", js) or ""
        key = (str(name), tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    files[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
