"""The answer keys of chapter 3 (diffnotes.exercises.information): a correct answer, worked out
here independently of the book's solutions, passes; typical wrong answers get their hints."""

import math

import pytest
import sympy as sp

from diffnotes.selfcheck import check, exercise

t, sigma2, k = sp.symbols("t sigma2 k", positive=True)
LABELS = ("ex-it-derive", "ex-it-compute", "ex-it-explain", "ex-it-coherence")


def wrong(label, answer, words):
    v = check(label, answer)
    assert v.status == "wrong", str(v)
    assert words in str(v), str(v)


@pytest.mark.parametrize("label", LABELS)
def test_registered_and_missing(label):
    ex = exercise(label)
    assert ex.chapter == "information"
    assert check(label, None).status == "missing"


class TestDerive:
    # the VP rate per data direction is -λ'/2 · mmse, with λ = 1/(e^{2t} - 1) written out
    # by hand: -λ'/2 = e^{2t}/(e^{2t} - 1)² and mmse = σ²(e^{2t} - 1)/(σ² + e^{2t} - 1)
    right = k * sigma2 * sp.exp(2 * t) / ((sp.exp(2 * t) - 1) * (sigma2 + sp.exp(2 * t) - 1))

    def test_right(self):
        assert check("ex-it-derive", self.right)
        assert check("ex-it-derive", "k*sigma2*exp(2*t)/((exp(2*t) - 1)*(sigma2 + exp(2*t) - 1))")

    def test_key_mistakes(self):
        wrong("ex-it-derive", k * sigma2 / (t * (sigma2 + t**2)), "EDM bandwidth")
        wrong("ex-it-derive", k / (sp.exp(2 * t) - 1), "special case σ² = 1")

    def test_generic_mistakes(self):
        wrong("ex-it-derive", 2 * self.right, "factor of 2")                 # -λ' without ½
        wrong("ex-it-derive", self.right.subs(t, t**2), "right at t = 1")


class TestCompute:
    def test_right(self):
        assert check("ex-it-compute", math.log(8))
        assert check("ex-it-compute", 3 * math.log(2) + 0.03)    # a Monte Carlo estimate

    def test_key_mistakes(self):
        wrong("ex-it-compute", 3.0, "3 bits")
        wrong("ex-it-compute", -math.log(8), "sign is flipped")

    def test_generic_mistakes(self):
        wrong("ex-it-compute", 2 * math.log(8), "factor of 2")
        wrong("ex-it-compute", math.log(8) + 0.1, "outside the tolerance")


class TestExplain:
    def test_right(self):
        assert check("ex-it-explain", "b")
        assert check("ex-it-explain", "(B)")

    def test_wrong(self):
        wrong("ex-it-explain", "a", "irreducible")
        wrong("ex-it-explain", "c", "cannot be predicted")
        wrong("ex-it-explain", "d", "attains the floor")
        assert check("ex-it-explain", "e").status == "invalid"


class TestCoherence:
    def test_right(self):
        assert check("ex-it-coherence", "a")

    def test_wrong(self):
        wrong("ex-it-coherence", "b", "not shift-invariant")
        wrong("ex-it-coherence", "c", "only the orthogonal approximation")
        wrong("ex-it-coherence", "d", "approach 1, not 0")
        wrong("ex-it-coherence", "ab", "not shift-invariant")
