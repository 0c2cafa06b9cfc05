r"""Answer keys for the exercises of chapter 8, *Entropic time* (``book/08_entropic_time.md``).

Each reference is computed without the :mod:`diffnotes.schedules` call that the book's solution
makes: the rescaled entropic time of Gaussian data is the closed form written out by hand (the
solution integrates it with sympy), and the half-way point of the entropic time of the ring of
points comes from a deterministic Gauss-Hermite quadrature of the posterior entropy over the
points and a root finder (the solution uses the Monte Carlo profile of
``mixture_profile``). The explain exercise is a multiple-choice question on its key point.
"""

import functools
import math

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from ..selfcheck import Choice, Number, Symbolic, register

CHAPTER = "schedules"

# ---------------------------------------------------------------- ex-et-gauss: rescaled time
#
# Gaussian data N(mu, s² I) in d dimensions: H(x_0 | x_0 + r eps) = d/2 log(2 pi e s² r²/(s²+r²)),
# dH/dr = d s²/(r (s² + r²)), and the rescaled entropic time int_0^r r' dH = d s atan(r/s).

r, s, d = sp.symbols("r s d", positive=True)
_TAU_R = d * s * sp.atan(r / s)

register(
    "ex-et-gauss",
    Symbolic(
        _TAU_R,
        symbols=(r, s, d),
        variable="r",
        mistakes=[
            (d * sp.atan(r / s),
             "a factor s is missing: r dH/dr = d s²/(s² + r²), and the integral of "
             "s²/(s² + r²) in r is s atan(r/s)", "missing-term"),
            (d * s**2 / (s**2 + r**2),
             "that is the rescaled rate r dH/dr; the time is its integral from 0 to r", "quantity"),
            (d * sp.log(r**2 / (s**2 + r**2)) / 2,
             "that is the plain entropic time H(r) up to a constant; the rescaled one weights "
             "each increment dH by r", "quantity"),
            (d * s * sp.atan(r / s) / 2,
             "check the factor: dH/dr = d s²/(r (s² + r²)) (the 1/2 of the Gaussian entropy "
             "cancels the 2 of d log r²)", "factor-2"),
            (d * r - d * s * sp.atan(r / s),
             "you integrated r dH/dr with dH/dr = d/r - d r/(s² + r²) but kept the wrong term: "
             "r dH/dr = d - d r²/(s² + r²) = d s²/(s² + r²)",
             "an integration step: a term of the integrand is wrong"),
        ],
        expects="a sympy expression in r, s and d: the rescaled entropic time, zero at r = 0",
    ),
    chapter=CHAPTER,
    kind="derive", minutes=20, difficulty="standard",
)

# ---------------------------------------------------------------- ex-et-ring: half-way point
#
# Eight equiprobable points on a circle of radius 4 in the plane. For a delta mixture
# H(x_0 | x) is the entropy of the posterior over the points; by rotation symmetry it is the
# average of h(y_0 + r eps) over eps ~ N(0, I_2), computed by a 2-D Gauss-Hermite rule.

RING_K, RING_RADIUS, RING_R_MIN, RING_R_MAX = 8, 4.0, 0.02, 40.0
_GH_NODES = 80  # converged: 60 and 100 nodes agree to 1e-6 in r_half


def _ring_points() -> np.ndarray:
    a = 2 * np.pi * np.arange(RING_K) / RING_K
    return RING_RADIUS * np.stack([np.cos(a), np.sin(a)], 1)


def ring_entropy(rr: float, nodes: int = _GH_NODES) -> float:
    """H(x_0 | x_0 + r eps) of the ring, in nats, by Gauss-Hermite quadrature."""
    y = _ring_points()
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    ex, ey = np.meshgrid(x, x, indexing="ij")
    pts = y[0] + rr * np.stack([ex.ravel(), ey.ravel()], 1)          # (N, 2)
    logits = -((pts[:, None, :] - y[None]) ** 2).sum(-1) / (2 * rr**2)
    logits -= logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    h = -(np.exp(logp) * logp).sum(1)
    return float(np.outer(w, w).ravel() @ h)


@functools.cache
def ring_half_r(nodes: int = _GH_NODES) -> float:
    """The r at which the ring's entropic time is half-way between r_min and r_max."""
    h_lo, h_hi = ring_entropy(RING_R_MIN, nodes), ring_entropy(RING_R_MAX, nodes)
    target = 0.5 * (h_lo + h_hi)
    log_r = brentq(lambda lr: ring_entropy(math.exp(lr), nodes) - target,
                   math.log(0.1), math.log(20.0), xtol=1e-12)
    return math.exp(log_r)


def _ring_rescaled_half() -> float:
    """The half-way point of the rescaled entropic time (int r dH), by the same quadrature."""
    grid = np.exp(np.linspace(math.log(RING_R_MIN), math.log(RING_R_MAX), 801))
    h = np.array([ring_entropy(float(g), 40) for g in grid])
    tau = np.concatenate([[0.0], np.cumsum(0.5 * (grid[1:] + grid[:-1]) * np.diff(h))])
    return float(np.interp(0.5 * tau[-1], tau, grid))


register(
    "ex-et-ring",
    Number(
        ring_half_r,
        rtol=0.03,  # the solution inverts a Monte Carlo profile; its error is about 1 %
        mistakes=[
            (math.sqrt(RING_R_MIN * RING_R_MAX),
             "that is the geometric mean of r_min and r_max, the half-way point of the log-SNR "
             "schedule; entropic time is half-way when half of the entropy has been removed",
             "the mid-point of another clock than the one asked for"),
            (0.5 * (RING_R_MIN + RING_R_MAX),
             "that is the half-way point of uniform time; entropic time is half-way when half "
             "of the entropy has been removed",
             "the mid-point of another clock than the one asked for"),
            (_ring_rescaled_half,
             "that is the half-way point of the rescaled entropic time, which weights dH by r",
             "the mid-point of another clock than the one asked for"),
        ],
        expects="a float: the noise-to-signal ratio r at which half of H(r_max) - H(r_min) "
                "has been removed",
    ),
    chapter=CHAPTER,
    kind="compute", minutes=30, difficulty="standard",
)

# ---------------------------------------------------------------- ex-et-explain: few steps

RUBRIC_ET_EXPLAIN = [
    (3, "Where the first step goes",
     "Where H barely changes (large r, above r ≈ 3 here) entropic time puts almost no points, so "
     "with few steps the first step jumps from r_max to below the data's scale."),
    (3, "Why that fails with Heun",
     "The corrector evaluates the score at the Euler predictor, near the data mean rather than on"
     " the noised data, and the long step multiplies that error."),
    (2, "Why the rescaled time works",
     "Its weight r moves grid points back to large r."),
    (2, "Ruling out the alternatives",
     "The exact profile of the Gaussian with the classes' covariance, which has no Monte Carlo "
     "noise, gives almost the same first step (the solution computes both); entropic time is the "
     "same in every process (thm-et-invariance); Euler–Maruyama fails as well (not an ODE-only "
     "effect)."),
]

register(
    "ex-et-explain",
    Choice(
        "b",
        {
            "a": "The entropy profile is a Monte Carlo estimate, and its noise misplaces the "
                 "few grid points.",
            "b": "Where H barely changes (large r for these data) entropic time puts almost no "
                 "points, so with a few steps the first step jumps from r_max to r below the "
                 "scale of the data; the score there is evaluated far from where the noised "
                 "data lie, and the long step multiplies that error. The weight r of the "
                 "rescaled time moves points back to large r.",
            "c": "Entropic time depends on the forward process, and the EDM is the wrong "
                 "process for it; in the VP process it would place the same points as the "
                 "rescaled time.",
            "d": "Entropic time only suits stochastic samplers: an ODE sampler does not remove "
                 "entropy, so equal entropy steps mean nothing to it.",
        },
        hints={
            "a": "no: the exact profile of the Gaussian with the same covariance, which has "
                 "no noise, puts the first step at almost the same r",
            "c": "no: entropic time is a function of the SNR path alone, the same points in r "
                 "for every process (the invariance theorem); only the map from r to t changes",
            "d": "no: the deterministic flow transports p_t exactly as the SDE does, so "
                 "H(x_0 | x_t) falls along it in the same way; and the stochastic sampler fails "
                 "with the plain entropic schedule too",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=20, difficulty="standard", rubric=RUBRIC_ET_EXPLAIN,
)
