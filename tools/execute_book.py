"""Execute the book once, in the Colab-like environment, two pages at a time, and build the site
from those outputs (issue 31).

The book's pages used to run twice with the same code: by myst-nb for the site (in the CI lock's
venv) and again as the reader notebooks (``book/*.ipynb``, in the Colab-like venv). The reader
notebook's code cells are the page's own (``tests/test_notebooks.py`` checks it), so one run in
the Colab-like venv serves both: the site is built from outputs computed with Colab's versions,
through the install cell a reader runs, with the package installed from the wheel that
``make test`` built.

1. **read**: each notebook page of ``_toc.yml`` is read with myst-nb's own reader (so that its
   code cells, metadata and hash are those of the build) into ``_build/exec/in/``;
2. **run**: ``tools/colab_test.py --jobs 2`` (the Colab-like venv's Python) executes them, two at
   a time with one thread each, from ``book/`` (the build's working folder), under its stall
   limits; the install cell, pointed at the wheel, runs alone first;
3. **cache**: each executed notebook goes into the build's execution cache
   (``_build/.jupyter_cache``, jupyter-cache), with its wall time as ``execution_seconds``, which
   the build's per-page budget check (``book/_ext/exec_report.py``) reads;
4. **build**: ``jupyter-book build . -W --keep-going``, which finds every page in the cache;
5. **check**: the build added no record to the cache (it executed nothing itself), and every
   page's time is printed with its share of the budget; a page over half its budget is named.

    python tools/execute_book.py --wheel _build/dist/diffnotes-X.Y.Z-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

import notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
COLAB_PYTHON = ROOT / ".venv-colab" / "bin" / "python"
BIN = Path(sys.executable).parent


def read_page(md: Path) -> nbformat.NotebookNode:
    """The page as the build reads it: myst-nb's reader of MyST notebooks."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    cfg = MdParserConfig(enable_extensions=set(notebooks.export.MYST_EXTENSIONS))
    return read_myst_markdown_notebook(md.read_text(encoding="utf-8"), config=cfg,
                                       add_source_map=True, path=str(md))


def with_outputs(page: nbformat.NotebookNode,
                 executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``page`` (as the build reads it) with the outputs of ``executed``, cell by cell.

    The executed notebook itself would not match the build's notebook in the cache: the run
    adds timing metadata to its cells and its own kernel to its metadata, and jupyter-cache
    hashes both.
    """
    mine = [c for c in page.cells if c.cell_type == "code"]
    ran = [c for c in executed.cells if c.cell_type == "code"]
    if [c.source for c in mine] != [c.source for c in ran]:
        raise ValueError("executed must be a run of page; their code cells differ")
    for cell, done in zip(mine, ran, strict=True):
        cell.outputs, cell.execution_count = done.outputs, done.execution_count
    return page


def budget(md: Path) -> float:
    """``budget_s`` of the page's front matter (what the build's budget check enforces), read
    as the Colab-like run reads it (:func:`colab_test.page_budget`)."""
    from colab_test import page_budget

    return page_budget(md)


def cache_records() -> dict[int, str]:
    from jupyter_cache import get_cache

    return {r.pk: r.hashkey for r in get_cache(str(CACHE)).list_cache_records()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, required=True,
                        help="the built wheel the install cell installs")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.wheel.is_file():
        print(f"--wheel must be a built wheel; {args.wheel} does not exist (make wheel)")
        return 2
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    pages = notebooks.notebook_pages()
    src, out = BUILD / "exec" / "in", BUILD / "exec" / "out"
    for d in (src, out, CACHE):
        shutil.rmtree(d, ignore_errors=True)
    src.mkdir(parents=True)
    for md in pages:
        nbformat.write(read_page(md), src / f"{md.stem}.ipynb")

    t0 = time.perf_counter()
    report = BUILD / "execute_book.json"
    rc = subprocess.call([str(COLAB_PYTHON), str(ROOT / "tools" / "colab_test.py"),
                          "--jobs", str(args.jobs), "--save", str(out), "--cwd",
                          str(ROOT / "book"), "--source", str(args.wheel.resolve()),
                          "--report", str(report),
                          *[str(src / f"{md.stem}.ipynb") for md in pages]],
                         env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                                  DIFFNOTES_GLUE="record"))
    ran = time.perf_counter() - t0
    if rc != 0:
        print(f"execute_book: the Colab-like run failed (exit {rc}); nothing built")
        return rc
    seconds = {Path(name).stem: r["seconds"]
               for name, r in json.loads(report.read_text())["notebooks"].items()}

    cache = get_cache(str(CACHE))
    for md in pages:
        nb = with_outputs(nbformat.read(src / f"{md.stem}.ipynb", as_version=4),
                          nbformat.read(out / f"{md.stem}.ipynb", as_version=4))
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(md), data={"execution_seconds": seconds[md.stem]}),
            check_validity=False, overwrite=True)
    before = cache_records()

    rc = subprocess.call([str(BIN / "jupyter-book"), "build", str(ROOT), "-W", "--keep-going"],
                         cwd=ROOT)
    after = cache_records()
    new = sorted(set(after) - set(before))
    if new:
        print(f"execute_book: FAILED: the build executed {len(new)} page(s) itself (their "
              "cells differ from what was run); each page must run once")
        rc = rc or 1

    budgets = {md.stem: budget(md) for md in pages}
    total = sum(seconds.values())
    print(f"\nExecution per page (Colab-like venv, {args.jobs} at a time, {ran:.0f} s wall for "
          f"{total:.0f} s of pages):")
    over_half = []
    for md in pages:
        s, b = seconds[md.stem], budgets[md.stem]
        print(f"  {md.stem:28s} {s:7.1f} s  {100 * s / b:5.1f} % of its {b:.0f} s budget"
              f"  {100 * s / total:5.1f} % of the run")
        if s > b / 2:
            over_half.append(f"{md.stem} ({s:.0f} s of {b:.0f} s)")
    if over_half:
        print("  over half the budget: " + ", ".join(over_half))
    (BUILD / "execute_shares.json").write_text(json.dumps({
        "wall_seconds": round(ran, 1), "jobs": args.jobs,
        "pages": [{"page": md.stem, "seconds": seconds[md.stem], "budget_s": budgets[md.stem]}
                  for md in pages]}, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
