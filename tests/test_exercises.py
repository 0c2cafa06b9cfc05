"""Every exercise of the book has a self-check, an answer cell and a checked reference solution.

The per-chapter files ``test_exercises_<module>.py`` feed each key typical wrong answers; this
file checks the wiring between the book and :mod:`diffnotes.exercises`, for every chapter.
"""

import re
import sys
from pathlib import Path

import pytest

from diffnotes.selfcheck import KINDS, check, exercises

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import notebooks  # noqa: E402

EXERCISE = notebooks.EXERCISE_DIRECTIVE  # the one pattern the teaching table uses too


def book_exercises():
    found = {}
    for page in notebooks.notebook_pages():
        text = page.read_text()
        for m in EXERCISE.finditer(text):
            found[m.group("label")] = (page, m.group("title"), text, m.end())
    return found


BOOK = book_exercises()


def test_book_and_registry_agree():
    assert set(BOOK) == set(exercises())


@pytest.mark.parametrize("label", sorted(BOOK))
def test_exercise_wiring(label):
    page, title, text, end = BOOK[label]
    ex = exercises()[label]
    kinds = re.findall(r"\b(derive|compute|explain)\b", title.rsplit("(", 1)[-1])
    assert ex.kind in kinds, f"title {title!r} does not say the kind {ex.kind!r}"
    assert ex.kind in KINDS
    # the answer cell follows the exercise, before its solution
    after = text[end:]
    start = after.index(f"{{solution-start}} {label}")
    answer_cell = after[:start]
    assert f'answer = None\ncheck("{label}", answer)' in answer_cell
    # the gated solution ends with the reference answer passing the same check
    solution = after[start:after.index("{solution-end}", start)]
    assert f'check("{label}", answer).require()' in solution
    assert check(label, None).status == "missing"


def test_each_chapter_has_three_kinds():
    by_page = {}
    for label, (page, _, _, _) in BOOK.items():
        by_page.setdefault(page.name, set()).add(exercises()[label].kind)
    assert len(by_page) >= 7
    for page, kinds in by_page.items():
        assert kinds == set(KINDS), f"{page}: kinds {sorted(kinds)}"


@pytest.mark.parametrize("label", sorted(BOOK))
def test_time_difficulty_and_rubric(label):
    from diffnotes.selfcheck import DIFFICULTIES

    ex = exercises()[label]
    assert isinstance(ex.minutes, int) and 5 <= ex.minutes <= 60
    assert ex.difficulty in DIFFICULTIES
    if ex.kind == "explain":
        assert 3 <= len(ex.rubric) <= 4
        assert all(c.points > 0 and len(c.full_credit) > 40 for c in ex.rubric)
    else:
        assert ex.rubric == ()
