"""Answer keys for the exercises of chapter 6, "Fisher information geometry of the posterior"
(``book/06_fisher_geometry.md``, home module :mod:`diffnotes.fisher`): the time at which a VP
Gaussian direction's normalised Fisher eigenvalue crosses 1/2, the number of samples a
five-sphere needs for a given spacing, and two multiple-choice questions on normalised
eigenvalues above one and on the threshold 1/2. The references are closed forms.
"""

from __future__ import annotations

import math

import sympy as sp

from ..selfcheck import Choice, Draw, Number, Symbolic, Variant, register

CHAPTER = "fisher"

# -- ex-fi-vp: where σ²λ(F) = e^{-2t}ℓ/(e^{-2t}ℓ + 1 - e^{-2t}) crosses 1/2 ---------------------
ell = sp.Symbol("ell", positive=True)

register("ex-fi-vp", Symbolic(
    sp.log(1 + ell) / 2,
    symbols=(ell,),
    mistakes=[
        (sp.log(ell) / 2,
         "that is the large-ℓ limit (the speciation time of chapter 7); solve "
         "e^{-2t} ℓ = 1 - e^{-2t} exactly", "limit"),
        (sp.sqrt(ell),
         "that is the EDM crossing t² = ℓ; in the VP process the signal is scaled by "
         "α = e^{-t} and the noise variance is σ² = 1 - e^{-2t}", "convention"),
        (sp.log(1 + ell**2) / 2,
         "ℓ is already the variance of the direction (a² for two points ±a), do not square it",
         "square"),
    ],
), chapter=CHAPTER, kind="derive", minutes=15, difficulty="routine")


# -- ex-fi-samples: N ≈ vol/h^k for the k-sphere (the book: S^5, h = 0.1) ---------------------
VOL_S5, H_TARGET, K_S5 = math.pi**3, 0.1, 5          # |S^5| = 2π³/Γ(3) = π³


def _sphere_volume(k: int) -> float:
    """|S^k| by the recursion |S^k| = 2π/(k - 1) |S^(k-2)| from |S^0| = 2 and |S^1| = 2π (not
    by the Gamma-function formula of the solution)."""
    vol = 2.0 if k % 2 == 0 else 2 * math.pi
    for j in range(2 + k % 2, k + 1, 2):
        vol *= 2 * math.pi / (j - 1)
    return vol


def _samples_key(v) -> Number:
    k, h = v.k, v.h
    vol = _sphere_volume(k)
    return Number(
        vol / h**k,
        rtol=2e-3,
        mistakes=[
            (vol / h ** (k + 1),
             f"k is the dimension of the manifold, {k} for S^{k}, not of the space R^{k + 1} "
             "it sits in", "dimension"),
            (vol / (k + 1) / h**k,
             f"that uses the volume of the ball that S^{k} bounds; the sphere's own "
             f"{k}-dimensional volume is 2π^((k+1)/2)/Γ((k+1)/2)", "the volume of the wrong set"),
            (vol / h**2,
             "that uses h = (vol/N)^{1/2}, the rule of the two-dimensional S²; for "
             f"S^{k} the exponent is 1/{k}", "dimension"),
            (4 * math.pi / h**2,
             f"that is the number of samples S² needs for h = {h:g}; the question is about "
             f"S^{k}", "dimension"),
        ],
        expects="a float (a number of samples)",
    )


# spheres S^3 to S^7 and spacings 0.05 to 0.2: from about 2.5e3 to 4e10 samples
register("ex-fi-samples", None, variant=Variant(
    {"k": Draw(K_S5, 3, 7, 1), "h": Draw(H_TARGET, 0.05, 0.2, 0.05)}, _samples_key,
), chapter=CHAPTER, kind="compute", minutes=15, difficulty="routine")


# -- ex-fi-above-one: multiple choice -------------------------------------------------------
RUBRIC_FI_ABOVE_ONE = [
    (3, "Meaning of ν_i > 1",
     "ν_i = 1 + t²λ_i(J), so ν_i > 1 means λ_i(J) > 0: log p_t is convex along that direction and"
     " the posterior is wider than the noise, Cov > t²."),
    (3, "Curvature case",
     "With the von Mises posterior of concentration ρR/t² the tangent variance is ≈ R t²/ρ, so "
     "ν_1 ≈ R/ρ > 1 on the concave side (ρ < R); it scatters by about ±2t/R."),
    (2, "Sparse-sample case",
     "A noisy point between two samples 2a apart (a > t) has a split posterior with variance up "
     "to a², so ν ≈ a²/t² > 1: chapter 4's symmetry breaking between individual samples."),
    (2, "What it does to the count",
     "Both effects act on tangent eigenvalues, not normal ones, and F is exact, not sampled. The "
     "same curvature effect lowers ν_tangent ≈ R/ρ below 1 on the convex side (ρ > R): that, "
     "not ν > 1, is what makes some points undercount inside the window (S³, torus)."),
]

register("ex-fi-above-one", Choice(
    "a",
    {
        "a": "λ_i(J) > 0: log p_t is convex along that direction, and the posterior variance "
             "along it exceeds the noise variance t²",
        "b": "a numerical artefact of the finite sample: the Fisher eigenvalues can never "
             "exceed 1/t²",
        "c": "the direction is normal to the manifold, where the curvature adds spread",
        "d": "the posterior along that direction is narrower than the noise, so the model is "
             "surer than the noise allows",
    },
    hints={
        "b": "the bound 1/t² holds only where J ⪯ 0 (Gaussian data, or any log-concave p_t), "
             "not in general; ν = t²λ(F) = Cov/t² exceeds 1 whenever the posterior is wider "
             "than the noise, and F is exact here, not sampled",
        "c": "both effects (the concave side of a curved manifold, a gap between two samples) "
             "raise tangent eigenvalues; the normal ones stay small inside the window",
        "d": "backwards: ν = Cov[x_0|x]/t² along the direction, so ν > 1 means a posterior "
             "wider than the noise",
    },
), chapter=CHAPTER, kind="explain",
         minutes=25, difficulty="challenging", rubric=RUBRIC_FI_ABOVE_ONE)


RUBRIC_FI_THRESHOLD = [
    (3, "Gaussian sigmoid",
     "For a Gaussian direction ν = ℓ/(ℓ + t²), a decreasing sigmoid in log t, equal to 1/2 where "
     "t² = ℓ: the direction counts exactly when its standard deviation exceeds the noise level "
     "(scale-free)."),
    (2, "Why the middle",
     "1/2 sits in the middle of the gap, least sensitive to finite-t corrections on both sides (1"
     " − ν ≈ t²/ℓ below, ν ≈ ℓ/t² above)."),
    (2, "Threshold 0.1",
     "Counts weak directions: curvature lifts a normal ν above 0.1 at a smaller t than above "
     "1/2, so the window closes at smaller t (the sphere's window slides to smaller t; only "
     "the circle's, which opens at the same t, narrows)."),
    (3, "Threshold 0.9",
     "Demands a posterior almost as wide as the noise, which discreteness (ν ≈ 1 − O(h²/t²)) and "
     "curvature scatter (±2t/R) spoil: the window shrinks or vanishes."),
]

# -- ex-fi-threshold: multiple choice -------------------------------------------------------
register("ex-fi-threshold", Choice(
    "a",
    {
        "a": "ν = ℓ/(ℓ + t²) crosses 1/2 where the data's standard deviation equals the noise "
             "level t, the midpoint of the sigmoid in log t",
        "b": "1/2 is the largest value a normal direction can reach, so no normal direction "
             "is ever counted",
        "c": "1/2 was tuned to maximise the per-point accuracy on the chapter's manifolds",
        "d": "with 1/2 the count is exact at every t for Gaussian data",
    },
    hints={
        "b": "above the window the curvature lifts normal eigenvalues above 1/2 (the circle "
             "starts to look like a disc); the threshold does not prevent that",
        "c": "nothing was tuned: the threshold comes from the Gaussian formula and is "
             "scale-free, the same for every data set",
        "d": "no threshold is: a Gaussian direction of variance ℓ drops below 1/2 once t² > ℓ, "
             "so at large t every direction stops counting",
    },
), chapter=CHAPTER, kind="explain", minutes=20, difficulty="standard", rubric=RUBRIC_FI_THRESHOLD)
