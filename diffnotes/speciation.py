r"""Chapter 7's home module: pathwise conditional entropy, its variance, and speciation.

The pathwise conditional entropy of a noisy state is the entropy of the posterior it induces
(paper eq. 65); for data made of well-separated classes its fluctuating part is the entropy of
the *class* posterior (eq. 69),

.. math::
    h(x_t) = H\big[p(c\mid x_t)\big] = -\sum_c r_c(x_t)\log r_c(x_t), \qquad
    V(t) = \operatorname{Var}_{x_t\sim p_t} h(x_t) \quad\text{(eq. 66)} .

For class means :math:`\sqrt d\,u_c` and a shared isotropic within-class variance :math:`s^2`,
the class logits at :math:`x_t = \alpha_t x_0 + \sigma_t z` are, up to a constant in :math:`c`,

.. math::
    \ell_c = \log\pi_c - \tfrac{\gamma}{2}\lVert u_c - u_C\rVert^2 + \sqrt\gamma\,\zeta_c,
    \qquad \zeta = U z \sim \mathcal N(0, G),\quad G = U U^\top,
    \qquad \gamma = \frac{d\,\alpha_t^2}{\sigma_t^2 + s^2\alpha_t^2}

(eq. 80-82, 90), so the law of :math:`h` depends on the time only through the effective SNR
:math:`\gamma` and :math:`V = \Phi(\gamma)` (eq. 72, 83). In the VP process
:math:`\gamma = d e^{-2t}/(1 - e^{-2t})` (eq. 71, 81); in the EDM :math:`\gamma = d/t^2` (eq. 97).

Two ways to estimate :math:`V`, so that each checks the other:

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

import torch

from ._validate import (
    as_points,
    as_time,
    check_finite,
    check_positive_int,
    check_process,
    check_weights,
)
from .checks import MCEstimate
from .mixtures import CHUNK_ELEMENTS, GaussianMixture, _chunk_elements
from .processes import VP, ForwardProcess

__all__ = [
    "class_entropy",
    "class_entropy_samples",
    "effective_snr",
    "mixture_gram",
    "overlap_term_samples",
    "reduced_class_entropy_samples",
    "rescaled_mixture",
    "speciation_time",
    "top_covariance_eigenvalue",
    "two_class_phi",
    "variance_estimate",
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
    x_t)]` (eq. 65, 78); for Gaussian classes it is its fluctuating part (eq. 69).
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


def overlap_term_samples(mixture: GaussianMixture, x, t: float, process: ForwardProcess,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    r"""One-draw estimates of the chain-rule remainder :math:`\delta(x) = E[H[p(c\mid x_0)]
    \mid x_t = x]`, shape ``(n,)`` (eq. 69).

    For components with a density, the chain rule for the pair :math:`(x_0, C)` given
    :math:`x_t = x`, with :math:`p(c\mid x_0, x_t) = p(c\mid x_0)` (Markov), reads

    .. math:: H[p(x_0\mid x)] = H[p(c\mid x)] + \sum_c r_c(x) H[p(x_0\mid c, x)] - \delta(x).

    Draws one :math:`x_0` per row from the exact posterior (class :math:`c\sim r(x)`, then
    :math:`x_0\sim\mathcal N(\mu_c, P_c)`) and returns :math:`H[p(c\mid x_0)]`: an unbiased,
    non-negative estimate of :math:`\delta(x)`. Isotropic components only (``v_c > 0``).
    """
    if not mixture.isotropic or bool((mixture.variances <= 0).any()):
        raise ValueError("overlap_term_samples needs isotropic components with positive "
                         "variances (for a delta mixture delta(x) = 0 exactly)")
    x = as_points("x", x, mixture.d)
    tt = as_time("t", t, like=x)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar")
    a, s = process.alpha(tt), process.sigma(tt)
    r = mixture.component_posterior(x, tt, process)
    c = torch.multinomial(r, 1, generator=generator)[:, 0]
    v = mixture.variances.to(x)[c][:, None]
    m = mixture.means.to(x)[c]
    cc = a**2 * v + s**2
    mu = m + a * v / cc * (x - a * m)
    sd = torch.sqrt(v * s**2 / cc)
    z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x0 = mu + sd * z
    # p(c | x_0): the data's own class posterior (an isotropic mixture at zero noise)
    vv = mixture.variances.to(x)
    sq = ((x0**2).sum(1, keepdim=True) - 2 * x0 @ mixture.means.to(x).T
          + (mixture.means.to(x) ** 2).sum(1)[None, :]).clamp_min(0.0)
    logits = torch.log(mixture.weights.to(x))[None] - 0.5 * sq / vv - 0.5 * mixture.d * vv.log()
    return _entropy_from_logits(logits)


def rescaled_mixture(mixture: GaussianMixture, t: float, process: ForwardProcess
                     ) -> GaussianMixture:
    r"""The law of :math:`y = x_t/(\alpha_t\sqrt d)` (eq. 93-95): a Gaussian mixture with means
    :math:`u_c = m_c/\sqrt d` and covariances :math:`\Sigma_c/d + I/\gamma`,
    :math:`\gamma = d\alpha_t^2/\sigma_t^2`.

    The map is invertible, so :math:`p(c\mid y) = p(c\mid x_t)` and :math:`h` (hence
    :math:`V`) is unchanged; the time enters only through :math:`1/\gamma`, the components
    only through :math:`\Sigma_c/d`. Evaluate its posterior at zero extra noise with
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
    m1, m2 = h @ wts, (h**2) @ wts
    phi = (m2 - m1**2).clamp_min(0.0).reshape(shape)
    return (phi, m1.reshape(shape)) if return_mean else phi
