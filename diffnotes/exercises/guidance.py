"""Answer keys for the exercises of chapter 10, "Guidance" (``book/10_guidance.md``, home module
:mod:`diffnotes.guidance`): the probability-flow variance of a guided Gaussian class, the
saddle-node at which a wrong-class mode appears under weak guidance, and what a guided sampler
samples.
"""

import math

import sympy as sp

from ..selfcheck import Choice, Draw, Number, Symbolic, Variant, register

CHAPTER = "guidance"

# -- ex-gd-ode-variance: V = v_c (v_c/v_u)^w ------------------------------------------------------
v_c, v_u = sp.symbols("v_c v_u", positive=True)
w = sp.Symbol("w", real=True)

register("ex-gd-ode-variance", Symbolic(
    v_c * (v_c / v_u) ** w, symbols=(v_c, v_u, w),
    mistakes=[
        (v_c * (v_u / v_c) ** w, "the ratio is upside down: guidance with w > 0 shrinks the "
                                 "class, and v_u > v_c, so the factor must be (v_c/v_u)^w < 1",
                                 "inverted"),
        (v_c * (v_c / v_u) ** (1 + w), "the exponent is w, not 1 + w: at w = 0 the flow must "
                                       "return the class variance v_c itself", "exponent"),
        (v_c * (v_c / v_u) ** (2 * w), "that is the square of the factor: dV/dt = 2 t λ V "
                                       "already carries the 2 of a variance, so exp(-2∫tλ) "
                                       "gives the power w, not 2w", "exponent"),
        ((v_c / v_u) ** w, "the factor alone; the variance is v_c times it", "missing-term"),
        (1 / ((1 + w) / v_c - w / v_u), "that is the variance of the tilted data law q_0 ∝ "
                                        "p(x|c)^{1+w} p(x)^{-w}, which the guided sampler does "
                                        "not sample: integrate dV/dt = 2tλV instead", "quantity"),
    ],
    expects="a sympy expression in v_c, v_u and w",
), chapter=CHAPTER, kind="derive", minutes=30, difficulty="challenging")


# -- ex-gd-saddle: T_sn for the variant's gamma (1/4 in the book) ------------------------------
def _saddle_temperature(gamma: float = 0.25) -> float:
    """T_sn = (1 - γ)(1 - τ²) where τ solves (1 - τ²) artanh τ - τ = γ/(1 - γ), by mpmath's
    root finder at 30 digits (not the bisection of the book's solution)."""
    import mpmath as mp

    with mp.workdps(30):
        eta = mp.mpf(gamma) / (1 - mp.mpf(gamma))
        tau = mp.findroot(lambda x: (1 - x**2) * mp.atanh(x) - x - eta, (-0.99, -0.2),
                          solver="anderson")
        return float((1 - mp.mpf(gamma)) * (1 - tau**2))


def _saddle_key(v) -> Number:
    gam = v.gamma
    return Number(
        lambda: _saddle_temperature(gam), rtol=1e-4,
        mistakes=[
            (lambda: math.sqrt(_saddle_temperature(gam)),
             "that is t_sn = a√T_sn in the EDM with a = 1; the question asks for T_sn", "quantity"),
            (lambda: _saddle_temperature(gam) / (1 - gam),
             "that is chapter 4's rescaled temperature T' = T/(1 - γ); the guided temperature is "
             "T = (1 - γ)(1 - τ²)", "convention"),
            (1.0, "T = 1 is the pitchfork of unguided sampling (γ = 0); with γ > 0 the "
                  "wrong-class mode appears later, at a smaller T",
                  "the result of a simpler configuration than this one"),
        ],
        expects="a float, the temperature T_sn",
    )


# gamma = 1 + w: weak guidance from 0.10 to 0.40, where T_sn runs from 0.64 down to 0.096 (the
# wrong-class mode still appears at a temperature of order one tenth or more)
register("ex-gd-saddle", None, variant=Variant(
    {"gamma": Draw(0.25, 0.10, 0.40, 0.05)}, _saddle_key,
), chapter=CHAPTER, kind="compute", minutes=30, difficulty="challenging")

# -- ex-gd-explain: what a guided sampler samples --------------------------------------
RUBRIC_GD_EXPLAIN = [
    (3, "What samplers reproduce",
     "The reverse SDE and the probability flow reproduce the marginals of a family only if it "
     "solves the forward (heat) equation they reverse."),
    (3, "q_t does not",
     "q_t ∝ p_t(x|c)^{1+w} p_t(x)^{−w} does not solve it unless ‖∇log p_t(c|x)‖ is constant in x "
     "(thm-gd-not-tilted), so the samplers need not end at q_0."),
    (2, "Evidence",
     "For the Gaussian class at w = 2 the two samplers end at different variances, and neither "
     "equals q_0's variance ((1+w)/v_c − w/v_u)^{−1}."),
    (2, "Not discretisation",
     "The exact moment ODEs, with no discretisation, already differ from q_0; the deterministic "
     "flow is no exception."),
]

register("ex-gd-explain", Choice(
    "b",
    {
        "a": "Yes: any sampler driven by grad log q_t ends at q_0.",
        "b": "No: the samplers reproduce the marginals of a family only if it solves the "
             "forward (heat) equation, and q_t does not unless |grad log p_t(c|x)| is constant "
             "in x; the two samplers even disagree with each other.",
        "c": "No, but only because of the discretisation error of the samplers.",
        "d": "Yes for the probability flow, which is deterministic, and no for the SDE.",
    },
    hints={
        "a": "the reverse SDE and the probability flow are derived from the forward equation "
             "of the family whose score they use; q_t does not solve it (the heat residual is "
             "-t w(1+w)|grad log p_t(c|x)|^2)",
        "c": "the exact moment ODEs, with no discretisation at all, already differ from the "
             "variance of q_0",
        "d": "the probability flow has the right marginals for the same reason as the SDE, "
             "the forward equation; without it neither sampler ends at q_0 (and the two "
             "disagree)",
    },
), chapter=CHAPTER, kind="explain", minutes=20, difficulty="challenging", rubric=RUBRIC_GD_EXPLAIN)
