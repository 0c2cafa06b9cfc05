"""No source file of the project holds a control character other than a newline.

A docstring written through a layer that interprets backslash escapes turns ``\\alpha`` into
BEL + ``lpha``, ``\\frac`` into a form feed and ``\\theta`` into a tab: Python and Sphinx
accept the file, and ``help()`` shows garbage. This test reads every ``*.py``, ``*.md``,
``*.yml``, ``*.toml``, ``*.txt`` and ``*.bib`` file under the repository (virtual
environments, build outputs, caches and ``.git`` excluded) as bytes and names each offending line.
A tab is allowed only where the file type needs it (Makefiles; none of the types scanned here).
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".yml", ".toml", ".txt", ".bib"}
SKIP_DIRS = {".git", "_build", "node_modules", "__pycache__", ".ipynb_checkpoints",
             ".pytest_cache", ".ruff_cache"}
# control characters: C0 (0x00-0x1f) except newline, and DEL; a tab only where the type needs it
TAB_ALLOWED = {"Makefile"}


def _skipped(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts[:-1]
    return any(p in SKIP_DIRS or p.startswith(".venv") or p.endswith(".egg-info") for p in parts)


def source_files(root: Path = ROOT) -> list[Path]:
    """The project's source files of the scanned types, sorted."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix in SUFFIXES and not _skipped(p))


def control_characters(path: Path) -> list[tuple[int, str]]:
    """``(line, repr of the characters)`` for each line of ``path`` holding a control character
    other than a newline (and other than a tab where the file type needs one)."""
    allowed = {0x0A} | ({0x09} if path.name in TAB_ALLOWED else set())
    found = []
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        bad = sorted({b for b in line if (b < 0x20 or b == 0x7F) and b not in allowed})
        if bad:
            found.append((n, " ".join(f"\\x{b:02x}" for b in bad)))
    return found


def test_the_scan_finds_files():
    files = source_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert "diffnotes/digits.py" in names and "book/09_digits.md" in names
    assert not any(n.startswith((".venv", ".git/", "_build/")) for n in names)


def test_the_scan_sees_every_kind_of_control_character(tmp_path):
    # the detector itself can fail: each planted character is reported on its own line
    planted = tmp_path / "planted.py"
    planted.write_bytes(b"ok\n\x07lpha\n\x0crac\n\theta\n\x0barepsilon\ny\rVert\nfine\x7f\n")
    assert [n for n, _ in control_characters(planted)] == [2, 3, 4, 5, 6, 7]
    clean = tmp_path / "clean.py"
    clean.write_bytes(b"r'''\\alpha \\frac \\theta'''\n")
    assert control_characters(clean) == []
    make = tmp_path / "Makefile"
    make.write_bytes(b"all:\n\techo\n")
    assert control_characters(make) == []


@pytest.mark.parametrize("path", source_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_control_characters(path):
    found = control_characters(path)
    assert not found, f"{path.relative_to(ROOT)}: control characters at " + "; ".join(
        f"line {n} ({chars})" for n, chars in found)
