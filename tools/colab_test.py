"""Run every chapter's paired ``.ipynb`` as Colab would: first cell installs diffnotes.

Run this with the Python of a Colab-like environment (``make colab-test`` makes one from
``requirements-colab.txt``; ``make colab-check`` uses the interpreter of Colab's own runtime
image). For each ``book/*.ipynb`` it starts a kernel of that interpreter in which
``google.colab`` is importable (a stand-in module registered by an IPython startup file, so the
install cell takes its Colab branch), points the install cell at this checkout
(``DIFFNOTES_SOURCE``), and executes the notebook top to bottom from ``book/``.

It fails when a cell fails, when diffnotes was importable before the first cell ran (the
install cell must be what installs it), or when the install cell changed any other installed
package (it must never upgrade what Colab ships). Times per notebook go to stdout and to
``_build/colab_test.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

ROOT = Path(__file__).resolve().parent.parent

STARTUP = '''\
# Written by tools/colab_test.py: make the kernel look like Colab's to the install cell.
import sys
import types

sys.modules.setdefault("google.colab", types.ModuleType("google.colab"))
'''


def _freeze() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def _kernel_env(tmp: Path) -> str:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to run (default: every book/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--source", default=str(ROOT),
                        help="what the install cell installs (default: this checkout)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
    if not notebooks:
        print("no notebooks found under book/ (run `make notebooks`)")
        return 1

    before = _freeze()
    if "diffnotes" in before:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "diffnotes"],
                       check=True)
        before.pop("diffnotes")
    print(f"Python {sys.version.split()[0]}; "
          + ", ".join(f"{p} {before.get(p, 'absent')}"
                      for p in ("torch", "numpy", "matplotlib", "sympy", "ipywidgets", "scipy")))

    os.environ["DIFFNOTES_SOURCE"] = args.source
    results, failed = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        kernel = _kernel_env(Path(tmp))
        for path in notebooks:
            nb = nbformat.read(path, as_version=4)
            start = time.perf_counter()
            try:
                nbclient.NotebookClient(nb, timeout=args.timeout, kernel_name=kernel,
                                        resources={"metadata": {"path": str(path.parent)}}
                                        ).execute()
                status = "ok"
            except Exception as err:  # noqa: BLE001 - report and go on with the next notebook
                status = f"FAILED: {type(err).__name__}: {str(err)[-2000:]}"
                failed.append(path.name)
            seconds = time.perf_counter() - start
            results[path.name] = {"seconds": round(seconds, 1), "status": status}
            print(f"{path.name:40s} {seconds:7.1f} s  {status}", flush=True)

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
    out = ROOT / "_build" / "colab_test.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "packages": before,
                               "notebooks": results}, indent=1))
    print(f"{len(notebooks) - len([f for f in failed if f.endswith('.ipynb')])} of "
          f"{len(notebooks)} notebooks ran in the Colab-like environment"
          + (f"; failures: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
