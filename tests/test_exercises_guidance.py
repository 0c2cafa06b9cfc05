"""The answer keys of chapter 10 (diffnotes.exercises.guidance): a correct answer, worked out
here independently of the book's solutions, passes; typical wrong answers get their hints."""

import math

import pytest
import sympy as sp

from diffnotes.guidance import gaussian_guided_moments, guided_curie_weiss_roots
from diffnotes.processes import EDM
from diffnotes.selfcheck import check, exercise

v_c, v_u = sp.symbols("v_c v_u", positive=True)
w = sp.Symbol("w", real=True)
LABELS = ("ex-gd-ode-variance", "ex-gd-saddle", "ex-gd-explain")


def wrong(label, answer, words):
    v = check(label, answer)
    assert v.status == "wrong", str(v)
    assert words in str(v), str(v)


@pytest.mark.parametrize("label", LABELS)
def test_registered_and_missing(label):
    assert exercise(label).chapter == "guidance"
    assert check(label, None).status == "missing"


class TestOdeVariance:
    def test_right(self):
        assert check("ex-gd-ode-variance", v_c ** (1 + w) * v_u ** (-w))
        assert check("ex-gd-ode-variance", "v_c*(v_c/v_u)**w")

    def test_matches_the_moment_ode(self):
        _, v = gaussian_guided_moments([0.0], 0.4, [0.0], 2.0, 1.5, EDM(), 1e4, 1e-7)
        assert abs(v / (0.4 * (0.4 / 2.0) ** 1.5) - 1) < 1e-6

    def test_mistakes(self):
        wrong("ex-gd-ode-variance", v_c * (v_u / v_c) ** w, "upside down")
        wrong("ex-gd-ode-variance", v_c * (v_c / v_u) ** (1 + w), "exponent is w")
        wrong("ex-gd-ode-variance", 1 / ((1 + w) / v_c - w / v_u), "tilted data law")


class TestSaddle:
    @staticmethod
    def t_sn_by_root_count():
        """The largest T with three roots, by bisection on the root count (no formula)."""
        lo, hi = 0.05, 0.75
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if len(guided_curie_weiss_roots(mid, 0.25)[0]) == 3 else (lo, mid)
        return 0.5 * (lo + hi)

    def test_right(self):
        t_sn = self.t_sn_by_root_count()
        assert check("ex-gd-saddle", t_sn)

    def test_mistakes(self):
        t_sn = self.t_sn_by_root_count()
        wrong("ex-gd-saddle", math.sqrt(t_sn), "t_sn")
        wrong("ex-gd-saddle", t_sn / 0.75, "rescaled temperature")
        wrong("ex-gd-saddle", 1.0, "pitchfork")


class TestExplain:
    def test_right(self):
        assert check("ex-gd-explain", "b")

    def test_wrong(self):
        wrong("ex-gd-explain", "a", "forward equation")
        wrong("ex-gd-explain", "c", "discretisation")
        wrong("ex-gd-explain", "d", "probability flow")
