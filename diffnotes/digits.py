r"""Chapter 9's home module: real data, the handwritten digits of scikit-learn.

The 1797 images of :func:`sklearn.datasets.load_digits` (8×8 pixels, grey levels 0-16, ten
classes) are shipped inside scikit-learn: nothing is downloaded. The book normalises them once,

.. math:: y_j = (\text{pixels}_j - \bar{\text{pixels}})/\rho, \qquad
    \rho^2 = \frac{1}{P d}\sum_{j,i} (\text{pixels}_{ji} - \bar{\text{pixels}}_i)^2,

so the data are centred and :math:`\operatorname{tr}\operatorname{Cov} = d = 64` (an average
variance of one per pixel, the scale the VP process assumes; one common factor keeps distances
between images proportional to pixel distances). The **empirical distribution**
:math:`p_0 = \frac1P\sum_j \delta_{y_j}` is a delta mixture, so every closed form of the earlier
chapters applies to it exactly: its posterior over the images given :math:`x_t`,

.. math:: w_j(x) = \operatorname{softmax}_j\Big(\frac{\alpha_t\, x\cdot y_j}{\sigma_t^2}
    - \frac{\alpha_t^2\lVert y_j\rVert^2}{2\sigma_t^2}\Big),

its pathwise entropy :math:`h = -\sum_j w_j\log w_j`, its class posterior
:math:`r_c = \sum_{j\in c} w_j`, the concentration :math:`Q = \sum_j w_j^2` and the posterior
variance that gives the entropy rate (:func:`posterior_statistics`).

Also here: the collapse (memorisation) time of Biroli et al. (2024) from their entropy
criterion (:func:`collapse_time`, :func:`collapse_time_spectrum`), reverse paths driven by the
exact empirical score that record what the posterior knows along the way
(:func:`exact_reverse_paths`), nearest-neighbour distance ratios
(:func:`nearest_neighbour_ratio`), the decision tree of the class means (:func:`class_tree`), a
noise-conditional classifier and its seeded training loop (:class:`NoisyClassifier`,
:func:`train_classifier`), and :func:`crossing_time`, the time at which a measured curve crosses
a level, with its error bar. The chapter's denoiser is :class:`DigitDenoiser`, a preconditioned
MLP trained by :func:`train_digit_denoiser`; its controls are the same network untrained and the
linear (Wiener) denoiser of a Gaussian with the data's covariance (:func:`wiener_score`), and
:func:`split_digits` holds images out to measure generalisation on.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ._validate import as_points, as_time, check_positive_int, check_process
from .checks import MCEstimate
from .fixed_points import branching_times, follow_fixed_points
from .information import immse_factor
from .mixtures import GaussianMixture
from .processes import ForwardProcess
from .samplers import reverse_sde

__all__ = [
    "Digits",
    "DigitDenoiser",
    "NoisyClassifier",
    "PosteriorStats",
    "ReversePaths",
    "class_tree",
    "collapse_time",
    "collapse_time_spectrum",
    "crossing_time",
    "exact_reverse_paths",
    "paired_crossing_difference",
    "load_digits",
    "nearest_neighbour_ratio",
    "posterior_statistics",
    "split_digits",
    "train_classifier",
    "train_digit_denoiser",
    "wiener_score",
]


# -- the data ------------------------------------------------------------------------------------
class Digits(NamedTuple):
    r"""The normalised digits: ``images`` ``(P, d)`` float64, ``labels`` ``(P,)`` int64 in
    ``0..9``, and the pixel ``mean`` ``(d,)`` and ``scale`` :math:`\rho` that map them back to
    grey levels, ``pixels = scale * images + mean``."""

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor
    scale: float

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1

    def mixture(self) -> GaussianMixture:
        r"""The empirical distribution :math:`\frac1P\sum_j\delta_{y_j}`, a delta mixture."""
        return GaussianMixture.delta(self.images)

    def class_means(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The class means ``(K, d)`` and the class frequencies ``(K,)``."""
        onehot = torch.nn.functional.one_hot(self.labels, self.n_classes).to(self.images)
        counts = onehot.sum(0)
        return (onehot.T @ self.images) / counts[:, None], counts / counts.sum()

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        r"""Rows of normalised images back to grey levels, shape ``(n, 8, 8)``."""
        x = torch.as_tensor(x)
        side = math.isqrt(self.images.shape[1])
        return (self.scale * x.to(self.mean) + self.mean).reshape(-1, side, side)


def load_digits() -> Digits:
    r"""The 1797 handwritten digits of scikit-learn, centred and scaled so that
    :math:`\operatorname{tr}\operatorname{Cov} = d` (the module docstring gives the formula).

    Raises ``ImportError`` with an install hint when scikit-learn is missing.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError as err:  # pragma: no cover - scikit-learn is a dependency
        raise ImportError("chapter 9 needs scikit-learn for its data (the digits ship inside "
                          "the package, nothing is downloaded): pip install scikit-learn"
                          ) from err
    pixels, labels = _sk_load(return_X_y=True)
    x = torch.as_tensor(pixels, dtype=torch.float64)
    mean = x.mean(0)
    centred = x - mean
    scale = float(centred.pow(2).mean().sqrt())
    return Digits(centred / scale, torch.as_tensor(labels, dtype=torch.long), mean, scale)


def split_digits(digits: Digits, n_test: int, generator: torch.Generator | None = None
                 ) -> tuple[Digits, Digits]:
    r"""Hold ``n_test`` images out: a random split of ``digits`` into ``(train, test)``.

    The rows are drawn by a permutation from ``generator`` (CPU); both parts keep the
    normalisation (``mean``, ``scale``) of the whole set, so their images are directly
    comparable (the two shared numbers and the mean image are all the test set lends the
    training). ``train`` holds ``P - n_test`` rows, ``test`` ``n_test``, disjoint.
    """
    P = digits.images.shape[0]
    check_positive_int("n_test", n_test)
    if n_test >= P - 1:
        raise ValueError(f"n_test must leave at least two training images; got {n_test} of {P}")
    perm = torch.randperm(P, generator=generator)
    test, train = perm[:n_test].sort().values, perm[n_test:].sort().values
    return (digits._replace(images=digits.images[train], labels=digits.labels[train]),
            digits._replace(images=digits.images[test], labels=digits.labels[test]))


def wiener_score(x, t: float, process: ForwardProcess, cov, mean=None) -> torch.Tensor:
    r"""The score of the Gaussian :math:`\mathcal N(m, \Sigma)` noised to time ``t``: the linear
    (Wiener) control of a trained denoiser,

    .. math:: s(x) = -(\alpha_t^2\Sigma + \sigma_t^2 I)^{-1}(x - \alpha_t m),

    whose posterior mean :math:`m + \alpha_t\Sigma(\alpha_t^2\Sigma + \sigma_t^2 I)^{-1}
    (x - \alpha_t m)` is the best denoiser that is linear in :math:`x` for any data with that
    mean and covariance. ``x`` ``(n, d)``, ``cov`` ``(d, d)`` symmetric positive semi-definite,
    ``mean`` ``(d,)`` (default 0), one scalar time; returns ``(n, d)`` in ``x``'s dtype.
    """
    check_process(process)
    x = as_points("x", x)
    d = x.shape[1]
    cov = torch.as_tensor(cov).to(x)
    if cov.shape != (d, d):
        raise ValueError(f"cov must have shape ({d}, {d}); got {tuple(cov.shape)}")
    m = torch.zeros(d, dtype=x.dtype, device=x.device) if mean is None else \
        torch.as_tensor(mean).to(x).reshape(-1)
    if m.shape != (d,):
        raise ValueError(f"mean must have shape ({d},); got {tuple(m.shape)}")
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    a, s = float(process.alpha(tt)), float(process.sigma(tt))
    K = a**2 * cov + s**2 * torch.eye(d, dtype=x.dtype, device=x.device)
    return -torch.linalg.solve(K, (x - a * m).T).T


# -- the exact posterior of the empirical distribution ------------------------------------------
class PosteriorStats(NamedTuple):
    r"""What the exact posterior over the images says about each row of ``x``, all ``(n,)``
    except ``class_posterior`` ``(n, K)`` and ``weights`` (``None`` unless asked, ``(n, P)``).

    ``entropy``: :math:`h = H[p(x_0\mid x_t)]` over the images (nats); ``class_entropy``:
    :math:`H_C = H[p(c\mid x_t)]`; ``concentration``: :math:`Q = \sum_j w_j^2`;
    ``trace_cov``: :math:`\operatorname{tr}\operatorname{Cov}[x_0\mid x_t]`;
    ``rate``: :math:`-\tfrac12\dot\lambda_t\operatorname{tr}\operatorname{Cov}`, whose mean is
    the entropy rate :math:`\dot H(t)` (chapter 3); ``score``: :math:`\nabla\log p_t` ``(n, d)``.
    """

    entropy: torch.Tensor
    class_entropy: torch.Tensor
    class_posterior: torch.Tensor
    concentration: torch.Tensor
    trace_cov: torch.Tensor
    rate: torch.Tensor
    score: torch.Tensor
    weights: torch.Tensor | None


def _entropy(logp: torch.Tensor) -> torch.Tensor:
    return -(logp.exp() * logp.clamp_min(-1e300)).sum(-1)


def posterior_statistics(digits: Digits, x, t: float, process: ForwardProcess, *,
                         keep_weights: bool = False) -> PosteriorStats:
    r"""The exact posterior of the empirical distribution at the rows of ``x`` ``(n, d)``, one
    scalar time ``t``: :class:`PosteriorStats`.

    One ``(n, P)`` matrix product gives the log-weights (the module docstring's formula; the
    term :math:`\lVert x\rVert^2` is common to all :math:`j` and drops out), ``log_softmax``
    the weights; everything else is a sum over them. Float64 in, float64 out; the device is
    ``x``'s.
    """
    check_process(process)
    x = as_points("x", x, digits.images.shape[1])
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    a, s = float(process.alpha(tt)), float(process.sigma(tt))
    y = digits.images.to(x)
    logits = (x @ y.T).mul_(a / s**2).sub_((a**2 / (2 * s**2)) * (y**2).sum(1))
    logw = torch.log_softmax(logits, dim=1)
    w = logw.exp()
    onehot = torch.nn.functional.one_hot(digits.labels.to(x.device), digits.n_classes).to(x)
    r = w @ onehot
    mean = w @ y
    trace_cov = (w @ (y**2).sum(1) - (mean**2).sum(1)).clamp_min(0.0)
    return PosteriorStats(
        entropy=_entropy(logw),
        class_entropy=-torch.xlogy(r, r).sum(1),
        class_posterior=r,
        concentration=(w**2).sum(1),
        trace_cov=trace_cov,
        rate=float(immse_factor(tt, process)) * trace_cov,
        score=(a * mean - x) / s**2,
        weights=w if keep_weights else None,
    )


# -- reverse paths driven by the exact empirical score -------------------------------------------
class ReversePaths(NamedTuple):
    r"""Reverse-SDE paths with the exact empirical score: ``times`` ``(S+1,)`` (decreasing),
    ``states`` ``(S+1, n, d)``, ``class_posterior`` ``(S+1, n, K)`` and ``concentration``
    ``(S+1, n)`` at every state, and ``denoised`` ``(n, d)``, the posterior mean
    :math:`E[x_0\mid x_{t_S}]` at the last state (the usual final denoising step)."""

    times: torch.Tensor
    states: torch.Tensor
    class_posterior: torch.Tensor
    concentration: torch.Tensor
    denoised: torch.Tensor


def exact_reverse_paths(digits: Digits, process: ForwardProcess, x_start, times,
                        generator: torch.Generator | None = None) -> ReversePaths:
    r"""Euler-Maruyama paths of the reverse SDE (:func:`~diffnotes.samplers.reverse_sde`) with
    the exact score of the empirical distribution, recording the class posterior and the
    concentration :math:`Q` at every state from the same posterior that gives the score.

    Parameters
    ----------
    x_start : ``(n, d)`` samples of :math:`p_{t_0}`, ``t_0 = times[0]``.
    times : decreasing grid (:func:`~diffnotes.samplers.time_grid`).
    generator : the noise of the reverse SDE.
    """
    record: dict[float, PosteriorStats] = {}

    def score(x, t):
        st = posterior_statistics(digits, x, float(t), process)
        record[float(t)] = st
        return st.score

    states = reverse_sde(score, process, x_start, times, generator)
    ts = torch.as_tensor(times, dtype=torch.float64)
    last = posterior_statistics(digits, states[-1], float(ts[-1]), process)
    stats = [record[float(t)] for t in ts[:-1]] + [last]
    a, s = float(process.alpha(ts[-1])), float(process.sigma(ts[-1]))
    denoised = (states[-1] + s**2 * last.score) / a           # Tweedie: E[x0 | x_t]
    return ReversePaths(ts, states, torch.stack([st.class_posterior for st in stats]),
                        torch.stack([st.concentration for st in stats]), denoised)


def nearest_neighbour_ratio(x, images) -> torch.Tensor:
    r"""The nearest-neighbour distance ratio :math:`\lVert x - y_{(1)}\rVert/\lVert x -
    y_{(2)}\rVert` of each row of ``x`` ``(n, d)`` to the rows of ``images`` ``(P, d)``
    (:math:`y_{(1)}, y_{(2)}` the nearest and second-nearest), shape ``(n,)``, in ``[0, 1]``.

    A copy of a training image has ratio near 0; the book calls a sample a copy when the ratio
    is below 1/3 (Yoon et al. 2023's criterion).
    """
    x = as_points("x", x)
    y = as_points("images", images, x.shape[1]).to(x)
    if y.shape[0] < 2:
        raise ValueError("images must hold at least two rows")
    d2 = torch.cdist(x, y).topk(2, dim=1, largest=False).values
    return d2[:, 0] / d2[:, 1].clamp_min(1e-300)


# -- the collapse time ---------------------------------------------------------------------------
def collapse_time(P, d, s2: float = 1.0):
    r"""The collapse (memorisation) time of the VP process for ``P`` points drawn from
    :math:`\mathcal N(0, s^2 I_d)`, from the entropy criterion of Biroli et al. (2024):

    .. math:: t_C = \tfrac12\log\Big(1 + \frac{s^2}{P^{2/d} - 1}\Big).

    It solves :math:`\log P = \frac d2\log\big(1 + s^2 e^{-2t}/\Delta_t\big)`,
    :math:`\Delta_t = 1 - e^{-2t}`: the information the noisy state carries about a fresh
    Gaussian sample equals the :math:`\log P` nats needed to name one training point
    (:func:`collapse_time_spectrum` for any covariance spectrum). ``P > 1`` and ``d`` may be
    floats or tensors (broadcast); float64.
    """
    P = torch.as_tensor(P, dtype=torch.float64)
    d = torch.as_tensor(d, dtype=torch.float64)
    if bool((P <= 1).any()) or not bool(torch.isfinite(P).all()):
        raise ValueError("P must be finite and > 1 (one point never collapses)")
    if bool((d <= 0).any()) or not bool(torch.isfinite(d).all()):
        raise ValueError("d must be finite and positive")
    if not (isinstance(s2, int | float) and s2 > 0 and math.isfinite(s2)):
        raise ValueError(f"s2 must be a finite positive variance; got {s2!r}")
    return 0.5 * torch.log1p(s2 / torch.expm1(2 * torch.log(P) / d))


def collapse_time_spectrum(P: float, eigenvalues, *, tol: float = 1e-12) -> float:
    r"""The entropy criterion of :func:`collapse_time` for Gaussian data with covariance
    eigenvalues :math:`\lambda_i`: the :math:`t` at which

    .. math:: \tfrac12\sum_i \log\Big(1 + \frac{\lambda_i}{e^{2t} - 1}\Big) = \log P ,

    the mutual information :math:`I(x_0; x_t)` of the Gaussian with that spectrum. The left side
    falls from :math:`+\infty` to 0 as :math:`t` grows, so the root is unique; bisection in
    :math:`\log t` to relative precision ``tol``. Equal eigenvalues :math:`s^2` give
    :func:`collapse_time`.
    """
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if lam.numel() == 0 or bool((lam < 0).any()) or not bool(torch.isfinite(lam).all()):
        raise ValueError("eigenvalues must be a non-empty set of finite non-negative numbers")
    if not (isinstance(P, int | float) and P > 1 and math.isfinite(P)):
        raise ValueError(f"P must be a finite number > 1; got {P!r}")
    target = math.log(P)

    def info(t: float) -> float:
        return 0.5 * float(torch.log1p(lam / math.expm1(2 * t)).sum())

    lo, hi = 1e-12, 1.0
    while info(hi) > target:
        hi *= 2.0
        if hi > 1e6:
            raise ValueError("no collapse time below 1e6")
    if info(lo) < target:
        raise ValueError("the spectrum carries less than log P nats at t = 1e-12")
    while hi / lo - 1 > tol:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if info(mid) > target else (lo, mid)
    return math.sqrt(lo * hi)


# -- reading times off measured curves -----------------------------------------------------------
def crossing_time(times, values, stderr, level: float, *, correlated: bool = False
                  ) -> MCEstimate:
    r"""The time at which a measured monotone-in-places curve crosses ``level``, with its error.

    Takes the first crossing along ``times`` (in the order given), interpolates linearly in
    :math:`\log t` between the two bracketing grid points, and turns the standard errors of the
    two values into one of the time by the delta method,
    :math:`\operatorname{se}(\hat t) = \hat t\,|\partial\log t/\partial v|\,\operatorname{se}(v)`
    with the interpolation's weights (the grid's discretisation is not in it: use a grid fine
    enough that the curve is straight between points). ``n`` of the result is 0.

    The two bracketing values are combined as independent,
    :math:`\sqrt{(g_0 s_0)^2 + (g_1 s_1)^2}`, unless ``correlated=True``: then as the worst
    case over every non-negative correlation, :math:`|g_0 s_0| + |g_1 s_1|` (up to
    :math:`\sqrt2` larger). Use it for curves measured on common random numbers (the same
    paths moved through every time), whose neighbouring errors are positively correlated.

    Raises ``ValueError`` when the curve does not cross ``level``.
    """
    ts = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    se = torch.as_tensor(stderr, dtype=torch.float64).reshape(-1)
    if not (ts.shape == v.shape == se.shape) or ts.numel() < 2:
        raise ValueError("times, values and stderr must be 1-D of one length >= 2")
    if bool((ts <= 0).any()):
        raise ValueError("times must be positive")
    above = v >= level
    flips = torch.nonzero(above[1:] != above[:-1])
    if flips.numel() == 0:
        raise ValueError(f"the curve does not cross level {level}")
    i = int(flips[0])
    l0, l1 = math.log(float(ts[i])), math.log(float(ts[i + 1]))
    v0, v1 = float(v[i]), float(v[i + 1])
    f = (level - v0) / (v1 - v0)
    t_hat = math.exp(l0 + f * (l1 - l0))
    # d(log t)/dv0 = -(l1 - l0)(1 - f)/(v1 - v0),  d(log t)/dv1 = -(l1 - l0) f/(v1 - v0)
    g0, g1 = (l1 - l0) * (1 - f) / (v1 - v0), (l1 - l0) * f / (v1 - v0)
    e0, e1 = abs(g0 * float(se[i])), abs(g1 * float(se[i + 1]))
    err = t_hat * ((e0 + e1) if correlated else math.hypot(e0, e1))
    return MCEstimate(t_hat, err, 0)


def paired_crossing_difference(times, a, b, level: float, *, n_boot: int = 1000,
                               generator: torch.Generator | None = None) -> MCEstimate:
    r"""The difference :math:`\hat t_a - \hat t_b` of the times at which two curves measured
    on the same samples cross ``level``, with a paired bootstrap error.

    ``a`` and ``b`` are per-sample values ``(T, n)`` at the ``T`` ``times``: column ``i`` of
    both belongs to the same sample (the same noisy state, or the same image at every time).
    Each curve is the mean over its columns, and its crossing is :func:`crossing_time` of that
    mean. The standard error is the spread of the difference over ``n_boot`` resamplings of the
    columns, the same resampled columns for both curves and every time, so the positive
    correlation of the two curves is kept (adding the two errors as independent overstates it).
    ``n`` of the result is ``n_boot``. Raises ``ValueError`` on mismatched shapes or when a
    curve does not cross ``level``.
    """
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    ts = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] != ts.numel() or a.shape[1] < 2:
        raise ValueError("a and b must be (T, n) of one shape with T = len(times), n >= 2")
    if n_boot < 2:
        raise ValueError("n_boot must be at least 2")
    ones = torch.ones_like(ts)

    def diff(cols):
        return (crossing_time(ts, a[:, cols].mean(1), ones, level).value
                - crossing_time(ts, b[:, cols].mean(1), ones, level).value)

    n = a.shape[1]
    boot = torch.tensor([diff(torch.randint(0, n, (n,), generator=generator))
                         for _ in range(n_boot)], dtype=torch.float64)
    return MCEstimate(diff(torch.arange(n)), float(boot.std()), n_boot)


# -- the decision tree of the class means --------------------------------------------------------
def class_tree(digits: Digits, process: ForwardProcess, times) -> torch.Tensor:
    r"""Chapter 4's decision tree built from the class means: the branching times
    :math:`t_{cc'}` ``(K, K)`` of the modes of the delta mixture that puts the class
    frequencies on the class means, followed upwards from :math:`\alpha(t_0)m_c` over the
    increasing grid ``times`` (:func:`~diffnotes.fixed_points.follow_fixed_points`,
    :func:`~diffnotes.fixed_points.branching_times`). Resolved to the grid."""
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.shape[0] < 2 or not bool((times[1:] > times[:-1]).all()):
        raise ValueError("times must be an increasing 1-D grid")
    means, freqs = digits.class_means()
    mix = GaussianMixture.delta(means, freqs)
    paths = follow_fixed_points(mix, process.alpha(times[0]) * means, times, process)
    return branching_times(paths)


# -- trained networks ---------------------------------------------------------------------------
def _embed(process: ForwardProcess, x: torch.Tensor, t, freqs: torch.Tensor, data_var: float):
    """Scaled input x / sqrt(alpha² v + sigma²) and a Fourier embedding of log(sigma/alpha)."""
    tt = as_time("t", t, like=x, n=x.shape[0]).expand(x.shape[0])
    a, s = process.alpha(tt), process.sigma(tt)
    phase = torch.log(s / a)[:, None] * freqs
    h = torch.cat([x * torch.rsqrt(a**2 * data_var + s**2)[:, None], torch.sin(phase),
                   torch.cos(phase)], dim=1)
    return h, a, s


def _mlp(sizes: list[int], generator, dtype, last_scale: float) -> nn.ModuleList:
    """Linear layers with weights uniform in ±sqrt(3/fan_in) drawn from ``generator``."""
    dev = generator.device if generator is not None else torch.device("cpu")
    layers = nn.ModuleList()
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        lin = nn.Linear(fan_in, fan_out, device=dev, dtype=dtype)
        bound = (last_scale if i == len(sizes) - 2 else 1.0) * math.sqrt(3.0 / fan_in)
        with torch.no_grad():
            lin.weight.copy_((2 * torch.rand(fan_out, fan_in, generator=generator, device=dev,
                                             dtype=dtype) - 1) * bound)
            lin.bias.zero_()
        layers.append(lin)
    return layers


def _forward(layers: nn.ModuleList, h: torch.Tensor) -> torch.Tensor:
    for lin in layers[:-1]:
        h = torch.nn.functional.silu(lin(h))
    return layers[-1](h)


class DigitDenoiser(nn.Module):
    r"""A small MLP denoiser with the preconditioning of Karras et al. (2022), written for any
    Gaussian kernel: with the noise-to-signal ratio :math:`r = \sigma_t/\alpha_t` and the data
    variance per coordinate :math:`v`,

    .. math:: \hat x_0(x, t) = \frac{v}{r^2 + v}\,\frac{x}{\alpha_t}
        + \frac{r\sqrt v}{\sqrt{r^2 + v}}\,F_\theta\Big(\frac{x}{\sqrt{\alpha_t^2 v
        + \sigma_t^2}}, \log r\Big),

    so the network :math:`F_\theta` only learns a correction of unit scale at every noise
    level (a plain noise predictor must learn the identity map at large noise). The model score
    is Tweedie's :math:`s_\theta = (\alpha_t\hat x_0 - x)/\sigma_t^2` (chapter 2).
    """

    def __init__(self, d: int, process: ForwardProcess, *, hidden: int = 128, n_freq: int = 8,
                 data_var: float = 1.0, generator: torch.Generator | None = None,
                 dtype=torch.float32):
        super().__init__()
        for name, val in (("d", d), ("hidden", hidden), ("n_freq", n_freq)):
            check_positive_int(name, val)
        check_process(process)
        if not data_var > 0:
            raise ValueError(f"data_var must be positive; got {data_var}")
        self.process, self.data_var = process, float(data_var)
        dev = generator.device if generator is not None else torch.device("cpu")
        self.register_buffer("freqs", torch.arange(1, n_freq + 1, dtype=dtype, device=dev) * 0.5)
        self.layers = _mlp([d + 2 * n_freq, hidden, hidden, hidden, d], generator, dtype, 0.1)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""The denoised estimate :math:`\hat x_0(x, t)`, shape ``(n, d)``."""
        h, a, s = _embed(self.process, x, t, self.freqs, self.data_var)
        r2, v = (s / a) ** 2, self.data_var
        c_skip = (v / (r2 + v))[:, None]
        c_out = torch.sqrt(r2 * v / (r2 + v))[:, None]
        return c_skip * x / a[:, None] + c_out * _forward(self.layers, h)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Model score :math:`(\alpha_t\hat x_0 - x)/\sigma_t^2`, computed in the parameters'
        dtype without gradients and returned in ``x``'s."""
        p = self.layers[0].weight
        xp = x.to(p)
        tt = as_time("t", t, like=xp, n=x.shape[0]).expand(x.shape[0])
        with torch.no_grad():
            x0 = self(xp, tt)
        a, s = self.process.alpha(tt)[:, None], self.process.sigma(tt)[:, None]
        return ((a * x0 - xp) / s**2).to(x)


def _train(model: nn.Module, loss_fn, steps: int, lr: float, num_threads: int | None):
    """Adam with cosine decay over ``steps``; ``loss_fn(i)`` gives step i's loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = torch.empty(steps, dtype=torch.float64)
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(check_positive_int("num_threads", num_threads))
    try:
        for i in range(steps):
            loss = loss_fn(i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses[i] = loss.detach().double().cpu()
    finally:
        torch.set_num_threads(previous)
    model.eval()
    return losses


def _check_training(process, steps, batch, t_min, t_max):
    check_process(process)
    check_positive_int("steps", steps)
    check_positive_int("batch", batch)
    if not 0 < t_min < t_max or not math.isfinite(t_max):
        raise ValueError(f"need 0 < t_min < t_max < inf; got t_min={t_min}, t_max={t_max}")


def train_digit_denoiser(digits: Digits, process: ForwardProcess, *, t_min: float,
                         t_max: float, steps: int = 1500, batch: int = 256, lr: float = 2e-3,
                         hidden: int = 128, generator: torch.Generator | None = None,
                         dtype=torch.float32, num_threads: int | None = 1):
    r"""Train a :class:`DigitDenoiser` on the digits by denoising score matching.

    Each step draws ``batch`` images, times log-uniform on ``[t_min, t_max]`` and
    :math:`x_t = \alpha_t y + \sigma_t\varepsilon`, and minimises the preconditioned loss
    :math:`E\lVert\hat x_0 - y\rVert^2/c_{\rm out}^2` (Karras et al.'s weighting) with Adam and
    a cosine learning-rate decay. Every weighting has the same minimiser, the exact posterior
    mean of the empirical distribution, that is, its exact score. Seeded by ``generator``
    (whose device is the training's); ``num_threads`` as in
    :func:`~diffnotes.information.train_denoiser`.

    Returns
    -------
    (model, losses) : the trained model (eval mode) and the per-step losses ``(steps,)``.
    """
    _check_training(process, steps, batch, t_min, t_max)
    model = DigitDenoiser(digits.images.shape[1], process, hidden=hidden, generator=generator,
                          dtype=dtype)
    dev = model.freqs.device
    images = digits.images.to(device=dev, dtype=dtype)
    log_lo, log_hi = math.log(t_min), math.log(t_max)

    def loss_fn(_):
        idx = torch.randint(0, images.shape[0], (batch,), generator=generator, device=dev)
        t = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(batch, generator=generator,
                                                             device=dev, dtype=dtype))
        xt, _ = process.perturb(images[idx], t, generator)
        r2 = (process.sigma(t) / process.alpha(t)) ** 2
        weight = (r2 + model.data_var) / (r2 * model.data_var)     # 1/c_out²
        return (weight * ((model(xt, t) - images[idx]) ** 2).sum(1)).mean()

    return model, _train(model, loss_fn, steps, lr, num_threads)


# -- a noise-conditional classifier --------------------------------------------------------------
class NoisyClassifier(nn.Module):
    r"""A small MLP :math:`q_\theta(c\mid x_t, t)`: the input :math:`x/\sqrt{\alpha_t^2 +
    \sigma_t^2}` (data of unit variance per coordinate) and a Fourier embedding of
    :math:`\log(\sigma_t/\alpha_t)`, two hidden SiLU layers, ``n_classes`` logits. Parameters
    are drawn from ``generator`` (never the global seed)."""

    def __init__(self, d: int, n_classes: int, process: ForwardProcess, *, hidden: int = 128,
                 n_freq: int = 8, generator: torch.Generator | None = None,
                 dtype=torch.float32):
        super().__init__()
        for name, val in (("d", d), ("n_classes", n_classes), ("hidden", hidden),
                          ("n_freq", n_freq)):
            check_positive_int(name, val)
        check_process(process)
        self.process = process
        dev = generator.device if generator is not None else torch.device("cpu")
        self.register_buffer("freqs", torch.arange(1, n_freq + 1, dtype=dtype, device=dev) * 0.5)
        self.layers = _mlp([d + 2 * n_freq, hidden, hidden, n_classes], generator, dtype, 1.0)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Class logits ``(n, K)``; ``t`` a scalar or ``(n,)``."""
        return _forward(self.layers, _embed(self.process, x, t, self.freqs, 1.0)[0])

    def log_probs(self, x: torch.Tensor, t) -> torch.Tensor:
        r""":math:`\log q_\theta(c\mid x_t = x)` ``(n, K)`` in ``x``'s dtype, without gradients."""
        xp = x.to(self.layers[0].weight)
        with torch.no_grad():
            out = torch.log_softmax(self(xp, as_time("t", t, like=xp, n=x.shape[0])), dim=1)
        return out.to(x)


def train_classifier(digits: Digits, process: ForwardProcess, *, t_min: float, t_max: float,
                     steps: int = 1500, batch: int = 256, lr: float = 3e-3, hidden: int = 128,
                     generator: torch.Generator | None = None, dtype=torch.float32,
                     num_threads: int | None = 1):
    r"""Train a :class:`NoisyClassifier` on noisy digits by cross-entropy.

    Each step draws ``batch`` images (uniformly, with their labels), times log-uniform on
    ``[t_min, t_max]`` and :math:`x_t = \alpha_t y + \sigma_t z`, and minimises
    :math:`E[-\log q_\theta(C\mid x_t)]` with Adam and a cosine learning-rate decay. At its
    optimum :math:`q_\theta` is the exact class posterior of the empirical distribution, and
    the loss at each :math:`t` is :math:`H(C\mid x_t) + E\,\mathrm{KL}(p(\cdot\mid x_t)\,\Vert\,
    q_\theta) \ge H(C\mid x_t)`. Seeded by ``generator`` (whose device is the training's);
    ``num_threads`` as in :func:`~diffnotes.information.train_denoiser`.

    Returns
    -------
    (model, losses) : the trained model (eval mode) and the per-step losses ``(steps,)``.
    """
    _check_training(process, steps, batch, t_min, t_max)
    model = NoisyClassifier(digits.images.shape[1], digits.n_classes, process, hidden=hidden,
                            generator=generator, dtype=dtype)
    dev = model.freqs.device
    images = digits.images.to(device=dev, dtype=dtype)
    labels = digits.labels.to(dev)
    log_lo, log_hi = math.log(t_min), math.log(t_max)

    def loss_fn(_):
        idx = torch.randint(0, images.shape[0], (batch,), generator=generator, device=dev)
        t = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(batch, generator=generator,
                                                             device=dev, dtype=dtype))
        xt, _ = process.perturb(images[idx], t, generator)
        return torch.nn.functional.cross_entropy(model(xt, t), labels[idx])

    return model, _train(model, loss_fn, steps, lr, num_threads)
