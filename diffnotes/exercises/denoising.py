"""Answer keys for the exercises of chapter 2, *Diffusion models and the score*
(``book/02_diffusion_and_score.md``). The references do not use the calls that the book's
solutions make: the VP constant is the closed form of the Gaussian lemma with the VP kernel
substituted, and the Kolmogorov-Smirnov statistics of the probability-flow sampler come from a
direct Heun loop with the mixture's score written out here (only the starting points are drawn
with :mod:`diffnotes`, as on the page).
"""

import functools

import sympy as sp
import torch

from ..selfcheck import Choice, Symbolic, Tensor, register

CHAPTER = "denoising"

# ---------------------------------------------------------------- ex-ds-derive: the VP constant

t, v = sp.symbols("t v", positive=True)


def _constant(alpha2, sigma2, var=v):
    """C = alpha^2 v / (sigma^2 (alpha^2 v + sigma^2)) for 1-D Gaussian data of variance v."""
    return alpha2 * var / (sigma2 * (alpha2 * var + sigma2))


_A2, _S2 = sp.exp(-2 * t), 1 - sp.exp(-2 * t)  # VP: alpha_t^2 and sigma_t^2

register(
    "ex-ds-derive",
    Symbolic(
        _constant(_A2, _S2),
        symbols=(t, v),
        variable="t",
        mistakes=[
            (_constant(1, t**2),
             "that is the EDM constant (alpha = 1, sigma = t); for the VP process "
             "alpha_t = exp(-t) and sigma_t^2 = 1 - exp(-2t)", "convention"),
            (_constant(_A2, _S2**2),
             "sigma_t^2 = 1 - exp(-2t) is already the noise variance: you squared it again",
             "square"),
            (_constant(sp.exp(-t), _S2),
             "the signal is alpha_t x_0, so its variance is alpha_t^2 v = exp(-2t) v, "
             "not exp(-t) v", "square"),
            (v * _S2 / (_A2 * v + _S2),
             "that is the posterior variance Var[x_0 | x_t]; the constant is alpha_t^2 / "
             "sigma_t^4 times it", "quantity"),
        ],
        expects="a sympy expression in t and v",
    ),
    chapter=CHAPTER,
    kind="derive", minutes=25, difficulty="standard",
)

# ---------------------------------------------------------------- ex-ds-compute: step counts

# The page's running example (2-D mixture, EDM) and sampling set-up. The page builds MIX from
# float32 literals (0.05 is then 0.0500000007...), so these are float32 values too: the
# samplers' end points depend on them at the 1e-5 level.
_MEANS = torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.0, 2.0]]).double()
_WEIGHTS = torch.tensor([0.3, 0.5, 0.2]).double()
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()  # normalised, as GaussianMixture does
_VARIANCES = torch.tensor([0.05, 0.2, 0.0]).double()
T_MAX, T_MIN, N_SAMPLES, SEED = 40.0, 0.02, 20_000, 2
STEPS = (10, 20, 50, 100)


def _x_start() -> torch.Tensor:
    """The page's starting points: exact samples of p_T, drawn as the page draws them."""
    from ..device import generator
    from ..mixtures import GaussianMixture
    from ..processes import EDM

    mix = GaussianMixture(_MEANS.float(), _WEIGHTS.float(), _VARIANCES.float())
    return mix.noised(T_MAX, EDM()).sample(N_SAMPLES, generator(SEED, device="cpu"))


def _score(x: torch.Tensor, tt: float) -> torch.Tensor:
    """Exact score of the EDM-noised mixture: sum_k r_k(x) (m_k - x) / (v_k + t^2)."""
    var = _VARIANCES + tt**2                                        # (K,)
    sq = ((x[:, None, :] - _MEANS[None]) ** 2).sum(-1)              # (n, K)
    logits = _WEIGHTS.log() - 0.5 * sq / var - 0.5 * x.shape[1] * var.log()
    resp = torch.softmax(logits, dim=1) / var                       # r_k / (v_k + t^2)
    return resp @ _MEANS - resp.sum(1, keepdim=True) * x


def _edm_grid(n_steps: int, rho: float = 7.0) -> list[float]:
    a, b = T_MAX ** (1 / rho), T_MIN ** (1 / rho)
    ts = [(a + i / n_steps * (b - a)) ** rho for i in range(n_steps + 1)]
    ts[0], ts[-1] = T_MAX, T_MIN
    return ts


def _heun(x: torch.Tensor, ts: list[float]) -> torch.Tensor:
    """Heun's method for dx/dt = -t s(x, t) (EDM probability flow) along the grid ts."""
    for t0, t1 in zip(ts[:-1], ts[1:], strict=True):
        h = t1 - t0
        k0 = -t0 * _score(x, t0)
        k1 = -t1 * _score(x + h * k0, t1)
        x = x + 0.5 * h * (k0 + k1)
    return x


def _ks_statistic(z: torch.Tensor, cdf) -> float:
    """Two-sided Kolmogorov-Smirnov statistic of the sample z against the CDF cdf."""
    z, _ = torch.sort(z)
    n = z.numel()
    f = cdf(z)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - f, f - (i - 1) / n).max())


def _projected_cdf(tt: float):
    """CDF of the first coordinate of the EDM-noised mixture at noise level tt."""
    sd = (_VARIANCES + tt**2).sqrt()

    def cdf(z):
        if tt == 0:  # the point mass has no spread: a step
            parts = [torch.special.ndtr((z - m) / s) if s > 0 else (z >= m).double()
                     for m, s in zip(_MEANS[:, 0].tolist(), sd.tolist(), strict=True)]
            return sum(w * c for w, c in zip(_WEIGHTS.tolist(), parts, strict=True))
        return (_WEIGHTS * torch.special.ndtr((z[:, None] - _MEANS[:, 0]) / sd)).sum(1)

    return cdf


@functools.cache
def _ode_end_points() -> tuple[torch.Tensor, ...]:
    x0 = _x_start()
    return tuple(_heun(x0, _edm_grid(n)) for n in STEPS)


def _ode_statistics(against: float = T_MIN) -> torch.Tensor:
    """KS statistics of the first coordinate of the ODE's end points against p_against."""
    cdf = _projected_cdf(against)
    return torch.tensor([_ks_statistic(x[:, 0], cdf) for x in _ode_end_points()],
                        dtype=torch.float64)


def _sde_statistics() -> torch.Tensor:
    """The reverse SDE's statistics (seed 8 for every step count, as in the exercise)."""
    from ..device import generator
    from ..processes import EDM
    from ..samplers import reverse_sde, time_grid

    x0, cdf, edm = _x_start(), _projected_cdf(T_MIN), EDM()
    return torch.tensor([_ks_statistic(reverse_sde(_score, edm, x0,
                                                   time_grid(T_MAX, T_MIN, n, spacing="edm"),
                                                   generator(8, device="cpu"),
                                                   return_trajectory=False)[:, 0], cdf)
                         for n in STEPS], dtype=torch.float64)


def _p_values() -> torch.Tensor:
    from scipy import stats

    return torch.tensor([stats.kstwo.sf(d, N_SAMPLES) for d in _ode_statistics().tolist()],
                        dtype=torch.float64)


register(
    "ex-ds-compute",
    Tensor(
        _ode_statistics,
        rtol=1e-6,
        atol=1e-9,
        mistakes=[
            (lambda: _ode_statistics(against=0.0),
             "you compared with the data law p_0; the samplers stop at t_min = 0.02, so compare "
             "with p_(t_min) (`target` on the page)",
             "the comparison is made with the wrong reference distribution"),
            (_sde_statistics,
             "those are the reverse SDE's statistics; give the probability-flow ODE's",
             "the statistics of another sampler than the one asked for"),
            (_p_values,
             "those look like p-values; give the KS statistic D (`result.statistic`)",
             "another statistic of the test than the one asked for"),
        ],
        expects=("a tensor of shape (4,): the KS statistic D of the probability-flow ODE at "
                 f"{', '.join(map(str, STEPS))} steps"),
    ),
    chapter=CHAPTER,
    kind="compute", minutes=30, difficulty="standard",
)

# ---------------------------------------------------------------- ex-ds-explain: points vs blobs

RUBRIC_DS_EXPLAIN = [
    (3, "Why d/t² for data with a density",
     "Uses C = E tr Cov[x_0|x_t]/t^4: at small noise the posterior is the kernel reweighted by a "
     "nearly constant prior, covariance ≈ t² I, so C ≈ d/t², the upper bound of lem-ds-bounds "
     "(the Gaussian formula gives 1/t² per direction)."),
    (3, "Finitely many points",
     "The posterior concentrates on the nearest point with exponentially small competitors, so tr"
     " Cov and C tend to zero."),
    (2, "Zero loss means memorisation",
     "A network reaching DSM loss near zero at small t denoises by snapping to the training "
     "points: it has memorised them."),
    (2, "Generalisation",
     "A model that generalises to a continuous distribution keeps paying about d/t²; the page's "
     "mixture shows both behaviours (point mass vs blobs)."),
]

register(
    "ex-ds-explain",
    Choice(
        "b",
        {
            "a": "C(t) still grows like d/t^2, as for any data, so no network can reach a DSM "
                 "loss near zero at small t.",
            "b": "C(t) tends to zero, so a network can reach a DSM loss near zero at small t; "
                 "one that does denoises by snapping to the training points: it has memorised "
                 "them.",
            "c": "C(t) grows even faster than d/t^2, because a point mass has zero width, so "
                 "training is dominated by the smallest noise levels.",
            "d": "C(t) is the same as for Gaussian data with the same covariance, because the "
                 "constant depends only on the covariance of the data.",
        },
        hints={
            "a": "d/t^2 comes from a posterior of width about t in every direction, which "
                 "needs data with a density; near a point the posterior snaps onto that point",
            "c": "C is E tr Cov[x_0 | x_t] / t^4, and for well-separated points the posterior "
                 "puts almost all its weight on one point: its covariance vanishes",
            "d": "only the bound alpha^2 tr Cov[x_0] / sigma^4 depends on the covariance alone; "
                 "the Gaussian formula is a stand-in that the mixture leaves at small t",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=20, difficulty="standard", rubric=RUBRIC_DS_EXPLAIN,
)

# ---------------------------------------------------------------- ex-ds-flow: deterministic

RUBRIC_DS_FLOW = [
    (3, "Source of randomness",
     "All randomness is in the starting point x_T ~ p_T; the ODE is a deterministic map pushing "
     "p_T forward to p_tmin (thm-ds-reverse)."),
    (2, "Proportions of the modes",
     "The proportions are fixed by how much of p_T lies in each mode's basin of attraction."),
    (3, "Paths never meet",
     "The velocity -t s(x, t) is smooth in x, so solutions are unique (Picard–Lindelöf): two "
     "paths that met would coincide for all times; the map x_T → x_tmin is one to one."),
    (2, "Contrast with the SDE",
     "The SDE keeps injecting noise, so its paths can cross and switch mode late; the ODE from "
     "the same start gives the same sample bit for bit."),
]

register(
    "ex-ds-flow",
    Choice(
        "b",
        {
            "a": "From rounding errors in the Heun steps, which the ODE amplifies into the "
                 "spread of the samples.",
            "b": "Entirely from the starting point x_T ~ p_T; the ODE pushes p_T forward to "
                 "p_(t_min), and since its velocity is smooth, paths are unique and never meet.",
            "c": "From the score, which is estimated from random samples of the data.",
            "d": "From noise the ODE adds at each step, smaller than the SDE's.",
        },
        hints={
            "a": "rounding is far too small to matter, and the same x_T always gives the same "
                 "sample: all the spread was already in the starting points",
            "c": "on this page the score is the mixture's exact closed form; nothing random "
                 "enters it",
            "d": "the probability-flow ODE adds no noise at all: it is deterministic",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=15, difficulty="standard", rubric=RUBRIC_DS_FLOW,
)
