r"""Chapter 6's home module: the Fisher information geometry of the posterior.

For a Gaussian kernel :math:`p(x_t|x_0) = \mathcal N(\alpha x_0, \sigma^2 I)` the Fisher
information of the posterior :math:`p(x_0\mid x_t = x)` with respect to the conditioning
point (paper eq. 59) is, by Bayes' rule (eq. 60),

.. math::
    F(x, t) = E_{x_0\mid x}\big[\nabla_x\log p(x_0|x)\,\nabla_x\log p(x_0|x)^\top\big]
    = \frac{\alpha^2}{\sigma^4}\,\mathrm{Cov}[x_0\mid x_t = x] = J(x, t) + \frac{I}{\sigma^2},

because :math:`\nabla_x\log p(x_0|x) = (\alpha x_0 - x)/\sigma^2 - s(x)`; in the EDM
(:math:`\alpha = 1,\ \sigma = t`) :math:`F = \mathrm{Cov}/t^4 = J + I/t^2`. Its eigenvalues lie
in :math:`[0, \infty)`; the normalised spectrum :math:`\nu_i = \sigma^2\lambda_i(F) = 1 +
\sigma^2\lambda_i(J)` is close to 1 along directions in which the data look flat at the scale
:math:`\sigma/\alpha` and close to 0 across them, so counting :math:`\nu_i > 1/2` estimates the
local dimension of the data manifold (eq. 61). The conditional entropy rate is the expected
trace (eq. 62-64),

.. math::
    \dot H(t) = w(t)\,E\operatorname{tr}F = w(t)\sum_i E\Big[\lambda_i(J) +
    \frac1{\sigma^2}\Big],\qquad w(t) = -\tfrac12\dot\lambda_t\,\frac{\sigma_t^4}{\alpha_t^2}
    \quad(\text{EDM: } w = t;\ \text{VP: } w = 1).

Closed forms come from :class:`~diffnotes.mixtures.GaussianMixture`; this module adds an exact
sampler of the posterior (for the Monte Carlo definition of :math:`F`), the Gaussian spectrum,
the dimension estimate and the per-direction entropy production. Device and dtype follow ``x``;
use float64 for checks.
"""

from __future__ import annotations

import torch

from ._validate import (
    as_time,
    check_mixture_call,
    check_positive_int,
    check_process,
    check_spectrum,
)
from .checks import Tally, mc_estimate
from .mixtures import CHUNK_ELEMENTS, GaussianMixture
from .processes import ForwardProcess


def _rate_factor(tt: torch.Tensor, process: ForwardProcess) -> torch.Tensor:
    r""":math:`w(t) = -\tfrac12\dot\lambda_t\sigma_t^4/\alpha_t^2`, with the shape of ``tt``."""
    a, s = process.alpha(tt), process.sigma(tt)
    return -0.5 * process.dsnr(tt) * s**4 / a**2


def _posterior_cov(mixture: GaussianMixture, x, tt, process) -> torch.Tensor:
    r""":math:`\mathrm{Cov}[x_0|x_t = x]`, ``(n, d, d)``. For a delta mixture with few points
    it is one matrix product, :math:`\sum_j w_j \tilde y_j\tilde y_j^\top - \bar y\bar y^\top`
    with points :math:`\tilde y_j` centred on the data mean (relative rounding error about
    :math:`10^{-16}\max_j\lVert\tilde y_j\rVert^2/\lVert\mathrm{Cov}\rVert`); otherwise the
    core's :meth:`~diffnotes.mixtures.GaussianMixture.posterior_cov`."""
    K, d = mixture.K, mixture.d
    if not mixture.is_delta or K * d * d > CHUNK_ELEMENTS:
        return mixture.posterior_cov(x, tt, process)
    w = mixture.component_posterior(x, tt, process)                  # (n, K)
    y = (mixture.means - mixture.mean()).to(x)                      # (K, d)
    second = (w @ (y[:, :, None] * y[:, None, :]).reshape(K, d * d)).reshape(-1, d, d)
    mean = w @ y
    return second - mean[:, :, None] * mean[:, None, :]


def _posterior_trace_cov(mixture: GaussianMixture, x, tt, process) -> torch.Tensor:
    r""":math:`\operatorname{tr}\mathrm{Cov}[x_0|x_t = x]`, ``(n,)``: for a delta mixture
    :math:`\sum_j w_j\lVert\tilde y_j\rVert^2 - \lVert\bar y\rVert^2` (two matrix-vector
    products), otherwise the core's
    :meth:`~diffnotes.mixtures.GaussianMixture.posterior_trace_cov`."""
    if not mixture.is_delta:
        return mixture.posterior_trace_cov(x, tt, process)
    w = mixture.component_posterior(x, tt, process)
    y = (mixture.means - mixture.mean()).to(x)
    return w @ (y**2).sum(1) - ((w @ y) ** 2).sum(1)


# -- the Fisher matrix -------------------------------------------------------------------------
def fisher_information(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Fisher information of the posterior, :math:`F = \alpha^2\mathrm{Cov}[x_0|x_t=x]/\sigma^4`
    (eq. 59-60, chapter 6), shape ``(n, d, d)``, symmetric positive semi-definite.

    Computed from the posterior covariance rather than as :math:`J + I/\sigma^2`, which cancels
    catastrophically where :math:`F \ll 1/\sigma^2` (off the data manifold at small noise).

    Parameters
    ----------
    mixture : the data, a :class:`~diffnotes.mixtures.GaussianMixture`.
    x : tensor ``(n, d)``, the conditioning points :math:`x_t`.
    t : positive scalar or tensor ``(n,)``.
    process : a :class:`~diffnotes.processes.ForwardProcess`.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    a, s = process.alpha(tt), process.sigma(tt)
    scale = (a**2 / s**4).expand(x.shape[0])[:, None, None]
    return scale * _posterior_cov(mixture, x, tt, process)


def gaussian_fisher_spectrum(t, spectrum, process: ForwardProcess) -> torch.Tensor:
    r"""Eigenvalues of :math:`F` for Gaussian data :math:`\mathcal N(m, \Sigma)` whose covariance
    has eigenvalues ``spectrum`` :math:`\ell_i \ge 0` (eq. 61, chapter 6):

    .. math:: \lambda_i(F) = \frac{\alpha^2\ell_i}{\sigma^2(\alpha^2\ell_i + \sigma^2)}
        \ \overset{\rm EDM}{=}\ \frac{\ell_i}{t^2(\ell_i + t^2)} ,

    the same at every :math:`x`. It tends to :math:`1/\sigma^2` where :math:`\alpha^2\ell_i \gg
    \sigma^2` (flat directions) and is 0 where :math:`\ell_i = 0` (off the data subspace).

    Parameters
    ----------
    t : positive scalar or tensor ``(m,)``.
    spectrum : tensor ``(d,)`` of non-negative eigenvalues.

    Returns
    -------
    tensor ``(d,)`` for a scalar ``t``, ``(m, d)`` for ``t`` of shape ``(m,)``.
    """
    check_process(process)
    tt = as_time("t", t)
    lam = check_spectrum("spectrum", spectrum, tt)
    a2, s2 = process.alpha(tt)[..., None] ** 2, process.sigma(tt)[..., None] ** 2
    return a2 * lam / (s2 * (a2 * lam + s2))


def normalized_fisher_spectrum(mixture: GaussianMixture, x, t,
                               process: ForwardProcess) -> torch.Tensor:
    r"""The spectrum :math:`\nu_i = \sigma^2\lambda_i(F) = 1 + \sigma^2\lambda_i(J) =
    \alpha^2\lambda_i(\mathrm{Cov}[x_0|x])/\sigma^2` at each point, sorted in decreasing order,
    shape ``(n, d)`` (chapter 6).

    :math:`\nu_i \approx 1` along directions in which the posterior is as wide as the noise
    (the data look flat there), :math:`\nu_i \approx 0` across the data; :math:`\nu_i > 1` where
    :math:`J` has a positive eigenvalue (a posterior split between separated modes).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    a, s = process.alpha(tt), process.sigma(tt)
    cov = _posterior_cov(mixture, x, tt, process)
    ev = torch.linalg.eigvalsh(0.5 * (cov + cov.transpose(1, 2)))
    return ((a / s) ** 2).expand(x.shape[0])[:, None] * ev.flip(-1)


def estimate_dimension(mixture: GaussianMixture, x, t, process: ForwardProcess, *,
                       threshold: float = 0.5) -> torch.Tensor:
    r"""Local dimension of the data seen from :math:`x_t = x`: the number of normalised Fisher
    eigenvalues :math:`\nu_i` above ``threshold``, shape ``(n,)`` (integer; chapter 6).

    The default :math:`1/2` is where a Gaussian direction of variance :math:`\ell` crosses over,
    :math:`\nu = \alpha^2\ell/(\alpha^2\ell + \sigma^2) = 1/2` at :math:`\alpha^2\ell = \sigma^2`:
    a direction counts when the data spread along it more than the noise does. The estimate
    is meaningful in a window of noise levels: above the spacing of the samples that represent
    the manifold (else the posterior collapses onto one sample and every :math:`\nu_i \to 0`)
    and below its radius of curvature (else the normal directions fill in).
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1); got {threshold}")
    nu = normalized_fisher_spectrum(mixture, x, t, process)
    return (nu > threshold).sum(-1)


def wilson_interval(successes, n: int, z: float = 1.96) -> tuple[float, float]:
    r"""Wilson score interval for a binomial proportion, ``(lo, hi)`` (chapter 6's accuracies).

    With :math:`\hat p = k/n`,

    .. math::
        \frac{\hat p + z^2/2n \pm z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n} ,

    which, unlike :math:`\hat p \pm z\sqrt{\hat p(1-\hat p)/n}`, has non-zero width at
    :math:`\hat p \in \{0, 1\}` (at :math:`k = n` the lower end is :math:`n/(n + z^2)`).
    ``successes`` is a count :math:`0 \le k \le n` (int, or a 0-d tensor); ``z = 1.96`` gives
    95 %.
    """
    k = float(successes)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    if not 0 <= k <= n or k != int(k):
        raise ValueError(f"successes must be an integer in [0, n]; got {successes!r}")
    if not z > 0:
        raise ValueError(f"z must be positive; got {z}")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5 / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# -- the Monte Carlo definition ----------------------------------------------------------------
def _posterior_components(mixture: GaussianMixture, x, a, s):
    r"""Per-component posterior :math:`\mathcal N(\mu_k, P_k)` of :math:`x_0` given :math:`x`:
    means ``(n, K, d)``, and :math:`P_k` as ``(basis, variances)`` with variances ``(n, K, d)`` in
    the eigenbasis ``basis`` ``(K, d, d)`` of :math:`\Sigma_k` (``None``: the identity)."""
    m = mixture.means.to(x)
    if mixture.isotropic:
        v = mixture.variances.to(x)[None, :]                     # (1, K)
        c = a**2 * v + s**2                                      # (n, K)
        mu = (s**2 / c)[:, :, None] * m[None] + (a * v / c)[:, :, None] * x[:, None, :]
        pvar = (v * s**2 / c)[:, :, None].expand(-1, -1, mixture.d)
        return mu, None, pvar
    lam, Q = mixture.eigvals.to(x), mixture.eigvecs.to(x)       # (K, d), (K, d, d)
    y = torch.einsum("kij,nki->nkj", Q, x[:, None, :] - a[:, :, None] * m[None])
    c = a[:, :, None] ** 2 * lam[None] + s[:, :, None] ** 2
    mu = m[None] + a[:, :, None] * torch.einsum("kij,nkj->nki", Q, lam[None] * y / c)
    return mu, Q, lam[None] * s[:, :, None] ** 2 / c


def sample_posterior(mixture: GaussianMixture, x, t, process: ForwardProcess, m: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Exact samples of :math:`x_0 \sim p(x_0\mid x_t = x)`, shape ``(n, m, d)`` (chapter 6).

    The posterior of a Gaussian mixture is the mixture of the per-component posteriors
    :math:`\mathcal N(\mu_k, P_k)` with weights :math:`r_k(x)`, where :math:`C_k = \alpha^2
    \Sigma_k + \sigma^2 I`, :math:`\mu_k = m_k + \alpha\Sigma_k C_k^{-1}(x - \alpha m_k)` and
    :math:`P_k = \Sigma_k - \alpha^2\Sigma_k C_k^{-1}\Sigma_k` (see
    :mod:`diffnotes.mixtures`). Each sample draws :math:`k \sim r(x)` and then
    :math:`x_0 = \mu_k + P_k^{1/2} z`. Memory is :math:`O(n m d + n K d)`; the loop runs over the
    ``K`` components, not over samples. Random numbers come from ``generator`` (its device must
    be that of ``x``).

    Parameters
    ----------
    x : tensor ``(n, d)``; t : positive scalar or ``(n,)``; m : samples per point.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    check_positive_int("m", m)
    n, d = x.shape
    a = process.alpha(tt).to(x).expand(n)[:, None]
    s = process.sigma(tt).to(x).expand(n)[:, None]
    r = mixture.component_posterior(x, tt, process)                        # (n, K)
    mu, Q, pvar = _posterior_components(mixture, x, a, s)
    k = torch.multinomial(r, m, replacement=True, generator=generator)     # (n, m)
    z = torch.randn(n, m, d, generator=generator, device=x.device, dtype=x.dtype)
    rows = torch.arange(n, device=x.device)[:, None].expand(n, m)
    x0 = mu[rows, k]                                                       # (n, m, d)
    z = z * pvar[rows, k].sqrt()
    if Q is None:
        return x0 + z
    for c in range(mixture.K):  # rotate the eigen-coordinates of component c back
        sel = k == c
        if bool(sel.any()):
            x0[sel] += z[sel] @ Q[c].T
    return x0


def posterior_score(mixture: GaussianMixture, x, x0, t, process: ForwardProcess) -> torch.Tensor:
    r"""The posterior score by the closed-form identity of chapter 6 (eq. 60),

    .. math:: \nabla_x\log p(x_0\mid x) = \frac{\alpha x_0 - x}{\sigma^2} - s(x),

    with the mixture's closed-form score :math:`s`. Shape ``(n, m, d)``.

    Parameters
    ----------
    x : tensor ``(n, d)``, the conditioning points; x0 : tensor ``(n, m, d)``, data points
    (``m`` per conditioning point); t : positive scalar or ``(n,)``.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    x0 = _check_x0(x0, x)
    a = process.alpha(tt).to(x).expand(x.shape[0])[:, None, None]
    s = process.sigma(tt).to(x).expand(x.shape[0])[:, None, None]
    score = mixture.score(x, tt, process)
    return (a * x0 - x[:, None, :]) / s**2 - score[:, None, :]


def posterior_score_autograd(mixture: GaussianMixture, x, x0, t,
                             process: ForwardProcess) -> torch.Tensor:
    r"""The posterior score by automatic differentiation of Bayes' rule, shape ``(n, m, d)``.

    Bayes' rule reads :math:`\log p(x_0\mid x) = \log\mathcal N(x;\alpha x_0, \sigma^2 I) +
    \log p_0(x_0) - \log p_t(x)`, and the prior term does not depend on :math:`x`. This function
    differentiates :math:`\log\mathcal N(x;\alpha x_0,\sigma^2 I) - \log p_t(x)` with
    ``torch.autograd``, where :math:`\log p_t` is the mixture's
    :meth:`~diffnotes.mixtures.GaussianMixture.log_prob` (a logsumexp of Gaussian log
    densities). It uses neither the closed-form score nor the identity of
    :func:`posterior_score`, which it therefore tests (chapter 6). Each of the ``n m`` pairs
    gets its own copy of ``x``, so one backward pass gives every per-sample gradient.

    Parameters
    ----------
    x : tensor ``(n, d)``; x0 : tensor ``(n, m, d)``; t : positive scalar or ``(n,)``.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    x0 = _check_x0(x0, x)
    n, m, d = x0.shape
    a = process.alpha(tt).to(x).expand(n)
    s = process.sigma(tt).to(x).expand(n)
    a_rows, s_rows = a.repeat_interleave(m), s.repeat_interleave(m)        # (n m,)
    t_rows = tt.expand(n).repeat_interleave(m) if tt.ndim else tt
    with torch.enable_grad():
        xr = x.detach()[:, None, :].expand(n, m, d).reshape(n * m, d).clone().requires_grad_()
        resid = xr - a_rows[:, None] * x0.detach().reshape(n * m, d)
        log_kernel = (-0.5 * (resid**2).sum(1) / s_rows**2
                      - 0.5 * d * torch.log(2 * torch.pi * s_rows**2))
        log_post = log_kernel - mixture.log_prob(xr, t_rows, process)
        (grad,) = torch.autograd.grad(log_post.sum(), xr)
    return grad.reshape(n, m, d)


def _check_x0(x0, x: torch.Tensor) -> torch.Tensor:
    x0 = torch.as_tensor(x0).to(x)
    if x0.ndim != 3 or x0.shape[0] != x.shape[0] or x0.shape[2] != x.shape[1]:
        raise ValueError(f"x0 must have shape (n, m, d) = ({x.shape[0]}, m, {x.shape[1]}); "
                         f"got {tuple(x0.shape)}")
    return x0


def posterior_score_samples(mixture: GaussianMixture, x, t, process: ForwardProcess, m: int,
                            generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Samples of the posterior score :math:`g = \nabla_x\log p(x_0|x) = (\alpha x_0 -
    x)/\sigma^2 - s(x)` with :math:`x_0 \sim p(x_0|x_t = x)`, shape ``(n, m, d)`` (eq. 59-60).

    Their mean is 0 (Tweedie) and the mean of the outer products :math:`g g^\top` is the Fisher
    information :math:`F(x, t)`. The score comes from the identity (:func:`posterior_score`);
    :func:`check_fisher_definition` uses the autograd score instead.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    x0 = sample_posterior(mixture, x, tt, process, m, generator)
    return posterior_score(mixture, x, x0, tt, process)


def check_fisher_definition(mixture: GaussianMixture, x, t, process: ForwardProcess, m: int,
                            generator: torch.Generator | None = None, *,
                            tally: Tally | None = None, fisher=None, score=None,
                            n_sigma: float = 5.0) -> Tally:
    r"""Check :func:`fisher_information` against its definition, and the posterior-score
    identity against autograd, at the points ``x`` (chapter 6, theorem ``thm-fi-fisher``).

    1. Draw ``m`` exact posterior samples :math:`x_0 \sim p(x_0\mid x)` per point
       (:func:`sample_posterior`).
    2. Compute :math:`g = \nabla_x\log p(x_0\mid x)` by :func:`posterior_score_autograd`,
       independently of the identity, and compare it sample by sample with ``score`` (default
       :func:`posterior_score`, the identity :math:`(\alpha x_0 - x)/\sigma^2 - s(x)`), to
       rounding (``rtol = 1e-8``).
    3. Test every mean :math:`\hat E[g_i g_j]` (``i <= j``) against ``fisher`` (default
       :func:`fisher_information`, :math:`\alpha^2\mathrm{Cov}[x_0|x]/\sigma^4`) by a z-test at
       ``n_sigma`` standard errors, and each :math:`\hat E[g_i]` against 0.

    ``fisher`` and ``score`` take the arguments of :func:`fisher_information` and
    :func:`posterior_score`; pass a deliberately wrong one to see the check fail. Raises
    ``AssertionError`` at the first failing comparison; returns the :class:`Tally` (a new
    one labelled "F against its definition" unless ``tally`` is given).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    fisher = fisher_information if fisher is None else fisher
    score = posterior_score if score is None else score
    tally = Tally("F against its definition") if tally is None else tally
    x0 = sample_posterior(mixture, x, tt, process, m, generator)
    g = posterior_score_autograd(mixture, x, x0, tt, process)
    name = getattr(process, "name", type(process).__name__)
    tally.close(score(mixture, x, x0, tt, process), g, rtol=1e-8,
                atol=1e-8 * float(g.abs().max()),
                label=f"{name}: posterior score, identity against autograd")
    F = fisher(mixture, x, tt, process)
    d = x.shape[1]
    for p in range(x.shape[0]):
        for i in range(d):
            tally.mc(mc_estimate(g[p, :, i]), 0.0, n_sigma=n_sigma,
                     label=f"{name} point {p}: E[g_{i}] = 0")
            for j in range(i, d):
                tally.mc(mc_estimate(g[p, :, i] * g[p, :, j]), float(F[p, i, j]),
                         n_sigma=n_sigma, label=f"{name} point {p}: F[{i},{j}]")
    return tally


# -- entropy production --------------------------------------------------------------------------
def entropy_production_shares(mixture: GaussianMixture, x, t,
                              process: ForwardProcess) -> torch.Tensor:
    r"""Per-direction entropy production :math:`w(t)\,\lambda_i(F) = w(t)\,(\lambda_i(J) +
    1/\sigma^2)` at each point, eigen-directions sorted by decreasing :math:`\lambda_i(F)`, shape
    ``(n, d)`` (eq. 63-64, chapter 6). Rows sum to :func:`entropy_rate_fisher`; their means over
    :math:`x \sim p_t` are the shares of :math:`\dot H(t)`. A direction with
    :math:`\lambda_i(J) = -1/\sigma^2` produces nothing. EDM: :math:`t\lambda_i(F) =
    \nu_i/t \le 1/t` wherever :math:`J \preceq 0`.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    nu = normalized_fisher_spectrum(mixture, x, tt, process)
    w_s2 = (_rate_factor(tt, process) / process.sigma(tt) ** 2).expand(x.shape[0])
    return w_s2[:, None] * nu


def entropy_rate_fisher(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Per-sample :math:`w(t)\operatorname{tr}F(x, t)`, shape ``(n,)``; its mean over
    :math:`x\sim p_t` is the conditional entropy rate :math:`\dot H(t)` (eq. 62, chapter 6).

    EDM: :math:`t\operatorname{tr}F = \operatorname{tr}\mathrm{Cov}/t^3`; VP:
    :math:`\operatorname{tr}F`.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    a, s = process.alpha(tt), process.sigma(tt)
    tr_f = a**2 * _posterior_trace_cov(mixture, x, tt, process) / s**4
    return _rate_factor(tt, process) * tr_f


def entropy_rate_jacobian(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Per-sample :math:`w(t)\,(d/\sigma^2 + \sum_i\lambda_i(J))`, shape ``(n,)`` (eq. 63): the
    entropy rate read off the spectrum of the score Jacobian (local Lyapunov exponents).
    EDM: :math:`d/t + t\sum_i\lambda_i(J)`. Equal sample by sample to
    :func:`entropy_rate_fisher` up to rounding (subject to cancellation at small noise).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    jac = mixture.score_jacobian(x, tt, process)
    lam = torch.linalg.eigvalsh(0.5 * (jac + jac.transpose(1, 2)))
    s = process.sigma(tt)
    return _rate_factor(tt, process) * (mixture.d / s**2 + lam.sum(-1))
