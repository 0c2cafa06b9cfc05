"""Check that the built wheel holds what the book's notebooks use (issue 26).

The Colab-like runs install the wheel, so a module left out of it fails them; this check says so
before they start, and names what is missing:

* every ``diffnotes`` module that a page or an exported notebook imports (``from diffnotes.x
  import ...``, ``import diffnotes.x``) is a file of the wheel;
* every file of the package in this checkout (``diffnotes/``, data files included, caches aside)
  is in the wheel;
* imported from the wheel alone (``PYTHONPATH`` set to the wheel, which is a zip; the check
  verifies the package came from there), the package lists every exercise key that a page
  checks (``check("label", ...)``), and its version is the one in ``pyproject.toml``.

    python tools/release_check.py _build/dist/diffnotes-X.Y.Z-py3-none-any.whl
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
IMPORT = re.compile(r"^\s*(?:from\s+(diffnotes(?:\.\w+)*)\s+import|import\s+(diffnotes(?:\.\w+)*))",
                    re.M)
CHECK = re.compile(r"""\bcheck\(\s*["']([\w-]+)["']""")


def sources() -> list[Path]:
    return sorted([*(ROOT / "book").glob("*.md"), *(ROOT / "book").glob("*.ipynb"),
                   *(ROOT / "notebooks").glob("*/*.ipynb")])


def imported_modules(text: str) -> set[str]:
    """The ``diffnotes`` modules that ``text`` imports (``diffnotes.x``; the package itself)."""
    return {a or b for a, b in IMPORT.findall(text)}


def module_file(module: str, names: set[str]) -> str | None:
    """The wheel's file of ``module`` (``x/y.py`` or ``x/y/__init__.py``), or None."""
    base = module.replace(".", "/")
    for cand in (f"{base}.py", f"{base}/__init__.py"):
        if cand in names:
            return cand
    return None


def problems(wheel: Path) -> list[str]:
    out = []
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    texts = {p: p.read_text(encoding="utf-8") for p in sources()}
    for path, text in texts.items():
        for mod in sorted(imported_modules(text)):
            if module_file(mod, names) is None:
                out.append(f"{path.relative_to(ROOT)} imports {mod}, which the wheel lacks")
    for f in sorted((ROOT / "diffnotes").rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
            rel = f.relative_to(ROOT).as_posix()
            if rel not in names:
                out.append(f"{rel} is in the package but not in the wheel")
    labels = sorted({lab for text in texts.values() for lab in CHECK.findall(text)})
    probe = ("import json, diffnotes, diffnotes.selfcheck as s; "
             "print(json.dumps({'file': diffnotes.__file__, 'version': diffnotes.__version__, "
             "'labels': sorted(s.exercises())}))")
    env = dict(os.environ, PYTHONPATH=str(wheel.resolve()), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         cwd="/")
    if run.returncode != 0:
        return [*out, f"the package does not import from the wheel:\n{run.stderr[-2000:]}"]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    if not got["file"].startswith(str(wheel.resolve())):
        out.append(f"the probe imported diffnotes from {got['file']}, not from the wheel")
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    if got["version"] != version:
        out.append(f"the wheel's diffnotes.__version__ is {got['version']}, pyproject.toml "
                   f"says {version}")
    missing = sorted(set(labels) - set(got["labels"]))
    if missing:
        out.append(f"exercise keys the pages check but the wheel lacks: {missing}")
    return out


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_file():
        print("usage: python tools/release_check.py WHEEL (a built wheel file)")
        return 2
    wheel = Path(args[0])
    found = problems(wheel)
    for p in found:
        print("FAILED:", p)
    if not found:
        with zipfile.ZipFile(wheel) as z:
            n = len([n for n in z.namelist() if n.startswith("diffnotes/")])
        print(f"{wheel.name}: {n} package files; every module, data file and exercise key the "
              "notebooks use is in it")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
