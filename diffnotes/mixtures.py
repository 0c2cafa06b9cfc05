r"""Data with exact closed forms: Gaussian mixtures, and delta mixtures as their zero-width limit.

A mixture :math:`p_0 = \sum_k \pi_k\,\mathcal N(m_k, \Sigma_k)` noised by a Gaussian kernel
:math:`p(x_t|x_0) = \mathcal N(\alpha x_0, \sigma^2 I)` stays a mixture (paper eq. 7, 20):

.. math::
    p_t(x) = \sum_k \pi_k\,\mathcal N(x;\ \alpha m_k,\ C_k), \qquad C_k = \alpha^2\Sigma_k
    + \sigma^2 I .

Everything a chapter needs follows in closed form, batched over ``x`` of shape ``(n, d)``:

* component posterior :math:`r_k(x) = p(k|x_t=x) = \operatorname{softmax}_k(\log\pi_k + \log
  \mathcal N(x; \alpha m_k, C_k))` (computed with ``logsumexp``: stable far from the data);
* score :math:`s(x) = \nabla\log p_t(x) = \sum_k r_k u_k`, with :math:`u_k = -C_k^{-1}(x -
  \alpha m_k)`;
* posterior of :math:`x_0` given :math:`x_t = x`, a mixture of the per-component posteriors
  :math:`\mathcal N(\mu_k, P_k)`, :math:`\mu_k = m_k + \alpha\Sigma_k C_k^{-1}(x - \alpha m_k)`,
  :math:`P_k = \Sigma_k - \alpha^2 \Sigma_k C_k^{-1}\Sigma_k`; its mean
  :math:`\sum_k r_k\mu_k` and covariance :math:`\sum_k r_k P_k + \sum_k r_k (\mu_k - \bar\mu)
  (\mu_k - \bar\mu)^\top`;
* score Jacobian :math:`J = \nabla s = -\sum_k r_k C_k^{-1} + \sum_k r_k (u_k - s)(u_k -
  s)^\top`, symmetric, equal to :math:`(\alpha^2\,\mathrm{Cov}[x_0|x_t] - \sigma^2 I)/\sigma^4`
  (chapters 4-6).

Isotropic components (:math:`\Sigma_k = v_k I`, ``v_k = 0`` for a delta mixture) take a fast path
whose only ``O(nKd)`` work is one matrix product. Full covariances are diagonalised once,
:math:`\Sigma_k = Q_k \Lambda_k Q_k^\top`, so that :math:`C_k` is diagonal in the same basis at
every time. Work in float64 for checks; device and dtype follow ``x``. Large batches are
processed in chunks of rows so that memory stays bounded: the chunk size follows the free memory
of the device, capped by :data:`CHUNK_ELEMENTS`.
"""

from __future__ import annotations

import math
import os

import torch

from ._validate import (
    as_points,
    as_time,
    check_finite,
    check_positive_int,
    check_process,
    check_weights,
)
from .processes import ForwardProcess

#: Largest number of elements of an ``(rows, K, d)`` intermediate held at once. The budget
#: actually used is the smaller of this cap and what the free memory of the device allows
#: (:func:`_chunk_elements`); set it lower to force smaller chunks.
CHUNK_ELEMENTS = 2**24

_LOG_2PI = math.log(2 * math.pi)

#: Share of the free memory that one chunk's intermediates may take.
_MEMORY_FRACTION = 0.25
#: How many ``(rows, K, d)`` intermediates a chunk holds at once (the Jacobian's ``u``,
#: ``dev``, the einsum's operands and result, with room to spare).
_LIVE_INTERMEDIATES = 8
#: The memory-derived budget never goes below this (about 8 MB of float64): tiny chunks cost
#: more in per-chunk overhead than they save.
_MIN_CHUNK_ELEMENTS = 2**20


def _free_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes, or ``None`` when it cannot be read.

    CUDA: ``torch.cuda.mem_get_info`` plus what PyTorch's caching allocator holds unused. CPU:
    ``MemAvailable`` of ``/proc/meminfo`` (else ``os.sysconf``), lowered to the cgroup's
    remaining allowance (``memory.max - memory.current``) inside a container.
    """
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
            return int(free + max(0, cached))
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            cap = fh.read().strip()
        if cap != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                used = int(fh.read().strip())
            free = min(free, max(0, int(cap) - used))
    except (OSError, ValueError):
        pass
    return int(free)


def _chunk_elements(like: torch.Tensor | None = None) -> int:
    r"""Per-chunk element budget for ``(rows, K, d)`` intermediates of ``like``'s dtype/device.

    :math:`\min(\mathrm{CHUNK\_ELEMENTS},\ \max(2^{20},\ f\cdot\mathrm{free} /
    (\mathrm{itemsize}\cdot L)))` with :math:`f` = ``_MEMORY_FRACTION`` and :math:`L` =
    ``_LIVE_INTERMEDIATES``: a chunk's intermediates take at most a quarter of the free memory,
    and never more than :data:`CHUNK_ELEMENTS` elements (which thus stays an override). Without
    ``like``, or when free memory cannot be read, :data:`CHUNK_ELEMENTS`.
    """
    cap = CHUNK_ELEMENTS
    if like is None:
        return cap
    free = _free_bytes(like.device)
    if free is None:
        return cap
    derived = int(_MEMORY_FRACTION * free) // (like.element_size() * _LIVE_INTERMEDIATES)
    return max(1, min(cap, max(_MIN_CHUNK_ELEMENTS, derived)))


def _row_chunks(n: int, per_row: int, limit: int | None = None, *,
                like: torch.Tensor | None = None):
    """Row slices of ``range(n)`` with at most ``limit`` (default :func:`_chunk_elements`)
    elements of ``per_row`` each."""
    limit = _chunk_elements(like) if limit is None else limit
    step = max(1, limit // max(1, per_row))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _rows(c: torch.Tensor, sl: slice) -> torch.Tensor:
    """Rows ``sl`` of a per-row ``(n, K)`` tensor, or the shared ``(1, K)`` row itself."""
    return c if c.shape[0] == 1 else c[sl]


class GaussianMixture:
    r"""A mixture :math:`\sum_k \pi_k\,\mathcal N(m_k, \Sigma_k)` in :math:`\mathbb R^d`.

    Parameters
    ----------
    means : tensor ``(K, d)``, the component means :math:`m_k`.
    weights : tensor ``(K,)`` summing to one (default uniform).
    covs : the covariances :math:`\Sigma_k`, one of

        * ``None`` or ``0``: a **delta mixture** (points :math:`m_k`, zero covariance);
        * a number or a tensor ``(K,)``: isotropic variances :math:`v_k \ge 0`, :math:`\Sigma_k =
          v_k I`;
        * a tensor ``(d, d)`` shared by every component, or ``(K, d, d)``: symmetric positive
          semi-definite matrices (singular ones describe data on a subspace).

    Parameters are stored in float64; methods cast them to the dtype and device of ``x``.

    Examples
    --------
    >>> import torch, diffnotes as dn
    >>> mix = dn.GaussianMixture.delta(torch.tensor([[-1.0], [1.0]]))
    >>> mix.score(torch.zeros(1, 1), 0.5, dn.EDM())
    tensor([[0.]], dtype=torch.float64)
    """

    def __init__(self, means, weights=None, covs=None):
        means = torch.as_tensor(means, dtype=torch.float64)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1; got "
                             f"{tuple(means.shape)}")
        check_finite("means", means)
        K, d = means.shape
        if weights is None:
            weights = torch.full((K,), 1.0 / K, dtype=torch.float64, device=means.device)
        weights = torch.as_tensor(weights, dtype=torch.float64).to(means.device)
        check_weights("weights", weights, K)
        self.means = means
        self.weights = weights / weights.sum()
        self.K, self.d = K, d
        self._cache: dict = {}

        if covs is None or (not isinstance(covs, torch.Tensor) and covs == 0):
            covs = torch.zeros(K, dtype=torch.float64)
        covs = torch.as_tensor(covs, dtype=torch.float64).to(means.device)
        check_finite("covs", covs)
        if covs.ndim == 0:
            covs = covs.expand(K).clone()
        if covs.ndim == 1:
            if covs.shape[0] != K:
                raise ValueError(f"covs as variances must have shape ({K},); got "
                                 f"{tuple(covs.shape)}")
            if bool((covs < 0).any()):
                raise ValueError("covs as variances must be non-negative")
            self.isotropic = True
            self.variances = covs
            self.eigvals = None
            self.eigvecs = None
        else:
            if covs.ndim == 2:
                covs = covs.expand(K, d, d).clone()
            if covs.shape != (K, d, d):
                raise ValueError(f"covs must have shape (K,), (d, d) or (K, d, d) = ({K}, {d}, "
                                 f"{d}); got {tuple(covs.shape)}")
            scale = covs.abs().amax(dim=(1, 2)).clamp_min(1.0)
            asym = (covs - covs.transpose(1, 2)).abs().amax(dim=(1, 2))
            if bool((asym > 1e-10 * scale).any()):
                k = int(torch.argmax(asym / scale))
                raise ValueError(f"covs must be symmetric; component {k} is not")
            lam, Q = torch.linalg.eigh(0.5 * (covs + covs.transpose(1, 2)))
            bad = lam.amin(dim=1) < -1e-10 * scale
            if bool(bad.any()):
                k = int(torch.nonzero(bad)[0])
                raise ValueError(
                    f"covs must be positive semi-definite; component {k} has eigenvalue "
                    f"{float(lam[k].min()):.3g}"
                )
            self.isotropic = False
            self.variances = None
            self.eigvals = lam.clamp_min(0.0)
            self.eigvecs = Q

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def delta(cls, points, weights=None) -> GaussianMixture:
        r"""The delta mixture :math:`\sum_k \pi_k \delta_{y_k}` on ``points`` ``(K, d)``."""
        return cls(points, weights, None)

    @property
    def covariances(self) -> torch.Tensor:
        r"""The component covariances :math:`\Sigma_k`, shape ``(K, d, d)``."""
        if self.isotropic:
            eye = torch.eye(self.d, dtype=torch.float64, device=self.means.device)
            return self.variances[:, None, None] * eye
        return (self.eigvecs * self.eigvals[:, None, :]) @ self.eigvecs.transpose(1, 2)

    @property
    def is_delta(self) -> bool:
        """True when every component has zero covariance."""
        if self.isotropic:
            return bool((self.variances == 0).all())
        return bool((self.eigvals == 0).all())

    def mean(self) -> torch.Tensor:
        r"""Data mean :math:`\sum_k\pi_k m_k`, shape ``(d,)``."""
        return self.weights @ self.means

    def covariance(self) -> torch.Tensor:
        r"""Data covariance :math:`\sum_k\pi_k(\Sigma_k + m_k m_k^\top) - \bar m\bar m^\top`,
        shape ``(d, d)``."""
        dm = self.means - self.mean()
        return torch.einsum("k,ki,kj->ij", self.weights, dm, dm) + torch.einsum(
            "k,kij->ij", self.weights, self.covariances
        )

    def noised(self, t: float, process: ForwardProcess) -> GaussianMixture:
        r"""The law of :math:`x_t`: means :math:`\alpha m_k`, covariances :math:`\alpha^2\Sigma_k
        + \sigma^2 I` (a scalar time ``t > 0``)."""
        check_process(process)
        tt = as_time("t", t)
        if tt.ndim != 0:
            raise ValueError("t must be a scalar for noised()")
        a, s = float(process.alpha(tt)), float(process.sigma(tt))
        if self.isotropic:
            covs = a**2 * self.variances + s**2
        else:
            eye = torch.eye(self.d, dtype=torch.float64, device=self.means.device)
            covs = a**2 * self.covariances + s**2 * eye
        return GaussianMixture(a * self.means, self.weights, covs)

    def project(self, direction) -> GaussianMixture:
        r"""The 1-D law of :math:`u^\top x_0` for a direction ``u`` of shape ``(d,)``: a mixture
        with means :math:`u^\top m_k` and variances :math:`u^\top\Sigma_k u`."""
        u = torch.as_tensor(direction, dtype=torch.float64).to(self.means.device)
        if u.shape != (self.d,):
            raise ValueError(f"direction must have shape ({self.d},); got {tuple(u.shape)}")
        check_finite("direction", u)
        var = torch.einsum("i,kij,j->k", u, self.covariances, u)
        return GaussianMixture((self.means @ u)[:, None], self.weights, var.clamp_min(0.0))

    def cdf(self, x) -> torch.Tensor:
        r"""Cumulative distribution function of a 1-D mixture, :math:`\sum_k \pi_k
        \Phi((x - m_k)/\sqrt{v_k})` (a step at :math:`m_k` where :math:`v_k = 0`).

        ``x``: tensor ``(n,)`` or ``(n, 1)``; returns ``(n,)``. Only for ``d = 1``.
        """
        if self.d != 1 or not self.isotropic:
            raise ValueError("cdf is defined here for 1-D mixtures only (project() first)")
        x = torch.as_tensor(x, dtype=torch.float64)
        x = x.reshape(-1)
        check_finite("x", x)
        m = self.means[:, 0].to(x)
        sd = self.variances.to(x).sqrt()
        z = (x[:, None] - m[None, :]) / torch.where(sd > 0, sd, torch.ones_like(sd))
        phi = torch.where(sd > 0, torch.special.ndtr(z), (x[:, None] >= m[None, :]).to(x))
        return phi @ self.weights.to(x)

    # -- internal plumbing ----------------------------------------------------------------
    def _params(self, like: torch.Tensor):
        key = (like.device, like.dtype)
        if key not in self._cache:
            cast = {"device": like.device, "dtype": like.dtype}
            p = {
                "m": self.means.to(**cast),
                "logw": torch.log(self.weights).to(**cast),
                "mm": (self.means**2).sum(1).to(**cast),
            }
            if self.isotropic:
                p["v"] = self.variances.to(**cast)
            else:
                p["lam"] = self.eigvals.to(**cast)
                p["Q"] = self.eigvecs.to(**cast)
            self._cache[key] = p
        return self._cache[key]

    def _coeffs(self, x, t, process):
        """Validated x and the per-row (alpha, sigma) as column tensors of shape (n, 1)."""
        check_process(process)
        x = as_points("x", x, self.d)
        tt = as_time("t", t, like=x, n=x.shape[0])
        a = process.alpha(tt).to(x).expand(x.shape[0])[:, None]
        s = process.sigma(tt).to(x).expand(x.shape[0])[:, None]
        return x, a, s

    def _logits(self, x, a, s, p):
        r"""log pi_k + log N(x; a m_k, C_k): shape (n, K); plus per-component data for reuse."""
        n, d = x.shape
        if self.isotropic:
            # one time for every row (a stride-0 column): per-component quantities are (1, K)
            a1, s1 = (a[:1], s[:1]) if a.stride(0) == 0 and s.stride(0) == 0 else (a, s)
            c = a1**2 * p["v"][None, :] + s1**2  # (1, K), or (n, K) for one time per row
            # -||x - a m_k||^2 = 2a x.m_k - ||x||^2 - a^2 ||m_k||^2, built in place in one (n, K)
            logits = (x @ p["m"].T).mul_(2 * a)
            logits.sub_((x**2).sum(1, keepdim=True)).sub_(a1**2 * p["mm"][None, :])
            logits.clamp_(max=0.0).div_(2 * c)
            logits.add_(p["logw"][None, :] - 0.5 * d * (_LOG_2PI + torch.log(c)))
            return logits, c
        # full covariance: rotate into each component's eigenbasis (chunked over rows)
        out = torch.empty(n, self.K, dtype=x.dtype, device=x.device)
        for sl in _row_chunks(n, self.K * d, like=x):
            y, c = self._eig_coords(x[sl], a[sl], s[sl], p)
            out[sl] = (
                p["logw"][None, :]
                - 0.5 * (y**2 / c).sum(-1)
                - 0.5 * (d * _LOG_2PI + torch.log(c).sum(-1))
            )
        return out, None

    def _eig_coords(self, x, a, s, p):
        """y_k = Q_k^T (x - a m_k) and c_k = a^2 lam_k + s^2, both of shape (n, K, d)."""
        diff = x[:, None, :] - a[:, :, None] * p["m"][None, :, :]
        y = torch.einsum("kij,nki->nkj", p["Q"], diff)
        c = a[:, :, None] ** 2 * p["lam"][None, :, :] + s[:, :, None] ** 2
        return y, c

    # -- public closed forms --------------------------------------------------------------
    def log_prob(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Log density of :math:`x_t`, :math:`\log p_t(x) = \operatorname{logsumexp}_k(\log\pi_k
        + \log\mathcal N(x; \alpha m_k, C_k))`.

        Parameters
        ----------
        x : tensor ``(n, d)``.
        t : positive scalar or tensor ``(n,)``.
        process : a :class:`~diffnotes.processes.ForwardProcess`.

        Returns
        -------
        tensor ``(n,)``.
        """
        x, a, s = self._coeffs(x, t, process)
        logits, _ = self._logits(x, a, s, self._params(x))
        return torch.logsumexp(logits, dim=1)

    def log_density(self, x) -> torch.Tensor:
        r"""Log density of the data itself, :math:`\log p_0(x)`, shape ``(n,)``.

        Needs positive-definite covariances (a delta mixture has no density).
        """
        x = as_points("x", x, self.d)
        p = self._params(x)
        one = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
        lam = p["v"] if self.isotropic else p["lam"]
        if bool((lam <= 0).any()):
            raise ValueError(
                "log_density needs positive-definite covariances; use log_prob at t > 0"
            )
        logits, _ = self._logits(x, one, 0 * one, p)
        return torch.logsumexp(logits, dim=1)

    def component_posterior(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Responsibilities :math:`r_k(x) = p(k\mid x_t = x)`, shape ``(n, K)``, rows sum to 1.

        For a delta mixture in the EDM these are the paper's weights
        :math:`w_j \propto \pi_j \exp(-\lVert x - y_j\rVert^2/2t^2)` (eq. 20-22).
        """
        x, a, s = self._coeffs(x, t, process)
        logits, _ = self._logits(x, a, s, self._params(x))
        return torch.softmax(logits, dim=1)

    def score(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Score :math:`s(x) = \nabla_x\log p_t(x) = -\sum_k r_k C_k^{-1}(x - \alpha m_k)`,
        shape ``(n, d)``."""
        x, a, s = self._coeffs(x, t, process)
        p = self._params(x)
        logits, c = self._logits(x, a, s, p)
        r = torch.softmax(logits, dim=1)
        if self.isotropic:
            rc = r / c
            return a * (rc @ p["m"]) - x * rc.sum(1, keepdim=True)
        out = torch.empty_like(x)
        for sl in _row_chunks(x.shape[0], self.K * self.d, like=x):
            y, cc = self._eig_coords(x[sl], a[sl], s[sl], p)
            u = -torch.einsum("kij,nkj->nki", p["Q"], y / cc)
            out[sl] = torch.einsum("nk,nki->ni", r[sl], u)
        return out

    def posterior_mean(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Denoiser :math:`E[x_0\mid x_t = x] = \sum_k r_k \mu_k`, shape ``(n, d)``.

        Tweedie's formula (eq. 14) reads :math:`s = (\alpha E[x_0|x_t] - x)/\sigma^2`.
        """
        x, a, s = self._coeffs(x, t, process)
        p = self._params(x)
        logits, c = self._logits(x, a, s, p)
        r = torch.softmax(logits, dim=1)
        if self.isotropic:
            # mu_k = (s^2/c_k) m_k + (a v_k / c_k) x
            return (r * s**2 / c) @ p["m"] + x * (r * a * p["v"][None, :] / c).sum(1, keepdim=True)
        out = torch.empty_like(x)
        for sl in _row_chunks(x.shape[0], self.K * self.d, like=x):
            y, cc = self._eig_coords(x[sl], a[sl], s[sl], p)
            mu = self._eig_post_means(y, cc, a[sl], p)
            out[sl] = torch.einsum("nk,nki->ni", r[sl], mu)
        return out

    def _eig_post_means(self, y, c, a, p):
        """mu_k = m_k + a Q_k (lam_k y_k / c_k), shape (n, K, d)."""
        return p["m"][None] + a[:, :, None] * torch.einsum(
            "kij,nkj->nki", p["Q"], p["lam"][None] * y / c
        )

    def _iso_post_means(self, x, a, s, c, p):
        return (s**2 / c)[:, :, None] * p["m"][None] + (a * p["v"][None, :] / c)[:, :, None] * x[
            :, None, :
        ]

    def posterior_cov(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Posterior covariance :math:`\mathrm{Cov}[x_0\mid x_t=x] = \sum_k r_k P_k + \sum_k r_k
        (\mu_k - \bar\mu)(\mu_k - \bar\mu)^\top`, shape ``(n, d, d)``."""
        return self._second_moment(x, t, process, trace_only=False)

    def posterior_trace_cov(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r""":math:`\operatorname{tr}\mathrm{Cov}[x_0\mid x_t=x]`, shape ``(n,)``, without forming
        ``(n, d, d)`` matrices. Its mean over :math:`x_t` is the MMSE of chapter 3."""
        return self._second_moment(x, t, process, trace_only=True)

    def _second_moment(self, x, t, process, trace_only):
        x, a, s = self._coeffs(x, t, process)
        p = self._params(x)
        logits, c = self._logits(x, a, s, p)
        r = torch.softmax(logits, dim=1)
        n, d = x.shape
        out = torch.empty((n,) if trace_only else (n, d, d), dtype=x.dtype, device=x.device)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        for sl in _row_chunks(n, self.K * d, like=x):
            rs = r[sl]
            if self.isotropic:
                cs = _rows(c, sl)
                mu = self._iso_post_means(x[sl], a[sl], s[sl], cs, p)
                pk = (rs * p["v"][None, :] * s[sl] ** 2 / cs).sum(1)  # sum_k r_k v_k s^2/c_k
                within_tr = d * pk
            else:
                y, cc = self._eig_coords(x[sl], a[sl], s[sl], p)
                mu = self._eig_post_means(y, cc, a[sl], p)
                pdiag = p["lam"][None] * s[sl][:, :, None] ** 2 / cc  # eigenvalues of P_k
                within_tr = (rs[:, :, None] * pdiag).sum((1, 2))
            mbar = torch.einsum("nk,nki->ni", rs, mu)
            dev = mu - mbar[:, None, :]
            if trace_only:
                out[sl] = within_tr + (rs * (dev**2).sum(-1)).sum(1)
                continue
            between = torch.einsum("nk,nki,nkj->nij", rs, dev, dev)
            if self.isotropic:
                within = pk[:, None, None] * eye
            else:
                within = torch.einsum("nk,kil,nkl,kjl->nij", rs, p["Q"], pdiag, p["Q"])
            out[sl] = within + between
        return out

    def score_jacobian(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Jacobian of the score :math:`J = \nabla s = -\sum_k r_k C_k^{-1} + \sum_k r_k (u_k -
        s)(u_k - s)^\top`, shape ``(n, d, d)``, symmetric.

        It equals :math:`(\alpha^2\mathrm{Cov}[x_0|x_t] - \sigma^2 I)/\sigma^4`; in the EDM,
        :math:`-I/t^2 + \mathrm{Cov}[x_0|x_t]/t^4` (chapters 4-6). The form used here avoids
        the cancellation of that difference at small noise.
        """
        x, a, s = self._coeffs(x, t, process)
        p = self._params(x)
        logits, c = self._logits(x, a, s, p)
        r = torch.softmax(logits, dim=1)
        n, d = x.shape
        out = torch.empty(n, d, d, dtype=x.dtype, device=x.device)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        for sl in _row_chunks(n, self.K * d, like=x):
            rs = r[sl]
            if self.isotropic:
                cs = _rows(c, sl)
                u = (a[sl][:, :, None] * p["m"][None] - x[sl][:, None, :]) / cs[:, :, None]
                prec = (rs / cs).sum(1)[:, None, None] * eye
            else:
                y, cc = self._eig_coords(x[sl], a[sl], s[sl], p)
                u = -torch.einsum("kij,nkj->nki", p["Q"], y / cc)
                prec = torch.einsum("nk,kil,nkl,kjl->nij", rs, p["Q"], 1.0 / cc, p["Q"])
            sc = torch.einsum("nk,nki->ni", rs, u)
            dev = u - sc[:, None, :]
            out[sl] = -prec + torch.einsum("nk,nki,nkj->nij", rs, dev, dev)
        return out

    def score_divergence(self, x, t, process: ForwardProcess) -> torch.Tensor:
        r"""Divergence of the score :math:`\nabla\cdot s = \operatorname{tr} J = -\sum_k r_k
        \operatorname{tr} C_k^{-1} + \sum_k r_k \lVert u_k - s\rVert^2`, shape ``(n,)``.

        The trace of :meth:`score_jacobian` without forming ``(n, d, d)`` matrices; in the EDM
        its mean is the expected divergence :math:`D(t)` of chapter 5 (paper eq. 52).
        """
        x, a, s = self._coeffs(x, t, process)
        p = self._params(x)
        logits, c = self._logits(x, a, s, p)
        r = torch.softmax(logits, dim=1)
        n, d = x.shape
        out = torch.empty(n, dtype=x.dtype, device=x.device)
        for sl in _row_chunks(n, self.K * d, like=x):
            rs = r[sl]
            if self.isotropic:
                cs = _rows(c, sl)
                u = (a[sl][:, :, None] * p["m"][None] - x[sl][:, None, :]) / cs[:, :, None]
                tr_prec = d * (rs / cs).sum(1)
            else:
                y, cc = self._eig_coords(x[sl], a[sl], s[sl], p)
                u = -torch.einsum("kij,nkj->nki", p["Q"], y / cc)
                tr_prec = (rs * (1.0 / cc).sum(-1)).sum(1)
            sc = torch.einsum("nk,nki->ni", rs, u)
            out[sl] = -tr_prec + (rs * ((u - sc[:, None, :]) ** 2).sum(-1)).sum(1)
        return out

    # -- sampling ---------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None, *,
               return_labels: bool = False, device=None, dtype=torch.float64):
        r"""Draw ``n`` samples :math:`x_0 \sim p_0`, shape ``(n, d)``.

        The component labels :math:`k \sim \pi` come from ``torch.multinomial`` with
        ``generator``; then :math:`x_0 = m_k + Q_k\Lambda_k^{1/2} z`. The device defaults to the
        generator's. With ``return_labels`` also returns the labels ``(n,)``.
        """
        check_positive_int("n", n)
        if device is None:
            device = generator.device if generator is not None else self.means.device
        device = torch.device(device)
        w = self.weights.to(device)
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        z = torch.randn(n, self.d, generator=generator, device=device, dtype=torch.float64)
        m = self.means.to(device)[k]
        if self.isotropic:
            x = m + self.variances.to(device)[k].sqrt()[:, None] * z
        else:
            # one matrix product per component (a loop over K, not over samples), so that no
            # (n, d, d) gather of square roots is formed
            root = self.eigvecs.to(device) * self.eigvals.to(device).sqrt()[:, None, :]
            x = m.clone()
            for c in range(self.K):
                rows = k == c
                x[rows] += z[rows] @ root[c].T
        x = x.to(dtype)
        return (x, k) if return_labels else x

    def __repr__(self) -> str:
        kind = "delta" if self.is_delta else ("isotropic" if self.isotropic else "full")
        return f"GaussianMixture(K={self.K}, d={self.d}, covs={kind})"
