"""Answer keys for the exercises of chapter 4, "Fixed points and spontaneous symmetry breaking"
(``book/04_symmetry_breaking.md``, home module :mod:`diffnotes.fixed_points`): the jump of the
metastable path in a weak field, the saddle-node of three points on a line, why a
deterministic sampler needs a nudge, and the VP critical time of a sphere.
"""

import math

import sympy as sp

from ..selfcheck import Choice, Number, Symbolic, register

CHAPTER = "fixed_points"

# -- ex-fp-weak-field: the jump a(m_+ - m_sn) at T_sn to leading order in h --------------------
a, h = sp.symbols("a h", positive=True)
_eps = (sp.Rational(3, 2) * h) ** sp.Rational(1, 3)     # |m_sn| to leading order

register("ex-fp-weak-field", Symbolic(
    3 * a * _eps, symbols=(a, h),
    mistakes=[
        (a * _eps, "that is a|m_sn|, the distance of the saddle-node from the origin; the "
                   "path jumps from m_sn ≈ -ε to the stable branch on the other side, "
                   "m_+ ≈ 2ε", "missing-term"),
        (2 * a * _eps, "that is a m_+ alone; the metastable mode it jumps from sits at "
                       "m_sn ≈ -ε, on the other side of the origin: add a|m_sn|", "missing-term"),
        (3 * _eps, "that is the jump in m; the jump in u = a m carries the factor a",
                   "the jump of the wrong variable (check which of m and u = a m is asked for)"),
        (_eps**2, "that is 1 - T_sn, the shift of the saddle-node temperature; the question "
                  "asks for the jump a(m_+ - m_sn)", "quantity"),
    ],
    expects="a sympy expression in a and h",
), chapter=CHAPTER, kind="derive", minutes=30, difficulty="challenging")


# -- ex-fp-three-points: the time at which the outer modes of -1, 0, 1 disappear --------------
def _three_point_fold() -> float:
    """The saddle-node (fold) of the EDM fixed-point equation x = E[x0 | x] for the equally
    weighted points -1, 0, 1, by Newton's method on the two equations f = 0, f_x = 0 with
    f(x, t) = E[x0 | x_t = x] - x and f_x = Var[x0 | x]/t² - 1 (closed-form posterior,
    mpmath): not `find_fixed_points`."""
    import mpmath as mp

    with mp.workdps(30):
        def weights(x, t):
            ks = [mp.exp(-(x - y) ** 2 / (2 * t**2)) for y in (-1, 0, 1)]
            total = ks[0] + ks[1] + ks[2]
            return ks[0] / total, ks[2] / total

        def f(x, t):                      # E[x0 | x] - x
            w_minus, w_plus = weights(x, t)
            return w_plus - w_minus - x

        def f_x(x, t):                    # d E[x0 | x]/dx - 1 = Var[x0 | x]/t² - 1
            w_minus, w_plus = weights(x, t)
            return (w_plus + w_minus - (w_plus - w_minus) ** 2) / t**2 - 1

        _, t_fold = mp.findroot([f, f_x], (mp.mpf("0.65"), mp.mpf("0.5")))
        return float(t_fold)


register("ex-fp-three-points", Number(
    _three_point_fold, rtol=0.0, atol=0.004,
    mistakes=[
        (0.5, "0.5 is half the distance between neighbours, where an isolated pair would "
              "branch in a pitchfork (and the first time past the transition on a coarse "
              "grid); the outer modes vanish at a slightly smaller t, in a saddle-node: refine "
              "the grid below 0.5",
              "the result of a simpler configuration than this one"),
        (math.sqrt(2 / 3), "√(2/3) is the standard deviation of the data, the critical time "
                           "t_c² = R²/d of the sphere; but here the centre point keeps the "
                           "origin stable at every t, and the outer modes vanish at a smaller "
                           "t, by merging with the saddles",
                           "the result of a simpler configuration than this one"),
        (1.0, "t = 1 is the pitchfork of the two outer points alone; the middle point "
              "changes the picture: the outer modes merge with saddles between them and the "
              "centre, at a smaller t",
              "the result of a simpler configuration than this one"),
    ],
    expects="a float, the EDM time at which the outer modes disappear",
), chapter=CHAPTER, kind="compute", minutes=30, difficulty="standard")

# -- ex-fp-deterministic: the probability-flow ODE from exactly x_T = 0 ----------------------
RUBRIC_FP_DETERMINISTIC = [
    (3, "Where the ODE ends from x_T = 0",
     "The symmetric point is a fixed point at every t (s(0, t) = 0), so the ODE stays at 0 and "
     "ends at the midpoint of the data, not at a data point."),
    (2, "Mean shift at a saddle",
     "Mean shift fixes every fixed point but moves uphill in log p_t from near a saddle, so it "
     "reaches saddles only from a measure-zero set of starts."),
    (2, "Why Newton's method",
     "Newton solves s = 0 without regard to p_t and converges to a nearby root of any index, "
     "saddles included."),
    (3, "What breaks the symmetry",
     "The random x_T: a typical x_T ~ p_T has |x_T| ~ T, far from the linear regime, and in one "
     "dimension the monotone flow map lets sign(x_T) decide the branch; only a start near 0 is "
     "contracted until t_c and amplified after it (for the SDE, the noise injected over a window "
     "around t_c does it)."),
]

register("ex-fp-deterministic", Choice(
    "b",
    {
        "a": "At +a or -a, each with probability ½, like the reverse SDE.",
        "b": "At the midpoint 0: s(0, t) = 0 at every t, so the ODE never moves; in practice "
             "the random x_T breaks the symmetry.",
        "c": "At a point drawn from the data distribution, because the probability-flow ODE "
             "has the same marginals as the reverse SDE.",
        "d": "Nowhere: below t_c the origin is unstable, so the solution diverges to "
             "infinity.",
    },
    hints={
        "a": "the ODE is deterministic: from one starting point it has one solution, and "
             "x ≡ 0 solves it because s(0, t) = 0",
        "c": "the ODE transports the whole distribution p_T to p_0; started from the single "
             "point x_T = 0 it follows one deterministic path, and x ≡ 0 is that path",
        "d": "an unstable fixed point still is a fixed point: exactly at 0 nothing pushes the "
             "solution away (and a nudged one ends at a data point, not at infinity)",
    },
), chapter=CHAPTER, kind="explain",
         minutes=20, difficulty="standard", rubric=RUBRIC_FP_DETERMINISTIC)

# -- ex-fp-vp-sphere: the VP critical time of a sphere ----------------------------------------
R, d = sp.symbols("R d", positive=True)

register("ex-fp-vp-sphere", Symbolic(
    sp.log(1 + R**2 / d) / 2, symbols=(R, d),
    mistakes=[
        (R / sp.sqrt(d), "that is the EDM critical time; in the VP process σ²/α² = "
                         "e^{2t} - 1, not t²", "convention"),
        (sp.log(1 + R**2) / 2, "the d is missing: the divergence is a trace, a sum over d "
                               "directions, so it vanishes at σ²/α² = R²/d", "dimension"),
        (sp.log(R**2 / d) / 2, "σ²/α² = (1 - e^{-2t})/e^{-2t} = e^{2t} - 1, not e^{2t}: "
                               "solve e^{2t} = 1 + R²/d",
                               "the noise-to-signal ratio of the forward process is wrong"),
        (sp.log(1 + d / R**2) / 2, "R²/d is upside down: the divergence vanishes when "
                                   "α²R² = dσ², that is σ²/α² = R²/d", "inverted"),
    ],
    expects="a sympy expression in R and d",
), chapter=CHAPTER, kind="derive", minutes=20, difficulty="standard")
