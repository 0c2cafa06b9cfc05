r"""Chapter 8's home module: sampling schedules, entropic time, and their comparison.

A schedule is a decreasing grid of ``steps + 1`` times :math:`t_0 = t_{\max} > \dots > t_N =
t_{\min}` that :func:`diffnotes.samplers.reverse_sde` and
:func:`diffnotes.samplers.probability_flow` take unchanged. Every schedule here is defined on
the **noise-to-signal ratio** :math:`r = \sigma_t/\alpha_t` (the SNR is
:math:`\lambda = 1/r^2`) and mapped to the time of the forward process by
:meth:`~diffnotes.processes.ForwardProcess.t_from_sigma_ratio`; so the same schedule gives the
same points in SNR for the EDM, VP and VE processes.

======================  ===========================================================
``"uniform"``           equal steps in :math:`t` (depends on the process)
``"log_snr"``           equal steps in :math:`\log\lambda = -2\log r`
``"edm"``               equal steps in :math:`r^{1/\rho}`, :math:`\rho = 7` (Karras et al.)
``"cosine"``            equal steps in :math:`\arctan r` (the cosine schedule of the VP process)
``"entropic"``          equal steps in :math:`H(x_0\mid x_t)` (Stančević et al. 2025)
``"rescaled"``          equal steps in the rescaled entropic time :math:`\int r\,dH` (ibid.)
======================  ===========================================================

Entropic time needs the conditional entropy as a function of :math:`r`. Its rate in
:math:`\log r` is the noise-prediction loss of the ideal denoiser (chapter 8),

.. math::
    \frac{dH(x_0\mid x_0 + r\varepsilon)}{d\log r}
    = \frac{E\operatorname{tr}\mathrm{Cov}[x_0\mid x]}{r^2}
    = E\,\lVert \varepsilon - E[\varepsilon\mid x]\rVert^2 ,

held in an :class:`EntropyProfile`: exact for Gaussian data (:func:`gaussian_profile`),
estimated from the closed-form posterior of a mixture (:func:`mixture_profile`) or from the
residuals of any score function, e.g. a trained network (:func:`loss_profile`). Profiles are
accumulated in float64 on the CPU (a few hundred numbers); the Monte Carlo behind them runs on
the generator's device.

The comparison of chapter 8 (:func:`compare_schedules`) samples with three integrators,
probability-flow Heun and Euler and reverse-SDE Euler-Maruyama, and scores the samples at
:math:`t_{\min}` against the exact law :math:`p_{t_{\min}}` of the noised data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._validate import as_points, check_finite, check_positive_int, check_process
from .information import entropy_rate_from_loss, entropy_rate_posterior
from .mixtures import GaussianMixture
from .processes import EDM, ForwardProcess
from .samplers import probability_flow, reverse_sde

SCHEDULES = ("uniform", "log_snr", "edm", "cosine", "entropic", "rescaled")
SAMPLERS = ("heun", "euler", "em")
#: Score evaluations per step of each sampler (Heun evaluates twice per step).
NFE_PER_STEP = {"heun": 2, "euler": 1, "em": 1}

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- validation and the r <-> t map ------------------------------------------------------------
def _check_interval(process: ForwardProcess, steps: int, t_min: float, t_max: float) -> None:
    check_process(process)
    check_positive_int("steps", steps)
    if not (math.isfinite(t_min) and math.isfinite(t_max)):
        raise ValueError(f"t_min and t_max must be finite; got {t_min}, {t_max}")
    if not 0 < t_min < t_max:
        raise ValueError(f"need 0 < t_min < t_max (a non-empty interval, in that order); got "
                         f"t_min={t_min}, t_max={t_max}")


def noise_ratio(t, process: ForwardProcess) -> torch.Tensor:
    r"""The noise-to-signal ratio :math:`r = \sigma_t/\alpha_t = \lambda_t^{-1/2}` at ``t``."""
    check_process(process)
    return process.sigma(t) / process.alpha(t)


def _grid_from_r(process, r, t_min, t_max, device, dtype) -> torch.Tensor:
    ts = process.t_from_sigma_ratio(r.to(torch.float64))
    ts[0], ts[-1] = t_max, t_min          # exact ends, whatever the rounding of the inverse
    if not bool((ts[1:] < ts[:-1]).all()):
        raise ValueError("the schedule is not strictly decreasing: too many steps for the "
                         "resolution of the entropy profile, or a flat profile")
    return ts.to(device=device, dtype=dtype)


def _r_ends(process, t_min, t_max) -> tuple[float, float]:
    return float(noise_ratio(t_min, process)), float(noise_ratio(t_max, process))


# -- the three fixed schedules -----------------------------------------------------------------
def uniform_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float, *,
                 device=None, dtype=torch.float64) -> torch.Tensor:
    r"""Equal steps in the process's own time: :math:`t_i = t_{\max} - \tfrac iN(t_{\max} -
    t_{\min})`, shape ``(steps + 1,)``, decreasing."""
    _check_interval(process, steps, t_min, t_max)
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    ts = t_max + i * (t_min - t_max)
    ts[0], ts[-1] = t_max, t_min
    return ts.to(device=device, dtype=dtype)


def log_snr_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float, *,
                 device=None, dtype=torch.float64) -> torch.Tensor:
    r"""Equal steps in :math:`\log\lambda_t`, i.e. geometric in :math:`r`:
    :math:`r_i = r_{\max}(r_{\min}/r_{\max})^{i/N}`. Shape ``(steps + 1,)``, decreasing."""
    _check_interval(process, steps, t_min, t_max)
    r_lo, r_hi = _r_ends(process, t_min, t_max)
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    return _grid_from_r(process, r_hi * (r_lo / r_hi) ** i, t_min, t_max, device, dtype)


def edm_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float, *,
             rho: float = 7.0, device=None, dtype=torch.float64) -> torch.Tensor:
    r"""Karras et al.'s schedule in :math:`r`: :math:`r_i = (r_{\max}^{1/\rho} + \tfrac iN
    (r_{\min}^{1/\rho} - r_{\max}^{1/\rho}))^\rho`, :math:`\rho = 7` (their :math:`\sigma` is
    our :math:`r`). Shape ``(steps + 1,)``, decreasing."""
    _check_interval(process, steps, t_min, t_max)
    if not (rho > 0 and math.isfinite(rho)):
        raise ValueError(f"rho must be positive and finite; got {rho}")
    r_lo, r_hi = _r_ends(process, t_min, t_max)
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    r = (r_hi ** (1 / rho) + i * (r_lo ** (1 / rho) - r_hi ** (1 / rho))) ** rho
    return _grid_from_r(process, r, t_min, t_max, device, dtype)


def cosine_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float, *,
                device=None, dtype=torch.float64) -> torch.Tensor:
    r"""Equal steps in :math:`\arctan r`: :math:`r_i = \tan\big(\arctan r_{\max} + \tfrac iN
    (\arctan r_{\min} - \arctan r_{\max})\big)`. In the VP process with :math:`\alpha =
    \cos(\pi u/2)` (Nichol and Dhariwal's cosine schedule, without its offset) :math:`r =
    \tan(\pi u/2)`, so this is uniform in :math:`u`; it is also the rescaled entropic time of
    :math:`\mathcal N(\mu, I)`. Shape ``(steps + 1,)``, decreasing."""
    _check_interval(process, steps, t_min, t_max)
    r_lo, r_hi = _r_ends(process, t_min, t_max)
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    a_hi, a_lo = math.atan(r_hi), math.atan(r_lo)
    return _grid_from_r(process, torch.tan(a_hi + i * (a_lo - a_hi)), t_min, t_max, device,
                        dtype)


def split_interval(times: torch.Tensor, index: int, parts: int) -> torch.Tensor:
    r"""The grid ``times`` ``(N + 1,)`` with its interval ``index`` (from ``times[index]`` to
    ``times[index + 1]``; negative counts from the end) cut into ``parts`` geometric pieces:
    ``parts - 1`` points :math:`t_{i}(t_{i+1}/t_i)^{j/p}` inserted. Shape ``(N + parts,)``."""
    t = torch.as_tensor(times)
    if t.ndim != 1 or t.shape[0] < 2 or bool((t <= 0).any()) or \
            not bool((t[1:] < t[:-1]).all()):
        raise ValueError("times must be a strictly decreasing 1-D grid of positive times")
    check_positive_int("parts", parts)
    n = t.shape[0] - 1
    if not -n <= index < n:
        raise ValueError(f"index must name one of the {n} intervals; got {index}")
    i = index % n
    j = torch.arange(1, parts, dtype=t.dtype, device=t.device) / parts
    inner = t[i] * (t[i + 1] / t[i]) ** j
    return torch.cat([t[:i + 1], inner, t[i + 1:]])


# -- entropy profiles --------------------------------------------------------------------------
@dataclass(frozen=True)
class EntropyProfile:
    r"""The rate :math:`\rho(r) = dH(x_0\mid x_0 + r\varepsilon)/d\log r \ge 0` on nodes of
    :math:`\log r`, with its standard error (zero when exact).

    ``log_r``: strictly increasing ``(m,)``, ``m >= 2``; ``rate``, ``stderr``: ``(m,)``. The
    conditional entropy between two nodes is the trapezoid integral of ``rate`` in
    :math:`\log r`. Raises ``ValueError`` on a non-finite or negative rate (an entropy that
    is not monotone in the noise level) or a rate that is zero everywhere.
    """

    log_r: torch.Tensor
    rate: torch.Tensor
    stderr: torch.Tensor

    def __post_init__(self):
        lr = torch.as_tensor(self.log_r, dtype=torch.float64).cpu()
        rate = torch.as_tensor(self.rate, dtype=torch.float64).cpu()
        se = torch.as_tensor(self.stderr, dtype=torch.float64).cpu()
        if lr.ndim != 1 or lr.shape[0] < 2:
            raise ValueError(f"log_r must have shape (m,) with m >= 2; got {tuple(lr.shape)}")
        if rate.shape != lr.shape or se.shape != lr.shape:
            raise ValueError(f"rate and stderr must have the shape of log_r {tuple(lr.shape)}; "
                             f"got {tuple(rate.shape)} and {tuple(se.shape)}")
        check_finite("log_r", lr)
        if not bool((lr[1:] > lr[:-1]).all()):
            raise ValueError("log_r must be strictly increasing")
        if not bool(torch.isfinite(rate).all()):
            raise ValueError("the entropy estimate must be finite (the rate has NaN or inf)")
        if bool((rate < 0).any()):
            raise ValueError("the entropy estimate must be monotone: H(x_0|x_t) cannot fall as "
                             "the noise grows, so the rate dH/dlog r must be >= 0")
        if not float(rate.max()) > 0:
            raise ValueError("the entropy estimate is flat: the rate is zero everywhere")
        check_finite("stderr", se)
        object.__setattr__(self, "log_r", lr)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "stderr", se)

    def cumulative(self) -> torch.Tensor:
        r""":math:`H(r_j) - H(r_0)` at the nodes (trapezoid rule in :math:`\log r`), ``(m,)``."""
        dl = self.log_r[1:] - self.log_r[:-1]
        steps = 0.5 * dl * (self.rate[1:] + self.rate[:-1])
        return torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(steps, 0)])

    def drop(self, r_min: float, r_max: float) -> float:
        r""":math:`H(r_{\max}) - H(r_{\min})`: the cumulative interpolated at the two ends (not
        at the first and last nodes, which may lie outside the interval)."""
        lo, hi = math.log(r_min), math.log(r_max)
        if not lo < hi:
            raise ValueError(f"need 0 < r_min < r_max; got r_min={r_min}, r_max={r_max}")
        tol = 1e-9 * max(1.0, abs(lo), abs(hi))
        if lo < float(self.log_r[0]) - tol or hi > float(self.log_r[-1]) + tol:
            raise ValueError(f"the profile covers log r in [{float(self.log_r[0]):.4g}, "
                             f"{float(self.log_r[-1]):.4g}]; r_min, r_max need [{lo:.4g}, "
                             f"{hi:.4g}]")
        c = _interp(torch.tensor([lo, hi], dtype=torch.float64), self.log_r, self.cumulative())
        return float(c[1] - c[0])

    def rescaled(self) -> EntropyProfile:
        r"""The profile of the rescaled entropic time, :math:`r\,dH/d\log r` (and its error)."""
        r = torch.exp(self.log_r)
        return EntropyProfile(self.log_r, r * self.rate, r * self.stderr)

    def quantiles(self, steps: int, r_min: float, r_max: float) -> torch.Tensor:
        r"""The ``steps + 1`` values of :math:`r`, from ``r_max`` down to ``r_min``, that cut
        :math:`H(r_{\max}) - H(r_{\min})` into equal parts (piecewise-linear inversion)."""
        check_positive_int("steps", steps)
        lo, hi = math.log(r_min), math.log(r_max)
        tol = 1e-9 * max(1.0, abs(lo), abs(hi))
        if lo < float(self.log_r[0]) - tol or hi > float(self.log_r[-1]) + tol:
            raise ValueError(f"the profile covers log r in [{float(self.log_r[0]):.4g}, "
                             f"{float(self.log_r[-1]):.4g}]; the interval needs "
                             f"[{lo:.4g}, {hi:.4g}]")
        cum = self.cumulative()
        c_lo, c_hi = _interp(torch.tensor([lo, hi], dtype=torch.float64), self.log_r, cum)
        if not float(c_hi - c_lo) > 0:
            raise ValueError("the entropy estimate is flat on [r_min, r_max]")
        targets = c_hi + torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64) * (c_lo - c_hi)
        out = torch.exp(_inverse_interp(targets, self.log_r, cum))
        out[0], out[-1] = r_max, r_min
        return out


def _interp(x, xp, fp):
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing), float64."""
    idx = torch.searchsorted(xp, x.clamp(xp[0], xp[-1])).clamp(1, xp.shape[0] - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    return f0 + (f1 - f0) * (x - x0) / (x1 - x0)


def _inverse_interp(y, xp, fp):
    """The x at which the non-decreasing piecewise-linear (xp, fp) reaches y."""
    idx = torch.searchsorted(fp, y.clamp(fp[0], fp[-1])).clamp(1, fp.shape[0] - 1)
    x0, x1, f0, f1 = xp[idx - 1], xp[idx], fp[idx - 1], fp[idx]
    frac = torch.where(f1 > f0, (y - f0) / (f1 - f0).clamp_min(1e-300), torch.zeros_like(y))
    return x0 + frac.clamp(0, 1) * (x1 - x0)


def _log_r_nodes(log_r) -> torch.Tensor:
    lr = torch.as_tensor(log_r, dtype=torch.float64)
    if lr.ndim != 1 or lr.shape[0] < 2:
        raise ValueError(f"log_r must have shape (m,) with m >= 2; got {tuple(lr.shape)}")
    return lr


def gaussian_profile(spectrum, log_r) -> EntropyProfile:
    r"""Exact profile of Gaussian data with covariance eigenvalues ``spectrum`` :math:`\ell_i`:
    :math:`dH/d\log r = \sum_i \ell_i/(\ell_i + r^2)` (each direction a scalar channel)."""
    lr = _log_r_nodes(log_r)
    lam = torch.as_tensor(spectrum, dtype=torch.float64)
    if lam.ndim != 1 or lam.shape[0] == 0 or bool((lam < 0).any()):
        raise ValueError("spectrum must be a non-empty (d,) tensor of non-negative eigenvalues")
    r2 = torch.exp(2 * lr)[:, None]
    rate = (lam / (lam + r2)).sum(1)
    return EntropyProfile(lr, rate, torch.zeros_like(rate))


def profile_from_samples(log_r, samples) -> EntropyProfile:
    r"""A profile from per-node samples ``(m, n)`` of :math:`dH/d\log r` (mean and its error)."""
    lr = _log_r_nodes(log_r)
    s = torch.as_tensor(samples).detach().to(torch.float64).cpu()
    if s.ndim != 2 or s.shape[0] != lr.shape[0] or s.shape[1] < 2:
        raise ValueError(f"samples must have shape ({lr.shape[0]}, n) with n >= 2; got "
                         f"{tuple(s.shape)}")
    check_finite("samples", s)
    return EntropyProfile(lr, s.mean(1), s.std(1) / math.sqrt(s.shape[1]))


def mixture_profile_samples(mixture: GaussianMixture, log_r, n: int,
                            generator: torch.Generator | None = None,
                            *, dtype=torch.float64) -> torch.Tensor:
    r"""Samples ``(m, n)`` of :math:`\operatorname{tr}\mathrm{Cov}[x_0\mid x]/r^2` with
    :math:`x = x_0 + r\varepsilon`, the exact posterior-variance estimator of chapter 3
    (:func:`~diffnotes.information.entropy_rate_posterior` in the EDM, where :math:`t = r`,
    times :math:`dt/d\log r = r`). Fresh :math:`(x_0, \varepsilon)` at every node."""
    lr = _log_r_nodes(log_r)
    check_positive_int("n", n)
    edm = EDM()
    rows = []
    for r in torch.exp(lr).tolist():
        x0 = mixture.sample(n, generator, dtype=dtype)
        x = x0 + r * torch.randn(x0.shape, generator=generator, device=x0.device, dtype=dtype)
        rows.append(r * entropy_rate_posterior(mixture, x, r, edm))
    return torch.stack(rows)


def mixture_profile(mixture: GaussianMixture, log_r, n: int,
                    generator: torch.Generator | None = None) -> EntropyProfile:
    r"""The entropy profile of a mixture from its closed-form posterior (Monte Carlo over
    :math:`x`, ``n`` samples a node; see :func:`mixture_profile_samples`)."""
    return profile_from_samples(log_r, mixture_profile_samples(mixture, log_r, n, generator))


def loss_profile_samples(score_fn: ScoreFn, mixture: GaussianMixture, log_r, n: int,
                         generator: torch.Generator | None = None, *,
                         dtype=torch.float64) -> torch.Tensor:
    r"""Samples ``(m, n)`` of the denoising loss :math:`r^2\lVert s(x, r) + \varepsilon/r
    \rVert^2 = \lVert\varepsilon - \hat\varepsilon(x)\rVert^2`, :math:`x = x_0 + r\varepsilon`.

    ``score_fn(x, t)`` is a score in the EDM's time (:math:`t = r`): the exact one of a
    mixture, or a trained network's. The residuals go through chapter 3's
    :func:`~diffnotes.information.entropy_rate_from_loss` (which returns :math:`\dot H`
    samples, :math:`t\lVert s + \varepsilon/t\rVert^2`) and are multiplied by
    :math:`dt/d\log r = r`. For the exact score the mean is :math:`dH/d\log r`; for a model it
    exceeds it by :math:`r^2E\lVert s_\theta - s\rVert^2`. Only data samples are used.
    """
    lr = _log_r_nodes(log_r)
    check_positive_int("n", n)
    edm = EDM()
    rows = []
    for r in torch.exp(lr).tolist():
        x0 = mixture.sample(n, generator, dtype=dtype)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=dtype)
        t = torch.tensor(r, dtype=dtype, device=x0.device)
        resid = ((score_fn(x0 + r * eps, t) + eps / r) ** 2).sum(1)
        rows.append(r * entropy_rate_from_loss(resid, t, edm))
    return torch.stack(rows)


def loss_profile(score_fn: ScoreFn, mixture: GaussianMixture, log_r, n: int,
                 generator: torch.Generator | None = None) -> EntropyProfile:
    r"""The entropy profile estimated from denoising residuals alone
    (:func:`loss_profile_samples`)."""
    return profile_from_samples(log_r, loss_profile_samples(score_fn, mixture, log_r, n,
                                                            generator))


# -- the entropic schedules --------------------------------------------------------------------
def entropic_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float,
                  profile: EntropyProfile, *, device=None,
                  dtype=torch.float64) -> torch.Tensor:
    r"""Entropic time: times at which :math:`H(x_0\mid x_t)` falls by equal amounts,
    :math:`H(t_i) = H(t_{\max}) - \tfrac iN\,[H(t_{\max}) - H(t_{\min})]`. Shape
    ``(steps + 1,)``, decreasing. ``profile`` must cover :math:`[r(t_{\min}), r(t_{\max})]`."""
    _check_interval(process, steps, t_min, t_max)
    if not isinstance(profile, EntropyProfile):
        raise ValueError("profile must be an EntropyProfile (gaussian_profile, mixture_profile "
                         "or loss_profile)")
    r_lo, r_hi = _r_ends(process, t_min, t_max)
    return _grid_from_r(process, profile.quantiles(steps, r_lo, r_hi), t_min, t_max, device,
                        dtype)


def rescaled_entropic_grid(process: ForwardProcess, steps: int, t_min: float, t_max: float,
                           profile: EntropyProfile, *, device=None,
                           dtype=torch.float64) -> torch.Tensor:
    r"""Rescaled entropic time (Stančević et al. 2025): equal steps of :math:`\int \sigma\,dH`
    with :math:`\sigma = r` the EDM noise level, i.e. the entropic grid of
    :meth:`EntropyProfile.rescaled`. For Gaussian data :math:`\mathcal N(\mu, s^2 I)` it is
    uniform in :math:`\arctan(r/s)`."""
    if not isinstance(profile, EntropyProfile):
        raise ValueError("profile must be an EntropyProfile")
    return entropic_grid(process, steps, t_min, t_max, profile.rescaled(), device=device,
                         dtype=dtype)


def schedule_grid(name: str, process: ForwardProcess, steps: int, t_min: float, t_max: float,
                  profile: EntropyProfile | None = None, *, rho: float = 7.0, device=None,
                  dtype=torch.float64) -> torch.Tensor:
    r"""The grid of schedule ``name`` (one of :data:`SCHEDULES`); the entropic ones need a
    ``profile``."""
    kw = {"device": device, "dtype": dtype}
    if name == "uniform":
        return uniform_grid(process, steps, t_min, t_max, **kw)
    if name == "log_snr":
        return log_snr_grid(process, steps, t_min, t_max, **kw)
    if name == "edm":
        return edm_grid(process, steps, t_min, t_max, rho=rho, **kw)
    if name == "cosine":
        return cosine_grid(process, steps, t_min, t_max, **kw)
    if name in ("entropic", "rescaled"):
        if profile is None:
            raise ValueError(f"schedule {name!r} needs an entropy profile")
        fn = entropic_grid if name == "entropic" else rescaled_entropic_grid
        return fn(process, steps, t_min, t_max, profile, **kw)
    raise ValueError(f"name must be one of {SCHEDULES}; got {name!r}")


def gaussian_entropic_r(steps: int, r_min: float, r_max: float, s2: float, *,
                        rescaled: bool = False) -> torch.Tensor:
    r"""Closed forms for Gaussian data :math:`\mathcal N(\mu, s^2 I)`, decreasing ``(steps+1,)``.

    Entropic: :math:`\log\frac{r^2}{s^2 + r^2}` uniform. Rescaled: :math:`\arctan(r/s)`
    uniform. Used by the tests as the independent reference of :func:`entropic_grid`.
    """
    check_positive_int("steps", steps)
    if not 0 < r_min < r_max or not s2 > 0:
        raise ValueError("need 0 < r_min < r_max and s2 > 0")
    s = math.sqrt(s2)
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    if rescaled:
        a_hi, a_lo = math.atan(r_max / s), math.atan(r_min / s)
        return s * torch.tan(a_hi + i * (a_lo - a_hi))
    u_hi = math.log(r_max**2 / (s2 + r_max**2))
    u_lo = math.log(r_min**2 / (s2 + r_min**2))
    q = torch.exp(u_hi + i * (u_lo - u_hi))
    return s * torch.sqrt(q / (1 - q))


# -- samplers and quality ------------------------------------------------------------------------
def probability_flow_euler(score_fn: ScoreFn, process: ForwardProcess, x_start: torch.Tensor,
                           times: torch.Tensor) -> torch.Tensor:
    r"""First-order (Euler) integration of the probability-flow ODE
    :math:`\dot x = f x - \tfrac12 g^2 s(x, t)` along ``times`` (decreasing); returns the final
    state ``(n, d)``. One score evaluation per step. (Heun's method is
    :func:`diffnotes.samplers.probability_flow`.)"""
    x = as_points("x_start", x_start)
    times = torch.as_tensor(times, dtype=x.dtype).to(x.device)
    if times.ndim != 1 or times.shape[0] < 2 or not bool((times[1:] < times[:-1]).all()) \
            or bool((times <= 0).any()):
        raise ValueError("times must be a strictly decreasing 1-D grid of positive times")
    for i in range(times.shape[0] - 1):
        t, h = times[i], times[i + 1] - times[i]
        x = x + h * (process.drift(t) * x - 0.5 * process.diffusion2(t) * score_fn(x, t))
    return x


def run_sampler(name: str, score_fn: ScoreFn, process: ForwardProcess, x_start: torch.Tensor,
                times: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Final samples ``(n, d)`` of sampler ``name``: ``"heun"`` (probability flow, 2 score
    evaluations a step), ``"euler"`` (probability flow, 1) or ``"em"`` (reverse SDE, 1)."""
    if name == "heun":
        return probability_flow(score_fn, process, x_start, times, return_trajectory=False)
    if name == "euler":
        return probability_flow_euler(score_fn, process, x_start, times)
    if name == "em":
        return reverse_sde(score_fn, process, x_start, times, generator,
                           return_trajectory=False)
    raise ValueError(f"sampler must be one of {SAMPLERS}; got {name!r}")


def integrate_rows(sampler: str, score_fn: ScoreFn, process: ForwardProcess,
                   x_start: torch.Tensor, times: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The three samplers with one time grid per row: ``times`` of shape ``(steps + 1, n)``,
    each column strictly decreasing; ``score_fn(x, t)`` receives ``t`` of shape ``(n,)``.

    Row :math:`i` follows exactly the update of :func:`run_sampler` on the grid
    ``times[:, i]`` (a test checks this against :mod:`diffnotes.samplers`); stacking several
    schedules in one batch lets :func:`compare_schedules` call the score once per step for
    all of them. Returns the final states ``(n, d)``.
    """
    x = as_points("x_start", x_start)
    times = torch.as_tensor(times).to(device=x.device, dtype=x.dtype)
    if times.ndim != 2 or times.shape[1] != x.shape[0] or times.shape[0] < 2:
        raise ValueError(f"times must have shape (steps + 1, {x.shape[0]}); got "
                         f"{tuple(times.shape)}")
    if bool((times <= 0).any()) or not bool((times[1:] < times[:-1]).all()):
        raise ValueError("every column of times must be positive and strictly decreasing")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")

    def v(y, t):
        return process.drift(t)[:, None] * y - 0.5 * process.diffusion2(t)[:, None] * \
            score_fn(y, t)

    for i in range(times.shape[0] - 1):
        t0, t1 = times[i], times[i + 1]
        h = (t1 - t0)[:, None]                      # negative: generation runs backwards
        if sampler == "em":
            g2 = process.diffusion2(t0)[:, None]
            z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = x + h * (process.drift(t0)[:, None] * x - g2 * score_fn(x, t0)) \
                + torch.sqrt(-g2 * h) * z
        elif sampler == "euler":
            x = x + h * v(x, t0)
        else:
            v0 = v(x, t0)
            x = x + 0.5 * h * (v0 + v(x + h * v0, t1))
    return x


def steps_for_budget(sampler: str, nfe: int) -> int:
    r"""Number of steps a sampler can take with ``nfe`` score evaluations."""
    if sampler not in NFE_PER_STEP:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    check_positive_int("nfe", nfe)
    k = NFE_PER_STEP[sampler]
    if nfe % k:
        raise ValueError(f"{sampler} uses {k} evaluations a step; nfe={nfe} is not a multiple")
    return nfe // k


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, n_proj: int = 64,
                       generator: torch.Generator | None = None) -> float:
    r"""Sliced 2-Wasserstein distance squared between two samples of equal size ``(n, d)``:
    the mean over ``n_proj`` random unit directions :math:`u` of
    :math:`\tfrac1n\sum_i (\mathrm{sort}(x u)_i - \mathrm{sort}(y u)_i)^2`.

    Two finite samples of the same law give a positive value (the sampling floor). Its decay
    depends on the law: about :math:`1/n` for a law with connected support (measured on
    :math:`\mathcal N(0, I_2)`: :math:`n\,\mathrm{SW}^2` from 4.9 to 6.8 for :math:`n` = 25 to
    6400), but only :math:`1/\sqrt n` for well-separated modes, where the two samples' mode
    masses differ by :math:`O(1/\sqrt n)` and that mass must travel between modes (chapter 8's
    ring of eight points at :math:`t = 0.02`: :math:`\sqrt n\,\mathrm{SW}^2` between 5.7 and
    8.2 over the same range, 0.68 at :math:`n = 100`). Report the floor at the :math:`n` used.
    """
    x = as_points("x", x)
    y = as_points("y", y, x.shape[1])
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must have the same number of rows; got {x.shape[0]} and "
                         f"{y.shape[0]}")
    check_positive_int("n_proj", n_proj)
    u = torch.randn(x.shape[1], n_proj, generator=generator, device=x.device, dtype=x.dtype)
    u = u / u.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ u, dim=0)
    py, _ = torch.sort(y.to(x) @ u, dim=0)
    return float(((px - py) ** 2).mean())


def class_chi2(mixture: GaussianMixture, x: torch.Tensor, t: float,
               process: ForwardProcess) -> float:
    r"""Class-proportion statistic :math:`n\sum_k(\hat\pi_k - \pi_k)^2/\pi_k` with
    :math:`\hat\pi_k = \tfrac1n\sum_i r_k(x_i)` the mean responsibility at time ``t``.

    Under exact sampling :math:`E\,r_k(x_t) = \pi_k`, so the statistic measures only the
    sampler's error in the class proportions; its mean is at most :math:`K - 1`
    (equality when the classes do not overlap at ``t``)."""
    r = mixture.component_posterior(x, t, process)
    pi_hat = r.mean(0)
    pi = mixture.weights.to(r)
    return float(x.shape[0] * ((pi_hat - pi) ** 2 / pi).sum())


def mean_nll(mixture: GaussianMixture, x: torch.Tensor, t: float,
             process: ForwardProcess) -> float:
    r"""Mean negative log-density :math:`-\tfrac1n\sum_i\log p_t(x_i)` under the exact law at
    ``t`` (nats)."""
    return float(-mixture.log_prob(x, t, process).mean())


@dataclass(frozen=True)
class Comparison:
    r"""One cell of the comparison: a data set, a sampler, a schedule and a budget, with each
    quality measure's mean and standard error over seeds, and the exact-sampling reference
    (fresh samples of :math:`p_{t_{\min}}` scored the same way)."""

    data: str
    sampler: str
    schedule: str
    nfe: int
    sw: tuple[float, float]
    chi2: tuple[float, float]
    nll: tuple[float, float]
    #: SW² of each batch ``(seeds,)``; batch ``j`` of every cell of a data set uses the same
    #: fresh sample and the same directions, so two cells can be compared batch by batch.
    sw_each: torch.Tensor | None = None
    #: :math:`-\log p_{t_{\min}}` of each sample ``(n * seeds,)``; sample ``i`` of every cell
    #: of a data set starts from the same point of :math:`p_{t_{\max}}`.
    nll_each: torch.Tensor | None = None


def paired_difference(a: Comparison, b: Comparison, measure: str = "nll") -> tuple[float, float]:
    r"""Mean and standard error of the paired differences ``a - b`` of a quality measure.

    ``measure="nll"``: per sample (the two cells' sample :math:`i` start from the same point);
    ``"sw"``: per batch (same fresh sample and directions). The error is that of the mean of the
    differences, :math:`\mathrm{sd}(\Delta)/\sqrt m`, not :math:`\sqrt{se_a^2 + se_b^2}`."""
    if measure not in ("nll", "sw"):
        raise ValueError(f"measure must be 'nll' or 'sw'; got {measure!r}")
    if a.data != b.data:
        raise ValueError(f"cells of different data sets are not paired: {a.data!r}, {b.data!r}")
    ua, ub = (getattr(c, measure + "_each") for c in (a, b))
    if ua is None or ub is None or ua.shape != ub.shape or ua.shape[0] < 2:
        raise ValueError("both cells need per-unit values of the same shape (compare_schedules)")
    return _mean_se((ua - ub).tolist())


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std() / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _scores(mixture, x, fresh, t_min, process, n_proj, seed, device):
    gen = torch.Generator(device=device).manual_seed(seed)   # the same directions in each cell
    return (sliced_wasserstein(x, fresh, n_proj, gen), class_chi2(mixture, x, t_min, process),
            mean_nll(mixture, x, t_min, process))


def compare_schedules(data: dict[str, tuple[GaussianMixture, EntropyProfile]],
                      process: ForwardProcess, t_min: float, t_max: float, *,
                      budgets: Sequence[int] = (4, 8, 16, 32, 64),
                      samplers: Sequence[str] = SAMPLERS,
                      schedules: Sequence[str] = SCHEDULES, n: int = 500, seeds: int = 4,
                      n_proj: int = 32, generator: torch.Generator | None = None,
                      dtype=torch.float64) -> tuple[list[Comparison], dict]:
    r"""Sample every (data set, sampler, schedule, budget) with the exact score and score it.

    For each seed, ``n`` starting points are drawn from the exact :math:`p_{t_{\max}}` (so only
    the discretisation is tested), integrated down to ``t_min`` and compared with ``n`` fresh
    samples of :math:`p_{t_{\min}}` by :func:`sliced_wasserstein`, :func:`class_chi2` and
    :func:`mean_nll`. Every cell of a data set shares the starting points, the fresh samples and
    the projection directions, so cells can be compared by :func:`paired_difference`. Returns
    the cells and, per data set, the same three measures for ``n * seeds`` independent exact
    samples (the reference floor, mean and standard error over seeds, with ``"nll_each"``).
    """
    check_positive_int("n", n)
    check_positive_int("seeds", seeds)
    cells, floors = [], {}
    for name, (mix, profile) in data.items():
        score = _exact_score(mix, process)
        p_hi, p_lo = mix.noised(t_max, process), mix.noised(t_min, process)
        start = p_hi.sample(n * seeds, generator, dtype=dtype)   # all seeds in one batch
        fresh = p_lo.sample(n * seeds, generator, dtype=dtype).split(n)
        exact = p_lo.sample(n * seeds, generator, dtype=dtype)
        dev = start.device if generator is None else generator.device
        proj = torch.randint(2**62, (seeds,), generator=generator, device=dev).tolist()
        ref = [_scores(mix, e, f, t_min, process, n_proj, sd, dev)
               for e, f, sd in zip(exact.split(n), fresh, proj, strict=True)]
        floors[name] = {k: _mean_se([r[j] for r in ref])
                        for j, k in enumerate(("sw", "chi2", "nll"))}
        floors[name]["nll_each"] = -mix.log_prob(exact, t_min, process).detach().cpu()
        for sampler in samplers:
            for nfe in budgets:
                steps = steps_for_budget(sampler, nfe)
                grids = [schedule_grid(sched, process, steps, t_min, t_max, profile,
                                       device=start.device, dtype=dtype) for sched in schedules]
                times = torch.cat([gr[:, None].expand(-1, start.shape[0]) for gr in grids], 1)
                x_all = integrate_rows(sampler, score, process, start.repeat(len(grids), 1),
                                       times, generator)
                for sched, x in zip(schedules, x_all.split(start.shape[0]), strict=True):
                    res = [_scores(mix, xs, f, t_min, process, n_proj, sd, dev)
                           for xs, f, sd in zip(x.split(n), fresh, proj, strict=True)]
                    cells.append(Comparison(
                        name, sampler, sched, nfe,
                        *(_mean_se([r[j] for r in res]) for j in range(3)),
                        sw_each=torch.tensor([r[0] for r in res], dtype=torch.float64),
                        nll_each=-mix.log_prob(x, t_min, process).detach().cpu()))
    return cells, floors


def _exact_score(mixture: GaussianMixture, process: ForwardProcess) -> ScoreFn:
    def score(x, t):
        return mixture.score(x, t, process)
    return score
