"""The self-checks of chapter 8's exercises accept right answers and give the promised hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.device import generator
from diffnotes.exercises.schedules import ring_half_r
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM
from diffnotes.schedules import mixture_profile, noise_ratio, schedule_grid
from diffnotes.selfcheck import check

r, s, d = sp.symbols("r s d", positive=True)


class TestGauss:
    label = "ex-et-gauss"

    @pytest.mark.parametrize("answer", [
        d * s * sp.atan(r / s),
        "d*s*atan(r/s)",
        d * s * (sp.pi / 2 - sp.atan(s / r)),
    ])
    def test_equivalent_forms_accepted(self, answer):
        assert check(self.label, answer).correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        (d * sp.atan(r / s), "factor s is missing"),
        (d * s**2 / (s**2 + r**2), "its integral"),
        (d * sp.log(r**2 / (s**2 + r**2)) / 2, "plain entropic time"),
        (d * s * sp.atan(r / s) / 2, "check the factor"),
    ])
    def test_listed_mistakes(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)


class TestRing:
    label = "ex-et-ring"

    def test_reference_converged(self):
        assert ring_half_r() == pytest.approx(ring_half_r(60), rel=1e-6)

    def test_monte_carlo_answer_accepted(self):
        # independent of the key: the book's solution, a Monte Carlo profile inverted
        a = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
        ring = GaussianMixture.delta(4.0 * torch.stack([torch.cos(a), torch.sin(a)], 1))
        lr = torch.linspace(math.log(0.02) - 0.05, math.log(40.0) + 0.05, 40,
                            dtype=torch.float64)
        prof = mixture_profile(ring, lr, 2000, generator(5, "cpu"))
        r_half = noise_ratio(schedule_grid("entropic", EDM(), 2, 0.02, 40.0, prof), EDM())[1]
        assert check(self.label, float(r_half)).correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        (math.sqrt(0.02 * 40.0), "geometric mean"),
        (20.01, "uniform time"),
    ])
    def test_listed_mistakes(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)


class TestExplain:
    label = "ex-et-explain"

    def test_right(self):
        assert check(self.label, "b").correct

    def test_missing(self):
        assert check(self.label, None).status == "missing"

    @pytest.mark.parametrize("answer, words", [
        ("a", "no noise"),
        ("c", "invariance"),
        ("d", "transports"),
    ])
    def test_listed_misconceptions(self, answer, words):
        v = check(self.label, answer)
        assert v.status == "wrong" and words in str(v)
