"""The self-checks of chapter 9's exercises accept right answers and give the promised hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.digits import load_digits
from diffnotes.exercises.digits import pair_speciation_time
from diffnotes.selfcheck import check

t, s, d = sp.symbols("t s d")          # no assumptions: matched to the key's by name


class TestInformation:
    label = "ex-dg-information"

    @pytest.mark.parametrize("answer", [
        d / 2 * sp.log(1 + s**2 / (sp.exp(2 * t) - 1)),
        d / 2 * (sp.log(sp.exp(-2 * t) * s**2 + 1 - sp.exp(-2 * t)) - sp.log(1 - sp.exp(-2 * t))),
        "d/2*log((exp(2*t) - 1 + s**2)/(exp(2*t) - 1))",
    ])
    def test_equivalent_forms_accepted(self, answer):
        assert check(self.label, answer).correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        (sp.log(1 + s**2 / (sp.exp(2 * t) - 1)) / 2, "one coordinate"),
        (d * sp.log(1 + s**2 / (sp.exp(2 * t) - 1)), "factor 1/2"),
        (d / 2 * sp.log(1 + s**2 / t**2), "EDM"),
        (d / 2 * sp.log(1 + s**2 * sp.exp(-2 * t)), "not 1"),
        (d / 2 * sp.log(1 + s**2 / (sp.exp(2 * t) - 1)) / sp.log(2), "bits"),
    ])
    def test_listed_mistakes(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)


class TestPair:
    label = "ex-dg-pair"

    def test_torch_answer_accepted(self):
        # independent of the key: the chapter's normalised tensors and torch's eigvalsh
        dg = load_digits()
        pair = dg.images[(dg.labels == 3) | (dg.labels == 9)]
        c = pair - pair.mean(0)
        lam = float(torch.linalg.eigvalsh(c.T @ c / len(pair))[-1])
        assert check(self.label, 0.5 * math.log(lam)).correct
        assert pair_speciation_time() == pytest.approx(0.5 * math.log(lam), rel=1e-10)

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("transform, words", [
        (lambda ts: math.exp(2 * ts), "Lambda itself"),
        (lambda ts: 2 * ts, "factor ½"),
        (lambda ts: ts / math.log(10), "natural logarithm"),
        (lambda ts: 0.5 * math.log(9.52998), "all ten digits"),
    ])
    def test_listed_mistakes(self, transform, words):
        v = check(self.label, transform(pair_speciation_time()))
        assert v.status == "wrong" and words in str(v)


class TestMemorise:
    label = "ex-dg-memorise"

    def test_right(self):
        assert check(self.label, "b").correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [("a", "same training images"),
                                               ("c", "same reverse SDE"),
                                               ("d", "valid at every")])
    def test_listed_misconceptions(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)
