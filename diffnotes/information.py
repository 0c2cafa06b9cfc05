r"""Chapter 3's home module: the conditional entropy rate and its estimators.

For a Gaussian kernel :math:`p(x_t|x_0) = \mathcal N(\alpha_t x_0, \sigma_t^2 I)` with SNR
:math:`\lambda_t = \alpha_t^2/\sigma_t^2`, the I-MMSE relation (Guo-Shamai-Verdú; paper
eq. 17-19, 33) gives the rate at which the forward process destroys information,

.. math::
    \dot H(t) = \frac{d}{dt} H(x_0\mid x_t) = -\tfrac12\dot\lambda_t\,
    E\operatorname{tr}\mathrm{Cov}[x_0\mid x_t]
    = -\tfrac12\dot\lambda_t\,\frac{\sigma_t^4}{\alpha_t^2}
      \Big(\frac{d}{\sigma_t^2} - E\lVert s\rVert^2\Big).

In the EDM (:math:`\alpha = 1,\ \sigma = t`) this is :math:`d/t - t E\lVert s\rVert^2 =
E\operatorname{tr}\mathrm{Cov}/t^3`; in the VP process :math:`d/\Delta_t - E\lVert s\rVert^2
= e^{-2t}E\operatorname{tr}\mathrm{Cov}/\Delta_t^2`.

This module holds three per-sample estimators of :math:`\dot H` (score norm, posterior
variance, finite difference of the conditional entropy along common noise paths), the
posterior concentration :math:`Q = \sum_j w_j^2` (eq. 20-32), the Gaussian closed forms of the
generative bandwidth (eq. 35-38), the conversion of a denoising loss into an entropy rate
(eq. 34) and a tiny denoiser network with its training loop. Exact scores and posteriors come
from :class:`~diffnotes.mixtures.GaussianMixture`.

It also holds the checks the chapter runs and the tests break: :func:`paired_z_test` (paired
estimators, with identically zero and rare-event dominated cases reported as skipped, never as
passed) and :func:`check_entropy_rate_1d` (the I-MMSE rate on 1-D data, the derivative of the
conditional entropy against :math:`-\tfrac12\dot\lambda\,\mathrm{mmse}`, both by the
quadrature of :func:`expect_1d`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from ._validate import (
    as_points,
    as_time,
    check_positive_int,
    check_process,
    check_spectrum,
)
from .checks import check_close, mc_estimate
from .mixtures import GaussianMixture
from .processes import ForwardProcess

_LOG_2PI_E = math.log(2 * math.pi) + 1.0


# -- time factors ----------------------------------------------------------------------------
def immse_factor(t, process: ForwardProcess) -> torch.Tensor:
    r"""The I-MMSE factor :math:`-\tfrac12\dot\lambda_t`, so that :math:`\dot H = -\tfrac12
    \dot\lambda_t\,\mathrm{mmse}(t)` (chapter 3, eq. 33).

    EDM: :math:`1/t^3`; VP: :math:`e^{-2t}/\Delta_t^2`. ``t``: positive scalar or tensor;
    returns a tensor of the same shape (float64 unless ``t`` brings a dtype).
    """
    check_process(process)
    tt = as_time("t", t)
    return -0.5 * process.dsnr(tt)


def dsm_factor(t, process: ForwardProcess) -> torch.Tensor:
    r"""The factor :math:`w(t) = -\tfrac12\dot\lambda_t\,\sigma_t^4/\alpha_t^2` that turns the
    denoising score-matching constant :math:`C(t) = d/\sigma_t^2 - E\lVert s\rVert^2` into the
    entropy rate, :math:`\dot H = w(t)\,C(t)` (eq. 19, 34).

    EDM: :math:`w = t`; VP: :math:`w = 1`.
    """
    check_process(process)
    tt = as_time("t", t)
    a, s = process.alpha(tt), process.sigma(tt)
    return -0.5 * process.dsnr(tt) * s**4 / a**2


def max_bandwidth(t, d: int, process: ForwardProcess) -> torch.Tensor:
    r"""The largest possible entropy rate in dimension ``d``, :math:`d\cdot w(t)/\sigma_t^2 =
    -\tfrac{d}{2}\dot\lambda_t/\lambda_t = d\,\frac{d}{dt}\log(\sigma_t/\alpha_t)` (eq. 35-36).

    It bounds :math:`\dot H` for every data distribution (because :math:`E\lVert s\rVert^2
    \ge 0`) and is approached by Gaussian data of diverging variance. EDM: :math:`d/t`;
    VP: :math:`d/\Delta_t`.
    """
    check_positive_int("d", d)
    tt = as_time("t", t)
    return d * dsm_factor(tt, process) / process.sigma(tt) ** 2


def gaussian_entropy_rate(t, spectrum, process: ForwardProcess) -> torch.Tensor:
    r"""Exact :math:`\dot H(t)` for Gaussian data :math:`\mathcal N(m, \Sigma)` with eigenvalues
    ``spectrum`` :math:`(\ell_1, \dots, \ell_d)` (zeros allowed: data on a subspace).

    Each direction is a scalar Gaussian channel with MMSE :math:`\ell_i\sigma_t^2/(\alpha_t^2
    \ell_i + \sigma_t^2)`, so

    .. math:: \dot H = -\tfrac12\dot\lambda_t \sum_i \frac{\ell_i\sigma_t^2}{\alpha_t^2\ell_i
        + \sigma_t^2}\ \overset{\rm EDM}{=}\ \sum_i \frac{\ell_i}{t(\ell_i + t^2)} .

    With :math:`k` eigenvalues :math:`\sigma^2` and the rest zero this is the paper's subspace
    bandwidth :math:`k\sigma^2/(t(\sigma^2 + t^2))` (eq. 37-38).

    Parameters
    ----------
    t : positive scalar or tensor ``(m,)``.
    spectrum : tensor ``(d,)`` of non-negative eigenvalues.

    Returns
    -------
    tensor of the shape of ``t``.
    """
    check_process(process)
    tt = as_time("t", t)
    lam = check_spectrum("spectrum", spectrum, tt)
    a, s = process.alpha(tt)[..., None], process.sigma(tt)[..., None]
    mmse = (lam * s**2 / (a**2 * lam + s**2)).sum(-1)
    return immse_factor(tt, process) * mmse


# -- per-sample estimators of the entropy rate -----------------------------------------------
def entropy_rate_score_norm(mixture: GaussianMixture, x, t, process: ForwardProcess):
    r"""Per-sample score-norm estimator :math:`w(t)\,(d/\sigma_t^2 - \lVert s(x)\rVert^2)`,
    shape ``(n,)``; its mean over :math:`x \sim p_t` is :math:`\dot H(t)` (eq. 19).

    EDM: :math:`d/t - t\lVert s\rVert^2`; VP: :math:`d/\Delta_t - \lVert s\rVert^2`.
    ``x``: ``(n, d)``; ``t``: positive scalar or ``(n,)``.
    """
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x, n=x.shape[0])
    s2 = (mixture.score(x, tt, process) ** 2).sum(1)
    return dsm_factor(tt, process) * (mixture.d / process.sigma(tt) ** 2 - s2)


def entropy_rate_posterior(mixture: GaussianMixture, x, t, process: ForwardProcess):
    r"""Per-sample posterior-variance estimator :math:`-\tfrac12\dot\lambda_t
    \operatorname{tr}\mathrm{Cov}[x_0\mid x_t = x]`, shape ``(n,)`` (eq. 33).

    EDM: :math:`\operatorname{tr}\mathrm{Cov}/t^3`; VP: :math:`e^{-2t}\operatorname{tr}
    \mathrm{Cov}/\Delta_t^2`. Its mean over :math:`x\sim p_t` is :math:`\dot H(t)`.
    """
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x, n=x.shape[0])
    return immse_factor(tt, process) * mixture.posterior_trace_cov(x, tt, process)


def conditional_entropy_path(mixture: GaussianMixture, x, t, process: ForwardProcess, *,
                             method: str = "auto") -> torch.Tensor:
    r"""Per-sample conditional entropy :math:`H(x_0\mid x_t)` up to a constant in ``t``,
    shape ``(n,)`` (nats). Its mean over :math:`x\sim p_t` is :math:`H(x_0|x_t) - c`.

    * ``method="posterior"`` (delta mixtures): the entropy of the posterior over the points,
      :math:`h(x) = -\sum_j w_j(x)\log w_j(x)`, with :math:`c = 0` (eq. 65).
    * ``method="marginal"`` (any mixture): from :math:`H(x_0|x_t) = H(x_0) + H(x_t|x_0) -
      H(x_t)`, the sample :math:`\tfrac d2\log(2\pi e\sigma_t^2) + \log p_t(x)`, with
      :math:`c = H(x_0)` (constant in ``t``; differential for densities, discrete for deltas).
    * ``"auto"``: posterior for a delta mixture, marginal otherwise.
    """
    if method == "auto":
        method = "posterior" if mixture.is_delta else "marginal"
    if method not in ("posterior", "marginal"):
        raise ValueError(f"method must be 'auto', 'posterior' or 'marginal'; got {method!r}")
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x, n=x.shape[0])
    if method == "posterior":
        if not mixture.is_delta:
            raise ValueError("method='posterior' needs a delta mixture (the posterior over "
                             "points is discrete); use method='marginal'")
        w = mixture.component_posterior(x, tt, process)
        return -torch.xlogy(w, w).sum(1)
    sig2 = process.sigma(tt) ** 2
    return 0.5 * mixture.d * (_LOG_2PI_E + torch.log(sig2)) + mixture.log_prob(x, tt, process)


def entropy_rate_finite_difference(mixture: GaussianMixture, x0, eps, t: float,
                                   process: ForwardProcess, *, step: float,
                                   method: str = "auto") -> torch.Tensor:
    r"""Per-sample central difference of the conditional entropy along common noise paths,

    .. math:: \frac{h(x_{t+\delta}) - h(x_{t-\delta})}{2\delta}, \qquad
        x_{t\pm\delta} = \alpha_{t\pm\delta}\,x_0 + \sigma_{t\pm\delta}\,\varepsilon,

    shape ``(n,)``, with :math:`h` from :func:`conditional_entropy_path`. The same
    :math:`(x_0, \varepsilon)` at both times (common random numbers) make the difference a
    smooth function of the path, so its variance stays bounded as ``step`` → 0; its mean is
    :math:`\dot H(t) + \tfrac{\delta^2}{6}\dddot H(t) + O(\delta^4)`.

    Parameters
    ----------
    x0, eps : ``(n, d)``, data samples and standard normal noise.
    t : scalar time; ``step`` : :math:`0 < \delta < t`.
    """
    x0 = as_points("x0", x0, mixture.d)
    eps = as_points("eps", eps, mixture.d)
    if eps.shape != x0.shape:
        raise ValueError(f"eps must have the shape of x0 {tuple(x0.shape)}; got "
                         f"{tuple(eps.shape)}")
    tt = as_time("t", t, like=x0)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    if not 0 < step < float(tt):
        raise ValueError(f"step must satisfy 0 < step < t = {float(tt):.4g}; got {step}")
    out = []
    for tau in (tt + step, tt - step):
        xt = process.alpha(tau).to(x0) * x0 + process.sigma(tau).to(x0) * eps
        out.append(conditional_entropy_path(mixture, xt, tau, process, method=method))
    return (out[0] - out[1]) / (2 * step)


class EntropyRateSamples(NamedTuple):
    r"""Per-sample estimators of :math:`\dot H(t)` on common samples, each of shape ``(n,)``."""

    score_norm: torch.Tensor
    posterior: torch.Tensor
    finite_difference: torch.Tensor


def entropy_rate_samples(mixture: GaussianMixture, t: float, process: ForwardProcess, n: int,
                         generator: torch.Generator | None = None, *, rel_step: float = 0.02,
                         method: str = "auto", dtype=torch.float64) -> EntropyRateSamples:
    r"""The three estimators of :math:`\dot H(t)` on one batch of ``n`` paths (chapter 3).

    Draws :math:`x_0\sim p_0` and :math:`\varepsilon\sim\mathcal N(0, I)` on the generator's
    device, sets :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`, and returns
    :func:`entropy_rate_score_norm` and :func:`entropy_rate_posterior` at :math:`x_t` and
    :func:`entropy_rate_finite_difference` with step :math:`\delta = ` ``rel_step`` ``· t``
    along the same paths. The samples are paired: compare estimators through differences.
    """
    check_positive_int("n", n)
    if not 0 < rel_step < 1:
        raise ValueError(f"rel_step must be in (0, 1); got {rel_step}")
    x0 = mixture.sample(n, generator, dtype=dtype)
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=dtype)
    tt = as_time("t", t, like=x0)
    xt = process.alpha(tt).to(x0) * x0 + process.sigma(tt).to(x0) * eps
    return EntropyRateSamples(
        entropy_rate_score_norm(mixture, xt, tt, process),
        entropy_rate_posterior(mixture, xt, tt, process),
        entropy_rate_finite_difference(mixture, x0, eps, float(tt), process,
                                       step=rel_step * float(tt), method=method),
    )


def entropy_rate_from_loss(residuals, t, process: ForwardProcess) -> torch.Tensor:
    r"""Turn denoising residuals :math:`\lVert s_\theta(x_t) + \varepsilon/\sigma_t\rVert^2`
    into entropy-rate samples :math:`w(t)\lVert s_\theta + \varepsilon/\sigma_t\rVert^2`
    (eq. 34).

    For the exact score their mean is :math:`\dot H(t)`; for any model it is
    :math:`\dot H(t) + w(t)\,E\lVert s_\theta - s\rVert^2 \ge \dot H(t)`. ``residuals``:
    ``(n,)``; ``t``: scalar or ``(n,)``.
    """
    r = torch.as_tensor(residuals)
    if r.ndim != 1:
        raise ValueError(f"residuals must have shape (n,); got {tuple(r.shape)}")
    tt = as_time("t", t, like=r if r.is_floating_point() else None, n=r.shape[0])
    return dsm_factor(tt, process).to(r) * r


# -- checks that the book runs and the tests break ------------------------------------------
def paired_z_test(a, b, tally, *, label: str = "", n_sigma: float = 5.0, n_top: int = 10,
                  rare_fraction: float = 0.5, max_kurtosis: float | None = None) -> float | None:
    r"""Paired :math:`z`-test that two per-path estimators ``a`` and ``b`` ``(n,)`` have one mean.

    The statistic is the mean of :math:`a - b` over its standard error, tested against zero at
    ``n_sigma`` through ``tally.mc`` (:class:`~diffnotes.checks.Tally`), so a failure raises
    ``AssertionError`` at once. Two cases are *not* tests and go to ``tally.skip`` with the
    reason, never counted as passed:

    * ``a == b`` on every path (both estimators are exactly zero, say, where every posterior
      has decided in floating point): a zero difference has no error bar to test against;
    * rare-event dominated: the ``n_top`` largest :math:`|a - b|` carry more than
      ``rare_fraction`` of the total. The per-path values are then so heavy-tailed that the
      sample standard deviation underestimates the error and the normal approximation behind
      the :math:`z`-test fails.
    * heavy-tailed (only when ``max_kurtosis`` is given): the sample kurtosis
      :math:`\hat\kappa = \overline{(a-b-\overline{a-b})^4}/\overline{(a-b-\overline{a-b})^2}^2`
      exceeds ``max_kurtosis``. The ``rare_fraction`` rule alone lets through the samples in
      which the rare large paths happen to be absent, and those have a biased mean; chapter 3
      measures where this matters (its calibration of the test) and uses
      ``max_kurtosis = 50`` at 2000 paths.

    Returns the :math:`z` of a test that ran, ``None`` for a skipped case.
    """
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.ndim != 1 or a.shape != b.shape or a.shape[0] <= n_top:
        raise ValueError(f"a and b must have one shape (n,) with n > n_top = {n_top}; got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    diff = (a - b).to(torch.float64)
    size = diff.abs()
    if float(size.max()) == 0.0:
        tally.skip("identical on every path (both exactly zero): no error bar to test")
        return None
    if float(size.topk(n_top).values.sum()) > rare_fraction * float(size.sum()):
        tally.skip("rare-event dominated: z-test invalid")
        return None
    if max_kurtosis is not None and paired_kurtosis(diff) > max_kurtosis:
        tally.skip(f"heavy-tailed (kurtosis above {max_kurtosis:g}): z-test invalid")
        return None
    return tally.mc(mc_estimate(diff), 0.0, label=label, n_sigma=n_sigma)


def paired_kurtosis(diff) -> float:
    r"""Sample kurtosis :math:`m_4/m_2^2` of the paired differences ``diff`` ``(n,)``, with
    :math:`m_k` the :math:`k`-th central sample moment (3 for normal data, at most :math:`n`).

    A constant sample has no kurtosis and returns ``0.0``.
    """
    d = torch.as_tensor(diff).to(torch.float64)
    if d.ndim != 1 or d.shape[0] < 2:
        raise ValueError(f"diff must have shape (n,) with n >= 2; got {tuple(d.shape)}")
    c = d - d.mean()
    m2 = float((c**2).mean())
    return 0.0 if m2 == 0.0 else float((c**4).mean()) / m2**2


def expect_1d(mixture: GaussianMixture, f, t: float, process: ForwardProcess, *,
              order: int = 16, panels_per_sd: float = 2.0, n_sd: float = 12.0) -> float:
    r""":math:`\int p_t(x)\,f(x)\,\mathrm dx` for a one-dimensional mixture, by composite
    Gauss-Legendre quadrature, in float64.

    The integration range runs ``n_sd`` standard deviations of the widest noised component
    beyond the outermost noised means (the Gaussian tail beyond 12 standard deviations is below
    :math:`10^{-32}`); each panel is at most ``1/panels_per_sd`` of the narrowest component's
    standard deviation, with ``order`` nodes. The integrands used here are smooth (analytic),
    so the rule converges exponentially in ``order``. ``f`` maps points ``(m, 1)`` to ``(m,)``.
    """
    if mixture.d != 1:
        raise ValueError(f"expect_1d needs a one-dimensional mixture; got d = {mixture.d}")
    tt = float(as_time("t", t))
    a, s = float(process.alpha(tt)), float(process.sigma(tt))
    means = a * mixture.means[:, 0].double().cpu()
    var = a**2 * mixture.covariances.reshape(-1).double().cpu() + s**2
    sd_max, sd_min = float(var.max().sqrt()), float(var.min().sqrt())
    lo, hi = float(means.min()) - n_sd * sd_max, float(means.max()) + n_sd * sd_max
    n_panels = max(1, math.ceil((hi - lo) * panels_per_sd / sd_min))
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = torch.linspace(lo, hi, n_panels + 1, dtype=torch.float64)
    half = (edges[1:] - edges[:-1])[:, None] / 2
    mid = (edges[1:] + edges[:-1])[:, None] / 2
    xs = (mid + half * torch.as_tensor(nodes, dtype=torch.float64)).reshape(-1, 1)
    ws = (half * torch.as_tensor(weights, dtype=torch.float64)).reshape(-1)
    dens = mixture.log_prob(xs, tt, process).exp()
    return float((ws * dens * f(xs)).sum())


def check_entropy_rate_1d(mixture: GaussianMixture, t: float, process: ForwardProcess, *,
                          factor=None, rel_step: float = 1e-5, rtol: float = 1e-6,
                          tally=None) -> float:
    r"""Check :math:`\dot H(t) = -\tfrac12\dot\lambda_t\,\mathrm{mmse}(t)` on 1-D data by
    quadrature, the two sides computed independently.

    * Left: the derivative of the conditional entropy itself, a central difference with step
      :math:`\delta =` ``rel_step`` :math:`\cdot t` of :math:`\int p_t\,h` (the posterior entropy
      :math:`h` for a delta mixture, :math:`\tfrac12\log(2\pi e\sigma_t^2) + \log p_t` otherwise;
      :func:`conditional_entropy_path`), each integral by :func:`expect_1d`.
    * Right: ``factor(t, process)`` times :math:`\mathrm{mmse}(t) = \int p_t\,\mathrm{Var}[x_0
      \mid x_t]`; ``factor`` defaults to :func:`immse_factor` (EDM :math:`1/t^3`, VP
      :math:`e^{-2t}/\Delta_t^2`), the claim under test. Pass a different ``factor`` to see
      the check fail.

    The truncation error of the difference is :math:`\tfrac{\delta^2}{6}\dddot H`: relative
    to :math:`\dot H` it is :math:`(\delta^2/6)\,\dddot H/\dot H`, below :math:`10^{-8}`
    even where :math:`\dot H` varies like :math:`e^{-1/2t^2}` at :math:`t = 0.2`; the
    quadrature is accurate to about :math:`10^{-13}`. So ``rtol = 1e-6`` leaves a wide margin
    for a true claim, while a factor wrong by one part in :math:`10^5` already fails.
    Raises ``AssertionError`` (through ``tally.close`` when a
    :class:`~diffnotes.checks.Tally` is given); returns the relative difference.
    """
    factor = immse_factor if factor is None else factor
    tt = float(as_time("t", t))
    step = rel_step * tt
    cond = [expect_1d(mixture, lambda x, tau=tau: conditional_entropy_path(mixture, x, tau,
                                                                          process), tau, process)
            for tau in (tt + step, tt - step)]
    lhs = (cond[0] - cond[1]) / (2 * step)
    mmse = expect_1d(mixture, lambda x: mixture.posterior_trace_cov(x, tt, process), tt, process)
    rhs = float(factor(tt, process)) * mmse
    label = f"{process.name}, t = {tt:g}: dH/dt by differences vs -λ'/2 · mmse"
    if tally is not None:
        tally.close(lhs, rhs, rtol=rtol, atol=0.0, label=label)
    else:
        check_close(lhs, rhs, rtol=rtol, atol=0.0, label=label, verbose=False)
    return abs(lhs - rhs) / abs(rhs)


# -- posterior concentration -----------------------------------------------------------------
def posterior_concentration(mixture: GaussianMixture, x, t, process: ForwardProcess):
    r"""Posterior concentration :math:`Q(x) = \sum_j w_j(x)^2 \in [1/K, 1]`, shape ``(n,)``
    (eq. 24-32): 1 when the posterior sits on one component, :math:`1/M` when it is spread
    evenly over :math:`M`; :math:`1/Q` is the effective number of candidates.

    ``w`` are the component posteriors of ``mixture`` at ``x`` ``(n, d)``, time ``t``.
    """
    w = mixture.component_posterior(x, t, process)
    return (w**2).sum(1)


def coherence(points) -> float:
    r"""Largest cosine between two distinct points, :math:`\mu = \max_{j\ne k}
    |y_j^\top y_k|/(\lVert y_j\rVert\lVert y_k\rVert)`, for ``points`` ``(K, d)``, ``K >= 2``.

    For points of common norm :math:`r`, :math:`|\operatorname{tr}\mathrm{Cov}[x_0|x_t] -
    r^2(1 - Q)| \le \mu\,r^2(1 - Q)` (chapter 3): :math:`\mu` bounds the relative error of the
    orthogonal approximation (eq. 24-29). For random Gaussian points :math:`\mu` shrinks like
    :math:`\sqrt{\log K/d}`; the extreme-value estimate :math:`\sqrt{2\log(K(K-1))/d}` for the
    largest of :math:`K(K-1)/2` cosines of spread :math:`1/\sqrt d` is an upper-order estimate
    that overshoots at small :math:`K`.
    """
    y = as_points("points", points)
    if y.shape[0] < 2:
        raise ValueError("points must hold at least two points")
    norms = y.norm(dim=1)
    if bool((norms == 0).any()):
        raise ValueError("points must be non-zero")
    u = y / norms[:, None]
    cos = (u @ u.T).abs()
    cos.fill_diagonal_(0.0)
    return float(cos.max())


# -- a tiny denoiser ---------------------------------------------------------------------------
class TinyDenoiser(nn.Module):
    r"""A small MLP noise predictor :math:`\hat\varepsilon_\theta(x, t)` for low-dimensional
    data; the model score is :math:`s_\theta = -\hat\varepsilon_\theta/\sigma_t` (eq. 14).

    Input: ``x`` ``(n, d)`` scaled by :math:`1/\sqrt{\alpha_t^2 v + \sigma_t^2}` (``v`` the
    data variance per coordinate) and a Fourier embedding of :math:`\log\sigma_t/\alpha_t`.
    Parameters are drawn from ``generator`` (never the global seed).
    """

    def __init__(self, d: int, process: ForwardProcess, *, hidden: int = 64, n_freq: int = 8,
                 data_var: float = 1.0, generator: torch.Generator | None = None,
                 dtype=torch.float32):
        super().__init__()
        check_positive_int("d", d)
        check_positive_int("hidden", hidden)
        check_positive_int("n_freq", n_freq)
        check_process(process)
        if not data_var > 0:
            raise ValueError(f"data_var must be positive; got {data_var}")
        self.d, self.process, self.data_var = d, process, float(data_var)
        dev = generator.device if generator is not None else torch.device("cpu")
        self.register_buffer("freqs", torch.arange(1, n_freq + 1, dtype=dtype, device=dev) * 0.5)
        sizes = [d + 2 * n_freq, hidden, hidden, hidden, d]
        self.layers = nn.ModuleList()
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            lin = nn.Linear(fan_in, fan_out, device=dev, dtype=dtype)
            bound = (0.1 if i == len(sizes) - 2 else 1.0) * math.sqrt(3.0 / fan_in)
            with torch.no_grad():
                lin.weight.copy_((2 * torch.rand(fan_out, fan_in, generator=generator,
                                                 device=dev, dtype=dtype) - 1) * bound)
                lin.bias.zero_()
            self.layers.append(lin)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Predicted noise :math:`\hat\varepsilon_\theta(x, t)`, shape ``(n, d)``; ``t`` scalar or
        ``(n,)``."""
        tt = as_time("t", t, like=x, n=x.shape[0]).expand(x.shape[0])
        a, s = self.process.alpha(tt), self.process.sigma(tt)
        scale = torch.rsqrt(a**2 * self.data_var + s**2)[:, None]
        phase = torch.log(s / a)[:, None] * self.freqs
        h = torch.cat([x * scale, torch.sin(phase), torch.cos(phase)], dim=1)
        for lin in self.layers[:-1]:
            h = torch.nn.functional.silu(lin(h))
        return self.layers[-1](h)

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        r"""Model score :math:`s_\theta(x, t) = -\hat\varepsilon_\theta(x, t)/\sigma_t`, computed
        in the parameters' dtype and returned in ``x``'s."""
        p = self.layers[0].weight
        xp = x.to(p)
        tt = as_time("t", t, like=xp, n=x.shape[0]).expand(x.shape[0])
        with torch.no_grad():
            eps_hat = self(xp, tt)
        return (-eps_hat / self.process.sigma(tt)[:, None]).to(x)


def train_denoiser(mixture: GaussianMixture, process: ForwardProcess, *, t_min: float,
                   t_max: float, steps: int = 3000, batch: int = 512, lr: float = 3e-3,
                   hidden: int = 64, generator: torch.Generator | None = None,
                   dtype=torch.float32, num_threads: int | None = 1):
    r"""Train a :class:`TinyDenoiser` by denoising score matching (eq. 15, 34).

    Each step draws ``batch`` data points, times log-uniform on ``[t_min, t_max]`` and noise,
    and minimises :math:`E\lVert\hat\varepsilon_\theta(x_t, t) - \varepsilon\rVert^2 =
    E\,\sigma_t^2\lVert s_\theta + \varepsilon/\sigma_t\rVert^2` (the usual
    :math:`\sigma^2`-weighted loss) with Adam and a cosine learning-rate decay. Everything
    random comes from ``generator``; the device is the generator's.

    ``num_threads`` sets torch's CPU threads for the duration of the training (restored
    afterwards; ``None`` leaves them alone). The default, one thread, is the fastest for such
    small matrices: with more, each step pays a thread-synchronisation cost that grows badly
    when the CPU is shared with other work.

    Returns
    -------
    (model, losses) : the trained model (eval mode) and the per-step losses ``(steps,)``.
    """
    check_process(process)
    check_positive_int("steps", steps)
    check_positive_int("batch", batch)
    if not 0 < t_min < t_max or not math.isfinite(t_max):
        raise ValueError(f"need 0 < t_min < t_max < inf; got t_min={t_min}, t_max={t_max}")
    data_var = float(torch.diagonal(mixture.covariance()).mean())
    model = TinyDenoiser(mixture.d, process, hidden=hidden, data_var=data_var,
                         generator=generator, dtype=dtype)
    dev = model.freqs.device
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    log_lo, log_hi = math.log(t_min), math.log(t_max)
    losses = torch.empty(steps, dtype=torch.float64)
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(check_positive_int("num_threads", num_threads))
    try:
        _train_loop(model, mixture, process, opt, sched, losses, batch, log_lo, log_hi,
                    generator, dev, dtype)
    finally:
        torch.set_num_threads(previous_threads)
    model.eval()
    return model, losses


def _train_loop(model, mixture, process, opt, sched, losses, batch, log_lo, log_hi, generator,
                dev, dtype):
    for i in range(losses.shape[0]):
        x0 = mixture.sample(batch, generator).to(device=dev, dtype=dtype)
        u = torch.rand(batch, generator=generator, device=dev, dtype=dtype)
        t = torch.exp(log_lo + (log_hi - log_lo) * u)
        xt, eps = process.perturb(x0, t, generator)
        loss = ((model(xt, t) - eps) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[i] = loss.detach().double().cpu()


__all__ = [
    "EntropyRateSamples",
    "TinyDenoiser",
    "coherence",
    "conditional_entropy_path",
    "dsm_factor",
    "entropy_rate_finite_difference",
    "entropy_rate_from_loss",
    "entropy_rate_posterior",
    "entropy_rate_samples",
    "entropy_rate_score_norm",
    "expect_1d",
    "check_entropy_rate_1d",
    "paired_kurtosis",
    "paired_z_test",
    "gaussian_entropy_rate",
    "immse_factor",
    "max_bandwidth",
    "posterior_concentration",
    "train_denoiser",
]
