"""The self-checks of chapter 7's exercises accept right answers and give the promised hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.device import generator
from diffnotes.exercises.speciation import simplex_gamma_star
from diffnotes.selfcheck import check
from diffnotes.speciation import reduced_class_entropy_samples

gamma, lam = sp.symbols("gamma lam")          # no assumptions: matched to the key's by name


# ---------------------------------------------------------------- ex-sp-logodds (derive)


class TestLogOdds:
    label = "ex-sp-logodds"

    @pytest.mark.parametrize("answer", [
        sp.exp(-2 * gamma * lam) * sp.exp(2 * gamma * lam**2),     # exp(-lam mu) exp(lam² s²/2)
        "exp(2*gamma*lam**2 - 2*gamma*lam)",
        sp.exp(gamma * ((2 * lam - 1) ** 2 - 1) / 2),              # symmetric about lam = 1/2
    ])
    def test_equivalent_forms_accepted(self, answer):
        assert check(self.label, answer).correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        (sp.exp(-2 * gamma * lam), "kept only the mean"),
        (sp.exp(-2 * gamma * lam + 4 * gamma * lam**2), "factor 1/2"),
        (sp.exp(-2 * gamma * lam + gamma * lam**2), "not 2 gamma"),
        (sp.exp(-2 * gamma * lam + sp.sqrt(gamma) * lam**2), "standard deviation"),
        (sp.exp(2 * gamma * lam + 2 * gamma * lam**2), "sign of the mean term"),
        (sp.exp(2 * gamma * lam * (1 - lam)), "wrong overall sign"),
    ])
    def test_listed_mistakes(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)

    def test_generic_hints(self):
        # E exp(-a) = 1 is M(1): a constant answer is right only at lam = 1
        v = check(self.label, sp.Integer(1))
        assert v.status == "wrong" and "right at lam = 1 but not in general" in str(v)
        v = check(self.label, 2 * sp.exp(2 * gamma * lam * (lam - 1)))
        assert v.status == "wrong" and "factor of 2" in str(v)

    def test_foreign_symbol(self):
        xi = sp.Symbol("xi")
        v = check(self.label, sp.exp(-lam * (2 * gamma + 2 * sp.sqrt(gamma) * xi)))
        assert v.status == "wrong" and "xi" in str(v)


# ---------------------------------------------------------------- ex-sp-simplex (compute)


def simplex_gram(k=4):
    e = torch.eye(k, dtype=torch.float64) - 1 / k
    u = e / e.norm(dim=1, keepdim=True)
    return u @ u.T


class TestSimplex:
    label = "ex-sp-simplex"

    def test_reference_converged(self):
        # the key's 32-node Gauss-Hermite rule against 2.56235 from a 60-node rule (offline)
        assert simplex_gamma_star() == pytest.approx(2.56235, abs=5e-4)

    def test_monte_carlo_answer_accepted(self):
        # independent of the key: the grid maximiser of a seeded reduced Monte Carlo estimate
        gammas = torch.logspace(math.log10(1.5), math.log10(4.5), 41, dtype=torch.float64)
        h = reduced_class_entropy_samples(simplex_gram(), gammas, 10_000, generator(0, "cpu"))
        g_star = float(gammas[int(h.var(dim=1).argmax())])
        assert check(self.label, g_star).correct
        assert check(self.label, 2.56).correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        (1000 / 332.3333333, "gamma(t_s)"),       # gamma(t_s) = d/(Lambda - 1)
        (3.0, "gamma(t_s)"),                      # K - 1
        (0.5 * math.log(1000 / 3), "gamma(t_s)"),  # the time t_s itself
        (1000 / 3, "Lambda = d/3"),
        (1.353, "two-class"),
    ])
    def test_listed_mistakes(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)

    def test_generic_hints(self):
        v = check(self.label, 2 * 2.562)
        assert v.status == "wrong" and "twice" in str(v)
        v = check(self.label, -2.562)
        assert v.status == "wrong" and "sign" in str(v)


# ---------------------------------------------------------------- ex-sp-explain (explain)


class TestExplain:
    label = "ex-sp-explain"

    def test_right(self):
        assert check(self.label, "c").correct
        assert check(self.label, " C ").correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        ("a", "Brownian noise"),
        ("b", "computed exactly"),
        ("d", "no 'wrong'"),
        ("cd", "no 'wrong'"),
    ])
    def test_listed_misconceptions(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)

    def test_unknown_option(self):
        v = check(self.label, "e")
        assert v.status == "invalid" and "no option e" in str(v)


# ---------------------------------------------------------------- ex-sp-clock (explain)


class TestClock:
    label = "ex-sp-clock"

    def test_right(self):
        assert check(self.label, "b").correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        ("a", "only through"),
        ("c", "peaks too"),
        ("d", "same factor"),
        ("bd", "same factor"),
    ])
    def test_listed_misconceptions(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)

    def test_unknown_option(self):
        v = check(self.label, "z")
        assert v.status == "invalid" and "no option z" in str(v)
