"""Per-student variants of the exercises (``diffnotes.selfcheck.variant``).

For every exercise that varies, the book's own solution code is run on 50 seeds: the solution's
code cells are read from its page by the book's exporter (``tools/export.py``, the parser the
notebooks are made with), from the first cell that reads the variant on, after the chapter's
import statements; each ends with ``check(label, answer).require()``, which under the seed set
judges the answer against the key of that seed's numbers. Cells of a solution before the
first that reads the variant do not depend on the seed; the book build runs them.
"""

from __future__ import annotations

import ast
import contextlib
import math
import sys
from pathlib import Path

import pytest
import torch

from diffnotes.selfcheck import (
    Draw,
    Number,
    Variant,
    check,
    exercise,
    exercises,
    get_seed,
    set_mode,
    set_seed,
    variant,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import export  # noqa: E402

SEEDS = range(50)

# What a solution takes from its chapter besides the imports: the chapter's own names, set up
# once as the chapter sets them up.
SETUP = {"ex-dg-pair": "images, labels = load_digits()[:2]"}
VARYING = sorted(label for label, ex in exercises().items() if ex.varies)

# The book's numbers before variants existed, and the key values they gave (seed 0 must keep
# both).
BOOK_NUMBERS = {
    "ex-tq-compute": {"N": 12},
    "ex-fi-samples": {"k": 5, "h": 0.1},
    "ex-dg-pair": {"a": 3, "b": 9},
    "ex-gd-saddle": {"gamma": 0.25},
}


def _h2(x: float) -> float:
    return -x * math.log2(x) - (1 - x) * math.log2(1 - x)


BOOK_KEYS = {  # today's references, written out as they were computed before variants
    "ex-tq-compute": [_h2(1 / 3), 8 / 12, 1.0, 1.0],
    "ex-fi-samples": [math.pi**3 / 0.1**5],
    "ex-gd-saddle": [0.32123622744296554],
}


@contextlib.contextmanager
def seeded(seed: int):
    old = set_seed(seed)
    try:
        yield
    finally:
        set_seed(old)


def _calls_variant(source: str) -> bool:
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id == "variant" for node in ast.walk(ast.parse(source)))


def _imports(source: str) -> str:
    """The top-level import statements of a cell."""
    return "\n".join(ast.get_source_segment(source, node) for node in ast.parse(source).body
                     if isinstance(node, ast.Import | ast.ImportFrom))


@pytest.fixture(scope="module")
def solutions() -> dict[str, tuple[str, list[str]]]:
    """label -> (the chapter's import statements, the solution's code cells that depend on the
    variant), from the pages as the exporter reads them."""
    book = export.Book()
    out = {}
    for docname, _ in book.docs:
        if not (ROOT / f"{docname}.md").read_text().count("{solution-start}"):
            continue
        cells, _ = export.export_cells(book, docname)
        code = [c for c in cells if c.kind == "code"]
        imports = "\n".join(_imports(c.source) for c in code if c.solution is None)
        for label in VARYING:
            cells_of = [c.source for c in code if c.solution == label]
            if cells_of:
                first = next(i for i, src in enumerate(cells_of) if _calls_variant(src))
                out[label] = (imports, cells_of[first:])
    return out


def test_some_exercises_vary():
    assert set(VARYING) == set(BOOK_NUMBERS)


@pytest.mark.parametrize("label", VARYING)
def test_book_solution_passes_every_variant(label, solutions, capsys):
    imports, cells = solutions[label]
    assert cells, f"{label}: no solution cell reads variant({label!r})"
    chapter: dict = {}
    exec(compile(imports + "\n" + SETUP.get(label, ""), f"<chapter of {label}>", "exec"),
         chapter)
    code = [compile(src, f"<solution of {label}, cell {i}>", "exec")
            for i, src in enumerate(cells)]
    for seed in SEEDS:
        namespace = dict(chapter)
        with seeded(seed):
            for c in code:
                exec(c, namespace)              # ends in check(label, answer).require()
            assert check(label, namespace["answer"], seed=seed).correct
    capsys.readouterr()


@pytest.mark.parametrize("label", VARYING)
def test_seed_zero_is_the_book(label):
    ex = exercise(label)
    assert dict(variant(label, 0)) == BOOK_NUMBERS[label]
    assert ex.key_for(0) is ex.key
    with seeded(0):
        assert ex.key_for() is ex.key and dict(variant(label)) == BOOK_NUMBERS[label]
    if label in BOOK_KEYS:
        ref = ex.key._ref()
        ref = ref.tolist() if isinstance(ref, torch.Tensor) else [float(ref)]
        assert ref == pytest.approx(BOOK_KEYS[label], rel=1e-12, abs=1e-15)


def test_seed_zero_pair_key_is_the_pair_3_9():
    from diffnotes.exercises.digits import pair_speciation_time

    assert exercise("ex-dg-pair").key._ref() == pair_speciation_time(3, 9)


@pytest.mark.parametrize("label", VARYING)
def test_seeds_give_different_numbers(label):
    draws = {tuple(variant(label, seed).values()) for seed in SEEDS}
    assert len(draws) >= 3, f"{label}: 50 seeds give only {draws}"
    values = [variant(label, seed) for seed in SEEDS]
    assert values == [variant(label, seed) for seed in SEEDS]          # deterministic
    spec = exercise(label).variant
    for v in values:
        for name, d in spec.draws.items():
            assert d.low <= v[name] <= d.high and v[name] in d.values()
    refs = {float(torch.as_tensor(exercise(label).key_for(s)._ref()).sum()) for s in SEEDS}
    assert len(refs) >= 3, f"{label}: the keys of 50 seeds do not vary"


def test_variant_is_a_read_only_mapping():
    v = variant("ex-gd-saddle", 3)
    assert v.gamma == v["gamma"] and list(v) == ["gamma"] and len(v) == 1
    with pytest.raises(AttributeError):
        v.gamma = 1.0
    with pytest.raises(TypeError):
        v["gamma"] = 1.0
    with pytest.raises(AttributeError, match="gamma"):
        _ = v.beta


def test_the_draw_depends_on_label_and_seed_only():
    # sha256 of "label:seed", not Python's salted hash: the same in every process
    import hashlib
    import random

    rng = random.Random(int.from_bytes(hashlib.sha256(b"ex-gd-saddle:7").digest()[:8], "big"))
    assert variant("ex-gd-saddle", 7).gamma == rng.choice(
        exercise("ex-gd-saddle").variant.draws["gamma"].values())


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True, None])
def test_bad_seed(seed):
    if seed is not None:
        with pytest.raises(ValueError, match="seed"):
            variant("ex-gd-saddle", seed)
        with pytest.raises(ValueError, match="seed"):
            set_seed(seed)
        with pytest.raises(ValueError, match="seed"):
            exercise("ex-gd-saddle").key_for(seed)
        with pytest.raises(ValueError, match="seed"):
            check("ex-gd-saddle", 0.3, seed=seed)
    else:
        with pytest.raises(ValueError, match="seed"):
            set_seed(seed)
    assert get_seed() == 0


def test_label_without_variants():
    with pytest.raises(ValueError, match="ex-tq-derive"):
        variant("ex-tq-derive")
    with pytest.raises(ValueError, match="ex-nope"):
        variant("ex-nope")
    ex = exercise("ex-tq-derive")
    assert not ex.varies and ex.key_for(5) is ex.key


def test_set_seed_returns_the_old_one():
    assert set_seed(4) == 0
    try:
        assert get_seed() == 4 and set_seed(9) == 4
    finally:
        set_seed(0)


def test_environment_sets_the_seed():
    import os
    import subprocess

    code = ("import importlib, os\n"
            "import diffnotes.selfcheck as s\n"
            "print(s.get_seed())\n"
            "os.environ['DIFFNOTES_SEED'] = '-2'\n"
            "importlib.reload(s)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "DIFFNOTES_SEED": "7"})
    assert out.stdout.split() == ["7"]
    assert out.returncode != 0 and "ValueError: DIFFNOTES_SEED" in out.stderr


def test_check_judges_against_the_seed_key():
    seed = next(s for s in SEEDS if variant("ex-gd-saddle", s).gamma != 0.25)
    right = float(exercise("ex-gd-saddle").key_for(seed)._ref())
    book = float(exercise("ex-gd-saddle").key._ref())
    assert check("ex-gd-saddle", right, seed=seed).correct
    assert not check("ex-gd-saddle", book, seed=seed).correct
    with seeded(seed):
        assert check("ex-gd-saddle", right).correct
        assert not check("ex-gd-saddle", book).correct
    assert check("ex-gd-saddle", book).correct


@pytest.mark.parametrize("label", VARYING)
@pytest.mark.parametrize("mode", ["self-study", "graded"])
def test_a_variant_verdict_leaks_no_value(label, mode):
    """Under a seed other than 0, a wrong answer's hint names no value, no direction."""
    seed = next(s for s in SEEDS if s and dict(variant(label, s)) != BOOK_NUMBERS[label])
    key = exercise(label).key_for(seed)
    ref = torch.as_tensor(key._ref(), dtype=torch.float64)
    wrongs = [ref * 1.37, ref * 0.61, ref * 1.05 + 0.5] + [
        value for value, _, _ in key.typical_mistakes()]
    old = set_mode(mode)
    try:
        for wrong in wrongs:
            answer = float(wrong) if ref.numel() == 1 else wrong
            text = str(check(label, answer, seed=seed))
            assert "✗" in text
            for word in ("too large", "too small", "close", "yours", "expected", "index"):
                assert word not in text, text
            for x in ref.flatten().tolist() + torch.as_tensor(wrong).flatten().tolist():
                for digits in (3, 4, 6):
                    shown = f"{x:.{digits}g}"
                    if len(shown.strip("-0.")) >= 3:
                        assert shown not in text, text
    finally:
        set_mode(old)


def test_register_builds_the_seed_zero_key_from_the_defaults():
    spec = Variant({"r": Draw(2.0, 1.0, 3.0, 0.5)}, lambda v: Number(v.r**2))
    assert spec.values("ex-test", 0) == {"r": 2.0}
    assert {spec.values("ex-test", s).r for s in range(40)} <= {1.0, 1.5, 2.0, 2.5, 3.0}
    with pytest.raises(ValueError, match="default"):
        Draw(5.0, 1.0, 3.0, 0.5)
    with pytest.raises(ValueError, match="step"):
        Draw(2.0, 1.0, 3.0, 0.0)
