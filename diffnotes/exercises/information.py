"""Answer keys for the exercises of chapter 3, "Generative information transfer"
(``book/03_information_transfer.md``, home module :mod:`diffnotes.information`): the VP
bandwidth of subspace data, the total information carried by the entropy rate of eight points,
why the denoising loss bounds the entropy rate from above, and what a shared mean does to the
coherence.
"""

import math

import sympy as sp

from ..selfcheck import Choice, Number, Symbolic, register

CHAPTER = "information"

# -- ex-it-derive: the VP bandwidth of data on a k-dimensional subspace ------------------------
t, sigma2, k = sp.symbols("t sigma2 k", positive=True)
_delta = 1 - sp.exp(-2 * t)
_var_xt = sp.exp(-2 * t) * sigma2 + _delta          # variance of x_t along a data direction


def _vp_bandwidth():
    # Not by I-MMSE (the solution's route) but by the score-norm form of the VP rate,
    # d/Δ - E|s|², summed over the k data directions (score -x/Var x_t, so E s² = 1/Var x_t);
    # the d - k flat directions have Var x_t = Δ and contribute 1/Δ - 1/Δ = 0.
    return k * (1 / _delta - 1 / _var_xt)


register("ex-it-derive", Symbolic(
    _vp_bandwidth, symbols=(t, sigma2, k), variable="t",
    mistakes=[
        (k * sigma2 / (t * (sigma2 + t**2)),
         "that is the EDM bandwidth k σ²/(t(σ² + t²)); in the VP process the signal-to-noise "
         "ratio is λ = e^{-2t}/Δ_t, not 1/t²", "convention"),
        (k / (sp.exp(2 * t) - 1),
         "that is the special case σ² = 1; give the rate for a general variance sigma2",
         "a special case where the general result is asked for"),
        (k * sigma2 * _delta / _var_xt,
         "that is the MMSE; the entropy rate is the MMSE times the I-MMSE factor "
         "-λ'/2 = e^{-2t}/Δ_t²", "quantity"),
    ],
    expects="a sympy expression in t, sigma2 and k",
), chapter=CHAPTER, kind="derive", minutes=30, difficulty="challenging")

# -- ex-it-compute: the integral of the entropy rate of eight points ---------------------------
LOG8 = math.log(8)

register("ex-it-compute", Number(
    LOG8, rtol=0.0, atol=0.04,
    mistakes=[
        (3.0, "that is log₂ 8 = 3 bits; the entropy rate is in nats per unit time, so its "
              "integral is in nats", "ln2"),
        (-LOG8, "the sign is flipped: integrate Ḣ over increasing t (from 10⁻³ to 10³); the "
                "noising direction loses information, Ḣ ≥ 0", "sign"),
    ],
    expects="a float, the integral of Ḣ(t) over t in nats",
), chapter=CHAPTER, kind="compute", minutes=20, difficulty="standard")

# -- ex-it-explain: why the loss bounds the entropy rate from above ----------------------------
RUBRIC_IT_EXPLAIN = [
    (3, "The decomposition",
     "States t L(θ, t) = Ḣ(t) + t E‖s_θ − s‖² (thm-it-loss), the second term non-negative for "
     "every θ."),
    (3, "Why no optimiser goes below",
     "The floor Ḣ = E tr Cov[x_0|x_t]/t³ is set by the posterior variance of x_0 given x_t "
     "(proportional to it, not equal), irreducible because the noise target ε is not a "
     "function of x_t; only Monte Carlo error of a single estimate can dip "
     "below."),
    (2, "What the area measures",
     "The area between the curves is the model's t-weighted score-matching error ∫ t E‖s_θ − s‖² "
     "dt."),
    (2, "Discrete vs continuous data",
     "For discrete data the area is the excess of the entropy read off the loss over H(x_0); for "
     "data with a density both integrals diverge at t → 0 and only a finite range [t_min, t_max] "
     "keeps a meaning."),
]

register("ex-it-explain", Choice(
    "b",
    {
        "a": "Yes: the gap is optimisation error, and a perfect optimiser drives t L(θ, t) to "
             "zero, far below Ḣ(t).",
        "b": "No: t L(θ, t) = Ḣ(t) + t E|s_θ - s|² for every θ; the floor Ḣ = E tr Cov/t³ is "
             "set by the posterior variance of x_0 given x_t, which no model removes, and the "
             "area between the curves is the model's t-weighted score-matching error.",
        "c": "Yes: a large enough network can learn to predict ε from x_t exactly, so the "
             "loss, and t L with it, can fall below Ḣ.",
        "d": "No, but only because her network is too small: the true score s itself reaches "
             "a loss strictly below Ḣ, so a bigger network would cross the curve.",
    },
    hints={
        "a": "the denoising loss has an irreducible part: ε is not a function of x_t, so even "
             "the true score leaves the posterior variance, t L ≥ Ḣ for every θ",
        "c": "ε cannot be predicted from x_t: given x_t, x_0 (and with it ε) is still "
             "uncertain, and that posterior variance sets the floor Ḣ = E tr Cov/t³",
        "d": "the true score attains the floor exactly, t L(s, t) = Ḣ(t) (equality iff s_θ = "
             "s); no model does better, whatever its size",
    },
), chapter=CHAPTER, kind="explain", minutes=20, difficulty="standard", rubric=RUBRIC_IT_EXPLAIN)

# -- ex-it-coherence: a shared mean ------------------------------------------------------------
RUBRIC_IT_COHERENCE = [
    (3, "Effect of a shared mean on μ",
     "A shared mean m adds ‖m‖² to every inner product, so the cosines approach ‖m‖²/(‖m‖² + "
     "spread²) ≈ 1: μ approaches 1."),
    (2, "Consequence for the approximation",
     "The bound |R_t| ≤ μ r²(1 − E Q) becomes useless; r²(1 − Q) overstates tr Cov (by up to 1/(1"
     " − μ))."),
    (3, "Why Ḣ is unchanged",
     "Ḣ depends on the data only through tr Cov[x_0|x_t], which is invariant under a common shift"
     " (the EDM noise does not see the origin)."),
    (2, "What centring changes",
     "Centring changes r and μ, so it rescues the orthogonal approximation, but not Ḣ itself."),
]

register("ex-it-coherence", Choice(
    "a",
    {
        "a": "μ approaches 1 (every inner product gains |m|², so the cosines approach "
             "|m|²/(|m|² + spread²)) and the orthogonal approximation fails; but Ḣ does not "
             "change when the data are centred, since tr Cov[x_0 | x_t] is invariant under a "
             "common shift.",
        "b": "μ stays small: the mean is the same for every image, so it cancels in the "
             "cosines, and centring changes nothing at all.",
        "c": "μ approaches 1, and centring the data changes Ḣ too, because Ḣ ≈ (r²/t³)(1 - EQ) "
             "depends on the norm r, which centring reduces.",
        "d": "μ approaches 0: a large shared mean makes every norm r large, and dividing the "
             "inner products by r² makes the cosines small.",
    },
    hints={
        "b": "inner products are not shift-invariant: y_j·y_k = (m + u_j)·(m + u_k) = |m|² + "
             "... gains |m|² for every pair, so the cosines approach 1",
        "c": "(r²/t³)(1 - EQ) is only the orthogonal approximation; Ḣ itself is "
             "E tr Cov[x_0 | x_t]/t³, which a common shift of all points leaves unchanged",
        "d": "the norm grows, but so does every inner product, by the same |m|²: the cosines "
             "approach 1, not 0",
    },
), chapter=CHAPTER, kind="explain",
         minutes=20, difficulty="challenging", rubric=RUBRIC_IT_COHERENCE)
