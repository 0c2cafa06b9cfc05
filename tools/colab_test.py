"""Run the book's notebooks as Colab would, and fail fast and loudly when one stalls.

Run this with the Python of a Colab-like environment (``make colab-test`` makes one from
``requirements-colab.txt``, written by ``tools/colab_pins.py`` from Colab's published freeze;
``make colab-check`` uses the interpreter of Colab's own runtime image). It runs the *reader*
notebooks (``book/*.ipynb``, what the Colab button opens) and the *student* notebooks
(``notebooks/student/*.ipynb``, answer cells left at ``None``, which must not raise). For each,
it starts a kernel of this interpreter in which ``google.colab`` is importable (a stand-in
module registered by an IPython startup file, so the install cell takes its Colab branch),
points the install cell at this checkout (``DIFFNOTES_SOURCE``) and executes the notebook top
to bottom from its folder.

Widget cells used to stall (a reply read only at the cell's timeout, then reported ``ok``):
:func:`rearm_after_send` removes the cause, a lost wake-up of the shell socket.

Limits, so that a stall costs seconds, not the 600 s of nbclient's default:

* **per cell**: ``max(MIN_CELL_S, 10 × its normal time)``, the normal time read from
  ``colab/cell_times.json`` by the hash of the cell's source (``--record`` rewrites that file
  from a clean run); a cell with no recorded time gets ``NEW_CELL_S``;
* **per notebook**: ``NOTEBOOK_FACTOR ×`` the page's ``budget_s`` (its ``.md`` front matter),
  plus ``INSTALL_S`` for the install cell.

A cell that reaches its limit, or a notebook that reaches its wall limit, is a failure that
names the notebook, the cell (its number and first line) and both times; it is never ``ok``.
It also fails when a cell fails, when the venv's pinned packages are not Colab's versions
(``tools/colab_pins.py``), when diffnotes was importable before the first cell ran, or when
the install cell changed any other installed package. Times per notebook and per cell go to
stdout and to ``_build/colab_test.json``.

With ``--jobs N`` it runs N notebooks at once, each in a kernel of its own (the install cell
runs alone first); ``--save DIR`` keeps the executed notebooks: ``tools/execute_book.py``
executes the book's pages this way and builds the site from what it saved.

    python tools/colab_test.py [NOTEBOOK ...] [--record] [--no-student] [--student-only]
                               [--jobs N] [--save DIR] [--cwd DIR] [--source WHEEL]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbclient
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))

import colab_pins  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMES = ROOT / "colab" / "cell_times.json"

MIN_CELL_S = 20.0       # no cell limit below this: kernel start-up and imports jitter
CELL_FACTOR = 10.0      # a cell may take ten times its normal time before it is a stall
NEW_CELL_S = 120.0      # a cell whose source has no recorded time (a changed cell)
NOTEBOOK_FACTOR = 3.0   # a notebook may take three times its page's budget
INSTALL_S = 120.0       # the install cell (pip) comes on top of the page's budget
DEFAULT_BUDGET_S = 120.0

STARTUP = '''\
# Written by tools/colab_test.py: make the kernel look like Colab's to the install cell.
import sys
import types

sys.modules.setdefault("google.colab", types.ModuleType("google.colab"))
'''


# The cure of the widget-cell stall lives with the book build's extensions (the build needs
# it too); re-exported here for the Colab-like run and its tests.
from kernel_rearm import rearm, rearm_after_send  # noqa: E402, F401


def cell_key(source: str) -> str:
    """The key of a cell's normal time: a hash of its source."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def cell_limit(source: str, normal: dict[str, float]) -> float:
    """Seconds a cell may run: ten times its recorded normal time, at least ``MIN_CELL_S``."""
    t = normal.get(cell_key(source))
    return NEW_CELL_S if t is None else max(MIN_CELL_S, CELL_FACTOR * t)


def page_budget(path: Path) -> float:
    """``budget_s`` of the page a notebook was made from (``book/<stem>.md``)."""
    md = ROOT / "book" / f"{path.stem}.md"
    if md.is_file():
        m = re.search(r"^budget_s:\s*([0-9.]+)\s*$", md.read_text(encoding="utf-8"), re.M)
        if m:
            return float(m.group(1))
    return DEFAULT_BUDGET_S


@dataclass
class Run:
    """What happened to one notebook."""

    name: str
    seconds: float = 0.0
    status: str = "ok"
    cells: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _describe(index: int, source: str) -> str:
    first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return f"code cell {index} ({first[:60]!r})"


def run_notebook(path: Path, kernel: str, normal: dict[str, float], wall_limit: float,
                 cwd: Path | None = None, save: Path | None = None) -> Run:
    """Execute one notebook under the per-cell and per-notebook limits; with ``save`` (a
    folder), write the executed notebook there under its own name when it passed.

    Never raises for the notebook's own failures: they come back in ``Run.status``.
    """
    rearm_after_send()
    nb = nbformat.read(path, as_version=4)
    full = path.resolve()
    run = Run(str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else path.name)
    current: dict = {}
    code_index = {id(c): i for i, c in
                  enumerate((c for c in nb.cells if c.cell_type == "code"), start=1)}

    def on_cell_start(cell, cell_index):
        current.update(cell=cell, start=time.perf_counter(),
                       where=_describe(code_index.get(id(cell), 0), cell.source),
                       limit=cell_limit(cell.source, normal))

    def on_cell_executed(cell, cell_index, execute_reply):
        seconds = time.perf_counter() - current["start"]
        run.cells.append({"cell": code_index.get(id(cell), 0), "key": cell_key(cell.source),
                          "seconds": round(seconds, 3), "limit": current["limit"]})
        # A reply that comes only when the limit ran out is a stall, whatever nbclient made
        # of it (with interrupt_on_timeout it would carry on as if the cell had succeeded).
        if seconds >= 0.95 * current["limit"]:
            raise StallError(f"{current['where']} took {seconds:.1f} s, its limit "
                             f"{current['limit']:.0f} s (normally "
                             f"{current['limit'] / CELL_FACTOR:.1f} s or less)")

    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout_func=lambda cell: cell_limit(cell.source, normal),
        interrupt_on_timeout=False, raise_on_iopub_timeout=True,
        on_cell_start=on_cell_start, on_cell_executed=on_cell_executed,
        resources={"metadata": {"path": str(cwd or path.parent)}})

    wall = {"reached": False}

    async def execute():
        # The wall limit cancels the run from outside; nbclient reports any cancellation as a
        # dead kernel, so the flag tells the two apart.
        task = asyncio.current_task()

        def expire():
            wall["reached"] = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(wall_limit, expire)
        try:
            await client.async_execute()
        finally:
            handle.cancel()

    start = time.perf_counter()
    try:
        asyncio.run(execute())
    except (Exception, asyncio.CancelledError) as err:  # report, go on with the next notebook
        where = current.get("where", "kernel start-up")
        if wall["reached"]:
            run.status = f"FAILED: notebook wall limit {wall_limit:.0f} s reached in {where}"
        elif isinstance(err, nbclient.exceptions.CellTimeoutError):
            run.status = (f"FAILED: {where} stalled: no reply within its limit of "
                          f"{current.get('limit', 0):.0f} s")
        elif isinstance(err, StallError):
            run.status = f"FAILED: {err}"
        else:
            run.status = f"FAILED: {type(err).__name__} in {where}: {str(err)[-1500:]}"
    run.seconds = time.perf_counter() - start
    if save is not None and run.ok:
        save.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save / path.name)
    return run


class StallError(RuntimeError):
    """A cell that returned only at its time limit."""


def _freeze() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True).stdout
    return {colab_pins.canonical(p["name"]): p["version"] for p in json.loads(out)}


def kernel_env(tmp: Path) -> str:
    """A kernelspec for this interpreter, and an IPython profile with the stand-in module."""
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(STARTUP)
    spec = tmp / "jupyter" / "kernels" / "colab-like"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "Colab-like", "language": "python",
        "env": {"IPYTHONDIR": str(tmp / "ipython"), "PYDEVD_DISABLE_FILE_VALIDATION": "1"}}))
    os.environ["JUPYTER_PATH"] = str(tmp / "jupyter")
    return "colab-like"


def default_notebooks(student: bool) -> list[Path]:
    found = sorted((ROOT / "book").glob("*.ipynb"))
    if student:
        found += sorted((ROOT / "notebooks" / "student").glob("*.ipynb"))
    return found


def write_cell_times(runs: dict) -> int:
    """Write every cell's time of passing runs (``{name: {"cells": [...]}}``) to CELL_TIMES."""
    times = {c["key"]: c["seconds"] for r in runs.values() for c in r["cells"]}
    CELL_TIMES.write_text(json.dumps(dict(sorted(times.items())), indent=0) + "\n")
    print(f"recorded {len(times)} cell times in {CELL_TIMES.relative_to(ROOT)}")
    return len(times)


def record_from(path: Path) -> int:
    """``--record-from``: the cell times of an earlier, fully passing run."""
    runs = json.loads(path.read_text())["notebooks"]
    bad = [name for name, r in runs.items() if r["status"] != "ok"]
    if bad:
        print(f"not recording: {', '.join(bad)} did not pass in {path}")
        return 1
    write_cell_times(runs)
    return 0


def install_alone(first: Path, kernel: str, tmp: Path) -> Run:
    """Run the install cell (the first code cell of ``first``) alone, in a kernel of its own."""
    nb = nbformat.read(first, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    one = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell.source)],
                                   metadata=nb.metadata)
    path = tmp / "install_cell.ipynb"
    nbformat.write(one, path)
    return run_notebook(path, kernel, {}, INSTALL_S)


def _one(item):
    path, kernel, normal, limit, cwd, save = item
    return run_notebook(path, kernel, normal, limit, cwd=cwd, save=save)


def run_many(notebooks: list[Path], kernel: str, normal: dict[str, float], args) -> list[Run]:
    """Every notebook, ``args.jobs`` at a time (each its own process and kernel), printing one
    line per notebook in the order given."""
    import concurrent.futures
    import multiprocessing

    items = [(p, kernel, normal, NOTEBOOK_FACTOR * page_budget(p) + INSTALL_S,
              args.cwd, args.save) for p in notebooks]
    runs = []
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=max(1, args.jobs),
            mp_context=multiprocessing.get_context("fork")) as pool:
        for (path, *_, limit, _cwd, _save), run in zip(items, pool.map(_one, items),
                                                       strict=True):
            runs.append(run)
            rel = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) \
                else path
            slowest = max(run.cells, key=lambda c: c["seconds"], default=None)
            note = (f" (slowest: code cell {slowest['cell']}, {slowest['seconds']:.1f} s)"
                    if slowest else "")
            print(f"{str(rel):48s} {run.seconds:7.1f} s / {limit:4.0f} s  {run.status}"
                  f"{note if run.ok else ''}", flush=True)
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: book/*.ipynb and notebooks/student/)")
    parser.add_argument("--no-student", action="store_true",
                        help="run the reader notebooks only")
    parser.add_argument("--record", action="store_true",
                        help=f"write every cell's time to {CELL_TIMES.relative_to(ROOT)} "
                             "(only when every notebook passed)")
    parser.add_argument("--record-from", type=Path, metavar="JSON",
                        help="write the cell times of an earlier run's _build/colab_test.json "
                             f"to {CELL_TIMES.relative_to(ROOT)} and exit (every notebook of "
                             "that run must have passed)")
    parser.add_argument("--any-versions", action="store_true",
                        help="skip the check that the venv has Colab's versions (Colab's own "
                             "image, make colab-check)")
    parser.add_argument("--source", default=str(ROOT),
                        help="what the install cell installs (default: this checkout; make "
                             "test gives the wheel it built)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks at once, each in its own kernel (the install cell "
                             "then runs alone first)")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each executed notebook that passed into this folder")
    parser.add_argument("--cwd", type=Path, default=None,
                        help="the folder each notebook runs in (default: its own)")
    parser.add_argument("--report", type=Path, default=ROOT / "_build" / "colab_test.json",
                        help="where the times and statuses go (JSON)")
    parser.add_argument("--student-only", action="store_true",
                        help="run the student notebooks only (make test: the reader notebooks' "
                             "code is the book's, run by tools/execute_book.py)")
    args = parser.parse_args(argv)
    if args.record_from:
        return record_from(args.record_from)
    notebooks = args.notebooks or default_notebooks(student=not args.no_student)
    if args.student_only and not args.notebooks:
        notebooks = sorted((ROOT / "notebooks" / "student").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found under book/ (run `make notebooks`)")
        return 1

    before = _freeze()
    failed = []
    if not args.any_versions:
        wrong = colab_pins.installed_mismatches(before)
        if wrong:
            print("FAILED: the venv is not Colab's runtime (requirements-colab.txt): "
                  + "; ".join(wrong))
            failed.append("versions")
    if "diffnotes" in before:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "diffnotes"],
                       check=True)
        before.pop("diffnotes")
    print(f"Python {sys.version.split()[0]}; "
          + ", ".join(f"{p} {before.get(p, 'absent')}"
                      for p in ("torch", "numpy", "matplotlib", "sympy", "ipywidgets", "scipy",
                                "ipykernel", "jupyter-client", "pyzmq", "nbclient")))

    normal = json.loads(CELL_TIMES.read_text()) if CELL_TIMES.is_file() else {}
    os.environ["DIFFNOTES_SOURCE"] = args.source
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        kernel = kernel_env(Path(tmp))
        if args.jobs > 1:
            # Notebooks at once would run their install cells at once, two pip processes
            # writing one site-packages: the install cell (the same in every notebook, see
            # tools/notebooks.py check) runs alone first; the notebooks' own then find
            # diffnotes installed and change nothing (checked below, as for any run).
            run = install_alone(notebooks[0], kernel, Path(tmp))
            print(f"{'install cell (alone, before ' + str(args.jobs) + ' at once)':48s} "
                  f"{run.seconds:7.1f} s  {run.status}", flush=True)
            if not run.ok:
                failed.append("install cell")
        if not failed or args.jobs == 1:
            runs = run_many(notebooks, kernel, normal, args)
        for run in runs:
            if not run.ok:
                failed.append(run.name)

    after = _freeze()
    if "diffnotes" not in after:
        failed.append("install cell")
        print("FAILED: diffnotes is not installed after the notebooks ran: the install cell "
              "did not take its Colab branch")
    after.pop("diffnotes", None)
    changed = {p: (before.get(p), v) for p, v in after.items() if before.get(p) != v}
    changed.update({p: (v, None) for p, v in before.items() if p not in after})
    if changed:
        failed.append("environment")
        print(f"FAILED: the install cell changed installed packages: {changed}")

    out = args.report
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "packages": before,
                               "notebooks": {r.name: {"seconds": round(r.seconds, 1),
                                                      "status": r.status, "cells": r.cells}
                                             for r in runs}}, indent=1))
    if args.record:
        if failed:
            print(f"not recording cell times: failures ({', '.join(failed)})")
        else:
            write_cell_times({r.name: {"cells": r.cells} for r in runs})
    n_bad = len([r for r in runs if not r.ok])
    print(f"{len(runs) - n_bad} of {len(runs)} notebooks ran in the Colab-like environment"
          + (f"; failures: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
