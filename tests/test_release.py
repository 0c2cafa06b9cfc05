"""The release's contents check (tools/release_check.py) and the one source of the version."""

import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import release_check  # noqa: E402

import diffnotes  # noqa: E402


def test_imports_found_in_page_text():
    text = "import math\nfrom diffnotes.checks import Tally\nimport diffnotes.plotting as p\n" \
           "from diffnotes import glue\n    from diffnotes.exercises.fisher import X\n"
    assert release_check.imported_modules(text) == {
        "diffnotes.checks", "diffnotes.plotting", "diffnotes", "diffnotes.exercises.fisher"}


def test_module_file_of_a_package_and_a_module():
    names = {"diffnotes/__init__.py", "diffnotes/checks.py", "diffnotes/exercises/__init__.py"}
    assert release_check.module_file("diffnotes", names) == "diffnotes/__init__.py"
    assert release_check.module_file("diffnotes.checks", names) == "diffnotes/checks.py"
    assert release_check.module_file("diffnotes.exercises", names) == \
        "diffnotes/exercises/__init__.py"
    assert release_check.module_file("diffnotes.fisher", names) is None


def _wheel_from_checkout(path: Path, leave_out: str | None = None) -> Path:
    """A wheel-shaped zip of this checkout's package (no build backend needed)."""
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted((ROOT / "diffnotes").rglob("*.py")):
            rel = f.relative_to(ROOT).as_posix()
            if rel != leave_out:
                z.write(f, rel)
        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        z.writestr(f"diffnotes-{version}.dist-info/METADATA",
                   f"Metadata-Version: 2.1\nName: diffnotes\nVersion: {version}\n")
    return path


def test_a_complete_wheel_passes(tmp_path):
    assert release_check.problems(_wheel_from_checkout(tmp_path / "ok.whl")) == []


@pytest.mark.parametrize("leave_out", ["diffnotes/fisher.py", "diffnotes/exercises/digits.py"])
def test_a_wheel_without_a_module_fails(tmp_path, leave_out):
    found = release_check.problems(_wheel_from_checkout(tmp_path / "bad.whl", leave_out))
    assert any(leave_out in p or leave_out.removesuffix(".py").replace("/", ".") in p
               for p in found), found


def test_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert diffnotes.__version__ == project["version"]
    assert '__version__ = "' not in (ROOT / "diffnotes" / "__init__.py").read_text()


def test_workflow_schema_check_can_fail(tmp_path):
    """make lint validates .github/workflows/*.yml (release.yml among them) against the workflow
    schema; the same command rejects a planted error."""
    import subprocess

    exe = Path(sys.executable).parent / "check-jsonschema"
    good = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows",
                           str(ROOT / ".github" / "workflows" / "release.yml")],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / "bad.yml"
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "    needs: version\n" in text
    planted = "    needs: version\n    bogus-key: 1\n"
    bad.write_text(text.replace("    needs: version\n", planted, 1))
    run = subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode != 0


def test_citation_names_the_released_version():
    import re

    import yaml

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(cff["version"]) == version and cff["cff-version"] == "1.2.0"
    import notebooks

    assert cff["repository-code"] == notebooks.config()["url"]
    intro = (ROOT / "book" / "intro.md").read_text()
    assert re.search(r"version\s*=\s*\{" + re.escape(version) + r"\}", intro)
    assert f"diffnotes {version}" in intro
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(r"^## \[" + re.escape(version) + r"\]", changelog, re.M)


def test_zip_requirements_reads_otter7_environment_and_old_requirements(tmp_path):
    """The grade stage's check of what Gradescope installs reads the requirements from
    where otter puts them: environment.yml's pip list (otter 7) or requirements.txt."""
    import assignments

    new = tmp_path / "new.zip"
    with zipfile.ZipFile(new, "w") as z:
        z.writestr("environment.yml", "name: otter-env\ndependencies:\n  - python=3.13\n"
                   "  - pip\n  - pip:\n      - otter-grader==7.0.0\n      - diffnotes==0.1.0\n")
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(old, "w") as z:
        z.writestr("requirements.txt", "diffnotes==0.0.9\n\nnumpy\n")
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as z:
        z.writestr("otter_config.json", "{}")
    assert assignments.zip_requirements(new) == ["otter-grader==7.0.0", "diffnotes==0.1.0"]
    assert assignments.zip_requirements(old) == ["diffnotes==0.0.9", "numpy"]
    assert assignments.zip_requirements(none) == []
