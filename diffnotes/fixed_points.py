r"""Chapter 4's home module: fixed points of the score, their stability, and their paths in t.

The fixed points of the score of :math:`p_t` (paper eq. 39) solve :math:`s(x^*, t) = 0`. By
Tweedie's formula :math:`s(x) = (\alpha\,E[x_0\mid x_t = x] - x)/\sigma^2`, so a fixed point is a
solution of the self-consistency (eq. 42-43)

.. math::
    x^* = \alpha\,E[x_0\mid x_t = x^*] = \alpha \sum_j w_j(x^*)\,y_j, \qquad
    w_j(x) \propto \pi_j \exp\!\big(-\lVert x - \alpha y_j\rVert^2 / 2\sigma^2\big),

the second form for a delta mixture :math:`\sum_j \pi_j\delta_{y_j}`. Two iterations solve it,
batched over the rows of an ``(n, d)`` tensor of starting points:

* the **mean-shift** (fixed-point) iteration :math:`x \leftarrow x + \eta\,(\alpha E[x_0|x] - x)
  = x + \eta\sigma^2 s(x)`, which for :math:`\eta = 1` never decreases :math:`p_t` and so
  climbs to a mode;
* **Newton's method** on :math:`s`, :math:`x \leftarrow x - J^{-1}s` with the score Jacobian
  :math:`J = \nabla s` (eq. 40), which converges to whichever root is nearby, saddles included.

A fixed point is **stable** when :math:`J` is negative definite (a mode of :math:`p_t`); its
**index** is the number of positive eigenvalues of :math:`J`. :func:`follow_fixed_points`
continues fixed points across a grid of times (each solve warm-started at the previous
solution) and :func:`branching_times` reads the decision tree off the resulting paths.
Everything works for any :class:`~diffnotes.mixtures.GaussianMixture` and forward process; the
chapter uses delta mixtures in the EDM and VP processes. Work in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validate import as_points, as_time, check_positive_int, check_process
from .checks import Tally
from .mixtures import GaussianMixture
from .processes import ForwardProcess

__all__ = ["FixedPointPaths", "FixedPoints", "branch_information", "branching_times",
           "check_branch_stability", "find_fixed_points", "follow_fixed_points",
           "split_after_merge"]

_METHODS = ("ascent", "newton")
_STRETCH = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0], dtype=torch.float64)


@dataclass(frozen=True)
class FixedPoints:
    r"""The fixed points of the score at one time ``t``.

    Attributes
    ----------
    points : tensor ``(m, d)``, the distinct fixed points :math:`x^*`, modes first.
    eigvals : tensor ``(m, d)``, the eigenvalues of :math:`J(x^*)` in ascending order.
    residual : tensor ``(m,)``, :math:`\lVert \alpha E[x_0|x^*] - x^*\rVert = \sigma^2\lVert
        s(x^*)\rVert`.
    t : the time.
    """

    points: torch.Tensor
    eigvals: torch.Tensor
    residual: torch.Tensor
    t: float

    @property
    def stable(self) -> torch.Tensor:
        r"""``(m,)`` bool: :math:`J(x^*)` negative definite (largest eigenvalue below zero)."""
        return self.eigvals[:, -1] < 0

    @property
    def index(self) -> torch.Tensor:
        r"""``(m,)`` int: the number of positive eigenvalues of :math:`J(x^*)` (0 for a mode)."""
        return (self.eigvals > 0).sum(1)

    def __len__(self) -> int:
        return self.points.shape[0]


@dataclass(frozen=True)
class FixedPointPaths:
    r"""Fixed points followed across a grid of times by :func:`follow_fixed_points`.

    Attributes
    ----------
    times : tensor ``(T,)``, the grid, in the order it was followed.
    points : tensor ``(T, m, d)``, the fixed point of each of the ``m`` paths at each time.
    eigvals : tensor ``(T, m, d)``, the eigenvalues of :math:`J` there (ascending).
    residual : tensor ``(T, m)``, :math:`\sigma^2\lVert s\rVert` there (small where converged).
    """

    times: torch.Tensor
    points: torch.Tensor
    eigvals: torch.Tensor
    residual: torch.Tensor

    @property
    def stable(self) -> torch.Tensor:
        r"""``(T, m)`` bool: :math:`J` negative definite on the path."""
        return self.eigvals[..., -1] < 0

    def jumps(self) -> torch.Tensor:
        r"""``(T - 1, m)``: the distance :math:`\lVert x^*(t_{i+1}) - x^*(t_i)\rVert` moved by each
        path between consecutive times (a jump marks a fixed point that disappeared)."""
        return (self.points[1:] - self.points[:-1]).norm(dim=-1)


def _coeffs(process: ForwardProcess, t: torch.Tensor) -> tuple[float, float]:
    return float(process.alpha(t)), float(process.sigma(t))


def _scale(mixture: GaussianMixture, alpha: float, sigma: float) -> float:
    """A length in the units of x: the size of the noised data plus the noise level."""
    return alpha * float(mixture.means.norm(dim=1).max()) + sigma


def _solve(mixture: GaussianMixture, x: torch.Tensor, t, process: ForwardProcess, method: str,
           tol: float, max_iter: int, damping: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Iterate every row of ``x`` (n, d) towards a root of the score at the scalar time ``t``.

    ``"ascent"``: a Newton step where :math:`J` is negative definite (the local quadratic model
    of :math:`\log p_t` is concave), else the highest of the stretched mean-shift steps
    :math:`x + c\,\eta\sigma^2 s`, :math:`c \in \{1, 2, \dots, 32\}`: converges to a mode.
    ``"newton"``: Newton steps (length at most the data scale; a damped mean-shift step
    where :math:`J` is singular): converges to the nearest root of any index.
    Returns the points and their residuals :math:`\lVert\alpha E[x_0|x] - x\rVert`.
    """
    alpha, sigma = _coeffs(process, t)
    scale = _scale(mixture, alpha, sigma)
    # a tolerance below the dtype's resolution cannot be met: float32 input gets ~1e-5
    atol = max(tol, 100 * torch.finfo(x.dtype).eps) * scale
    x = x.clone()
    res = (alpha * mixture.posterior_mean(x, t, process) - x).norm(dim=1)
    active = torch.nonzero(res > atol).flatten()  # only unconverged rows are iterated
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        xs = x[active]
        rs = alpha * mixture.posterior_mean(xs, t, process) - xs  # sigma^2 s(x), (n, d)
        shift = xs + damping * rs
        jac = mixture.score_jacobian(xs, t, process)
        step, info = torch.linalg.solve_ex(jac, (-rs / sigma**2)[:, :, None])
        step = step[:, :, 0]
        ok = (info == 0) & torch.isfinite(step).all(1)
        step = torch.where(ok[:, None], step, torch.zeros_like(step))
        length = step.norm(dim=1, keepdim=True)
        step = step * torch.clamp(scale / length.clamp_min(1e-300), max=1.0)
        newton = xs + step
        if method == "ascent":
            # where log p is not concave: the best of the mean-shift steps c * damping * sigma^2 s
            # (c = 1, 2, 4, ...), which crosses the flat region left by a vanished mode quickly
            n, d = xs.shape
            cands = xs[None] + _STRETCH.to(xs)[:, None, None] * (shift - xs)[None]
            logp = mixture.log_prob(cands.reshape(-1, d), t, process).reshape(-1, n)
            best = logp.argmax(0)
            shift = cands[best, torch.arange(n, device=xs.device)]
            use = ok & (torch.linalg.eigvalsh(jac)[:, -1] < 0)  # Newton where log p is concave
        else:
            use = ok
        xs = torch.where(use[:, None], newton, shift)
        x[active] = xs
        res_a = (alpha * mixture.posterior_mean(xs, t, process) - xs).norm(dim=1)
        res[active] = res_a
        active = active[res_a > atol]
    return x, res


def _check_common(mixture, process, method, tol, max_iter, damping):
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    check_process(process)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if not (isinstance(tol, float | int) and 0 < tol < 1):
        raise ValueError(f"tol must be a number in (0, 1); got {tol!r}")
    check_positive_int("max_iter", max_iter)
    if not (isinstance(damping, float | int) and 0 < damping <= 1):
        raise ValueError(f"damping must be in (0, 1]; got {damping!r}")


def _default_starts(mixture: GaussianMixture, alpha: float, n_random: int,
                    generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """alpha times: the component means, their weighted mean, pairwise midpoints (K <= 64) and
    ``n_random`` random convex combinations (Dirichlet(1) weights)."""
    m = mixture.means.to(like)
    starts = [m, mixture.mean().to(like)[None]]
    if mixture.K <= 64:
        i, j = torch.triu_indices(mixture.K, mixture.K, 1, device=m.device)
        starts.append(0.5 * (m[i] + m[j]))
    if n_random:
        u = torch.rand(n_random, mixture.K, generator=generator, device=generator.device
                       if generator is not None else m.device, dtype=m.dtype).to(m.device)
        e = -torch.log(u.clamp_min(1e-300))
        starts.append((e / e.sum(1, keepdim=True)) @ m)
    return alpha * torch.cat(starts)


def _dedup(x: torch.Tensor, res: torch.Tensor, radius: float) -> torch.Tensor:
    """Indices of rows of x kept after dropping every row within ``radius`` of an earlier one
    (rows ordered by residual first, so the best-converged copy survives)."""
    order = torch.argsort(res)
    xo = x[order]
    close = torch.cdist(xo, xo) <= radius
    dup = torch.triu(close, diagonal=1).any(0)
    return order[~dup]


def find_fixed_points(mixture: GaussianMixture, t, process: ForwardProcess, starts=None, *,
                      n_random: int = 0, generator: torch.Generator | None = None,
                      tol: float = 1e-10, max_iter: int = 2000, damping: float = 1.0,
                      dedup_tol: float = 1e-6) -> FixedPoints:
    r"""All fixed points :math:`s(x^*, t) = 0` reachable from a set of starts, classified.

    From every start (the rows of ``starts``) the solver runs the ascent iteration (which ends
    at a mode) and Newton's method (which may end at a saddle or a minimum of :math:`p_t`), keeps
    the runs whose residual :math:`\lVert\alpha E[x_0|x] - x\rVert` is below ``tol`` times the
    scale :math:`\alpha\max_j\lVert m_j\rVert + \sigma`, merges copies closer than ``dedup_tol``
    times that scale, and classifies each fixed point by the eigenvalues of :math:`J(x^*)`
    (paper eq. 39-43, chapter 4).

    Parameters
    ----------
    mixture : the data, a :class:`~diffnotes.mixtures.GaussianMixture` (delta or not).
    t : positive scalar time.
    process : the forward process (:math:`\alpha`, :math:`\sigma`).
    starts : tensor ``(n, d)``; default: :math:`\alpha` times the means, their weighted mean
        and, for ``K <= 64``, all pairwise midpoints.
    n_random : extra starts at :math:`\alpha` times random convex combinations of the means
        (needs ``generator`` for reproducibility).
    tol, max_iter, damping : convergence tolerance (relative), iteration cap, mean-shift step
        :math:`\eta \in (0, 1]`.
    dedup_tol : relative radius under which two solutions are the same fixed point.

    Returns
    -------
    :class:`FixedPoints`, modes first, then by index and first coordinate.
    """
    _check_common(mixture, process, "ascent", tol, max_iter, damping)
    tt = as_time("t", t)
    if tt.ndim != 0:
        raise ValueError("t must be a scalar time")
    if not isinstance(n_random, int) or isinstance(n_random, bool) or n_random < 0:
        raise ValueError(f"n_random must be a non-negative integer; got {n_random!r}")
    if not (isinstance(dedup_tol, float | int) and dedup_tol > 0):
        raise ValueError(f"dedup_tol must be positive; got {dedup_tol!r}")
    alpha, sigma = _coeffs(process, tt)
    like = mixture.means
    if starts is None:
        x0 = _default_starts(mixture, alpha, n_random, generator, like)
    else:
        x0 = as_points("starts", starts, mixture.d)
        like = x0
    xa, ra = _solve(mixture, x0, tt, process, "ascent", tol, max_iter, damping)
    xn, rn = _solve(mixture, x0, tt, process, "newton", tol, max_iter, damping)
    x, res = torch.cat([xa, xn]), torch.cat([ra, rn])
    scale = _scale(mixture, alpha, sigma)
    good = torch.isfinite(res) & (res <= max(tol, 100 * torch.finfo(x.dtype).eps) * scale)
    x, res = x[good], res[good]
    keep = _dedup(x, res, dedup_tol * scale)
    x, res = x[keep], res[keep]
    eig = torch.linalg.eigvalsh(mixture.score_jacobian(x, tt, process)) if len(x) else (
        x.new_zeros(0, mixture.d))
    index = (eig > 0).sum(1)
    order = sorted(range(len(x)), key=lambda k: (int(index[k]), float(x[k, 0])))
    order = torch.tensor(order, dtype=torch.long, device=x.device)
    return FixedPoints(x[order], eig[order], res[order], float(tt))


def follow_fixed_points(mixture: GaussianMixture, starts, times, process: ForwardProcess, *,
                        method: str = "ascent", tol: float = 1e-10, max_iter: int = 2000,
                        damping: float = 1.0) -> FixedPointPaths:
    r"""Continuation: follow fixed points from ``starts`` across the grid ``times``.

    At ``times[0]`` each start is iterated to a fixed point; at every later time the solve is
    warm-started at the previous solution, so a path stays on its branch while the branch
    exists. With ``method="ascent"`` the paths are modes (stable fixed points); when a mode
    disappears (it merges with a saddle, a saddle-node) the path jumps to another mode, which
    :meth:`FixedPointPaths.jumps` shows. With ``method="newton"`` a path follows the nearby root
    of any index (an unstable branch, say) until that branch ends. Paper eq. 39-45, chapter 4.

    Parameters
    ----------
    mixture : a :class:`~diffnotes.mixtures.GaussianMixture`.
    starts : tensor ``(m, d)``; e.g. :math:`\alpha(t_0)` times the data points to follow the
        ``K`` stable paths from a small time ``t_0`` upwards.
    times : tensor ``(T,)`` of positive times, strictly increasing or strictly decreasing.
    process : the forward process.
    method : ``"ascent"`` (modes) or ``"newton"`` (any index).
    tol, max_iter, damping : as in :func:`find_fixed_points`.

    Returns
    -------
    :class:`FixedPointPaths` with ``points`` of shape ``(T, m, d)``.
    """
    _check_common(mixture, process, method, tol, max_iter, damping)
    x = as_points("starts", starts, mixture.d)
    times = torch.as_tensor(times, dtype=torch.float64)
    if times.ndim != 1 or times.shape[0] < 1:
        raise ValueError(f"times must be a 1-D tensor of times; got shape {tuple(times.shape)}")
    as_time("times", times)
    if times.shape[0] > 1:
        dt = times[1:] - times[:-1]
        if not (bool((dt > 0).all()) or bool((dt < 0).all())):
            raise ValueError("times must be strictly increasing or strictly decreasing")
    pts, eigs, ress = [], [], []
    for t in times:
        x, res = _solve(mixture, x, t, process, method, tol, max_iter, damping)
        pts.append(x)
        ress.append(res)
        eigs.append(torch.linalg.eigvalsh(mixture.score_jacobian(x, t, process)))
    return FixedPointPaths(times.to(x), torch.stack(pts), torch.stack(eigs), torch.stack(ress))


def branching_times(paths: FixedPointPaths, tol: float = 1e-4) -> torch.Tensor:
    r"""The branching time :math:`t_{ij}` of every pair of paths: the smallest grid time above
    which paths ``i`` and ``j`` coincide (paper section 5, the decision tree).

    Two paths coincide at a time when their fixed points are closer than ``tol`` times the
    largest :math:`\lVert x^*\rVert` anywhere on the paths. The result is resolved to the grid:
    the true branching time lies between the returned grid time and the one below it.

    Parameters
    ----------
    paths : :class:`FixedPointPaths` (any time order), ``m`` paths.
    tol : relative distance under which two fixed points are one.

    Returns
    -------
    tensor ``(m, m)``, symmetric, ``inf`` for pairs that never merge on the grid and the
    smallest grid time on the diagonal.
    """
    times, together, above = _coincidence(paths, tol)
    first = (~above).sum(0)  # index of the first time of the all-together tail
    inf = torch.full((), float("inf"), dtype=times.dtype, device=times.device)
    return torch.where(first < times.shape[0], times[first.clamp_max(times.shape[0] - 1)], inf)


def _coincidence(paths, tol):
    """Ascending grid times ``(T,)``, which pairs coincide at each ``(T, m, m)``, and which
    coincide at every grid time from that one upwards ``(T, m, m)``: the rule shared by
    :func:`branching_times` and :func:`split_after_merge`."""
    if not isinstance(paths, FixedPointPaths):
        raise ValueError("paths must be a FixedPointPaths (from follow_fixed_points)")
    if not (isinstance(tol, float | int) and tol > 0):
        raise ValueError(f"tol must be positive; got {tol!r}")
    order = torch.argsort(paths.times)
    times, x = paths.times[order], paths.points[order]  # ascending, (T, m, d)
    together = torch.cdist(x, x) <= tol * float(x.norm(dim=-1).max().clamp_min(1e-12))
    # together at every time from t upwards: reverse cumulative AND over the time axis
    above = together.flip(0).to(torch.int8).cumprod(0).flip(0).bool()
    return times, together, above


def split_after_merge(paths: FixedPointPaths, tol: float = 1e-4) -> torch.Tensor:
    r"""Pairs of paths that coincide at one grid time and are apart at a larger one.

    :func:`branching_times` asks for coincidence at *every* later time, so its result is an
    ultrametric whatever the paths are. What makes the partitions "paths that coincide at
    :math:`t`" nested (a tree) is that coinciding paths stay together as :math:`t` grows; a
    deterministic continuation guarantees it, a path that hops away (a noisy or order-dependent
    solver) breaks it. This reads it off the raw distances, with the same coincidence rule as
    :func:`branching_times` (closer than ``tol`` times the largest :math:`\lVert x^*\rVert`).

    Parameters
    ----------
    paths : :class:`FixedPointPaths` (any time order), ``m`` paths.
    tol : relative distance under which two fixed points are one.

    Returns
    -------
    bool tensor ``(m, m)``, symmetric: ``True`` where paths ``i`` and ``j`` coincide at some
    grid time and do not coincide at some larger grid time (all ``False`` for a tree).
    """
    _, together, above = _coincidence(paths, tol)
    return (together & ~above).any(0)


def branch_information(t, t_start: float, a: float = 1.0, pi_plus: float = 0.5, *,
                       n_nodes: int = 160) -> torch.Tensor:
    r"""Bits that :math:`x_t` carries about the branch :math:`C = \pm` a sampler ends on.

    Two points :math:`\pm a` with weights :math:`\pi_\pm` in the EDM, the exact reverse
    process started at :math:`x_T = 0` (chapter 4, eq-fp-bridge): :math:`x_t` given
    :math:`C = \pm` is :math:`\mathcal N(\pm r a, r t^2)` with :math:`r = 1 - t^2/T^2`, and
    :math:`P(C = + \mid x_t = x) = \operatorname{sigmoid}(2 a x / t^2 + 2h)`,
    :math:`h = \tfrac12 \log(\pi_+/\pi_-)` (the future of the path depends on :math:`x_T` only
    through :math:`x_t`). Then

    .. math::
        I(C; x_t) = H(C) - E\big[H_2\big(P(C = + \mid x_t)\big)\big]

    in bits, the expectation by Gauss-Hermite quadrature (``n_nodes`` per component).

    Parameters
    ----------
    t : times, scalar or tensor ``(n,)``, with :math:`0 < t < T`.
    t_start : the starting time :math:`T`.
    a : half the distance between the points.
    pi_plus : the weight :math:`\pi_+ \in (0, 1)` of :math:`+a`.
    n_nodes : quadrature nodes.

    Returns
    -------
    tensor of the shape of ``t``, float64: :math:`I(C; x_t)` in bits.
    """
    if not (isinstance(t_start, float | int) and t_start > 0):
        raise ValueError(f"t_start must be positive; got {t_start!r}")
    if not (isinstance(a, float | int) and a > 0):
        raise ValueError(f"a must be positive; got {a!r}")
    if not (isinstance(pi_plus, float | int) and 0 < pi_plus < 1):
        raise ValueError(f"pi_plus must be in (0, 1); got {pi_plus!r}")
    check_positive_int("n_nodes", n_nodes)
    tt = torch.as_tensor(t, dtype=torch.float64)
    if not bool(((tt > 0) & (tt < t_start)).all()):
        raise ValueError(f"t must lie in (0, t_start = {t_start}); got {t!r}")
    import numpy as np  # the Hermite nodes

    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    z = torch.as_tensor(nodes, dtype=torch.float64)
    wq = torch.as_tensor(weights / weights.sum(), dtype=torch.float64)
    h = 0.5 * math.log(pi_plus / (1 - pi_plus))
    r = 1 - tt**2 / t_start**2

    def h2(logit):  # binary entropy in bits of sigmoid(logit), stable for large |logit|
        p = torch.sigmoid(logit)
        return (torch.nn.functional.softplus(-logit) * p
                + torch.nn.functional.softplus(logit) * (1 - p)) / math.log(2)

    cond = 0.0
    for sign, pi in ((1.0, pi_plus), (-1.0, 1 - pi_plus)):
        x = sign * r[..., None] * a + torch.sqrt(r)[..., None] * tt[..., None] * z
        cond = cond + pi * (h2(2 * a * x / tt[..., None] ** 2 + 2 * h) * wq).sum(-1)
    h_c = -(pi_plus * math.log2(pi_plus) + (1 - pi_plus) * math.log2(1 - pi_plus))
    return h_c - cond


def _branch_criterion(m: torch.Tensor) -> torch.Tensor:
    r"""The stability of a non-zero Curie–Weiss solution as stated in chapter 4:
    :math:`\operatorname{artanh}(m)/m < 1/(1 - m^2)`."""
    return torch.atanh(m) / m < 1 / (1 - m**2)


def check_branch_stability(times, process: ForwardProcess, *, a: float = 1.0,
                           criterion: Callable[[torch.Tensor], torch.Tensor] | None = None,
                           tally: Tally | None = None) -> Tally:
    r"""Check chapter 4's stability claim for the branches of two points :math:`\pm a`.

    For two equally weighted points :math:`\pm a` on a line the non-zero fixed points solve
    :math:`m = \tanh(m/T)`, :math:`m = u/(\alpha a)`, :math:`T = \sigma^2/(\alpha^2 a^2)`, and the
    chapter claims that they are stable because :math:`(1 - m^2)/T < 1` reads
    :math:`\operatorname{artanh}(m)/m < 1/(1 - m^2)` there. At every time in ``times`` this
    finds the fixed points with :func:`find_fixed_points`, whose stability comes from the
    closed-form score Jacobian and knows nothing of the claim, and requires, for each non-zero
    fixed point, that it is a mode and that ``criterion(m)`` (default: the chapter's inequality)
    says so. A criterion that disagrees with the Jacobian anywhere (the reversed inequality, say)
    raises ``AssertionError``.

    Parameters
    ----------
    times : 1-D sequence of times with :math:`0.1 \le T < 1` (below the critical time).
    process : the forward process.
    a : half the distance between the points.
    criterion : maps a tensor of :math:`m` to a bool tensor, "stable"; default the chapter's.
    tally : a :class:`~diffnotes.checks.Tally` to add the checks to (a new one by default).

    Returns
    -------
    the tally, one exact check per non-zero fixed point plus one per time.
    """
    check_process(process)
    if not (isinstance(a, float | int) and a > 0):
        raise ValueError(f"a must be positive; got {a!r}")
    crit = _branch_criterion if criterion is None else criterion
    tally = Tally("non-zero Curie–Weiss branches are stable") if tally is None else tally
    pair = GaussianMixture.delta(torch.tensor([[a], [-a]], dtype=torch.float64))
    for t in torch.as_tensor(times, dtype=torch.float64).reshape(-1):
        alpha, sigma = _coeffs(process, t)
        temp = sigma**2 / (alpha * a) ** 2
        if not 0.1 <= temp < 1:
            # below T = 0.1, 1 - |m| < 1e-8 and artanh(m) loses its digits in float64
            raise ValueError(f"times must give 0.1 <= T < 1 (below the critical time, where m "
                             f"is not rounded to 1); t = {float(t)} gives T = {temp:.3g}")
        fp = find_fixed_points(pair, t, process)
        m = fp.points[:, 0] / (alpha * a)
        nonzero = m.abs() > 1e-6
        tally.require(int(nonzero.sum()) == 2, f"t = {float(t):.4g}: two non-zero fixed points")
        said = crit(m[nonzero])
        for mm, stable, claim in zip(m[nonzero].tolist(), fp.stable[nonzero].tolist(),
                                     said.tolist(), strict=True):
            tally.require(stable and claim,
                          f"t = {float(t):.4g}, m = {mm:+.4f}: a mode by the Jacobian "
                          f"({stable}) and by the criterion ({claim})")
    return tally
