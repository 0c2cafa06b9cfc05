"""The ``{quoted}`0.45``` role: a number the prose quotes from a cited paper, not one it computes.

It renders as the plain number (``<span class="quoted-number">``). It exists so that
``tools/prose_numbers.py``, which flags every decimal of a chapter's prose that is not glued from
a cell (``{glue:text}``) or set by the page's code, can tell a value reported by a paper from a
result typed by hand. The sentence must say whose value it is and cite it.
"""

from docutils import nodes


def quoted_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    node = nodes.inline(rawtext, text, classes=["quoted-number"])
    return [node], []


def setup(app):
    app.add_role("quoted", quoted_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
