r"""Chapter 10's home module: classifier-free guidance for mixtures with exact scores.

A mixture :math:`p_0 = \sum_k \pi_k\,\mathcal N(m_k, \Sigma_k)` whose components carry class
labels :math:`\ell_k` has the class-conditional laws :math:`p_0(x\mid c) \propto
\sum_{\ell_k = c}\pi_k\,\mathcal N(m_k, \Sigma_k)` (:func:`class_mixture`), and the noised
versions of both are mixtures with exact scores. **Classifier-free guidance** (CFG) with weight
:math:`w(t)` replaces the conditional score by

.. math::
    s_w(x, t) = s(x, t\mid c) + w(t)\,\big[s(x, t\mid c) - s(x, t)\big]
              = s(x, t) + (1 + w)\,\nabla_x\log p_t(c\mid x),

(:class:`GuidedScore`), a callable ``(x, t) -> (n, d)`` that :func:`diffnotes.samplers.
reverse_sde` and :func:`diffnotes.samplers.probability_flow` integrate as they would any score.
``w = 0`` is conditional sampling, ``w = -1`` unconditional sampling. Guidance weights are
functions of time (:class:`Schedule`: :func:`constant`, :func:`interval`,
:func:`negative_window`, whose negative weight :func:`fit_negative_weight` fits for one
sampler).

Exact references the chapter checks the sampled moments against:

* :func:`gaussian_guided_moments`: for a Gaussian class :math:`\mathcal N(\mu_c, v_c I)` guided
  against a Gaussian unconditional :math:`\mathcal N(\mu_u, v_u I)` the guided score is affine in
  :math:`x`, and the mean and variance of the reverse SDE and of the probability flow solve
  linear ODEs, integrated here by ``scipy`` (independently of the samplers);
* :func:`guided_curie_weiss_roots`: the fixed points of the guided score of two symmetric
  classes, the Curie–Weiss equation of chapter 4 with a time-dependent field.

Many classes: :func:`random_classes` draws ``K`` Gaussian classes with random means, whose
mixture tends to a Gaussian as ``K`` grows (the setting of :func:`gaussian_guided_moments`).

Diversity and fidelity of guided samples: :func:`variance_ratio`, :func:`mean_shift`,
:func:`sliced_wasserstein`, :func:`class_posterior`, :func:`class_entropy`. Work in float64;
device and dtype follow ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._validate import as_points, check_positive_int, check_process
from .checks import MCEstimate, mc_estimate
from .mixtures import GaussianMixture
from .processes import ForwardProcess

__all__ = ["GuidedScore", "Schedule", "class_entropy", "class_mixture", "class_posterior",
           "constant", "fit_negative_weight", "gaussian_guided_moments",
           "guided_curie_weiss_roots", "interval", "mean_shift", "negative_window",
           "random_classes", "sliced_wasserstein", "variance_ratio"]


# -- labels and class-conditional mixtures --------------------------------------------------
def _labels(mixture: GaussianMixture, labels) -> torch.Tensor:
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    lab = torch.as_tensor(labels)
    if lab.is_floating_point() or lab.dtype == torch.bool:
        raise ValueError("labels must be integers, one class per component")
    lab = lab.to(torch.long).reshape(-1)
    if lab.shape[0] != mixture.K:
        raise ValueError(f"labels must have shape ({mixture.K},), one per component; got "
                         f"{tuple(torch.as_tensor(labels).shape)}")
    if bool((lab < 0).any()):
        raise ValueError("labels must be non-negative integers 0, ..., C - 1")
    n_cls = int(lab.max()) + 1
    missing = sorted(set(range(n_cls)) - set(lab.tolist()))
    if missing:
        raise ValueError(f"labels must use every class 0, ..., {n_cls - 1}; missing {missing}")
    return lab


def _check_class(lab: torch.Tensor, c) -> int:
    if isinstance(c, bool) or not isinstance(c, int):
        raise ValueError(f"the class must be an integer; got {c!r}")
    if not 0 <= c <= int(lab.max()):
        raise ValueError(f"unknown class {c}: the labels name classes 0, ..., {int(lab.max())}")
    return c


def class_mixture(mixture: GaussianMixture, labels, c: int) -> GaussianMixture:
    r"""The class-conditional law :math:`p_0(x\mid c)`: the components with label ``c``, their
    weights renormalised, :math:`\pi_k / \sum_{\ell_j = c}\pi_j`.

    Parameters
    ----------
    mixture : the data, a :class:`~diffnotes.mixtures.GaussianMixture` with ``K`` components.
    labels : integer tensor ``(K,)``, the class of each component (classes 0, ..., C - 1).
    c : the class.
    """
    lab = _labels(mixture, labels)
    c = _check_class(lab, c)
    keep = lab == c
    w = mixture.weights[keep]
    if mixture.isotropic:
        covs = mixture.variances[keep]
    else:
        covs = mixture.covariances[keep]
    return GaussianMixture(mixture.means[keep], w / w.sum(), covs)


def class_posterior(mixture: GaussianMixture, labels, x, t, process: ForwardProcess
                    ) -> torch.Tensor:
    r"""The class posterior :math:`p(c\mid x_t = x) = \sum_{\ell_k = c} r_k(x)`, shape ``(n, C)``.

    Sums the closed-form component posterior :math:`r_k` of the mixture over each class.
    """
    lab = _labels(mixture, labels)
    r = mixture.component_posterior(x, t, process)
    out = torch.zeros(r.shape[0], int(lab.max()) + 1, dtype=r.dtype, device=r.device)
    return out.index_add_(1, lab.to(r.device), r)


def class_entropy(mixture: GaussianMixture, labels, x, t, process: ForwardProcess
                  ) -> torch.Tensor:
    r"""Pathwise class entropy :math:`-\sum_c p(c\mid x)\log p(c\mid x)` (nats), shape ``(n,)``;
    its mean over :math:`x_t \sim p_t` is :math:`H(C\mid x_t)` (chapter 7)."""
    p = class_posterior(mixture, labels, x, t, process)
    logp = torch.log(p.clamp_min(1e-300))
    return -(p * logp).sum(1)



def random_classes(n_classes: int, d: int, spread: float, variance: float,
                   generator: torch.Generator | None = None
                   ) -> tuple[GaussianMixture, torch.Tensor]:
    r"""``K`` equally weighted Gaussian classes with random means, one component per class.

    .. math::
        p_0(x) = \frac1K\sum_{k=1}^K \mathcal N(x;\, \mu_k,\, v I), \qquad
        \mu_k \overset{\text{i.i.d.}}{\sim} \mathcal N(0,\, r^2 I),

    with ``spread`` :math:`r` and ``variance`` :math:`v`; class :math:`k` is component
    :math:`k`. The norms :math:`\lVert\mu_k\rVert` concentrate at :math:`r\sqrt d`, so the means
    lie near a sphere, and as :math:`K \to \infty` the mixture tends to the Gaussian
    :math:`\mathcal N(0, (v + r^2) I)`: the class model of :func:`gaussian_guided_moments`.
    Chapter 10 ("Many classes") guides towards one class for growing ``K``.

    Parameters
    ----------
    n_classes : ``K >= 1``.
    d : the dimension, ``>= 1``.
    spread : :math:`r \ge 0`, the standard deviation of each coordinate of a mean.
    variance : :math:`v > 0`, the per-coordinate variance of every class.
    generator : draws the means ``(K, d)`` in float64 (CPU); the first ``d`` numbers are
        :math:`\mu_0`, so one seed gives the same class 0 for every ``K``.

    Returns
    -------
    (mixture with means ``(K, d)`` and variances ``(K,)``, labels ``0, ..., K - 1``).
    """
    check_positive_int("n_classes", n_classes)
    check_positive_int("d", d)
    for name, val in (("spread", spread), ("variance", variance)):
        if isinstance(val, bool) or not isinstance(val, float | int) or not math.isfinite(val):
            raise ValueError(f"{name} must be a finite number; got {val!r}")
    if spread < 0:
        raise ValueError(f"spread must be non-negative; got {spread!r}")
    if not variance > 0:
        raise ValueError(f"variance must be positive; got {variance!r}")
    means = float(spread) * torch.randn(n_classes, d, generator=generator, dtype=torch.float64)
    mixture = GaussianMixture(means, None, torch.full((n_classes,), float(variance),
                                                      dtype=torch.float64))
    return mixture, torch.arange(n_classes)

# -- schedules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    r"""A guidance weight as a piecewise-constant function of time, :math:`w(t)`.

    ``pieces`` is a tuple of ``(t_lo, t_hi, w)``: the weight is ``w`` for ``t_lo <= t < t_hi``
    and 0 where no piece applies. Call it with a scalar time (a float or a 0-d tensor).
    """

    pieces: tuple[tuple[float, float, float], ...]
    name: str = "schedule"

    def __call__(self, t) -> float:
        tt = float(t)
        for lo, hi, w in self.pieces:
            if lo <= tt < hi:
                return w
        return 0.0

    def integral(self, kernel: Callable[[float], float], t_min: float, t_max: float) -> float:
        r""":math:`\int_{t_{\min}}^{t_{\max}} w(t)\,k(t)\,dt` by adaptive quadrature (scipy)."""
        from scipy.integrate import quad

        total = 0.0
        for lo, hi, w in self.pieces:
            a, b = max(lo, t_min), min(hi, t_max)
            if b > a and w != 0.0:
                total += w * quad(kernel, a, b, epsabs=0.0, epsrel=1e-12, limit=200)[0]
        return total


def _weight(name: str, w, lo: float = -1.0) -> float:
    if isinstance(w, bool) or not isinstance(w, float | int) or not math.isfinite(w):
        raise ValueError(f"{name} must be a finite number; got {w!r}")
    if w < lo:
        raise ValueError(f"{name} must be >= {lo:g} (w = -1 is unconditional sampling; below "
                         f"it the field points away from the class); got {w!r}")
    return float(w)


def _times(**ts) -> list[float]:
    out = []
    for name, t in ts.items():
        if isinstance(t, bool) or not isinstance(t, float | int) or not t >= 0 or \
                math.isnan(t):
            raise ValueError(f"{name} must be a non-negative number (inf allowed); got {t!r}")
        out.append(float(t))
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"the times must be increasing: {dict(ts)}")
    return out


def constant(w: float) -> Schedule:
    r"""Constant guidance :math:`w(t) = w` at every time (vanilla CFG), ``w >= -1``."""
    w = _weight("w", w)
    return Schedule(((0.0, math.inf, w),), name=f"constant w = {w:g}")


def interval(w: float, t_lo: float, t_hi: float) -> Schedule:
    r"""Guidance limited to an interval: :math:`w` for :math:`t_{lo} \le t < t_{hi}`, 0
    elsewhere (conditional sampling outside the interval)."""
    w = _weight("w", w)
    t_lo, t_hi = _times(t_lo=t_lo, t_hi=t_hi)
    return Schedule(((t_lo, t_hi, w),), name=f"w = {w:g} on [{t_lo:g}, {t_hi:g})")


def negative_window(w: float, w_neg: float, t_lo: float, t_mid: float, t_hi: float) -> Schedule:
    r"""Positive guidance followed by a negative-guidance window (the book's definition).

    :math:`w(t) = w` for :math:`t_{mid} \le t < t_{hi}`, :math:`w(t) = w_{neg} \in [-1, 0)` for
    :math:`t_{lo} \le t < t_{mid}` (later in generation), 0 elsewhere. Chapter 10 chooses
    :math:`w_{neg}` so that the net variance change of the Gaussian-class model vanishes.
    """
    w = _weight("w", w)
    w_neg = _weight("w_neg", w_neg)
    if not w_neg < 0:
        raise ValueError(f"w_neg must be negative; got {w_neg!r}")
    t_lo, t_mid, t_hi = _times(t_lo=t_lo, t_mid=t_mid, t_hi=t_hi)
    return Schedule(((t_mid, t_hi, w), (t_lo, t_mid, w_neg)),
                    name=f"w = {w:g} on [{t_mid:g}, {t_hi:g}), {w_neg:.3g} on "
                         f"[{t_lo:g}, {t_mid:g})")


def fit_negative_weight(var_c: float, var_u: float, w: float, t_lo: float, t_mid: float,
                        t_hi: float, process: ForwardProcess, *, sampler: str = "ode",
                        t_max: float = 40.0, t_min: float = 0.01) -> float:
    r"""The weight :math:`w_-` of a :func:`negative_window` that keeps the variance of the
    Gaussian-class model, for the sampler that will run it.

    Class :math:`\mathcal N(\mu_c, v_c I)` against :math:`\mathcal N(\mu_u, v_u I)`,
    :math:`v_u > v_c`, guided with :math:`w` on :math:`[t_{mid}, t_{hi})` and :math:`w_-` on
    :math:`[t_{lo}, t_{mid})`.

    * ``sampler="ode"``: the exponent of the probability-flow variance vanishes,
      :math:`w\,K(t_{mid}, t_{hi}) + w_-\,K(t_{lo}, t_{mid}) = 0` with (EDM, :math:`C = v + t^2`)
      :math:`K(a, b) = \int_a^b 2t\,(1/C_c - 1/C_u)\,dt = \log\frac{C_c(b)}{C_c(a)} -
      \log\frac{C_u(b)}{C_u(a)}`, so :math:`w_- = -w\,K(t_{mid}, t_{hi})/K(t_{lo}, t_{mid})`
      (closed form; requires the EDM, :math:`\alpha = 1`, :math:`\sigma = t`).
    * ``sampler="sde"``: the reverse-SDE variance of :func:`gaussian_guided_moments` from
      ``t_max`` to ``t_min`` equals the class's, :math:`V_{\rm SDE}(t_{\min}) = v_c + t_{\min}^2`,
      solved for :math:`w_- \in [-1, 0)` by Brent's method (``scipy.optimize.brentq``);
      ValueError if no weight in that range does it.

    Returns
    -------
    :math:`w_- < 0`.
    """
    from scipy.optimize import brentq

    check_process(process)
    w = _weight("w", w)
    t_lo, t_mid, t_hi = _times(t_lo=t_lo, t_mid=t_mid, t_hi=t_hi)
    _, v_c = _gaussian_params(0.0, var_c, "class")
    _, v_u = _gaussian_params(0.0, var_u, "unconditional")
    if not v_u > v_c:
        raise ValueError(f"var_u must exceed var_c; got {var_u!r} <= {var_c!r}")
    if not w > 0:
        raise ValueError(f"w must be positive (the window's positive part); got {w!r}")
    if sampler == "ode":
        def big_k(a, b):
            return math.log((v_c + b * b) / (v_c + a * a)) - math.log((v_u + b * b) / (v_u + a * a))
        w_neg = -w * big_k(t_mid, t_hi) / big_k(t_lo, t_mid)
        if w_neg < -1:
            raise ValueError(f"no w_- >= -1 cancels the window (it would need {w_neg:.4g})")
        return w_neg
    if sampler != "sde":
        raise ValueError(f"sampler must be 'ode' or 'sde'; got {sampler!r}")
    target = v_c + t_min * t_min

    def excess(w_neg):
        sched = negative_window(w, w_neg, t_lo, t_mid, t_hi)
        return gaussian_guided_moments([0.0], v_c, [0.0], v_u, sched, process, t_max, t_min,
                                       sampler="sde")[1] - target

    lo, hi = -1.0, -1e-9
    if excess(lo) * excess(hi) > 0:
        raise ValueError("no w_- in [-1, 0) keeps the SDE variance for this window")
    return float(brentq(excess, lo, hi, xtol=1e-10, rtol=1e-10))


def _as_schedule(w) -> Schedule | Callable:
    if isinstance(w, Schedule) or callable(w):
        return w
    return constant(w)


# -- the guided score ---------------------------------------------------------------------------
class GuidedScore:
    r"""The CFG score :math:`s_w = s(x\mid c) + w(t)\,[s(x\mid c) - s(x)]` as a callable.

    Parameters
    ----------
    conditional, unconditional : :class:`~diffnotes.mixtures.GaussianMixture` in the same
        dimension, the laws :math:`p_0(\cdot\mid c)` and :math:`p_0`; or use
        :meth:`from_labels` to build both from one labelled mixture.
    w : the guidance weight: a number (``>= -1``), a :class:`Schedule` or any callable of t.
    process : the forward process.

    ``score(x, t)`` takes ``x`` ``(n, d)`` and a scalar ``t`` and returns ``(n, d)``; it is what
    :func:`diffnotes.samplers.reverse_sde` and :func:`~diffnotes.samplers.probability_flow`
    expect. :meth:`velocity` is the probability-flow field :math:`f x - \tfrac12 g^2 s_w`.
    """

    def __init__(self, conditional: GaussianMixture, unconditional: GaussianMixture, w,
                 process: ForwardProcess):
        for name, m in (("conditional", conditional), ("unconditional", unconditional)):
            if not isinstance(m, GaussianMixture):
                raise ValueError(f"{name} must be a GaussianMixture; got {type(m).__name__}")
        if conditional.d != unconditional.d:
            raise ValueError(f"conditional and unconditional must share d; got "
                             f"{conditional.d} and {unconditional.d}")
        check_process(process)
        self.conditional, self.unconditional = conditional, unconditional
        self.schedule = _as_schedule(w)
        self.process = process

    @classmethod
    def from_labels(cls, mixture: GaussianMixture, labels, c: int, w,
                    process: ForwardProcess) -> GuidedScore:
        """Guidance towards class ``c`` of a labelled mixture (see :func:`class_mixture`)."""
        return cls(class_mixture(mixture, labels, c), mixture, w, process)

    def weight(self, t) -> float:
        w = float(self.schedule(t))
        if not math.isfinite(w):
            raise ValueError(f"the guidance weight at t = {float(t):g} is not finite: {w}")
        return w

    def __call__(self, x, t) -> torch.Tensor:
        x = as_points("x", x, self.conditional.d)
        w = self.weight(t)
        s_c = self.conditional.score(x, t, self.process)
        if w == 0.0:
            return s_c
        return (1.0 + w) * s_c - w * self.unconditional.score(x, t, self.process)

    def velocity(self, x, t) -> torch.Tensor:
        r"""Probability-flow velocity :math:`f(t)\,x - \tfrac12 g(t)^2 s_w(x, t)`, ``(n, d)``."""
        x = as_points("x", x, self.conditional.d)
        tt = torch.as_tensor(t, dtype=x.dtype)
        return self.process.drift(tt).to(x) * x - 0.5 * self.process.diffusion2(tt).to(x) * \
            self(x, t)


# -- exact moments of a guided Gaussian class --------------------------------------------------
def _gaussian_params(mean, var, name):
    m = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} mean must be finite")
    if isinstance(var, bool) or not isinstance(var, float | int) or not var > 0 or \
            not math.isfinite(var):
        raise ValueError(f"{name} variance must be a positive number; got {var!r}")
    return m, float(var)


def gaussian_guided_moments(mean_c, var_c: float, mean_u, var_u: float, w,
                            process: ForwardProcess, t_max: float, t_min: float, *,
                            sampler: str = "ode") -> tuple[torch.Tensor, float]:
    r"""Exact mean and variance of guided samples of a Gaussian class, at ``t_min``.

    Class :math:`\mathcal N(\mu_c, v_c I)`, unconditional :math:`\mathcal N(\mu_u, v_u I)`; the
    noised scores are :math:`-(x - \alpha\mu)/C` with :math:`C = \alpha^2 v + \sigma^2`, so the
    guided score is affine, :math:`s_w = -\lambda x + \beta` with :math:`\lambda = (1+w)/C_c -
    w/C_u` and :math:`\beta = \alpha[(1+w)\mu_c/C_c - w\mu_u/C_u]`. Started at ``t_max`` from the
    exact :math:`p_{t_{\max}}(x\mid c)`, mean :math:`m` and per-coordinate variance :math:`V` of
    the reverse dynamics obey, in forward time :math:`t` (integrated from ``t_max`` down):

    * probability flow: :math:`\dot m = (f + \tfrac12 g^2\lambda) m - \tfrac12 g^2 \beta`,
      :math:`\dot V = 2 (f + \tfrac12 g^2 \lambda) V`;
    * reverse SDE: :math:`\dot m = (f + g^2\lambda) m - g^2\beta`,
      :math:`\dot V = 2(f + g^2\lambda) V - g^2`.

    These linear ODEs are solved by ``scipy.integrate.solve_ivp`` (DOP853, rtol 1e-11) on each
    piece of the schedule: a reference independent of :mod:`diffnotes.samplers`.

    Returns
    -------
    (mean ``(d,)``, variance per coordinate).
    """
    from scipy.integrate import solve_ivp

    check_process(process)
    mu_c, v_c = _gaussian_params(mean_c, var_c, "class")
    mu_u, v_u = _gaussian_params(mean_u, var_u, "unconditional")
    if mu_c.shape != mu_u.shape:
        raise ValueError("mean_c and mean_u must have the same shape")
    if sampler not in ("ode", "sde"):
        raise ValueError(f"sampler must be 'ode' or 'sde'; got {sampler!r}")
    if not (0 < t_min < t_max) or not math.isfinite(t_max):
        raise ValueError(f"need 0 < t_min < t_max < inf; got {t_min}, {t_max}")
    sched = _as_schedule(w)
    k = 1.0 if sampler == "sde" else 0.5
    d = mu_c.shape[0]

    def coeffs(t, ww):
        tt = torch.tensor(t, dtype=torch.float64)
        a, s = float(process.alpha(tt)), float(process.sigma(tt))
        f, g2 = float(process.drift(tt)), float(process.diffusion2(tt))
        cc, cu = a * a * v_c + s * s, a * a * v_u + s * s
        lam = (1 + ww) / cc - ww / cu
        return a, f, g2, cc, cu, lam

    mc, mu = mu_c.numpy(), mu_u.numpy()

    def rhs(t, y, ww):
        a, f, g2, cc, cu, lam = coeffs(t, ww)
        beta = a * ((1 + ww) * mc / cc - ww * mu / cu)
        rate = f + k * g2 * lam
        dm = rate * y[:d] - k * g2 * beta
        dv = 2 * rate * y[d] - (g2 if sampler == "sde" else 0.0)
        return [*dm, dv]

    a0 = float(process.alpha(torch.tensor(t_max, dtype=torch.float64)))
    s0 = float(process.sigma(torch.tensor(t_max, dtype=torch.float64)))
    y = list((a0 * mu_c).tolist()) + [a0 * a0 * v_c + s0 * s0]
    # integrate piece by piece, the weight held at its value inside the piece, so that the
    # jumps of a Schedule are knots (any other callable is evaluated where the solver asks)
    cuts = {t_min, t_max}
    pieces = getattr(sched, "pieces", None)
    for lo, hi, _ in pieces or ():
        cuts |= {c for c in (lo, hi) if t_min < c < t_max}
    knots = sorted(cuts, reverse=True)
    for hi, lo in zip(knots, knots[1:], strict=False):
        w_mid = float(sched(0.5 * (hi + lo)))

        def rhs_piece(t, y, w_mid=w_mid):
            return rhs(t, y, w_mid if pieces is not None else float(sched(t)))

        sol = solve_ivp(rhs_piece, (hi, lo), y, method="DOP853", rtol=1e-11, atol=1e-13)
        if not sol.success:
            raise RuntimeError(f"moment ODE failed on [{lo}, {hi}]: {sol.message}")
        y = list(sol.y[:, -1])
    return torch.tensor(y[:d], dtype=torch.float64), float(y[d])


# -- guidance as a field: the guided Curie–Weiss equation -----------------------------------------
def guided_curie_weiss_roots(temperature: float, gamma: float, *, n_grid: int = 20001
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""All fixed points of the guided two-class field along the separating line.

    For two equally weighted classes :math:`\pm a` (points, or Gaussians of variance :math:`v`)
    guided towards :math:`+` with :math:`\gamma = 1 + w`, the fixed points :math:`m = u/(\alpha
    a)` solve

    .. math:: F(m) = (1 - \gamma)\tanh(m/T) + \gamma - m = 0, \qquad
        T = \frac{\alpha^2 v + \sigma^2}{\alpha^2 a^2},

    and a root is stable iff :math:`F'(m) < 0`. Roots are bracketed by sign changes of
    :math:`F` on a grid of ``n_grid`` points over :math:`|m| \le |\gamma| + |1 - \gamma|`
    (where every root lies) and refined by 64 bisection steps; a double root (exactly at a
    saddle-node) may be missed.

    Returns
    -------
    (roots ``(r,)`` ascending, stable ``(r,)`` bool).
    """
    for name, val in (("temperature", temperature), ("gamma", gamma)):
        if isinstance(val, bool) or not isinstance(val, float | int) or not math.isfinite(val):
            raise ValueError(f"{name} must be a finite number; got {val!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive; got {temperature!r}")
    check_positive_int("n_grid", n_grid)
    T, g = float(temperature), float(gamma)
    bound = abs(g) + abs(1 - g) + 1e-9

    def F(m):
        return (1 - g) * torch.tanh(m / T) + g - m

    m = torch.linspace(-bound, bound, n_grid, dtype=torch.float64)
    f = F(m)
    idx = torch.nonzero((f[:-1] > 0) != (f[1:] > 0)).flatten()
    lo, hi = m[idx].clone(), m[idx + 1].clone()
    flo = F(lo)
    for _ in range(64):         # the bracket (< 1e-3 wide) shrinks below float64 resolution
        mid = 0.5 * (lo + hi)
        fm = F(mid)
        same = (fm > 0) == (flo > 0)
        lo = torch.where(same, mid, lo)
        flo = torch.where(same, fm, flo)
        hi = torch.where(same, hi, mid)
    roots = 0.5 * (lo + hi)
    slope = (1 - g) / (T * torch.cosh(roots / T) ** 2) - 1
    return roots, slope < 0


# -- diversity and fidelity of samples ----------------------------------------------------------
def variance_ratio(samples, reference_cov) -> MCEstimate:
    r"""Total variance of ``samples`` over the trace of a reference covariance, with its error.

    :math:`\widehat{\operatorname{tr}\Sigma} = \frac{1}{n-1}\sum_i \lVert x_i - \bar x\rVert^2`
    divided by :math:`\operatorname{tr}\Sigma_{\rm ref}`; the standard error is that of the mean
    of :math:`\lVert x_i - \bar x\rVert^2` (the delta method, exact to :math:`O(1/n)`).
    ``samples`` ``(n, d)``; ``reference_cov`` ``(d, d)``.
    """
    x = as_points("samples", samples).to(torch.float64)
    ref = torch.as_tensor(reference_cov, dtype=torch.float64)
    if ref.shape != (x.shape[1], x.shape[1]):
        raise ValueError(f"reference_cov must have shape ({x.shape[1]}, {x.shape[1]}); got "
                         f"{tuple(ref.shape)}")
    n = x.shape[0]
    if n < 4:
        raise ValueError("need at least 4 samples")
    q = ((x - x.mean(0)) ** 2).sum(1) * (n / (n - 1))
    est = mc_estimate(q)
    tr = float(torch.diagonal(ref).sum())
    return MCEstimate(est.value / tr, est.stderr / tr, n)


def mean_shift(samples, mean, direction) -> MCEstimate:
    r"""Mean displacement of ``samples`` from ``mean`` along ``direction``, with its error.

    :math:`\hat\delta = \frac1n\sum_i u^\top (x_i - m)` with the unit vector :math:`u =
    e/\lVert e\rVert`; the standard error is that of the mean of the projections.
    ``samples`` ``(n, d)``; ``mean`` and ``direction`` ``(d,)``, the direction non-zero.
    """
    x = as_points("samples", samples).to(torch.float64)
    d = x.shape[1]
    m = torch.as_tensor(mean, dtype=torch.float64).to(x.device)
    e = torch.as_tensor(direction, dtype=torch.float64).to(x.device)
    for name, val in (("mean", m), ("direction", e)):
        if val.shape != (d,):
            raise ValueError(f"{name} must have shape ({d},); got {tuple(val.shape)}")
        if not bool(torch.isfinite(val).all()):
            raise ValueError(f"{name} must be finite")
    norm = float(e.norm())
    if norm == 0.0:
        raise ValueError("direction must be non-zero")
    return mc_estimate((x - m) @ (e / norm))


def sliced_wasserstein(x, y, n_directions: int = 64,
                       generator: torch.Generator | None = None) -> float:
    r"""Sliced 2-Wasserstein distance between two equal-size samples ``(n, d)``.

    :math:`\mathrm{SW}_2 = \big(\mathbb E_\theta\, W_2^2(\theta^\top x, \theta^\top y)\big)^{1/2}`
    over ``n_directions`` random unit directions :math:`\theta`; each 1-D :math:`W_2^2` is the
    mean squared difference of the sorted projections. A finite-sample estimate: two samples of
    one law give a positive value (the noise floor), which the chapter reports beside it. The
    floor falls like :math:`1/\sqrt n` for a law with connected support (measured on
    :math:`\mathcal N(0, I_2)`, 32 directions: :math:`\sqrt n\,\mathrm{SW}_2` from 2.2 to 2.5
    for :math:`n` = 25 to 6400) but only like :math:`n^{-1/4}` for well-separated modes, whose
    sampled masses differ by :math:`O(1/\sqrt n)` (eight points on a circle of radius 4 with
    noise 0.02: :math:`n^{1/4}\,\mathrm{SW}_2` from 2.3 to 2.7 over the same range).
    """
    x = as_points("x", x).to(torch.float64)
    y = as_points("y", y, x.shape[1]).to(torch.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows; got {x.shape[0]} and "
                         f"{y.shape[0]}")
    check_positive_int("n_directions", n_directions)
    theta = torch.randn(x.shape[1], n_directions, generator=generator, dtype=torch.float64,
                        device=generator.device if generator is not None else x.device)
    theta = (theta / theta.norm(dim=0, keepdim=True)).to(x.device)
    px, _ = torch.sort(x @ theta, dim=0)
    py, _ = torch.sort(y @ theta, dim=0)
    return float(((px - py) ** 2).mean().sqrt())
