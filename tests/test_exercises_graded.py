"""Graded mode, for every chapter's keys: a wrong answer's hint names the kind of mistake, never
its direction or size; self-study mode keeps each key's readable hints unchanged."""

import math
import re
import subprocess
import sys

import pytest
import sympy as sp
import torch

from diffnotes import selfcheck
from diffnotes.selfcheck import Choice, Number, Symbolic, Tensor, check, exercises

KEYS = exercises()
VALUED = sorted(label for label, ex in KEYS.items() if not isinstance(ex.key, Choice))
CHOICES = sorted(label for label, ex in KEYS.items() if isinstance(ex.key, Choice))

# words that say which way or how far an answer is off
DIRECTION = re.compile(
    r"too (large|small|big|high|low|many|few)|larger|smaller|bigger|greater|higher|less than|"
    r"more than|fewer|twice|\bhalf\b|double|above|below|increas|decreas|overestimat|"
    r"underestimat|\byours?\b|your value|expected -?\d|about -?\d|≈|close", re.I)


def numbers_in(value) -> set[str]:
    """How a value could be printed in a hint (3, 4 and 6 significant digits)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return set()
    if x == 0 or not math.isfinite(x):
        return set()
    return {f"{x:.3g}", f"{x:.4g}", f"{x:.6g}"} - {"2", "4", "-1", "1"}


def assert_reveals_nothing(graded: str, *values):
    assert not DIRECTION.search(graded), graded
    # the numbers a hint prints, other than the exercise's stated tolerance
    shown = set(re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?",
                           re.sub(r"\(rtol=[^)]*\)", "", graded)))
    for v in values:
        assert not numbers_in(v) & shown, (v, graded)


def reference(key):
    return key._ref()


@pytest.fixture
def graded():
    old = selfcheck.set_mode("graded")
    yield
    selfcheck.set_mode(old)


@pytest.mark.parametrize("label", VALUED)
def test_typical_mistakes_in_both_modes(label):
    key = KEYS[label].key
    mistakes = key.typical_mistakes()
    assert mistakes, f"{label}: the key knows no typical mistakes"
    seen = []
    for answer, hint, graded_hint in mistakes:
        seen.append(hint)
        status, text = key.judge(answer, mode="self-study")
        # self-study: the key's own readable hint, unchanged (or an earlier one of equal value)
        assert status == "wrong" and text in seen, (label, text)
        status, text = key.judge(answer, mode="graded")
        assert status == "wrong" and text == graded_hint != "not right", (label, text)
        ref = reference(key)
        values = [answer] if isinstance(key, Number) else []
        if isinstance(key, Number):
            values += [ref, float(answer) / float(ref) if float(ref) else 0.0]
        assert_reveals_nothing(text, *values)


def perturbed(key, factor):
    ref = reference(key)
    if isinstance(key, Symbolic):
        return sp.sympify(ref) * factor
    if isinstance(key, Tensor):
        return torch.as_tensor(ref, dtype=torch.float64) * factor
    return float(ref) * factor


@pytest.mark.parametrize("label", VALUED)
@pytest.mark.parametrize("factor", [1.37, 3.0, 1 + 2.5e-6 * 7])
def test_graded_hint_is_the_same_above_and_below(label, factor):
    """An answer off by a factor and one off by its inverse get the same graded words: no
    direction; and none of the factor, the answer or the reference is printed: no size."""
    key = KEYS[label].key
    up, down = perturbed(key, factor), perturbed(key, 1 / factor)
    s_up, g_up = key.judge(up, mode="graded")
    s_down, g_down = key.judge(down, mode="graded")
    if "correct" in (s_up, s_down):   # inside a loose tolerance: nothing to compare
        return
    known = {hint for _, hint, _ in key.typical_mistakes()}
    if {key.judge(up, mode="self-study")[1], key.judge(down, mode="self-study")[1]} & known:
        return                          # one of them is a typical mistake, with its own words
    assert g_up == g_down, (g_up, g_down)
    ref = reference(key)
    scalars = [factor, 1 / factor]
    if isinstance(key, Number):
        scalars += [float(ref), up, down]
    assert_reveals_nothing(g_up, *scalars)


@pytest.mark.parametrize("label", [lb for lb in VALUED if isinstance(KEYS[lb].key, Symbolic)])
def test_graded_symbolic_additive_constant_has_no_sign_or_size(label):
    key = KEYS[label].key
    ref = sp.sympify(reference(key))
    s1, g1 = key.judge(ref + 3, mode="graded")
    s2, g2 = key.judge(ref - 3, mode="graded")
    assert s1 == s2 == "wrong" and g1 == g2
    assert_reveals_nothing(g1, 3, -3)


@pytest.mark.parametrize("label", CHOICES)
def test_graded_choice_names_the_option_only(label):
    key = KEYS[label].key
    for letter in sorted(set(key.options) - set(key.correct)):
        status, text = key.judge(letter, mode="graded")
        assert status == "wrong" and text == f"option {letter} is not right"
        study = key.judge(letter, mode="self-study")[1]
        assert study == key.hints.get(letter, f"option {letter} is not right")


def test_check_follows_the_mode(graded):
    label = next(lb for lb in VALUED if isinstance(KEYS[lb].key, Number))
    ref = float(reference(KEYS[label].key))
    v = check(label, ref * 1.37)
    assert v.status == "wrong" and "too large" not in str(v) and "not right" in str(v)
    selfcheck.set_mode("self-study")
    assert "too large" in str(check(label, ref * 1.37))


def test_mode_from_the_environment():
    code = "from diffnotes.selfcheck import get_mode; print(get_mode())"
    for env, expected in (("1", "graded"), ("0", "self-study")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"DIFFNOTES_GRADED": env, "PATH": ""}, check=True)
        assert out.stdout.strip() == expected


def test_set_mode_validates():
    with pytest.raises(ValueError, match="mode must be one of"):
        selfcheck.set_mode("exam")
    with pytest.raises(ValueError, match="mode must be one of"):
        KEYS[VALUED[0]].key.judge(None, mode="exam")
