"""Sphinx extension: print each chapter's execution time after the build.

myst-nb records, for every executed page, how long its notebook took. This
prints a table at the end of the build and writes ``_build/exec_times.json``.
A page that has ``budget_s`` in its front matter fails the build when it exceeds it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError


def _report(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None:
        return
    from myst_nb.sphinx_ import NbMetadataCollector

    env = app.env
    rows = []
    for docname in sorted(env.found_docs):
        data = NbMetadataCollector.get_exec_data(env, docname)
        if not data:
            continue
        budget = env.metadata.get(docname, {}).get("budget_s")
        rows.append(
            {
                "page": docname,
                "method": data.get("method"),
                "runtime_s": data.get("runtime"),
                "succeeded": data.get("succeeded"),
                "budget_s": float(budget) if budget is not None else None,
            }
        )
    if not rows:
        return
    print("\nExecution time per page (myst-nb):")
    over = []
    for r in rows:
        rt = r["runtime_s"]
        rt_txt = f"{rt:7.1f} s" if rt is not None else "      - "
        bud = f"(budget {r['budget_s']:.0f} s)" if r["budget_s"] else ""
        print(f"  {r['page']:<40s} {rt_txt} {r['method']:<6s} {bud}")
        if rt is not None and r["budget_s"] and rt > r["budget_s"]:
            over.append(r)
    out = Path(app.outdir).parent / "exec_times.json"
    out.write_text(json.dumps(rows, indent=2))
    if over:
        names = ", ".join(
            f"{r['page']} ({r['runtime_s']:.0f} s > {r['budget_s']:.0f} s)" for r in over
        )
        raise ExtensionError(f"pages over their execution budget: {names}")


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", _report)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
