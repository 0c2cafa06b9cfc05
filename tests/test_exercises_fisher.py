"""Answer keys of chapter 6 (Fisher geometry): right answers pass, typical wrong ones get hints."""

import math

import pytest
import sympy as sp

from diffnotes.selfcheck import check, exercises

LABELS = ("ex-fi-vp", "ex-fi-samples", "ex-fi-above-one", "ex-fi-threshold")
ell, t = sp.symbols("ell t", positive=True)


def test_registered_with_chapter_and_kind():
    known = exercises()
    kinds = {"ex-fi-vp": "derive", "ex-fi-samples": "compute", "ex-fi-above-one": "explain",
             "ex-fi-threshold": "explain"}
    for label in LABELS:
        assert known[label].chapter == "fisher"
        assert known[label].kind == kinds[label]


@pytest.mark.parametrize("label", LABELS)
def test_missing(label):
    assert check(label, None).status == "missing"


# -- ex-fi-vp ----------------------------------------------------------------------------------
class TestVP:
    def test_solved_independently(self):
        # σ²λ(F) = e^{-2t}ℓ / (e^{-2t}ℓ + 1 - e^{-2t}); solve for u = e^{-2t}, then t = -log(u)/2
        u = sp.Symbol("u", positive=True)
        (u_half,) = sp.solve(sp.Eq(u * ell / (u * ell + 1 - u), sp.Rational(1, 2)), u)
        assert check("ex-fi-vp", -sp.log(u_half) / 2)

    def test_equivalent_forms(self):
        assert check("ex-fi-vp", sp.log(sp.sqrt(1 + ell)))
        assert check("ex-fi-vp", "log(ell + 1)/2")
        assert check("ex-fi-vp", sp.log(1 + sp.Symbol("ell")) / 2)

    def test_speciation_limit(self):
        v = check("ex-fi-vp", sp.log(ell) / 2)
        assert v.status == "wrong" and "large-ℓ limit" in str(v)

    def test_edm_crossing(self):
        v = check("ex-fi-vp", sp.sqrt(ell))
        assert v.status == "wrong" and "EDM" in str(v)

    def test_squared_variance(self):
        v = check("ex-fi-vp", sp.log(1 + ell**2) / 2)
        assert v.status == "wrong" and "square" in str(v)

    def test_generic_factor_two(self):
        v = check("ex-fi-vp", sp.log(1 + ell))
        assert v.status == "wrong" and "factor of 2" in str(v)

    def test_the_number_for_ell_one_is_not_the_formula(self):
        v = check("ex-fi-vp", math.log(2) / 2)
        assert v.status == "wrong"

    def test_foreign_symbol(self):
        v = check("ex-fi-vp", sp.log(1 + t) / 2)
        assert v.status == "wrong" and "symbol" in str(v)


# -- ex-fi-samples ----------------------------------------------------------------------------
class TestSamples:
    # surface of the unit 5-sphere: 2 π^3 / Γ(3)
    vol = 2 * math.pi**3 / math.gamma(3)

    def test_right(self):
        assert check("ex-fi-samples", self.vol * 1e5)
        assert check("ex-fi-samples", 31.0 / 1e-5)          # π³ ≈ 31, as in the text

    def test_ambient_dimension(self):
        v = check("ex-fi-samples", self.vol / 0.1**6)
        assert v.status == "wrong" and "R^6" in str(v)

    def test_ball_volume(self):
        v = check("ex-fi-samples", self.vol / 6 / 0.1**5)
        assert v.status == "wrong" and "ball" in str(v)

    def test_two_dimensional_rule(self):
        v = check("ex-fi-samples", self.vol / 0.1**2)
        assert v.status == "wrong" and "1/5" in str(v)
        v = check("ex-fi-samples", 4 * math.pi / 0.1**2)
        assert v.status == "wrong" and "S²" in str(v)

    def test_generic_factor_two(self):
        v = check("ex-fi-samples", 2 * self.vol / 0.1**5)
        assert v.status == "wrong" and "factor of 2" in str(v)

    def test_invalid(self):
        assert check("ex-fi-samples", "a lot").status == "invalid"


# -- the multiple-choice questions -----------------------------------------------------------
class TestChoices:
    def test_above_one(self):
        assert check("ex-fi-above-one", "a")
        assert "log-concave" in str(check("ex-fi-above-one", "b"))
        assert "tangent" in str(check("ex-fi-above-one", "c"))
        assert "backwards" in str(check("ex-fi-above-one", "d"))
        assert check("ex-fi-above-one", "ac").status == "wrong"

    def test_threshold(self):
        assert check("ex-fi-threshold", "a")
        assert check("ex-fi-threshold", ["A"])
        assert "curvature" in str(check("ex-fi-threshold", "b"))
        assert "tuned" in str(check("ex-fi-threshold", "c"))
        assert "t² > ℓ" in str(check("ex-fi-threshold", "d"))
        assert check("ex-fi-threshold", "z").status == "invalid"
