r"""Chapter 7's home module: pathwise conditional entropy, its variance, and speciation.

The pathwise conditional entropy of a noisy state is the entropy of the posterior it induces,
:math:`h(x_t) = H[p(x_0\mid x_t)]`, and :math:`V(t) = \operatorname{Var}_{x_t\sim p_t} h(x_t)`
(paper eq. 65-66). For Gaussian classes the chain rule with the class label (eq. 69) splits it,

.. math::
    h(x) = H_C(x) + \sum_c r_c(x) H_c - \delta(x), \qquad
    H_C(x) = -\sum_c r_c(x)\log r_c(x),

with :math:`H_c` the entropy of :math:`p(x_0\mid c, x_t)` (free of :math:`x`) and
:math:`\delta \ge 0` the overlap term. For a delta mixture :math:`h = H_C`; for equal,
well-separated classes :math:`h = H_C + \text{const}`, so :math:`V` equals the class-entropy
variance :math:`V_C = \operatorname{Var} H_C`; for unequal covariances they differ
(:func:`pathwise_entropy_samples`, :func:`check_pathwise_variance`).

For class means :math:`\sqrt d\,u_c` and a shared isotropic within-class variance :math:`s^2`,
the class logits at :math:`x_t = \alpha_t x_0 + \sigma_t z` are, up to a constant in :math:`c`,

.. math::
    \ell_c = \log\pi_c - \tfrac{\gamma}{2}\lVert u_c - u_C\rVert^2 + \sqrt\gamma\,\zeta_c,
    \qquad \zeta = U z \sim \mathcal N(0, G),\quad G = U U^\top,
    \qquad \gamma = \frac{d\,\alpha_t^2}{\sigma_t^2 + s^2\alpha_t^2}

(eq. 80-82, 90), so the law of :math:`H_C` depends on the time only through the effective SNR
:math:`\gamma` and :math:`V_C = \Phi(\gamma)` (eq. 72, 83). In the VP process
:math:`\gamma = d e^{-2t}/(1 - e^{-2t})` (eq. 71, 81); in the EDM :math:`\gamma = d/t^2` (eq. 97).

Two ways to estimate :math:`V_C`, so that each checks the other:

* :func:`class_entropy_samples` -- the direct Monte Carlo in :math:`\mathbb R^d`: draws
  :math:`x_t` from the noised mixture and evaluates the exact class posterior of
  :class:`~diffnotes.mixtures.GaussianMixture`, in chunks of rows so that memory stays
  bounded at any ``d`` (any covariances);
* :func:`reduced_class_entropy_samples` -- the :math:`\gamma`-reduced representation, which
  samples only the ``K`` numbers :math:`(C, \zeta)` per path, so its cost does not depend on
  ``d``.

:func:`variance_estimate` turns per-path samples into :math:`\hat V` with a delta-method
standard error, and :func:`two_class_phi` computes :math:`\Phi(\gamma)` for two equiprobable
classes by one-dimensional quadrature, the reference for both. :func:`speciation_time` gives
:math:`t_s = \tfrac12\log\Lambda` (eq. 74-75), Λ the top eigenvalue of the data covariance.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._validate import (
    as_points,
    as_time,
    check_finite,
    check_positive_int,
    check_process,
    check_weights,
)
from .checks import MCEstimate, Tally, mc_estimate
from .mixtures import CHUNK_ELEMENTS, GaussianMixture, _chunk_elements
from .processes import VP, ForwardProcess

__all__ = [
    "PathwiseEntropy",
    "class_entropy",
    "class_entropy_samples",
    "check_pathwise_variance",
    "draw_variance_estimate",
    "draw_variance_gap",
    "effective_snr",
    "mixture_gram",
    "overlap_term_samples",
    "pathwise_entropy_samples",
    "posterior_draws",
    "reduced_class_entropy_samples",
    "rescaled_mixture",
    "speciation_time",
    "top_covariance_eigenvalue",
    "two_class_conditional_entropy",
    "two_class_phi",
    "variance_estimate",
    "within_class_entropies",
]


# -- effective SNR and the speciation time -----------------------------------------------------
def effective_snr(t, d: int, process: ForwardProcess, s2: float = 0.0) -> torch.Tensor:
    r"""The effective SNR :math:`\gamma = d\,\alpha_t^2/(\sigma_t^2 + s^2\alpha_t^2)`.

    VP, points (``s2 = 0``): :math:`d e^{-2t}/(1 - e^{-2t})` (eq. 71, 81); VP, Gaussian classes
    of variance :math:`s^2`: :math:`d e^{-2t}/(1 - e^{-2t} + s^2 e^{-2t})` (eq. 90); EDM:
    :math:`d/(t^2 + s^2)` (eq. 97). It is :math:`d` times the SNR of chapter 2 for
    ``s2 = 0``.

    Parameters
    ----------
    t : positive scalar or 1-D tensor of times.
    d : the dimension (a positive integer, or a positive float for a continuous sweep).
    process : a :class:`~diffnotes.processes.ForwardProcess`.
    s2 : the within-class variance :math:`s^2 \ge 0`.

    Returns
    -------
    tensor of the shape of ``t`` (float64 unless ``t`` is a tensor with its own dtype).
    """
    check_process(process)
    if isinstance(d, bool) or not isinstance(d, int | float) or not d > 0 or math.isinf(d):
        raise ValueError(f"d must be a positive finite number; got {d!r}")
    if not (isinstance(s2, int | float) and s2 >= 0 and math.isfinite(s2)):
        raise ValueError(f"s2 must be a finite non-negative number; got {s2!r}")
    tt = as_time("t", t, like=t if isinstance(t, torch.Tensor) else None)
    a2 = process.alpha(tt) ** 2
    return d * a2 / (process.sigma(tt) ** 2 + s2 * a2)


def top_covariance_eigenvalue(mixture: GaussianMixture) -> float:
    r"""The top eigenvalue :math:`\Lambda` of the data covariance ``mixture.covariance()``.

    For isotropic components :math:`\operatorname{Cov} = B^\top B + \bar v I` with
    :math:`B = \operatorname{diag}(\sqrt{\pi})(M - \bar m)` of shape ``(K, d)`` and
    :math:`\bar v = \sum_c\pi_c v_c`, so :math:`\Lambda = \lambda_{\max}(B B^\top) + \bar v` from
    a ``(K, K)`` matrix: no ``(d, d)`` matrix is formed, and ``d = 10^5`` is cheap. Full
    covariances use ``eigvalsh(mixture.covariance())``.
    """
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    if not mixture.isotropic:
        return float(torch.linalg.eigvalsh(mixture.covariance())[-1])
    B = mixture.weights.sqrt()[:, None] * (mixture.means - mixture.mean())
    top = float(torch.linalg.eigvalsh(B @ B.T)[-1]) if mixture.K > 1 else 0.0
    return top + float(mixture.weights @ mixture.variances)


def speciation_time(mixture: GaussianMixture, process: ForwardProcess | None = None) -> float:
    r"""The speciation time of the VP (Ornstein-Uhlenbeck) process, :math:`t_s = \tfrac12\log
    \Lambda` (eq. 74-75; Biroli et al. 2024).

    It solves :math:`e^{-2t}\Lambda = 1`: the signal variance left along the top principal
    direction of the data equals the unit variance of the stationary noise. For classes at
    :math:`\pm\sqrt d\,u` with :math:`\lvert u\rvert = 1`, :math:`\Lambda = d` and
    :math:`t_s = \tfrac12\log d`. Raises ``ValueError`` when :math:`\Lambda \le 1` (no
    speciation at a positive time), or when ``process`` is not VP (``None`` means VP).
    """
    if process is not None and not isinstance(process, VP):
        raise ValueError(f"process must be VP() (t_s = log(Lambda)/2 is the OU speciation "
                         f"time); got {process!r}")
    lam = top_covariance_eigenvalue(mixture)
    if not lam > 1.0:
        raise ValueError(f"the data covariance must have top eigenvalue > 1 for a positive "
                         f"speciation time; got Lambda = {lam:.4g}")
    return 0.5 * math.log(lam)


def mixture_gram(mixture: GaussianMixture) -> torch.Tensor:
    r"""The Gram matrix :math:`G = U U^\top = M M^\top / d` of the rescaled class means
    :math:`u_c = m_c/\sqrt d`, shape ``(K, K)``: with the weights, all that the reduced
    representation needs to know about the classes."""
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    return mixture.means @ mixture.means.T / mixture.d


# -- the pathwise class entropy -------------------------------------------------------------
def class_entropy(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Pathwise class entropy :math:`h(x) = -\sum_c r_c(x)\log r_c(x)` (nats), shape ``(n,)``.

    :math:`r_c(x) = p(c\mid x_t = x)` from the closed-form posterior of the mixture (eq. 79).
    For a delta mixture this is the whole pathwise conditional entropy :math:`H[p(x_0\mid
    x_t)]` (eq. 65, 78); for Gaussian classes it is the class part :math:`H_C` of the chain
    rule (eq. 69), which carries the variance only when the classes share one covariance
    and barely overlap (:func:`pathwise_entropy_samples` gives the other parts).
    Computed from log-probabilities (``log_softmax``), so it stays exact where the posterior
    is nearly one-hot.
    """
    x = as_points("x", x, mixture.d)
    logw = torch.log(mixture.component_posterior(x, t, process).clamp_min(0.0))
    return _entropy_from_logits(logw)


def _entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=-1)
    return -(torch.exp(logp) * torch.where(torch.isinf(logp), 0.0, logp)).sum(-1)


def _noised_chunk(mixture: GaussianMixture, labels: torch.Tensor, a: float, s: float,
                  generator, dtype) -> torch.Tensor:
    r"""Rows :math:`x_t = \alpha m_k + \alpha\Sigma_k^{1/2} z' + \sigma z` for the given labels."""
    device = labels.device
    n, d = labels.shape[0], mixture.d
    m = mixture.means.to(device=device, dtype=dtype)[labels]
    if mixture.isotropic:
        sd = torch.sqrt(a**2 * mixture.variances.to(device=device, dtype=dtype)[labels] + s**2)
        z = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
        return a * m + sd[:, None] * z
    z0 = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
    root = (mixture.eigvecs * mixture.eigvals.sqrt()[:, None, :]).to(device=device, dtype=dtype)
    x = m.clone()
    for c in range(mixture.K):  # a loop over components, not samples
        rows = labels == c
        x[rows] += z0[rows] @ root[c].T
    z = torch.randn(n, d, generator=generator, device=device, dtype=dtype)
    return a * x + s * z


def class_entropy_samples(mixture: GaussianMixture, t: float, process: ForwardProcess, n: int,
                          generator: torch.Generator | None = None, *,
                          chunk_rows: int | None = None, dtype=torch.float64) -> torch.Tensor:
    r"""Direct Monte Carlo: :math:`h(x_t)` for ``n`` independent draws :math:`x_t\sim p_t`,
    shape ``(n,)``, computed in :math:`\mathbb R^d` with the exact class posterior.

    Labels :math:`C\sim\pi` are drawn first; then chunks of ``chunk_rows`` rows (default:
    ``CHUNK_ELEMENTS // d``, about 134 MB of float64 at a time) draw
    :math:`x_t = \alpha_t x_0 + \sigma_t z` and evaluate :func:`class_entropy`. Only one
    ``(chunk_rows, d)`` block lives at once, so ``d = 10^4`` runs on a laptop and
    ``d = 10^5`` on a GPU with the same call. Everything runs on the generator's device; the
    draws (not their law) depend on ``chunk_rows``.

    Parameters
    ----------
    mixture : the data; any :class:`~diffnotes.mixtures.GaussianMixture`.
    t : positive scalar time.
    process : the forward process.
    n : number of paths.
    generator : ``torch.Generator``; its device is the device of the computation.
    """
    check_process(process)
    check_positive_int("n", n)
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    if chunk_rows is None:
        # the fixed cap, not the memory-derived budget: here the draws depend on the chunking,
        # and a seeded run must not change with the free memory of the machine
        chunk_rows = max(1, CHUNK_ELEMENTS // (mixture.d * max(1, mixture.K // 8)))
    check_positive_int("chunk_rows", chunk_rows)
    device = generator.device if generator is not None else mixture.means.device
    a, s = float(process.alpha(tt)), float(process.sigma(tt))
    labels = torch.multinomial(mixture.weights.to(device), n, replacement=True,
                               generator=generator)
    out = torch.empty(n, dtype=dtype, device=device)
    for start in range(0, n, chunk_rows):
        sl = slice(start, min(n, start + chunk_rows))
        x = _noised_chunk(mixture, labels[sl], a, s, generator, dtype)
        out[sl] = class_entropy(mixture, x, float(tt), process)
    return out


def reduced_class_entropy_samples(gram, gamma, n: int,
                                  generator: torch.Generator | None = None, *,
                                  weights=None, chunk_rows: int | None = None,
                                  dtype=torch.float64) -> torch.Tensor:
    r"""The :math:`\gamma`-reduced representation: :math:`h` for ``n`` paths at each
    :math:`\gamma`, shape ``(len(gamma), n)``, without ever forming a ``d``-vector.

    Each path draws its class :math:`C\sim\pi` and :math:`\zeta\sim\mathcal N(0, G)` once
    (:math:`\zeta = R w`, :math:`R R^\top = G`, :math:`w\sim\mathcal N(0, I_K)`); at every
    :math:`\gamma` its logits are (eq. 82)

    .. math:: \ell_c = \log\pi_c - \tfrac\gamma2 (G_{cc} - 2G_{cC} + G_{CC}) + \sqrt\gamma\,
        \zeta_c .

    The same :math:`(C, \zeta)` serve every :math:`\gamma` (common random numbers), so a curve
    in :math:`\gamma` is smooth and its errors are correlated along it.

    Parameters
    ----------
    gram : tensor ``(K, K)``, symmetric PSD, :math:`G = UU^\top` (:func:`mixture_gram`).
    gamma : non-negative scalar or 1-D tensor of effective SNRs (:func:`effective_snr`).
    n : number of paths.
    weights : class priors ``(K,)`` (default uniform).
    chunk_rows : paths per chunk (default keeps ``len(gamma) * rows * K`` within the core's
        memory-derived budget; the draws are made first, so the result does not depend on it).
    """
    check_positive_int("n", n)
    device = generator.device if generator is not None else torch.device("cpu")
    G = torch.as_tensor(gram, dtype=torch.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 1:
        raise ValueError(f"gram must have shape (K, K); got {tuple(G.shape)}")
    check_finite("gram", G)
    if bool(((G - G.T).abs() > 1e-10 * G.abs().max().clamp_min(1.0)).any()):
        raise ValueError("gram must be symmetric")
    lam, Q = torch.linalg.eigh(0.5 * (G + G.T))
    if float(lam.min()) < -1e-10 * max(1.0, float(lam.abs().max())):
        raise ValueError(f"gram must be positive semi-definite; min eigenvalue "
                         f"{float(lam.min()):.3g}")
    K = G.shape[0]
    w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else \
        torch.as_tensor(weights, dtype=torch.float64)
    check_weights("weights", w, K)
    g = torch.as_tensor(gamma, dtype=torch.float64).reshape(-1)
    check_finite("gamma", g)
    if g.numel() == 0 or bool((g < 0).any()):
        raise ValueError("gamma must be a non-empty set of non-negative numbers")
    cast = {"device": device, "dtype": dtype}
    R = (Q * lam.clamp_min(0.0).sqrt()).to(**cast)          # R R^T = G
    diag = torch.diagonal(G).to(**cast)
    Gc, logw, g = G.to(**cast), torch.log(w).to(**cast), g.to(**cast)
    labels = torch.multinomial(w.to(device), n, replacement=True, generator=generator)
    zeta = torch.randn(n, K, generator=generator, **cast) @ R.T  # (n, K)
    if chunk_rows is None:
        chunk_rows = max(1, _chunk_elements(zeta) // (g.numel() * K))
    check_positive_int("chunk_rows", chunk_rows)
    out = torch.empty(g.numel(), n, **cast)
    for start in range(0, n, chunk_rows):
        sl = slice(start, min(n, start + chunk_rows))
        C = labels[sl]
        dist2 = diag[None, :] - 2 * Gc[C] + diag[C][:, None]      # (rows, K)
        logits = (logw[None, None, :] - 0.5 * g[:, None, None] * dist2[None]
                  + g.sqrt()[:, None, None] * zeta[sl][None])   # (n_gamma, rows, K)
        out[:, sl] = _entropy_from_logits(logits)
    return out


def _check_isotropic_density(mixture: GaussianMixture, who: str) -> None:
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    if not mixture.isotropic or bool((mixture.variances <= 0).any()):
        raise ValueError(f"{who} needs isotropic components with positive variances "
                         "(for a delta mixture x_0 is discrete and h is the class entropy)")


def _scalar_coeffs(mixture: GaussianMixture, x, t, process: ForwardProcess):
    check_process(process)
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    return x, tt, process.alpha(tt), process.sigma(tt)


def posterior_draws(mixture: GaussianMixture, x, t, process: ForwardProcess,
                    generator: torch.Generator | None = None, draws: int = 1) -> torch.Tensor:
    r"""Exact draws of :math:`x_0 \sim p(x_0\mid x_t = x)` for isotropic Gaussian classes,
    shape ``(draws, n, d)``.

    The posterior is itself a Gaussian mixture: class :math:`c` with probability
    :math:`r_c(x)`, then :math:`x_0 \sim \mathcal N(\mu_c(x), P_c I)` with

    .. math:: P_c = \frac{v_c\sigma^2}{\alpha^2 v_c + \sigma^2}, \qquad
        \mu_c(x) = m_c + \frac{\alpha v_c}{\alpha^2 v_c + \sigma^2}(x - \alpha m_c) .

    Each of the ``draws`` rows is independent given ``x``.
    """
    _check_isotropic_density(mixture, "posterior_draws")
    check_positive_int("draws", draws)
    x, tt, a, s = _scalar_coeffs(mixture, x, t, process)
    r = mixture.component_posterior(x, tt, process)
    c = torch.multinomial(r, draws, replacement=True, generator=generator).T   # (draws, n)
    v = mixture.variances.to(x)[c][..., None]
    m = mixture.means.to(x)[c]
    cc = a**2 * v + s**2
    mu = m + a * v / cc * (x[None] - a * m)
    z = torch.randn(mu.shape, generator=generator, device=x.device, dtype=x.dtype)
    return mu + torch.sqrt(v * s**2 / cc) * z


def _data_class_entropy(mixture: GaussianMixture, x0: torch.Tensor) -> torch.Tensor:
    """H[p(c | x_0)] of the data's own class posterior (isotropic classes), shape x0.shape[:-1]."""
    vv = mixture.variances.to(x0)
    means = mixture.means.to(x0)
    sq = ((x0**2).sum(-1, keepdim=True) - 2 * x0 @ means.T
          + (means**2).sum(1)).clamp_min(0.0)
    logits = torch.log(mixture.weights.to(x0)) - 0.5 * sq / vv - 0.5 * mixture.d * vv.log()
    return _entropy_from_logits(logits)


def overlap_term_samples(mixture: GaussianMixture, x, t: float, process: ForwardProcess,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One-draw estimates of the chain-rule remainder :math:`\delta(x) = E[H[p(c\mid x_0)]
    \mid x_t = x]`, shape ``(n,)``.

    For components with a density, the chain rule for the pair :math:`(x_0, C)` given
    :math:`x_t = x`, with :math:`p(c\mid x_0, x_t) = p(c\mid x_0)` (Markov), reads

    .. math:: H[p(x_0\mid x)] = H[p(c\mid x)] + \sum_c r_c(x) H[p(x_0\mid c, x)] - \delta(x).

    Draws one :math:`x_0` per row from the exact posterior (:func:`posterior_draws`) and
    returns :math:`H[p(c\mid x_0)]`: an unbiased, non-negative estimate of :math:`\delta(x)`.
    Isotropic components only (``v_c > 0``).
    """
    _check_isotropic_density(mixture, "overlap_term_samples")
    return _data_class_entropy(mixture, posterior_draws(mixture, x, t, process, generator)[0])


def within_class_entropies(mixture: GaussianMixture, t: float, process: ForwardProcess
                           ) -> torch.Tensor:
    r"""The entropies :math:`H_c = H[p(x_0\mid c, x_t)] = \frac d2\log(2\pi e P_c)`,
    :math:`P_c = v_c\sigma_t^2/(\alpha_t^2 v_c + \sigma_t^2)`, shape ``(K,)``, in nats.

    They do not depend on :math:`x_t`; they differ between classes exactly when the
    variances :math:`v_c` do. Isotropic components with :math:`v_c > 0`. Float64.
    """
    _check_isotropic_density(mixture, "within_class_entropies")
    check_process(process)
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    a2, s2 = process.alpha(tt) ** 2, process.sigma(tt) ** 2
    v = mixture.variances
    P = v * s2 / (a2 * v + s2)
    return 0.5 * mixture.d * torch.log(2 * math.pi * math.e * P)


class PathwiseEntropy(NamedTuple):
    r"""Per-path pieces of :math:`h(x) = H[p(x_0\mid x)]` (:func:`pathwise_entropy_samples`).

    ``full`` ``(draws, n)``: :math:`-\log p(x_0^{(i)}\mid x)` at independent exact posterior
    draws, by Bayes' rule from the data density, so ``E[full[i] | x] = h(x)``;
    ``class_entropy`` ``(n,)``: :math:`H_C(x) = H[p(c\mid x)]`;
    ``within`` ``(n,)``: :math:`W(x) = \sum_c r_c(x) H_c`;
    ``overlap`` ``(draws, n)``: :math:`H[p(c\mid x_0^{(i)})]` at the same draws, so
    ``E[overlap[i] | x] = δ(x)``.
    """

    full: torch.Tensor
    class_entropy: torch.Tensor
    within: torch.Tensor
    overlap: torch.Tensor

    @property
    def chain(self) -> torch.Tensor:
        r"""The chain-rule side :math:`H_C + W - \hat\delta_i`, shape ``(draws, n)``."""
        return self.class_entropy + self.within - self.overlap


def pathwise_entropy_samples(mixture: GaussianMixture, x, t: float, process: ForwardProcess,
                             generator: torch.Generator | None = None, draws: int = 2
                             ) -> PathwiseEntropy:
    r"""The two sides of the chain rule for :math:`h(x) = H[p(x_0\mid x_t = x)]`, per path.

    The *full* side never uses the chain rule: it draws :math:`x_0^{(i)}` from the exact
    posterior (:func:`posterior_draws`) and evaluates

    .. math:: -\log p(x_0\mid x) = -\log p_0(x_0) - \log\mathcal N(x; \alpha x_0,
        \sigma^2 I) + \log p_t(x)

    with ``mixture.log_density`` and ``mixture.log_prob``. The *chain* side is
    :math:`H_C(x) + \sum_c r_c(x) H_c - H[p(c\mid x_0^{(i)})]`. Both have conditional mean
    :math:`h(x)` given :math:`x`; two or more independent draws give unbiased estimates of
    :math:`V = \operatorname{Var} h` by :func:`draw_variance_estimate`.
    """
    _check_isotropic_density(mixture, "pathwise_entropy_samples")
    x, tt, a, s = _scalar_coeffs(mixture, x, t, process)
    x0 = posterior_draws(mixture, x, tt, process, generator, draws)        # (draws, n, d)
    n, d = x.shape
    flat = x0.reshape(-1, d)
    log_lik = (-0.5 * ((x[None] - a * x0) ** 2).sum(-1) / s**2
               - 0.5 * d * torch.log(2 * math.pi * s**2))
    full = (-mixture.log_density(flat).reshape(draws, n) - log_lik
            + mixture.log_prob(x, tt, process)[None])
    r = mixture.component_posterior(x, tt, process)
    return PathwiseEntropy(full=full, class_entropy=_entropy_from_logits(torch.log(r)),
                           within=r @ within_class_entropies(mixture, float(tt), process).to(x),
                           overlap=_data_class_entropy(mixture, x0))


def rescaled_mixture(mixture: GaussianMixture, t: float, process: ForwardProcess
                     ) -> GaussianMixture:
    r"""The law of :math:`y = x_t/(\alpha_t\sqrt d)` (eq. 93-95): a Gaussian mixture with means
    :math:`u_c = m_c/\sqrt d` and covariances :math:`\Sigma_c/d + I/\gamma`,
    :math:`\gamma = d\alpha_t^2/\sigma_t^2`.

    The map is invertible, so :math:`p(c\mid y) = p(c\mid x_t)` and the class entropy
    :math:`H_C` (hence :math:`V_C`) is unchanged; the time enters only through
    :math:`1/\gamma`, the components only through :math:`\Sigma_c/d`. This fixes
    :math:`V_C`, not :math:`V`: with unequal :math:`\Sigma_c` the within-class term of the
    chain rule varies with :math:`x_t`. Evaluate its posterior at zero extra noise with
    ``rescaled.component_posterior(y, tiny, EDM())`` or directly from its log densities.
    """
    check_process(process)
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    d = mixture.d
    inv_gamma = float(process.sigma(tt) ** 2 / (d * process.alpha(tt) ** 2))
    if mixture.isotropic:
        covs = mixture.variances / d + inv_gamma
    else:
        eye = torch.eye(d, dtype=torch.float64, device=mixture.means.device)
        covs = mixture.covariances / d + inv_gamma * eye
    return GaussianMixture(mixture.means / math.sqrt(d), mixture.weights, covs)


# -- estimates and references ----------------------------------------------------------------
def variance_estimate(samples: torch.Tensor) -> MCEstimate:
    r"""The sample variance of i.i.d. samples with its delta-method standard error.

    :math:`\hat V = \frac{1}{n-1}\sum_i (h_i - \bar h)^2` (unbiased) and

    .. math:: \operatorname{se}(\hat V)^2 = \frac{1}{n}\Big(\hat\mu_4 - \frac{n-3}{n-1}
        \hat V^2\Big), \qquad \hat\mu_4 = \frac1n\sum_i (h_i - \bar h)^4,

    the exact variance of the sample variance with the central moments replaced by their
    estimates (the delta method's :math:`(\mu_4 - \sigma^4)/n` plus its :math:`O(1/n^2)`
    correction). Accumulated in float64.

    Parameters
    ----------
    samples : tensor ``(n,)``, ``n >= 4``.
    """
    x = torch.as_tensor(samples)
    if x.ndim != 1 or x.shape[0] < 4:
        raise ValueError(f"samples must have shape (n,) with n >= 4; got {tuple(x.shape)}")
    x = x.detach().to(torch.float64)
    check_finite("samples", x)
    n = x.shape[0]
    dev = x - x.mean()
    v = float((dev**2).sum()) / (n - 1)
    mu4 = float((dev**4).mean())
    var_v = max(mu4 - (n - 3) / (n - 1) * v**2, 0.0) / n
    return MCEstimate(v, math.sqrt(var_v), n)


def _pair_products(samples: torch.Tensor) -> torch.Tensor:
    """Per path, the mean product of centred values over pairs of distinct draws, (n,)."""
    c = samples - samples.mean(dim=1, keepdim=True)          # centre each draw over the paths
    m = c.shape[0]
    if m == 1:
        return c[0] ** 2
    tot = c.sum(0)
    return (tot**2 - (c**2).sum(0)) / (m * (m - 1))


def _as_draws(name: str, samples) -> torch.Tensor:
    x = torch.as_tensor(samples).detach().to(torch.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(f"{name} must have shape (draws, n) or (n,) with n >= 4; got "
                         f"{tuple(x.shape)}")
    check_finite(name, x)
    return x


def draw_variance_estimate(samples) -> MCEstimate:
    r""":math:`\operatorname{Var}_x E[y\mid x]` from ``samples`` of shape ``(m, n)``: ``m``
    draws of :math:`y` that are independent given each of ``n`` i.i.d. paths :math:`x`.

    Per path the mean of :math:`(y_i - \bar y_i)(y_j - \bar y_j)` over pairs :math:`i \ne j`
    (:math:`\bar y_i` the mean of draw :math:`i` over the paths) has expectation
    :math:`\operatorname{Var}_x E[y\mid x]`: the noise of each draw given :math:`x` drops out,
    and more draws shrink its contribution to the error. The estimate is the mean over paths
    times :math:`n/(n-1)`; the standard error their standard deviation over :math:`\sqrt n`.
    With ``m = 1`` (or a 1-D tensor) it is the ordinary sample variance, for an exact
    per-path quantity.
    """
    p = _pair_products(_as_draws("samples", samples))
    n = p.shape[0]
    return MCEstimate(float(p.sum()) / (n - 1), float(p.std()) / math.sqrt(n), n)


def draw_variance_gap(samples, reference) -> MCEstimate:
    r"""``draw_variance_estimate(samples) - draw_variance_estimate(reference)`` on the same
    paths, with the standard error of the *paired* per-path differences, so that the common
    path-to-path variation cancels. Shapes ``(m, n)`` and ``(m', n)`` (or ``(n,)``)."""
    a, b = _as_draws("samples", samples), _as_draws("reference", reference)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"samples and reference must cover the same n paths; got "
                         f"{a.shape[1]} and {b.shape[1]}")
    diff = _pair_products(a) - _pair_products(b)
    n = diff.shape[0]
    return MCEstimate(float(diff.sum()) / (n - 1), float(diff.std()) / math.sqrt(n), n)


def check_pathwise_variance(mixture: GaussianMixture, t: float, process: ForwardProcess,
                            n: int, generator: torch.Generator | None = None, *,
                            draws: int = 8, reference: str = "chain",
                            tally: Tally | None = None) -> dict[str, MCEstimate]:
    r"""Check the variance of the full pathwise entropy :math:`V = \operatorname{Var} h`
    against a claimed value, and the chain rule in mean, path by path; raises
    ``AssertionError`` when a claim fails.

    Draws ``n`` states :math:`x_t\sim p_t` and ``draws`` exact posterior draws per state
    (:func:`pathwise_entropy_samples`). :math:`V` is estimated from the full side alone, the
    between-draw covariance of :math:`-\log p(x_0^{(i)}\mid x)` (:func:`draw_variance_estimate`),
    and compared at 5σ, paired (:func:`draw_variance_gap`), with

    * ``reference="chain"``: the chain rule's :math:`\operatorname{Var}(H_C + W - \delta)`
      (true for any isotropic classes);
    * ``reference="class"``: the class-entropy variance :math:`V_C = \operatorname{Var} H_C`
      (true only when :math:`W` is constant and :math:`\delta\approx 0`: equal, separated
      classes).

    It also checks :math:`E[-\log p(x_0\mid x) - (H_C + W - \hat\delta)] = 0` at 5σ.

    Returns
    -------
    dict with the estimates ``V`` (full side), ``V_chain``, ``V_C`` (sample variance of
    :math:`H_C`), ``gap`` (V minus the reference, paired) and ``chain_mean_gap``.
    """
    if reference not in ("chain", "class"):
        raise ValueError(f"reference must be 'chain' or 'class'; got {reference!r}")
    check_positive_int("n", n)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 2:
        raise ValueError(f"draws must be an integer >= 2; got {draws!r}")
    tally = Tally("pathwise variance") if tally is None else tally
    xt = mixture.noised(t, process).sample(n, generator)
    pe = pathwise_entropy_samples(mixture, xt, t, process, generator, draws=draws)
    chain = pe.chain
    ref = chain if reference == "chain" else pe.class_entropy
    out = {"V": draw_variance_estimate(pe.full),
           "V_chain": draw_variance_estimate(chain),
           "V_C": draw_variance_estimate(pe.class_entropy),
           "gap": draw_variance_gap(pe.full, ref),
           "chain_mean_gap": mc_estimate((pe.full - chain).mean(0))}
    tally.mc(out["chain_mean_gap"], 0.0, label="E[-log p(x0|x) - (H_C + W - δ)]")
    ref_txt = "Var(H_C + W - δ)" if reference == "chain" else "V_C = Var H_C"
    tally.mc(out["gap"], 0.0, label=f"V - {ref_txt}", ref_name="(claimed difference)")
    return out


def two_class_conditional_entropy(d: int, s2: float, t: float, process: ForwardProcess, *,
                                  n_nodes: int = 40_001) -> float:
    r""":math:`H(x_0\mid x_t)` in nats for two equiprobable classes
    :math:`\mathcal N(\pm\sqrt d\,e_1, s^2 I)`, by one-dimensional quadrature.

    :math:`H(x_0\mid x_t) = H(x_0) + H(x_t\mid x_0) - H(x_t)` with
    :math:`H(x_t\mid x_0) = \frac d2\log(2\pi e\sigma_t^2)`; only the first coordinate of
    :math:`x_0` and of :math:`x_t` is a mixture (of :math:`\mathcal N(\pm a, v)`), the other
    :math:`d - 1` are Gaussian, so each entropy is a Gaussian term plus the entropy of a
    one-dimensional pair, computed by the trapezoid rule on :math:`\pm(a + 14\sqrt v)`. It uses
    no posterior and no chain rule: the reference for the Monte Carlo of
    :math:`E[-\log p(x_0\mid x_t)]`. Float64.
    """
    check_process(process)
    check_positive_int("n_nodes", n_nodes)
    if not (isinstance(s2, int | float) and s2 > 0 and math.isfinite(s2)):
        raise ValueError(f"s2 must be a finite positive number; got {s2!r}")
    tt = as_time("t", t)
    a_t, s_t = float(process.alpha(tt)), float(process.sigma(tt))

    def pair_entropy(mean: float, v: float) -> float:
        half = mean + 14.0 * math.sqrt(v)
        y = torch.linspace(-half, half, n_nodes, dtype=torch.float64)
        logp = torch.logsumexp(torch.stack([-(y - mean) ** 2, -(y + mean) ** 2]) / (2 * v), 0) \
            - math.log(2) - 0.5 * math.log(2 * math.pi * v)
        return float(torch.trapezoid(-logp.exp() * logp, y))

    def gauss(v: float, k: int) -> float:
        return 0.5 * k * math.log(2 * math.pi * math.e * v)

    root_d = math.sqrt(d)
    v_t = a_t**2 * s2 + s_t**2
    h_x0 = pair_entropy(root_d, s2) + gauss(s2, d - 1)
    h_xt = pair_entropy(a_t * root_d, v_t) + gauss(v_t, d - 1)
    return h_x0 + gauss(s_t**2, d) - h_xt


def _binary_entropy_of_logit(a: torch.Tensor) -> torch.Tensor:
    r""":math:`H_b(\sigma(a)) = \sigma(a)\,\mathrm{softplus}(-a) + \sigma(-a)\,
    \mathrm{softplus}(a)` in nats, stable for any logit ``a``."""
    sp = torch.nn.functional.softplus
    return torch.sigmoid(a) * sp(-a) + torch.sigmoid(-a) * sp(a)


def two_class_phi(gamma, *, n_nodes: int = 8001, half_width: float = 12.0,
                  return_mean: bool = False):
    r""":math:`\Phi(\gamma)` for two equiprobable classes :math:`\pm\sqrt d\,u`,
    :math:`\lvert u\rvert = 1`, by quadrature (eq. 72, 83).

    The log-odds of the true class is :math:`a = 2\gamma + 2\sqrt\gamma\,\xi`,
    :math:`\xi\sim\mathcal N(0,1)`, and :math:`h = H_b(\sigma(a))`, so

    .. math:: \Phi(\gamma) = \int \varphi(\xi)\,H_b(\sigma(a))^2 d\xi
        - \Big(\int\varphi(\xi)\,H_b(\sigma(a))\,d\xi\Big)^2 .

    Trapezoid rule on ``n_nodes`` equispaced nodes in :math:`[-w, w]`,
    :math:`w = ` ``half_width``: the integrand is smooth and its mass outside is below
    :math:`\varphi(12)\approx 10^{-32}`, so the rule converges geometrically (the tests compare
    with ``scipy.integrate.quad``). Float64, CPU.

    Parameters
    ----------
    gamma : non-negative scalar or 1-D tensor.
    return_mean : also return :math:`E h = H(C\mid x_t)`.

    Returns
    -------
    tensor of the shape of ``gamma`` (and the mean, if asked).
    """
    check_positive_int("n_nodes", n_nodes)
    g = torch.as_tensor(gamma, dtype=torch.float64).cpu()
    check_finite("gamma", g)
    if bool((g < 0).any()):
        raise ValueError("gamma must be non-negative")
    shape = g.shape
    g = g.reshape(-1, 1)
    xi = torch.linspace(-half_width, half_width, n_nodes, dtype=torch.float64)
    wts = torch.exp(-0.5 * xi**2) / math.sqrt(2 * math.pi) * (xi[1] - xi[0])
    wts[0] *= 0.5
    wts[-1] *= 0.5
    h = _binary_entropy_of_logit(2 * g + 2 * g.sqrt() * xi[None, :])
    m1 = h @ wts
    # the variance from h - log 2, so that at small gamma (Phi ~ gamma^2 / 2) it is not lost
    # in the rounding of E h^2 - (E h)^2 ~ (log 2)^2 eps ~ 1e-16
    hc = h - math.log(2.0)
    phi = ((hc**2) @ wts - (hc @ wts) ** 2).clamp_min(0.0).reshape(shape)
    return (phi, m1.reshape(shape)) if return_mean else phi
