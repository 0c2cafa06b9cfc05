"""Write ``requirements-colab.txt`` from Google Colab's published runtime (``make colab-pins``).

Google publishes the packages of Colab's runtime (googlecolab/backend-info, ``pip-freeze.txt``);
a copy lives in ``colab/pip-freeze.txt`` (refresh it from ``../shared/colab/`` or that repository
when Colab moves). This script pins, at Colab's versions, every package the book imports, the
whole kernel stack that runs a notebook, and the packages those pull in, so that the Colab-like
venv of ``make colab-test`` is Colab's runtime in everything but two documented exceptions:

* **Python**: Colab runs Python 3.13; the CI machine has 3.11.
* **torch**: Colab ships 2.11 (CPU or CUDA); the CI machine can only install the 2.13.0 CPU
  wheel it keeps on disk, so ``torch==2.13.0`` is pinned, with the versions of its own
  dependencies that Colab ships where they are compatible.

The weekly run inside Colab's own image (``make colab-check``) covers both.

    python tools/colab_pins.py            # write requirements-colab.txt
    python tools/colab_pins.py --check    # exit 1 when the file and the freeze disagree
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT / "colab" / "pip-freeze.txt"
OUT = ROOT / "requirements-colab.txt"

# What the chapters import (book/*.md): the numerics, plotting, sympy, widgets, IPython.
BOOK = ("torch", "numpy", "scipy", "matplotlib", "sympy", "ipywidgets", "ipython",
        "scikit-learn")
# What runs a notebook: the kernel and its client, and the runner of tools/colab_test.py.
KERNEL = ("ipykernel", "ipython", "jupyter_client", "jupyter_core", "pyzmq", "tornado",
          "traitlets", "nbclient", "nbformat", "debugpy", "matplotlib-inline", "nest-asyncio",
          "psutil", "widgetsnbextension", "jupyterlab_widgets", "PyYAML")
# What those pull in (read off `pip list` of the venv they make): pinned too, so that every
# package of the Colab-like venv has Colab's version.
DEPENDENCIES = (
    # IPython 7 and the widgets
    "backcall", "decorator", "parso", "pexpect", "ptyprocess", "pickleshare",
    "prompt_toolkit", "wcwidth", "Pygments", "entrypoints", "python-dateutil", "six",
    "platformdirs", "packaging",
    # nbformat and nbclient
    "fastjsonschema", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py",
    "attrs", "typing_extensions",
    # widgetsnbextension 3 needs the classic notebook 6, which brings its server along
    "notebook", "jupyter_server", "nbconvert", "mistune", "beautifulsoup4", "soupsieve",
    "anyio", "argon2-cffi-bindings", "pycparser", "babel", "fqdn", "jsonpointer",
    "Send2Trash", "websocket-client", "requests", "certifi", "charset-normalizer", "idna",
    "urllib3", "tzdata",
    # matplotlib, sympy, scikit-learn
    "contourpy", "cycler", "fonttools", "kiwisolver", "pillow", "pyparsing", "mpmath",
    "joblib", "threadpoolctl",
    # torch's own
    "filelock", "fsspec", "Jinja2", "MarkupSafe", "networkx",
)
# Installed with the pins but left to pip, with the reason (said in the file): one that Colab's
# image lacks, and one whose Colab version the torch exception cannot use.
UNPINNED = {"jedi": "IPython 7.34 requires it; absent from Colab's image",
            "setuptools": "torch 2.13.0 requires a newer one than Colab's 75.2.0",
            "overrides": "jupyter_server requires it on Python < 3.12 only; Colab runs 3.13"}
# The documented exceptions: what the CI machine can install instead.
EXCEPTIONS = {"torch": ("2.13.0", "the CPU wheel on the CI machine's disk; Colab: {colab}")}

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(==|@)\s*(.+)$")


def canonical(name: str) -> str:
    """PEP 503 normalised name: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_freeze(path: Path = FREEZE) -> dict[str, tuple[str, str]]:
    """``{canonical name: (name as written, version)}`` from a ``pip freeze`` file.

    ``name @ url`` lines (Colab's torch) take their version from the wheel's file name,
    without the local ``+cpu`` part.
    """
    if not path.is_file():
        raise ValueError(f"freeze file not found: {path}")
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _NAME.match(line)
        if not m:
            continue
        name, op, rest = m.groups()
        if op == "@":
            wheel = unquote(rest.rsplit("/", 1)[-1])
            parts = wheel.split("-")
            if len(parts) < 2:
                continue
            version = parts[1].split("+")[0]
        else:
            version = rest.strip()
        out[canonical(name)] = (name, version)
    return out


def pins(freeze: dict[str, tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """``(name, version, group, note)`` for every pinned package, in the order of the lists.

    ``note`` is empty but for the documented exceptions, where it says why and what Colab has.
    """
    rows, seen = [], set()
    for group, names in (("book", BOOK), ("kernel", KERNEL), ("dependency", DEPENDENCIES)):
        for name in names:
            key = canonical(name)
            if key in seen:
                continue
            seen.add(key)
            if key not in freeze:
                raise ValueError(f"{name} ({group}) is not in Colab's freeze: drop it from "
                                 f"tools/colab_pins.py or refresh colab/pip-freeze.txt")
            written, version = freeze[key]
            note = ""
            if key in EXCEPTIONS:
                ours, why = EXCEPTIONS[key]
                note = "exception: " + why.format(colab=version)
                version = ours
            rows.append((written, version, group, note))
    return rows


def render(freeze_path: Path = FREEZE) -> str:
    freeze = read_freeze(freeze_path)
    lines = [
        "# Generated by tools/colab_pins.py (make colab-pins) from colab/pip-freeze.txt, Colab's",
        "# published runtime (googlecolab/backend-info). Do not edit: change the script or the",
        "# freeze. The Colab-like venv of `make colab-test`: Colab's versions of what the book",
        "# imports, of the kernel stack and of what they pull in. Exceptions: Python (3.11 here,",
        "# 3.13 on Colab) and torch (below). diffnotes itself is not listed: each notebook's",
        "# first cell installs it, as in Colab.",
    ]
    for name, why in UNPINNED.items():
        lines.append(f"# Not pinned: {name} ({why}).")
    rows = pins(freeze)
    for group in ("book", "kernel", "dependency"):
        lines.append(f"# {group}")
        for name, version, _, note in (r for r in rows if r[2] == group):
            lines.append(f"{name}=={version}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"


def installed_mismatches(installed: dict[str, str], freeze_path: Path = FREEZE) -> list[str]:
    """Pinned packages whose installed version is not the pin (for tools/colab_test.py)."""
    freeze = read_freeze(freeze_path)
    out = []
    for name, version, _, _ in pins(freeze):
        got = installed.get(canonical(name))
        if got is None:
            out.append(f"{name}: not installed (pinned {version})")
        elif got.split("+")[0] != version:
            out.append(f"{name}: {got} installed, pinned {version}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when requirements-colab.txt is out of date")
    parser.add_argument("--freeze", type=Path, default=FREEZE)
    args = parser.parse_args(argv)
    text = render(args.freeze)
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print("requirements-colab.txt does not match colab/pip-freeze.txt: run "
                  "`make colab-pins` and commit the result")
            return 1
        print(f"requirements-colab.txt matches Colab's freeze ({text.count('==')} pins)")
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.name}: {text.count('==')} pins from {args.freeze}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
