"""The answer keys of chapter 4 (diffnotes.exercises.fixed_points): a correct answer, worked out
here independently of the book's solutions, passes; typical wrong answers get their hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes.selfcheck import check, exercise

a, h = sp.symbols("a h", positive=True)
R, d = sp.symbols("R d", positive=True)
LABELS = ("ex-fp-weak-field", "ex-fp-three-points", "ex-fp-deterministic", "ex-fp-vp-sphere")


def wrong(label, answer, words):
    v = check(label, answer)
    assert v.status == "wrong", str(v)
    assert words in str(v), str(v)


def bisect(f, lo, hi, iters=80):
    """The root of f in (lo, hi), f(lo) < 0 < f(hi)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("label", LABELS)
def test_registered_and_missing(label):
    ex = exercise(label)
    assert ex.chapter == "fixed_points"
    assert check(label, None).status == "missing"


class TestWeakField:
    # 3 a (3h/2)^(1/3) with the constants multiplied out
    right = 3 ** sp.Rational(4, 3) / 2 ** sp.Rational(1, 3) * a * h ** sp.Rational(1, 3)

    def test_right(self):
        assert check("ex-fp-weak-field", self.right)
        assert check("ex-fp-weak-field", "3*a*(3*h/2)**(1/3)")

    def test_closed_form_matches_the_exact_jump_at_small_field(self):
        # exact m_sn (g(m) = h, m < 0) and m_+ (m = tanh(m/T_sn + h), m > 0) by bisection
        hh = 1e-6
        m_sn = bisect(lambda m: -(math.atanh(m) - m / (1 - m * m) - hh), -0.5, -1e-9)
        t_sn = 1 - m_sn**2
        m_plus = bisect(lambda m: m - math.tanh(m / t_sn + hh), math.tanh(hh), 0.5)
        leading = float(self.right.subs({a: 1, h: hh}))
        assert abs((m_plus - m_sn) / leading - 1) < 1e-3

    def test_key_mistakes(self):
        eps = (sp.Rational(3, 2) * h) ** sp.Rational(1, 3)
        wrong("ex-fp-weak-field", a * eps, "a|m_sn|")
        wrong("ex-fp-weak-field", 3 * eps, "jump in m")

    def test_generic_mistakes(self):
        wrong("ex-fp-weak-field", 2 * self.right, "factor of 2")
        wrong("ex-fp-weak-field", 3 * a * (3 * h) ** sp.Rational(1, 3), "constant factor")


class TestThreePoints:
    @staticmethod
    def fold_time():
        """The largest t at which E[x0 | x] - x still reaches zero for some x in (0.4, 0.9)
        (the outer mode and its saddle exist), by bisection in t on a fine grid of x."""
        x = torch.linspace(0.4, 0.9, 5001, dtype=torch.float64)

        def excess(t):       # max over x of E[x0 | x] - x; negative once the modes are gone
            logits = torch.stack([-(x - y) ** 2 / (2 * t * t) for y in (-1.0, 0.0, 1.0)])
            w = torch.softmax(logits, 0)
            return float((w[2] - w[0] - x).max())

        return bisect(lambda t: -excess(t), 0.4, 0.6, iters=30)

    def test_right(self):
        t_sn = self.fold_time()
        assert abs(t_sn - 0.48496) < 1e-4
        assert check("ex-fp-three-points", t_sn)
        assert check("ex-fp-three-points", 0.4838)        # the midpoint of a 0.0025 bracket

    def test_key_mistakes(self):
        wrong("ex-fp-three-points", 0.5, "half the distance")
        wrong("ex-fp-three-points", math.sqrt(2 / 3), "standard deviation of the data")
        wrong("ex-fp-three-points", 1.0, "two outer points alone")

    def test_generic_mistakes(self):
        wrong("ex-fp-three-points", 0.48, "outside the tolerance")
        wrong("ex-fp-three-points", 0.3, "too small")


class TestDeterministic:
    def test_right(self):
        assert check("ex-fp-deterministic", "b")

    def test_wrong(self):
        wrong("ex-fp-deterministic", "a", "deterministic")
        wrong("ex-fp-deterministic", "c", "whole distribution")
        wrong("ex-fp-deterministic", "d", "still is a fixed point")
        assert check("ex-fp-deterministic", "z").status == "invalid"


class TestVPSphere:
    def test_right(self):
        assert check("ex-fp-vp-sphere", sp.log((d + R**2) / d) / 2)
        assert check("ex-fp-vp-sphere", sp.log(sp.sqrt(1 + R**2 / d)))
        # the key's time is where the module's VP score divergence at the centre of the 2d
        # points ±R e_i changes sign (d = 64, R = 4), computed without the key's algebra
        from diffnotes.mixtures import GaussianMixture
        from diffnotes.processes import VP

        eye = torch.eye(64, dtype=torch.float64)
        mix = GaussianMixture.delta(4.0 * torch.cat([eye, -eye]))
        centre = torch.zeros(1, 64, dtype=torch.float64)
        accepted = sp.log(1 + R**2 / d) / 2
        assert check("ex-fp-vp-sphere", accepted)
        t_c = float(accepted.subs({R: 4, d: 64}))

        def div(t):
            return mix.score_divergence(centre, t, VP()).item()

        assert div(0.99 * t_c) > 0 > div(1.01 * t_c)
        assert abs(div(t_c)) < 1e-9 * abs(div(0.5 * t_c))

    def test_key_mistakes(self):
        wrong("ex-fp-vp-sphere", R / sp.sqrt(d), "EDM critical time")
        wrong("ex-fp-vp-sphere", sp.log(1 + R**2) / 2, "the d is missing")
        wrong("ex-fp-vp-sphere", sp.log(1 + d / R**2) / 2, "upside down")

    def test_generic_mistakes(self):
        wrong("ex-fp-vp-sphere", sp.log(1 + R**2 / d), "factor of 2")
        wrong("ex-fp-vp-sphere", -sp.log(1 + R**2 / d) / 2, "sign")
