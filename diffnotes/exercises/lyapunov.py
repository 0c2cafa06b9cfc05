"""Answer keys for the exercises of chapter 5, "Local Lyapunov spectra and the divergence of
generative trajectories" (``book/05_lyapunov_spectra.md``, home module
:mod:`diffnotes.lyapunov`): the generative exponent of the VP process for one data point, the
variance of Hutchinson's estimator with a control variate, and two multiple-choice questions on
why the median exponent stays negative and why the bandwidth is never attained. The references
are closed forms, or (for the control variate) the posterior covariance of the chapter's
mixture computed directly from its responsibilities, not from the score Jacobian.
"""

from __future__ import annotations

import functools

import sympy as sp
import torch

from ..device import generator
from ..mixtures import GaussianMixture
from ..selfcheck import Choice, Number, Symbolic, register

CHAPTER = "lyapunov"

# -- ex-ly-vp: the generative exponent of one data point in the VP process ---------------------
t = sp.Symbol("t", positive=True)
_DELTA = 1 - sp.exp(-2 * t)                                   # σ_t² of the VP process

register("ex-ly-vp", Symbolic(
    -sp.exp(-2 * t) / _DELTA,
    symbols=(t,),
    variable="t",
    mistakes=[
        (sp.exp(-2 * t) / _DELTA,
         "that is ∇v, the rate on the forward clock; the generative exponent is -∇v "
         "(generation runs towards decreasing t)", "sign"),
        (-1 / _DELTA,
         "you dropped the drift: v = -x - s, so ∇v = -I - J, not -J", "missing-term"),
        (1 - 2 / _DELTA,
         "the probability-flow ODE has g²/2 = 1 in front of the score, not g² = 2 "
         "(that factor belongs to the reverse SDE)", "a factor of 2 in one of the terms"),
        (-t / _DELTA,
         "that is the EDM recipe μ = tλ; in the VP process -∇v = ½g²J - fI = J + I", "convention"),
    ],
), chapter=CHAPTER, kind="derive", minutes=25, difficulty="standard")


# -- ex-ly-control: the lemma's variance of the control-variate estimator ----------------------
# The chapter's high-dimensional mixture, rebuilt from the same seed and in the same order as
# the chapter's cell (SEEDS["divergence"] = 2).
D_HI, K_HI, T_HI, N_HI, SEED_HI = 64, 16, 1.2, 4000, 2


def _chapter_samples() -> tuple[GaussianMixture, torch.Tensor]:
    g = generator(SEED_HI, "cpu")
    mix = GaussianMixture(0.5 * torch.randn(K_HI, D_HI, generator=g, dtype=torch.float64), None,
                          torch.full((K_HI,), 0.25, dtype=torch.float64))
    x0 = mix.sample(N_HI, g)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return mix, x0 + T_HI * eps


@functools.cache
def _posterior_pieces():
    """Per sample: the isotropic posterior variance P within a component, the centred posterior
    means c_k = μ_k - E[x_0|x] and the responsibilities r_k, straight from Bayes' rule for an
    isotropic mixture (no score, no Jacobian)."""
    mix, x = _chapter_samples()
    v, t2 = mix.variances, T_HI**2                                  # (K,), all 0.25 here
    var_x = v + t2                                                  # law of x given component k
    sq = torch.cdist(x, mix.means) ** 2                             # (n, K)
    logr = mix.weights.log() - 0.5 * D_HI * var_x.log() - sq / (2 * var_x)
    r = torch.softmax(logr, dim=1)
    shrink = v / var_x                                              # (K,)
    mu = mix.means + shrink[None, :, None] * (x[:, None, :] - mix.means)   # (n, K, d)
    c = mu - (r[..., None] * mu).sum(1, keepdim=True)
    within = v * t2 / var_x                                         # (K,) posterior variance
    return r, c, within


@functools.cache
def _frobenius_sq_of_F() -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample ‖F‖_F² and Σ_i F_ii² with F = Cov[x_0|x]/t⁴, Cov = Σ_k r_k (P_k I + c_k c_kᵀ)."""
    r, c, within = _posterior_pieces()
    pbar = (r * within).sum(1)                                      # isotropic part, (n,)
    gram = c @ c.transpose(1, 2)                                    # (n, K, K)
    m_sq = torch.einsum("nk,nl,nkl->n", r, r, gram**2)              # ‖Σ r_k c_k c_kᵀ‖_F²
    tr_m = (r * (c**2).sum(-1)).sum(1)
    frob = D_HI * pbar**2 + 2 * pbar * tr_m + m_sq
    diag_m = (r[..., None] * c**2).sum(1)                           # (n, d) diagonal of M
    diag_sq = ((pbar[:, None] + diag_m) ** 2).sum(1)
    return frob / T_HI**8, diag_sq / T_HI**8


def _control_variance() -> float:
    frob, _ = _frobenius_sq_of_F()
    return float(2 * frob.mean())


def _plain_gaussian_variance() -> float:
    """2‖J‖_F² with J = F - I/t²: ‖F‖² - 2 tr F/t² + d/t⁴."""
    r, c, within = _posterior_pieces()
    frob, _ = _frobenius_sq_of_F()
    tr_f = (D_HI * (r * within).sum(1) + (r * (c**2).sum(-1)).sum(1)) / T_HI**4
    return float(2 * (frob - 2 * tr_f / T_HI**2 + D_HI / T_HI**4).mean())


def _rademacher_variance() -> float:
    frob, diag_sq = _frobenius_sq_of_F()
    return float(2 * (frob - diag_sq).mean())   # off-diagonals of J and F agree


register("ex-ly-control", Number(
    _control_variance,
    rtol=1e-6,
    mistakes=[
        (lambda: _control_variance() / 4,
         "that is the variance of the average of four probes; the lemma's variance is that of "
         "one probe, z^T F z", "estimator"),
        (_plain_gaussian_variance,
         "that is 2‖J‖_F², the variance of plain Gaussian probes, which still pays for the "
         "identity part -I/t²; the control variate's matrix is F = J + I/t²", "estimator"),
        (_rademacher_variance,
         "that is the Rademacher variance 2Σ_{i≠j} J_ij²; with Gaussian probes the control "
         "variate also pays 2Σ_i F_ii²", "estimator"),
    ],
    expects="a float (the lemma's variance of one probe, averaged over the samples)",
), chapter=CHAPTER, kind="compute", minutes=30, difficulty="challenging")


# -- ex-ly-median: multiple choice ----------------------------------------------------------
RUBRIC_LY_MEDIAN = [
    (3, "The expanding slab",
     "For two points the exponent depends on x_1 only and is positive only in a slab |x_1| < c(t)"
     " around the symmetric hyperplane."),
    (3, "Why the fraction is small",
     "A sample x_1 = ±a + tε lies in the slab only if the noise carried it most of the way "
     "across. That probability vanishes at t = a, is not small just below a, and is small only "
     "well below a; but it stays below one quarter at every t, so most samples have already "
     "chosen and the median stays negative."),
    (2, "d = 1000",
     "Nothing changes: J along e_1 depends on x_1 alone and the added directions carry κ = −1, so"
     " the fraction is the same."),
    (2, "What does grow with d",
     "The distance of typical points from the fixed point (≈ t√d) grows, not the probability of "
     "sitting in the slab."),
]

register("ex-ly-median", Choice(
    "c",
    {
        "a": "it grows: with 999 more directions, more of them can expand",
        "b": "it falls towards 0: typical points lie about t√d from the fixed point, so "
             "almost none are near it",
        "c": "it stays the same: J along e_1 depends on x_1 alone and the added directions "
             "all have κ = -1",
        "d": "it rises to 1/2: in high dimension half the samples lie on each side of the "
             "separatrix",
    },
    hints={
        "a": "the added directions carry no data spread: the posterior covariance vanishes "
             "along them, so their exponent is exactly -1 at every point",
        "b": "the distance from the fixed point does grow like t√d, but that distance is "
             "across the added directions, which do not enter J along e_1",
        "d": "lying on either side is not enough: κ_d > 0 needs x_1 inside a slab of width "
             "about t²/a around the separatrix, and the law of x_1 does not depend on d",
    },
), chapter=CHAPTER, kind="explain", minutes=25, difficulty="challenging", rubric=RUBRIC_LY_MEDIAN)


# -- ex-ly-bandwidth: multiple choice -------------------------------------------------------
RUBRIC_LY_BANDWIDTH = [
    (3, "Why D(t) ≠ 0",
     "D = −E‖s‖², which vanishes only if s = 0 almost everywhere, i.e. p_t constant, which is not"
     " normalisable; hence Ḣ = d/t + tD < d/t strictly."),
    (2, "When d/t is approached",
     "Only for data spread ever wider (Gaussian variance σ² → ∞)."),
    (3, "Why a point can have zero divergence",
     "∇·s(x*) = −d/t² + tr Cov[x_0|x*]/t^4 vanishes when the posterior at x* has total variance d"
     " t², at the critical time of a spherically symmetric dataset (thm-fp-sphere)."),
    (2, "What the two have in common",
     "The same balance, locally or on average: the trivial contraction −d/t² against the "
     "posterior spread of the data; locally it can tip, on average never."),
]

register("ex-ly-bandwidth", Choice(
    "b",
    {
        "a": "because the divergence of the score is negative at every point, so its average "
             "is too",
        "b": "because D = -E‖s‖², which vanishes only if s = 0 almost everywhere, and no "
             "normalisable density has a vanishing score",
        "c": "because the data part D̃ = E tr Cov[x_0|x_t]/t⁴ is always zero at the critical time",
        "d": "because the trivial part -d/t² is larger in size than the data part at every "
             "point",
    },
    hints={
        "a": "no: ∇·s can be zero or positive at a point, e.g. at the symmetric fixed point "
             "of two points ±a e_1 in d dimensions once t < a/√d (in one dimension, at every t "
             "below t_c); only its average is forced to be negative",
        "c": "D̃ ≥ 0 is positive at the critical times, and t²D̃ = tḢ peaks just below "
             "each of them: it does not vanish there",
        "d": "locally the data part can win (at the symmetric fixed point of two points ±a e_1 "
             "once t < a/√d); it is the average over p_t that cannot balance",
    },
), chapter=CHAPTER, kind="explain",
         minutes=20, difficulty="challenging", rubric=RUBRIC_LY_BANDWIDTH)
