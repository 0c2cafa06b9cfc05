"""tools/execute_book.py: the book's pages run once, and the build finds every one in its cache."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import execute_book  # noqa: E402

import notebooks  # noqa: E402

PAGES = notebooks.notebook_pages()


def _executed(page_nb):
    """A stand-in for a run: outputs on every code cell, and what nbclient adds besides."""
    ran = nbformat.reads(nbformat.writes(page_nb), as_version=4)
    ran.metadata["kernelspec"] = {"name": "colab-like", "display_name": "Colab-like",
                                  "language": "python"}
    for i, c in enumerate(c for c in ran.cells if c.cell_type == "code"):
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"cell {i}\n")]
        c.execution_count = i + 1
        c.metadata["execution"] = {"iopub.status.busy": "2026-12-07T00:00:00Z"}
    return ran


@pytest.mark.parametrize("page", PAGES[:2], ids=lambda p: p.stem)
def test_outputs_merged_into_the_page_as_the_build_reads_it(page, tmp_path):
    """The cache must match the notebook the build reads (jupyter-cache hashes code cells, their
    metadata and the kernelspec): the run's metadata stay out, its outputs go in."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    read = execute_book.read_page(page)
    ran = _executed(read)
    cache = get_cache(str(tmp_path / "cache"))
    merged = execute_book.with_outputs(execute_book.read_page(page), ran)
    cache.cache_notebook_bundle(CacheBundleIn(merged, str(page), data={"execution_seconds": 1}),
                                check_validity=False, overwrite=True)
    record = cache.match_cache_notebook(execute_book.read_page(page))
    assert record.data["execution_seconds"] == 1
    _, got = cache.merge_match_into_notebook(execute_book.read_page(page))
    code = [c for c in got.cells if c.cell_type == "code"]
    assert [c.outputs[0]["text"] for c in code] == [f"cell {i}\n" for i in range(len(code))]
    # the executed notebook as it is (run metadata, its kernel) would not have matched
    other = get_cache(str(tmp_path / "other"))
    other.cache_notebook_bundle(CacheBundleIn(ran, str(page), data={}), check_validity=False,
                                overwrite=True)
    with pytest.raises(KeyError):
        other.match_cache_notebook(execute_book.read_page(page))


def test_outputs_of_another_notebook_are_refused():
    a, b = execute_book.read_page(PAGES[0]), execute_book.read_page(PAGES[1])
    with pytest.raises(ValueError, match="code cells differ"):
        execute_book.with_outputs(a, _executed(b))


def test_budget_read_from_the_front_matter():
    assert all(execute_book.budget(p) > 0 for p in PAGES)
