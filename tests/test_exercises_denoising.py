"""The self-checks of chapter 2 (Diffusion models and the score) accept right answers and catch
typical slips."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.selfcheck import check

LABELS = ("ex-ds-derive", "ex-ds-compute", "ex-ds-explain", "ex-ds-flow")
t, v = sp.symbols("t v", positive=True)


@pytest.mark.parametrize("label", LABELS)
def test_no_answer_yet(label):
    assert check(label, None).status == "missing"


class TestDerive:
    # snr = alpha^2 / sigma^2 of the VP process; C = (1/sigma^2) snr v / (1 + snr v)
    snr = 1 / (sp.exp(2 * t) - 1)
    right = snr * v / ((1 - sp.exp(-2 * t)) * (1 + snr * v))

    def test_equivalent_forms_accepted(self):
        assert check("ex-ds-derive", self.right)
        assert check("ex-ds-derive", v * sp.exp(2 * t) / ((sp.exp(2 * t) - 1)
                                                           * (v + sp.exp(2 * t) - 1)))
        assert check("ex-ds-derive", "v*exp(2*t)/((exp(2*t) - 1)*(v + exp(2*t) - 1))")

    def test_edm_constant(self):
        v_ = check("ex-ds-derive", v / (t**2 * (v + t**2)))
        assert v_.status == "wrong" and "EDM constant" in str(v_)

    def test_sigma_squared_twice(self):
        s2 = (1 - sp.exp(-2 * t)) ** 2
        v_ = check("ex-ds-derive", sp.exp(-2 * t) * v / (s2 * (sp.exp(-2 * t) * v + s2)))
        assert "squared it again" in str(v_)

    def test_alpha_not_squared(self):
        s2 = 1 - sp.exp(-2 * t)
        v_ = check("ex-ds-derive", sp.exp(-t) * v / (s2 * (sp.exp(-t) * v + s2)))
        assert "alpha_t^2 v" in str(v_)

    def test_posterior_variance(self):
        s2 = 1 - sp.exp(-2 * t)
        v_ = check("ex-ds-derive", v * s2 / (sp.exp(-2 * t) * v + s2))
        assert "posterior variance" in str(v_)

    def test_generic_factor(self):
        assert "twice" in str(check("ex-ds-derive", 2 * self.right))

    def test_foreign_symbol(self):
        v_ = check("ex-ds-derive", sp.Symbol("alpha") * v)
        assert v_.status == "wrong" and "alpha" in str(v_)


class TestCompute:
    # KS statistics of the page's probability-flow samples, computed once with scipy's kstest
    # on the book's sampler (probability_flow) and recorded here: the key recomputes them with
    # its own Heun loop and KS statistic, so this also cross-checks the two.
    right = torch.tensor([0.031105994786335953, 0.006276406915943555, 0.007819001039969131,
                          0.008484112438943758], dtype=torch.float64)
    sde = torch.tensor([0.09705236991394411, 0.03906684817679573, 0.014005207944212283,
                        0.009728076998804402], dtype=torch.float64)

    def test_right(self):
        v_ = check("ex-ds-compute", self.right)
        assert v_, str(v_)
        assert check("ex-ds-compute", self.right.tolist())

    def test_sde_statistics(self):
        v_ = check("ex-ds-compute", self.sde)
        assert v_.status == "wrong" and "reverse SDE" in str(v_)

    def test_p_values(self):
        from scipy import stats

        p = torch.tensor([stats.kstwo.sf(d, 20_000) for d in self.right.tolist()])
        assert "p-values" in str(check("ex-ds-compute", p))

    def test_generic_and_shape(self):
        assert "twice" in str(check("ex-ds-compute", 2 * self.right))
        assert check("ex-ds-compute", self.right[:3]).status == "invalid"

    def test_close_but_wrong(self):
        bad = self.right.clone()
        bad[1] = 0.0175  # the resolution, not the statistic
        v_ = check("ex-ds-compute", bad)
        assert v_.status == "wrong" and "index (1,)" in str(v_)


class TestExplain:
    def test_right(self):
        assert check("ex-ds-explain", "b")

    @pytest.mark.parametrize("letter, words", [("a", "density"), ("c", "covariance vanishes"),
                                               ("d", "stand-in")])
    def test_wrong_options(self, letter, words):
        v_ = check("ex-ds-explain", letter)
        assert v_.status == "wrong" and words in str(v_)


class TestFlow:
    def test_right(self):
        assert check("ex-ds-flow", "B")

    @pytest.mark.parametrize("letter, words", [("a", "rounding"), ("c", "exact closed form"),
                                               ("d", "adds no noise")])
    def test_wrong_options(self, letter, words):
        v_ = check("ex-ds-flow", letter)
        assert v_.status == "wrong" and words in str(v_)

    def test_invalid(self):
        assert check("ex-ds-flow", "z").status == "invalid"
        assert check("ex-ds-flow", math.pi).status == "invalid"
