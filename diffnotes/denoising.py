r"""Chapter 2's home module: Tweedie's formula and the denoising score-matching constant.

Tweedie (paper eq. 13-14): for :math:`x_t = \alpha x_0 + \sigma\varepsilon`,

.. math:: s(x) = \frac{\alpha\,E[x_0\mid x_t = x] - x}{\sigma^2} = -\frac{E[\varepsilon\mid
    x_t = x]}{\sigma}.

Denoising score matching (eq. 15-16) replaces the unknown score by the noise; the two
objectives differ by a constant, the irreducible error

.. math:: C(t) = E\lVert s(x_t) + \varepsilon/\sigma\rVert^2 = \frac{d}{\sigma^2} -
    E\lVert s\rVert^2 = \frac{\alpha^2}{\sigma^4}\,E\operatorname{tr}\mathrm{Cov}[x_0\mid x_t].

The closed forms live in :class:`~diffnotes.mixtures.GaussianMixture`; this module holds the
per-sample quantities whose Monte Carlo averages the chapter compares
(:func:`dsm_residuals`, :func:`dsm_constant_terms`), an independent importance-sampling
denoiser (:func:`posterior_mean_importance`) and the Gaussian-data reference
:func:`gaussian_dsm_constant`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validate import as_points, as_time
from .mixtures import GaussianMixture
from .processes import ForwardProcess


def _col(v: torch.Tensor) -> torch.Tensor:
    return v[:, None] if v.ndim == 1 else v


def dsm_residuals(score_fn: Callable, x0: torch.Tensor, t, process: ForwardProcess,
                  generator: torch.Generator | None = None):
    r"""Per-sample denoising score-matching residual :math:`\lVert s(x_t, t) +
    \varepsilon/\sigma_t\rVert^2` (eq. 15).

    Parameters
    ----------
    score_fn : ``(x (n, d), t) -> (n, d)``; ``t`` is passed as given (scalar or ``(n,)``).
    x0 : data samples ``(n, d)``.
    t : positive scalar or ``(n,)``.
    process : the forward process.
    generator : for the noise :math:`\varepsilon`.

    Returns
    -------
    (residuals ``(n,)``, xt ``(n, d)``, eps ``(n, d)``); the mean of the residuals estimates
    the DSM loss, which for the exact score is :math:`C(t)`.
    """
    x0 = as_points("x0", x0)
    tt = as_time("t", t, like=x0, n=x0.shape[0])
    xt, eps = process.perturb(x0, tt, generator)
    sig = process.sigma(tt).to(x0)
    s = score_fn(xt, tt)
    return ((s + eps / _col(sig.expand(x0.shape[0]))) ** 2).sum(1), xt, eps


def posterior_variance_term(mixture: GaussianMixture, x: torch.Tensor, t,
                            process: ForwardProcess) -> torch.Tensor:
    r"""Per-point :math:`\frac{\alpha^2}{\sigma^4}\operatorname{tr}\mathrm{Cov}[x_0\mid x_t=x]`,
    shape ``(n,)``: its mean over :math:`x_t \sim p_t` is the DSM constant :math:`C(t)`
    (eq. 16)."""
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x, n=x.shape[0])
    a, s = process.alpha(tt).to(x), process.sigma(tt).to(x)
    return a**2 / s**4 * mixture.posterior_trace_cov(x, tt, process)


def posterior_mean_importance(prior_samples: torch.Tensor, x: torch.Tensor, t: float,
                              process: ForwardProcess):
    r"""Self-normalised importance-sampling estimate of :math:`E[x_0\mid x_t = x]`.

    With prior draws :math:`x_0^{(i)} \sim p_0` and weights :math:`w_i \propto
    \exp(-\lVert x - \alpha x_0^{(i)}\rVert^2 / 2\sigma^2)` (the Gaussian likelihood),
    :math:`\hat\mu = \sum_i w_i x_0^{(i)} / \sum_i w_i`; its delta-method standard error is
    :math:`\sqrt{\sum_i w_i^2 (x_0^{(i)} - \hat\mu)^2} / \sum_i w_i` per coordinate. This uses
    nothing but samples and the kernel: an independent check of Tweedie's formula.

    Parameters
    ----------
    prior_samples : ``(N, d)``; x : query points ``(m, d)``; t : positive scalar.

    Returns
    -------
    (mean ``(m, d)``, stderr ``(m, d)``, effective sample size ``(m,)``).
    """
    x0 = as_points("prior_samples", prior_samples)
    x = as_points("x", x, x0.shape[1])
    tt = as_time("t", t, like=x)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    a, s = process.alpha(tt).to(x), process.sigma(tt).to(x)
    sq = torch.cdist(x, a * x0) ** 2  # (m, N)
    logw = -0.5 * sq / s**2
    w = torch.softmax(logw, dim=1)  # normalised weights, rows sum to one
    mean = w @ x0
    dev2 = (x0[None, :, :] - mean[:, None, :]) ** 2  # (m, N, d)
    stderr = torch.sqrt(torch.einsum("mn,mnd->md", w**2, dev2))
    ess = 1.0 / (w**2).sum(1)
    return mean, stderr, ess


class DSMTerms(NamedTuple):
    r"""Three per-sample estimators of the DSM constant :math:`C(t)` on the same draws.

    Each field but ``xt`` has shape ``(n,)`` and mean :math:`C(t)` (eq. 15-16):

    * ``residual``: :math:`\lVert s(x_t) + \varepsilon/\sigma\rVert^2`;
    * ``score_norm``: :math:`d/\sigma^2 - \lVert s(x_t)\rVert^2`;
    * ``posterior``: :math:`\frac{\alpha^2}{\sigma^4}\operatorname{tr}\mathrm{Cov}[x_0\mid
      x_t]`.

    ``xt`` ``(n, d)`` are the noised points they were evaluated at.
    """

    residual: torch.Tensor
    score_norm: torch.Tensor
    posterior: torch.Tensor
    xt: torch.Tensor


def dsm_constant_terms(mixture: GaussianMixture, x0: torch.Tensor, t, process: ForwardProcess,
                       generator: torch.Generator | None = None) -> DSMTerms:
    r"""The three per-sample estimators of :math:`C(t)` (eq. 15-16) on one set of draws.

    Noises ``x0`` once, :math:`x_t = \alpha x_0 + \sigma\varepsilon`, and evaluates the exact
    score of ``mixture`` there. Because the three share :math:`(x_0, \varepsilon)`, their
    pairwise differences are paired samples with mean zero: the chapter's test of eq. 16.

    Parameters
    ----------
    mixture : the data law :math:`p_0` (its exact score is used).
    x0 : samples of ``mixture``, shape ``(n, d)``.
    t : positive scalar or ``(n,)``.
    process : the forward process.
    generator : for the noise :math:`\varepsilon`.

    Returns
    -------
    :class:`DSMTerms` with fields ``residual``, ``score_norm``, ``posterior`` (each ``(n,)``)
    and ``xt`` ``(n, d)``.
    """
    x0 = as_points("x0", x0, mixture.d)
    tt = as_time("t", t, like=x0, n=x0.shape[0])
    xt, eps = process.perturb(x0, tt, generator)
    sig = _col(process.sigma(tt).to(x0).expand(x0.shape[0]))  # (n, 1)
    s = mixture.score(xt, tt, process)
    residual = ((s + eps / sig) ** 2).sum(1)
    score_norm = mixture.d / sig[:, 0] ** 2 - (s**2).sum(1)
    posterior = posterior_variance_term(mixture, xt, tt, process)
    return DSMTerms(residual, score_norm, posterior, xt)


def gaussian_dsm_constant(variances, t, process: ForwardProcess) -> torch.Tensor:
    r"""Exact :math:`C(t)` for Gaussian data whose covariance has eigenvalues ``variances``.

    For :math:`x_0 \sim \mathcal N(m, \Sigma)`, :math:`\Sigma` with eigenvalues
    :math:`\lambda_i`, the posterior :math:`x_0\mid x_t` is Gaussian with covariance eigenvalues
    :math:`\lambda_i\sigma^2/(\alpha^2\lambda_i + \sigma^2)`, whatever :math:`x_t`, so

    .. math:: C(t) = \sum_i \frac{\alpha^2\lambda_i}{\sigma^2(\alpha^2\lambda_i +
        \sigma^2)}

    (EDM, one dimension: :math:`v/(t^2(v + t^2))`). The mean :math:`m` does not enter.

    Parameters
    ----------
    variances : non-negative ``(d,)`` (float64).
    t : positive scalar or ``(m,)``.
    process : the forward process.

    Returns
    -------
    tensor shaped like ``t`` (float64).
    """
    lam = torch.as_tensor(variances, dtype=torch.float64)
    if lam.ndim != 1 or lam.shape[0] == 0:
        raise ValueError(f"variances must have shape (d,) with d >= 1; got {tuple(lam.shape)}")
    if not bool(torch.isfinite(lam).all()) or bool((lam < 0).any()):
        raise ValueError("variances must be finite and non-negative")
    tt = as_time("t", t)
    a2 = process.alpha(tt).to(torch.float64)[..., None] ** 2
    s2 = process.sigma(tt).to(torch.float64)[..., None] ** 2
    lam = lam.to(tt.device)
    return (a2 * lam / (s2 * (a2 * lam + s2))).sum(-1)


def gaussian_dsm_constant_forms() -> dict:
    r"""The three forms of :math:`C` for 1-D Gaussian data, derived by sympy from the definitions.

    Data :math:`x_0 \sim \mathcal N(\mu, v)`, kernel :math:`x_t = \alpha x_0 +
    \sigma\varepsilon`. Nothing about the answer is typed in:

    * the posterior :math:`p(x_0 \mid x_t = x) \propto p_0(x_0)\,\mathcal N(x; \alpha x_0,
      \sigma^2)` by Bayes' rule; its log is quadratic in :math:`x_0` (checked: the third
      derivative vanishes), so the posterior is Gaussian with variance
      :math:`-1/\partial_{x_0}^2 \log(p_0\,k)` and mean at the stationary point;
    * the marginal from Bayes' rule read backwards, :math:`\log p_t(x) = \log p_0(x_0) +
      \log k(x \mid x_0) - \log p(x_0 \mid x)` (checked: free of :math:`x_0`), and the score
      :math:`s = \partial_x \log p_t`;
    * the expectations over the independent standard normals :math:`z = (x_0 - \mu)/\sqrt v`
      and :math:`\varepsilon` by expanding into monomials, :math:`\mathbb E z^k = (k-1)!!`
      for even :math:`k`, 0 for odd.

    Returns
    -------
    dict with sympy expressions ``"residual"`` :math:`\mathbb E(s + \varepsilon/\sigma)^2`,
    ``"score_norm"`` :math:`1/\sigma^2 - \mathbb E s^2`, ``"posterior"``
    :math:`\alpha^2\,\mathbb E\operatorname{Var}[x_0 \mid x_t]/\sigma^4`, the posterior
    variance ``"posterior_variance"``, and the symbols ``"alpha"``, ``"sigma"``, ``"v"``
    (positive). Chapter 2 checks each form against :prf:ref:`lem-ds-bounds` with
    :func:`check_gaussian_dsm_constant`.
    """
    import sympy as sp

    x0, x, mu, z, eps = sp.symbols("x_0 x mu z epsilon", real=True)
    v, alpha, sigma = sp.symbols("v alpha sigma", positive=True)

    def log_gauss(y, mean, var):
        return -(y - mean) ** 2 / (2 * var) - sp.log(2 * sp.pi * var) / 2

    log_joint = sp.expand(log_gauss(x0, mu, v) + log_gauss(x, alpha * x0, sigma**2))
    if sp.simplify(sp.diff(log_joint, x0, 3)) != 0:
        raise AssertionError("the log posterior is not quadratic in x0")
    post_var = sp.simplify(-1 / sp.diff(log_joint, x0, 2))
    (post_mean,) = sp.solve(sp.diff(log_joint, x0), x0)
    log_p = sp.simplify(log_joint - log_gauss(x0, post_mean, post_var))
    if sp.simplify(sp.diff(log_p, x0)) != 0:
        raise AssertionError("log p_t(x) from Bayes' rule depends on x0")
    score = sp.simplify(sp.diff(log_p, x))

    def normal_expectation(expr):
        poly = sp.Poly(sp.expand(expr), z, eps)
        return sp.Add(*[c * sp.Mul(*[sp.factorial2(k - 1) if k % 2 == 0 else 0 for k in pw])
                        for pw, c in poly.terms()])

    xt = alpha * (mu + sp.sqrt(v) * z) + sigma * eps
    s = sp.cancel(score.subs(x, xt))
    return {
        "residual": sp.simplify(normal_expectation((s + eps / sigma) ** 2)),
        "score_norm": sp.simplify(1 / sigma**2 - normal_expectation(s**2)),
        "posterior": sp.simplify(alpha**2 / sigma**4
                                 * normal_expectation(post_var.subs(x, xt))),
        "posterior_variance": post_var,
        "alpha": alpha, "sigma": sigma, "v": v,
    }


def check_gaussian_dsm_constant(claimed: Callable, tally=None) -> dict:
    r"""Assert that every form of :func:`gaussian_dsm_constant_forms` equals ``claimed``.

    ``claimed(alpha, sigma, v)`` returns a sympy expression for :math:`C` (for chapter 2,
    :prf:ref:`lem-ds-bounds`: :math:`\alpha^2 v/(\sigma^2(\alpha^2 v + \sigma^2))`). Each form
    is compared by :func:`~diffnotes.checks.check_identity` (through ``tally.identity`` when a
    :class:`~diffnotes.checks.Tally` is given), which raises ``AssertionError`` on a wrong
    claim. Returns the forms.
    """
    from .checks import check_identity

    forms = gaussian_dsm_constant_forms()
    target = claimed(forms["alpha"], forms["sigma"], forms["v"])
    for name in ("residual", "score_norm", "posterior"):
        label = f"C from the {name.replace('_', '-')} form"
        if tally is None:
            check_identity(forms[name], target, label=label, verbose=False)
        else:
            tally.identity(forms[name], target, label=label)
    return forms
