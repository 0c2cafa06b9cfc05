r"""Chapter 5's home module: local Lyapunov spectra and the expected divergence of the flow.

The probability-flow ODE of a Gaussian forward process (paper eq. 11) is

.. math::
    \dot x = v(x, t) = f(t)\,x - \tfrac12 g(t)^2\, s(x, t), \qquad
    \nabla v = f\,I - \tfrac12 g^2\, J, \quad J = \nabla s = \nabla^2\log p_t ,

so in the EDM (:math:`f = 0`, :math:`g^2 = 2t`) :math:`v = -t s` and :math:`\nabla v = -tJ`. A
small perturbation obeys :math:`\delta\dot x = \nabla v\,\delta x` (eq. 47-49) and its log-norm
grows at the rate :math:`n^\top\nabla v\,n` along the unit direction :math:`n` (eq. 50); ``J`` is
a Hessian, hence symmetric. **Sign convention.** Generation runs the ODE towards *decreasing*
``t``. On the generative clock :math:`\tau` (:math:`d\tau = -dt`) the perturbation obeys
:math:`d\delta x/d\tau = -\nabla v\,\delta x`, so the *generative exponents* are the eigenvalues
of :math:`-\nabla v = \tfrac12 g^2 J - f I` (EDM: :math:`t\lambda_i(J)`): a positive one is a
direction in which nearby generative trajectories separate (eq. 51). Per unit of
:math:`-\log(\sigma_t/\alpha_t)` they are dimensionless; in the EDM they are
:math:`t^2\lambda_i(J) \ge -1`.

The expected divergence :math:`D(t) = E\,\nabla\cdot s(x_t)` (eq. 52) splits into the trivial
part :math:`-d/\sigma_t^2` of a single data point (eq. 53-54) and the data part
:math:`\tilde D = D + d/\sigma_t^2 = (\alpha_t^2/\sigma_t^4)\,E\operatorname{tr}\mathrm{Cov}[x_0
\mid x_t] \ge 0` (eq. 55), which is the conditional entropy rate up to the factor
:math:`w(t)` of chapter 3 (eq. 56; EDM: :math:`\dot H = t\tilde D`), while the marginal entropy
grows at the expected divergence of the flow, :math:`\frac{d}{dt}H(x_t) = E\,\nabla\cdot v`
(Liouville; EDM: :math:`-tD`, eq. 57).

Exact Jacobians come from :meth:`~diffnotes.mixtures.GaussianMixture.score_jacobian`; spectra
are batched ``torch.linalg.eigvalsh`` over row chunks, so the same code runs on a GPU with
larger batches. The Hutchinson estimator needs only products of the Jacobian with vectors
(``torch.func.vjp``, or ``jvp``) and so works for any score function, a trained network
included. Device
and dtype follow ``x``; use float64 for checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from ._validate import (
    as_points,
    check_mixture_call,
    check_positive_int,
)
from .checks import Tally
from .information import dsm_factor
from .mixtures import GaussianMixture, _chunk_elements
from .processes import ForwardProcess

__all__ = [
    "DivergenceParts",
    "check_variance_bound",
    "divergence_parts",
    "entropy_rate_divergence",
    "flow_divergence",
    "generative_exponents",
    "hutchinson_divergence",
    "hutchinson_variance",
    "jacobian_vector_product",
    "local_spectrum",
    "score_jacobian_autograd",
    "spectrum_along_trajectories",
    "velocity_jacobian",
]

_CLOCKS = ("time", "log_noise")
_PROBES = ("rademacher", "gaussian")
_MODES = ("reverse", "forward")




def _rows(tt: torch.Tensor, n: int) -> torch.Tensor:
    """A scalar or (n,) time as a column (n, 1)."""
    return tt.expand(n)[:, None]


# -- Jacobians and spectra ---------------------------------------------------------------------
def velocity_jacobian(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Jacobian of the probability-flow velocity, :math:`\nabla v = f\,I - \tfrac12 g^2 J`,
    on the *forward* clock (eq. 47-50; chapter 5).

    EDM: :math:`-t J`; VP: :math:`-I - J`. Symmetric, so its symmetric part is itself.

    Parameters
    ----------
    mixture : a :class:`~diffnotes.mixtures.GaussianMixture`.
    x : tensor ``(n, d)``.
    t : positive scalar or tensor ``(n,)``.
    process : the forward process.

    Returns
    -------
    tensor ``(n, d, d)``.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    n, d = x.shape
    f = _rows(process.drift(tt).to(x), n)[:, :, None]
    g2 = _rows(process.diffusion2(tt).to(x), n)[:, :, None]
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    return f * eye - 0.5 * g2 * mixture.score_jacobian(x, tt, process)


def local_spectrum(mixture: GaussianMixture, x, t, process: ForwardProcess, *,
                   chunk_elements: int | None = None) -> torch.Tensor:
    r"""The local Lyapunov spectrum: eigenvalues :math:`\lambda_1\le\dots\le\lambda_d` of the
    score Jacobian :math:`J(x, t) = \nabla^2\log p_t(x)` (paper section 6; chapter 5).

    Batched: the closed-form :math:`J` (:meth:`~diffnotes.mixtures.GaussianMixture.score_jacobian`)
    and ``torch.linalg.eigvalsh`` on chunks of rows, each chunk holding at most
    ``chunk_elements`` (default: the core's memory-derived budget) matrix entries.
    In the EDM, :math:`J = -I/t^2 + \mathrm{Cov}[x_0|x_t]/t^4`, so :math:`t^2\lambda_i \ge -1`.

    Parameters
    ----------
    x : tensor ``(n, d)``; t : positive scalar or tensor ``(n,)`` (one time per row).

    Returns
    -------
    tensor ``(n, d)``, each row ascending.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    limit = _chunk_elements(x) if chunk_elements is None else check_positive_int(
        "chunk_elements", chunk_elements)
    n, d = x.shape
    times = tt.expand(n)
    step = max(1, limit // (d * d))
    out = torch.empty(n, d, dtype=x.dtype, device=x.device)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        out[sl] = torch.linalg.eigvalsh(mixture.score_jacobian(x[sl], times[sl], process))
    return out


def generative_exponents(mixture: GaussianMixture, x, t, process: ForwardProcess, *,
                         clock: str = "time") -> torch.Tensor:
    r"""Local exponents of the *generative* (reverse-time) flow, shape ``(n, d)``, ascending.

    On the generative clock :math:`\tau` (:math:`d\tau = -dt`) a perturbation obeys
    :math:`d\delta x/d\tau = -\nabla v\,\delta x`, so the exponents are the eigenvalues of
    :math:`-\nabla v = \tfrac12 g^2 J - f I`:

    * ``clock="time"``: :math:`\mu_i = \tfrac12 g^2\lambda_i(J) - f` per unit of :math:`\tau`
      (EDM: :math:`t\lambda_i`);
    * ``clock="log_noise"``: per unit of :math:`-\log(\sigma_t/\alpha_t)`, i.e.
      :math:`\mu_i / \frac{d}{dt}\log(\sigma_t/\alpha_t)`, dimensionless (EDM:
      :math:`\kappa_i = t^2\lambda_i \ge -1`, and :math:`-1` for a single data point).

    Positive exponents are expanding directions: there nearby generative trajectories separate
    (eq. 50-51, chapter 5). Forward in time the signs flip.
    """
    if clock not in _CLOCKS:
        raise ValueError(f"clock must be one of {_CLOCKS}; got {clock!r}")
    x, tt = check_mixture_call(mixture, x, t, process)
    lam = local_spectrum(mixture, x, tt, process)
    n = x.shape[0]
    rate = 0.5 * _rows(process.diffusion2(tt).to(x), n) * lam - _rows(process.drift(tt).to(x), n)
    if clock == "time":
        return rate
    dlog = process.dsigma(tt) / process.sigma(tt) - process.dalpha(tt) / process.alpha(tt)
    return rate / _rows(dlog.to(x), n)


def spectrum_along_trajectories(mixture: GaussianMixture, trajectory, times,
                                process: ForwardProcess, *, clock: str | None = None
                                ) -> torch.Tensor:
    r"""Local spectra at every point of a batch of trajectories, in one batched call.

    Parameters
    ----------
    trajectory : tensor ``(T, n, d)``, e.g. from :func:`~diffnotes.samplers.probability_flow`.
    times : tensor ``(T,)``, the time of each slice.
    clock : ``None`` for the eigenvalues of :math:`J` (:func:`local_spectrum`), or ``"time"`` /
        ``"log_noise"`` for the generative exponents (:func:`generative_exponents`).

    Returns
    -------
    tensor ``(T, n, d)``. The ``T * n`` points are flattened into one batch with one time per
    row: on a GPU the whole spectrum is a handful of kernel launches.
    """
    traj = torch.as_tensor(trajectory)
    if traj.ndim != 3:
        raise ValueError(f"trajectory must have shape (T, n, d); got {tuple(traj.shape)}")
    T, n, d = traj.shape
    tt = torch.as_tensor(times, dtype=traj.dtype).to(traj.device)
    if tt.shape != (T,):
        raise ValueError(f"times must have shape ({T},); got {tuple(tt.shape)}")
    flat_t = tt[:, None].expand(T, n).reshape(-1)
    flat_x = traj.reshape(T * n, d)
    if clock is None:
        out = local_spectrum(mixture, flat_x, flat_t, process)
    else:
        out = generative_exponents(mixture, flat_x, flat_t, process, clock=clock)
    return out.reshape(T, n, d)


def score_jacobian_autograd(mixture: GaussianMixture, x, t, process: ForwardProcess
                            ) -> torch.Tensor:
    r"""Reference :math:`J = \nabla s` by reverse-mode autograd, one point at a time.

    ``torch.func.jacrev`` of :meth:`~diffnotes.mixtures.GaussianMixture.score` at each row (the
    core's input validation is data-dependent, so ``vmap`` does not apply; the loop over rows
    makes this a check, not a hot path). Shape ``(n, d, d)``; compare with the closed form.
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    times = tt.expand(x.shape[0])
    rows = []
    for xi, ti in zip(x, times, strict=True):
        rows.append(torch.func.jacrev(lambda y, ti=ti: mixture.score(y[None], ti, process)[0])(xi))
    return torch.stack(rows)


# -- Hutchinson's trace estimator ----------------------------------------------------------------
def jacobian_vector_product(score_fn: Callable[[torch.Tensor], torch.Tensor], x, v, *,
                            mode: str = "reverse") -> torch.Tensor:
    r"""Row-wise products of the score Jacobian with vectors, without forming a Jacobian.

    ``score_fn`` maps ``(n, d)`` to ``(n, d)`` row by row (each output row depends on its own
    input row only), e.g. ``lambda y: mixture.score(y, t, process)``, so one autograd call on
    the batched map gives every row's product at once.

    * ``mode="reverse"`` (default): :math:`J(x_i)^\top v_i` by ``torch.func.vjp``; equal to
      :math:`J(x_i) v_i` because the Jacobian of a score is a Hessian, hence symmetric. Reverse
      mode is what every network supports, and it is all Hutchinson's estimator needs, since
      :math:`z^\top J^\top z = z^\top J z` for any matrix.
    * ``mode="forward"``: :math:`J(x_i) v_i` by ``torch.func.jvp`` (forward mode).

    ``x``, ``v``: ``(n, d)``; returns ``(n, d)``.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
    x = as_points("x", x)
    v = as_points("v", v, x.shape[1])
    if v.shape != x.shape:
        raise ValueError(f"v must have the shape of x {tuple(x.shape)}; got {tuple(v.shape)}")
    if mode == "forward":
        return torch.func.jvp(score_fn, (x,), (v.to(x),))[1]
    _, pullback = torch.func.vjp(score_fn, x)
    return pullback(v.to(x))[0]


def hutchinson_divergence(score_fn: Callable[[torch.Tensor], torch.Tensor], x, n_probes: int,
                          generator: torch.Generator | None = None, *,
                          probe: str = "rademacher", mode: str = "reverse") -> torch.Tensor:
    r"""Hutchinson's estimates :math:`z^\top J(x)\,z` of the divergence :math:`\nabla\cdot s =
    \operatorname{tr}J`, shape ``(n, n_probes)`` (chapter 5, eq. 52).

    Each probe :math:`z` has i.i.d. entries, ``"rademacher"`` (:math:`\pm1`) or ``"gaussian"``;
    either way :math:`E\,zz^\top = I`, so :math:`E\,z^\top Jz = \operatorname{tr}J`
    (unbiased), with variance :func:`hutchinson_variance`. Only products with the Jacobian are
    used (:func:`jacobian_vector_product`, one batched call over the ``n * n_probes`` pairs,
    reverse mode by default), so this works for a learned score as well. Probes come from
    ``generator`` on ``x``'s device.
    """
    if probe not in _PROBES:
        raise ValueError(f"probe must be one of {_PROBES}; got {probe!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}; got {mode!r}")
    check_positive_int("n_probes", n_probes)
    x = as_points("x", x)
    n, d = x.shape
    shape = (n, n_probes, d)
    if probe == "rademacher":
        z = 2.0 * torch.randint(0, 2, shape, generator=generator, device=x.device).to(x) - 1.0
    else:
        z = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
    xr = x[:, None, :].expand(shape).reshape(n * n_probes, d)
    zr = z.reshape(n * n_probes, d)
    jz = jacobian_vector_product(score_fn, xr, zr, mode=mode)
    return (zr * jz).sum(1).reshape(n, n_probes)


def hutchinson_variance(jacobian, probe: str = "rademacher") -> torch.Tensor:
    r"""Exact variance over probes of :math:`z^\top A z` for symmetric ``jacobian`` :math:`A`,
    shape ``(n, d, d)`` → ``(n,)``:

    .. math:: \operatorname{Var}_{\rm Rademacher} = 2\sum_{i\ne j} A_{ij}^2, \qquad
        \operatorname{Var}_{\rm Gaussian} = 2\lVert A\rVert_F^2 .
    """
    if probe not in _PROBES:
        raise ValueError(f"probe must be one of {_PROBES}; got {probe!r}")
    a = torch.as_tensor(jacobian)
    if a.ndim != 3 or a.shape[1] != a.shape[2]:
        raise ValueError(f"jacobian must have shape (n, d, d); got {tuple(a.shape)}")
    scale = a.abs().amax().clamp_min(1e-300)
    if bool(((a - a.transpose(1, 2)).abs() > 1e-8 * scale).any()):
        raise ValueError("jacobian must be symmetric (the formula is for symmetric matrices)")
    frob = (a**2).sum((1, 2))
    if probe == "gaussian":
        return 2 * frob
    return 2 * (frob - (torch.diagonal(a, dim1=1, dim2=2) ** 2).sum(1))


# -- expected divergence and entropy ------------------------------------------------------------
class DivergenceParts(NamedTuple):
    r"""Per-sample split of the score divergence (eq. 52-55), each of shape ``(n,)``:
    ``total`` :math:`=\nabla\cdot s`, ``trivial`` :math:`= -d/\sigma_t^2` (one data point),
    ``data`` :math:`= \nabla\cdot s + d/\sigma_t^2 = (\alpha_t^2/\sigma_t^4)\operatorname{tr}
    \mathrm{Cov}[x_0|x_t]`."""

    total: torch.Tensor
    trivial: torch.Tensor
    data: torch.Tensor


def divergence_parts(mixture: GaussianMixture, x, t, process: ForwardProcess
                     ) -> DivergenceParts:
    r"""The score divergence at ``x`` ``(n, d)`` split into its trivial and data parts.

    ``total`` is the exact trace of :math:`J` (:meth:`~diffnotes.mixtures.GaussianMixture.
    score_divergence`, no ``(n, d, d)`` matrices); averaged over :math:`x\sim p_t` the three
    parts are :math:`D(t)`, :math:`-d/\sigma_t^2` and :math:`\tilde D(t)` (eq. 52-55,
    chapter 5). ``data`` is computed as the difference ``total - trivial``, so it carries the
    rounding error of ``total`` (about :math:`10^{-16} d/\sigma^2`).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    total = mixture.score_divergence(x, tt, process)
    trivial = (-mixture.d / process.sigma(tt).to(x) ** 2).expand(x.shape[0])
    return DivergenceParts(total, trivial, total - trivial)


def entropy_rate_divergence(mixture: GaussianMixture, x, t, process: ForwardProcess
                            ) -> torch.Tensor:
    r"""Per-sample divergence estimator of the conditional entropy rate,
    :math:`w(t)\,(\nabla\cdot s + d/\sigma_t^2)`, shape ``(n,)`` (eq. 56).

    :math:`w = -\tfrac12\dot\lambda_t\sigma_t^4/\alpha_t^2` (:func:`~diffnotes.information.
    dsm_factor`; EDM: :math:`t`, so the mean is :math:`t\tilde D = d/t + tD = \dot H`).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    return dsm_factor(tt, process).to(x) * divergence_parts(mixture, x, tt, process).data


def flow_divergence(mixture: GaussianMixture, x, t, process: ForwardProcess) -> torch.Tensor:
    r"""Divergence of the probability-flow velocity, :math:`\nabla\cdot v = d\,f -
    \tfrac12 g^2\,\nabla\cdot s`, shape ``(n,)`` (forward clock).

    Its mean over :math:`x\sim p_t` is the marginal entropy rate :math:`\frac{d}{dt}H(x_t)`
    (Liouville: the flow transports :math:`p_t`); EDM: :math:`-t\,\nabla\cdot s`, so
    :math:`\frac{d}{dt}H(x_t) = -tD(t)` (eq. 57, chapter 5).
    """
    x, tt = check_mixture_call(mixture, x, t, process)
    f = process.drift(tt).to(x)
    g2 = process.diffusion2(tt).to(x)
    return mixture.d * f - 0.5 * g2 * mixture.score_divergence(x, tt, process)



# -- the variance bound behind "no expansion above half the diameter" ---------------------------
def _popoviciu(width: float) -> float:
    return width**2 / 4


def check_variance_bound(lo: float, hi: float, generator: torch.Generator, *,
                         n_laws: int = 2000, n_atoms: int = 6,
                         bound: Callable[[float], float] | None = None,
                         tally: Tally | None = None, strict: bool = True) -> Tally:
    r"""Check Popoviciu's inequality :math:`\operatorname{Var} X \le (b - a)^2/4` for random laws
    on :math:`[a, b]` = ``[lo, hi]``, the step of chapter 5's lemma "no expansion above half the
    diameter".

    Three families of laws, ``n_laws`` each, variances computed exactly in float64: laws on
    ``n_atoms`` uniform random atoms in :math:`[a, b]` with Dirichlet(1) weights; two-point
    laws on the end points with a uniform random weight (these come within
    :math:`O(1/n_{\rm laws}^2)` of the bound); and two-point laws on atoms within 1 % of the end
    points. The check requires every variance to be at most ``bound(b - a)`` (default
    :math:`(b-a)^2/4`, with a float64 slack of :math:`10^{-12}` relative), and the inequality
    to be strict (a gap above :math:`10^{-12}` relative) for every law with an atom strictly
    inside, the first family. A bound that is too small (:math:`(b - a)^2/5`, say) fails.

    The strictness check cannot fail in practice: Dirichlet-weighted laws on ``n_atoms``
    uniform atoms have variances far below :math:`w^2/4`. ``strict=False`` leaves it out, so that
    a tally counts only the check that can fail.

    Returns
    -------
    the tally (``tally`` or a new one), with 2 exact checks added (1 with ``strict=False``).
    """
    if not (isinstance(lo, float | int) and isinstance(hi, float | int) and lo < hi):
        raise ValueError(f"need lo < hi; got lo = {lo!r}, hi = {hi!r}")
    check_positive_int("n_laws", n_laws)
    check_positive_int("n_atoms", n_atoms)
    bnd = _popoviciu if bound is None else bound
    tally = Tally("Popoviciu's inequality for random laws") if tally is None else tally
    w = float(hi - lo)
    f64 = dict(generator=generator, dtype=torch.float64)

    def variance(atoms: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        mean = (probs * atoms).sum(1, keepdim=True)
        return (probs * (atoms - mean) ** 2).sum(1)

    inner_atoms = lo + w * torch.rand(n_laws, n_atoms, **f64)
    e = -torch.log(torch.rand(n_laws, n_atoms, **f64).clamp_min(1e-300))
    inner = variance(inner_atoms, e / e.sum(1, keepdim=True))
    p = torch.rand(n_laws, 1, **f64)
    ends = torch.tensor([[lo, hi]], dtype=torch.float64).expand(n_laws, 2)
    two_point = variance(ends, torch.cat([p, 1 - p], 1))
    jitter = 0.01 * w * torch.rand(n_laws, 2, **f64) * torch.tensor([1.0, -1.0],
                                                                      dtype=torch.float64)
    near = variance(ends + jitter, torch.cat([p.flip(0), 1 - p.flip(0)], 1))
    allv = torch.cat([inner, two_point, near])
    limit = bnd(w)
    worst = float(allv.max())
    tally.require(worst <= limit * (1 + 1e-12),
                  f"largest of {allv.numel()} variances on [{lo:g}, {hi:g}] = {worst:.6g} "
                  f"<= bound {limit:.6g}")
    if not strict:
        return tally
    tally.require(float(inner.max()) < limit * (1 - 1e-12),
                  f"strict for laws with atoms inside: largest {float(inner.max()):.6g} "
                  f"< {limit:.6g}")
    return tally
