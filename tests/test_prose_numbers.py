"""tools/prose_numbers.py: a hand-typed decimal in a chapter's prose fails; glued, set-up and
quoted numbers, cross-references and versions do not."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import prose_numbers  # noqa: E402

FRONT = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  name: python3
budget_s: 60
---
"""

PAGE = FRONT + """(ch-x)=
# A chapter

```{code-cell} ipython3
:tags: [hide-input]
t_min = 0.02
est = run(gamma=1.5, n=100)
ax.set_ylim(0, 0.78)
tally.close(est, 0.31)
glue("x-tc", 0.7812)
```

The walk starts at $t = 0.02$ with $\\gamma = 1.5$ (Theorem 4.2, Fig. 3.1, eq. (4.3), torch
2.13.0, Python 3.11). The collapse is at {glue:text}`x-tc:.2f`; the paper reports
{quoted}`0.45` {cite}`someone2024`. See [the site](https://example.org/v1.5/page).

```{prf:theorem} At 0.5 noise
:label: thm-x
:width: 0.8

Holds.
```

```{code-cell} ipython3
---
tags: [remove-cell]
---
threshold = 0.25
```

The threshold is $0.25$.
"""


def write(tmp_path, text):
    page = tmp_path / "01_x.md"
    page.write_text(text, encoding="utf-8")
    return page


def numbers(page):
    return [num for _, num, _ in prose_numbers.flags(page)]


def test_glued_setup_quoted_refs_and_versions_pass_but_a_title_number_is_prose(tmp_path):
    # "0.5" is in a theorem's title, which a reader reads: it is flagged
    assert numbers(write(tmp_path, PAGE)) == ["0.5"]


@pytest.mark.parametrize("planted, number", [
    ("The collapse is at $t_C = 0.78$.", "0.78"),          # in a plot call only: not set-up
    ("The check agrees: 0.31 as expected.", "0.31"),       # given to a check: a typed reference
    ("The error is $0.02 \\pm 0.01$.", "0.02"),            # next to ± it is a result
    ("At $t = 0.0199$ the rate peaks.", "0.0199"),
    ("It falls to −1.25 nats.", "1.25"),
])
def test_a_planted_hand_typed_number_is_flagged(tmp_path, planted, number):
    page = write(tmp_path, PAGE + "\n" + planted + "\n")
    assert number in numbers(page)
    assert prose_numbers.main([str(page)]) == 1


def test_the_flag_names_the_line(tmp_path):
    page = write(tmp_path, PAGE + "\nIt is 3.14 here.\n")
    line = next(ln for ln, num, _ in prose_numbers.flags(page) if num == "3.14")
    assert page.read_text().split("\n")[line - 1] == "It is 3.14 here."


def test_a_clean_page_passes(tmp_path):
    clean = PAGE.replace(":::", "").replace("At 0.5 noise", "At half noise")
    page = write(tmp_path, clean)
    assert numbers(page) == [] and prose_numbers.main([str(page)]) == 0


def test_report_never_fails(tmp_path, capsys):
    page = write(tmp_path, PAGE + "\nIt is 3.14 here.\n")
    assert prose_numbers.main([str(page), "--report"]) == 0
    assert "2 hand-typed decimal(s)" in capsys.readouterr().out
