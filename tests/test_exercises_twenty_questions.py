"""The self-checks of chapter 1 (Twenty Questions) accept right answers and catch typical slips."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.selfcheck import check

LABELS = ("ex-tq-derive", "ex-tq-compute", "ex-tq-explain", "ex-tq-twenty")
p, q = sp.symbols("p q", positive=True)


def h2(x):
    return -x * math.log2(x) - (1 - x) * math.log2(1 - x)


@pytest.mark.parametrize("label", LABELS)
def test_no_answer_yet(label):
    assert check(label, None).status == "missing"


class TestDerive:
    def test_equivalent_forms_accepted(self):
        r = 1 - p - q
        assert check("ex-tq-derive", -sum(w * sp.log(w, 2) for w in (p, q, r)))
        # the same in nats divided by ln 2, written with logs of quotients
        assert check("ex-tq-derive", (p * sp.log(1 / p) + q * sp.log(1 / q)
                                      + (p + q - 1) * sp.log(r)) / sp.log(2))
        assert check("ex-tq-derive", "-(p*log(p) + q*log(q) + (1-p-q)*log(1-p-q))/log(2)")

    def test_nats(self):
        nats = -(p * sp.log(p) + q * sp.log(q) + (1 - p - q) * sp.log(1 - p - q))
        v = check("ex-tq-derive", nats)
        assert v.status == "wrong" and "nats" in str(v)

    def test_missing_third_answer(self):
        v = check("ex-tq-derive", -(p * sp.log(p, 2) + q * sp.log(q, 2)))
        assert "sometimes" in str(v)

    def test_binary_entropy(self):
        v = check("ex-tq-derive", -(p * sp.log(p, 2) + (1 - p) * sp.log(1 - p, 2)))
        assert "binary entropy" in str(v)

    def test_generic_sign_and_factor(self):
        H3 = -sum(w * sp.log(w, 2) for w in (p, q, 1 - p - q))
        assert "sign is flipped" in str(check("ex-tq-derive", -H3))
        assert "twice" in str(check("ex-tq-derive", 2 * H3))

    def test_uncancelled_reduction_accepted(self):
        N = sp.Symbol("N", positive=True)
        r = 1 - p - q
        assert check("ex-tq-derive", sp.log(N, 2) - sum(w * sp.log(w * N, 2) for w in (p, q, r)))

    def test_foreign_symbol(self):
        v = check("ex-tq-derive", sp.Symbol("x") * p)
        assert v.status == "wrong" and "x" in str(v)


class TestCompute:
    right = torch.tensor([h2(1 / 3), 2 / 3, 1.0, 1.0], dtype=torch.float64)

    def test_right(self):
        assert check("ex-tq-compute", self.right)
        assert check("ex-tq-compute", [0.9182958340544896, 0.6666666666666666, 1, 1])

    def test_bisection_order(self):
        v = check("ex-tq-compute", self.right[[2, 3, 0, 1]])
        assert v.status == "wrong" and "bisection" in str(v)

    def test_cumulative(self):
        assert "cumulative" in str(check("ex-tq-compute", self.right.cumsum(0)))

    def test_remaining_entropies(self):
        remaining = math.log2(12) - self.right.cumsum(0)
        assert "entropies H_1" in str(check("ex-tq-compute", remaining))

    def test_nats(self):
        assert "nats" in str(check("ex-tq-compute", self.right * math.log(2)))

    def test_generic_and_shape(self):
        assert "twice" in str(check("ex-tq-compute", 2 * self.right))
        v = check("ex-tq-compute", torch.cat([torch.tensor([math.log2(12)]), self.right]))
        assert v.status == "invalid" and "shape" in str(v)


class TestExplain:
    def test_right(self):
        assert check("ex-tq-explain", "b")
        assert check("ex-tq-explain", "(B)")

    @pytest.mark.parametrize("letter, words", [("a", "split"), ("c", "biased"),
                                               ("d", "cannot be split")])
    def test_wrong_options(self, letter, words):
        v = check("ex-tq-explain", letter)
        assert v.status == "wrong" and words in str(v)

    def test_invalid(self):
        assert check("ex-tq-explain", "e").status == "invalid"


class TestTwenty:
    def test_right(self):
        assert check("ex-tq-twenty", "c")

    @pytest.mark.parametrize("letter, words", [("a", "2^20 = 1 048 576"), ("b", "adaptively"),
                                               ("d", "lazy oracle")])
    def test_wrong_options(self, letter, words):
        v = check("ex-tq-twenty", letter)
        assert v.status == "wrong" and words in str(v)

    def test_several_letters(self):
        assert check("ex-tq-twenty", "bc").status == "wrong"
