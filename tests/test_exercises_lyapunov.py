"""Answer keys of chapter 5 (Lyapunov spectra): right answers pass, typical wrong ones get hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.device import generator
from diffnotes.exercises import lyapunov as key
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM
from diffnotes.selfcheck import check, exercises

LABELS = ("ex-ly-vp", "ex-ly-control", "ex-ly-median", "ex-ly-bandwidth")
t = sp.Symbol("t", positive=True)


def test_registered_with_chapter_and_kind():
    known = exercises()
    kinds = {"ex-ly-vp": "derive", "ex-ly-control": "compute", "ex-ly-median": "explain",
             "ex-ly-bandwidth": "explain"}
    for label in LABELS:
        assert known[label].chapter == "lyapunov"
        assert known[label].kind == kinds[label]


@pytest.mark.parametrize("label", LABELS)
def test_missing(label):
    assert check(label, None).status == "missing"


# -- ex-ly-vp ----------------------------------------------------------------------------------
class TestVP:
    def test_equivalent_forms(self):
        assert check("ex-ly-vp", -1 / (sp.exp(2 * t) - 1))
        assert check("ex-ly-vp", 1 - 1 / (1 - sp.exp(-2 * t)))
        assert check("ex-ly-vp", "-1/(exp(2*t) - 1)")
        t_plain = sp.Symbol("t")
        assert check("ex-ly-vp", -sp.exp(-2 * t_plain) / (1 - sp.exp(-2 * t_plain)))

    def test_forward_clock(self):
        v = check("ex-ly-vp", 1 / (sp.exp(2 * t) - 1))
        assert v.status == "wrong" and "forward clock" in str(v)

    def test_dropped_drift(self):
        v = check("ex-ly-vp", -1 / (1 - sp.exp(-2 * t)))
        assert v.status == "wrong" and "drift" in str(v)

    def test_sde_factor(self):
        v = check("ex-ly-vp", 1 - 2 / (1 - sp.exp(-2 * t)))
        assert v.status == "wrong" and "g²/2" in str(v)

    def test_generic_factor_two(self):
        v = check("ex-ly-vp", -2 / (sp.exp(2 * t) - 1))
        assert v.status == "wrong" and "factor of 2" in str(v)

    def test_foreign_symbol(self):
        v = check("ex-ly-vp", -sp.Symbol("s") / (sp.exp(2 * t) - 1))
        assert v.status == "wrong" and "symbol" in str(v)


# -- ex-ly-control ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chapter_jacobians():
    """The chapter's samples and their Jacobians (closed form of GaussianMixture, not the key's
    responsibilities), rebuilt from the chapter's seed."""
    g = generator(2, "cpu")
    mix = GaussianMixture(0.5 * torch.randn(16, 64, generator=g, dtype=torch.float64), None,
                          torch.full((16,), 0.25, dtype=torch.float64))
    x0 = mix.sample(4000, g)
    x = x0 + 1.2 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return mix.score_jacobian(x, 1.2, EDM())


class TestControl:
    def test_right(self, chapter_jacobians):
        F = chapter_jacobians + torch.eye(64, dtype=torch.float64) / 1.2**2
        assert check("ex-ly-control", float(2 * (F**2).sum((1, 2)).mean()))

    def test_plain_gaussian(self, chapter_jacobians):
        v = check("ex-ly-control", float(2 * (chapter_jacobians**2).sum((1, 2)).mean()))
        assert v.status == "wrong" and "identity" in str(v)

    def test_rademacher(self, chapter_jacobians):
        J = chapter_jacobians
        off = (J**2).sum((1, 2)) - (torch.diagonal(J, dim1=1, dim2=2) ** 2).sum(1)
        v = check("ex-ly-control", float(2 * off.mean()))
        assert v.status == "wrong" and "Rademacher" in str(v)

    def test_four_probe_average(self):
        v = check("ex-ly-control", key._control_variance() / 4)
        assert v.status == "wrong" and "four probes" in str(v)

    def test_generic_half(self):
        v = check("ex-ly-control", key._control_variance() / 2)
        assert v.status == "wrong" and "half" in str(v)

    def test_invalid(self):
        assert check("ex-ly-control", "large").status == "invalid"
        assert check("ex-ly-control", math.nan).status == "invalid"


# -- the multiple-choice questions -----------------------------------------------------------
class TestChoices:
    def test_median(self):
        assert check("ex-ly-median", "c")
        assert check("ex-ly-median", "C")
        assert "t√d" in str(check("ex-ly-median", "b"))
        assert "exactly -1" in str(check("ex-ly-median", "a"))
        assert "slab" in str(check("ex-ly-median", "d"))
        assert check("ex-ly-median", "e").status == "invalid"

    def test_bandwidth(self):
        assert check("ex-ly-bandwidth", "b")
        assert "fixed point" in str(check("ex-ly-bandwidth", "a"))
        assert "peaks" in str(check("ex-ly-bandwidth", "c"))
        assert "a/√d" in str(check("ex-ly-bandwidth", "d"))
        assert check("ex-ly-bandwidth", "bd").status == "wrong"
