r"""Forward noising processes: small objects that give :math:`\alpha(t)`, :math:`\sigma(t)`.

Every process here has a Gaussian transition kernel from the data (paper eq. 7)

.. math:: p(x_t \mid x_0) = \mathcal N(\alpha_t x_0, \sigma_t^2 I),

and is the solution of the linear SDE :math:`dx = f(t)\,x\,dt + g(t)\,dW` with

.. math:: f = \dot\alpha/\alpha, \qquad g^2 = \frac{d\sigma^2}{dt} - 2 f \sigma^2 .

The signal-to-noise ratio is :math:`\lambda_t = \alpha_t^2/\sigma_t^2`. Conversions between
``t``, ``σ`` and the SNR live here alone. Times are scalars or tensors; results are tensors
(float64 unless a tensor ``t`` brings its own dtype and device).

=====  ==========================  ============================  =========================
name   :math:`\alpha(t)`           :math:`\sigma(t)`             SDE
=====  ==========================  ============================  =========================
EDM    1                           t                             :math:`dx=\sqrt{2t}\,dW`
VP     :math:`e^{-t}`              :math:`\sqrt{1-e^{-2t}}`      :math:`dx=-x\,dt+\sqrt2\,dW`
VE     1                           :math:`\sigma_0 (\sigma_1/\sigma_0)^t`
=====  ==========================  ============================  =========================

EDM is the main text's convention (Karras et al. 2022); VP is the Ornstein-Uhlenbeck process
of section 7 (Biroli et al. 2024). Chapter 2 derives the kernels.
"""

from __future__ import annotations

import math

import torch

from ._validate import as_time, check_finite


def _t(t) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t if t.is_floating_point() else t.to(torch.float64)
    return torch.as_tensor(t, dtype=torch.float64)


class ForwardProcess:
    r"""Base class: a Gaussian forward process given by :math:`\alpha(t)` and :math:`\sigma(t)`.

    Subclasses define :meth:`alpha`, :meth:`sigma`, their derivatives, and the inverse
    :meth:`t_from_sigma_ratio` of the noise-to-signal ratio :math:`\sigma_t/\alpha_t`.
    """

    name = "process"

    def alpha(self, t) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t) -> torch.Tensor:
        raise NotImplementedError

    def dalpha(self, t) -> torch.Tensor:
        r""":math:`\dot\alpha(t)`."""
        raise NotImplementedError

    def dsigma(self, t) -> torch.Tensor:
        r""":math:`\dot\sigma(t)`."""
        raise NotImplementedError

    # -- derived quantities ------------------------------------------------------------
    def snr(self, t) -> torch.Tensor:
        r"""Signal-to-noise ratio :math:`\lambda_t = \alpha_t^2/\sigma_t^2`."""
        t = as_time("t", _t(t))
        return self.alpha(t) ** 2 / self.sigma(t) ** 2

    def dsnr(self, t) -> torch.Tensor:
        r""":math:`\dot\lambda_t = 2\lambda_t(\dot\alpha/\alpha - \dot\sigma/\sigma)`."""
        t = as_time("t", _t(t))
        a, s = self.alpha(t), self.sigma(t)
        return 2 * (a**2 / s**2) * (self.dalpha(t) / a - self.dsigma(t) / s)

    def drift(self, t) -> torch.Tensor:
        r"""Linear drift coefficient :math:`f(t) = \dot\alpha/\alpha` (the SDE drift is f x)."""
        t = _t(t)
        return self.dalpha(t) / self.alpha(t)

    def diffusion2(self, t) -> torch.Tensor:
        r"""Squared diffusion coefficient :math:`g^2 = 2\sigma\dot\sigma - 2 f \sigma^2`."""
        t = _t(t)
        s = self.sigma(t)
        return 2 * s * self.dsigma(t) - 2 * self.drift(t) * s**2

    def t_from_sigma_ratio(self, r) -> torch.Tensor:
        r"""The time at which :math:`\sigma_t/\alpha_t = r` (``r > 0``)."""
        raise NotImplementedError

    def t_from_snr(self, snr) -> torch.Tensor:
        r"""The time at which :math:`\lambda_t = \alpha_t^2/\sigma_t^2` equals ``snr`` (> 0)."""
        lam = _t(snr)
        check_finite("snr", lam)
        if bool((lam <= 0).any()):
            raise ValueError("snr must be positive")
        return self.t_from_sigma_ratio(lam ** -0.5)

    # -- sampling the kernel -----------------------------------------------------------
    def perturb(self, x0: torch.Tensor, t, generator: torch.Generator | None = None):
        r"""Draw :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon` with :math:`\varepsilon\sim
        \mathcal N(0, I)`.

        Parameters
        ----------
        x0 : tensor ``(n, d)``.
        t : positive scalar or tensor ``(n,)`` (one time per row).
        generator : ``torch.Generator`` on ``x0``'s device.

        Returns
        -------
        (xt, eps) : two tensors ``(n, d)``.
        """
        if x0.ndim != 2:
            raise ValueError(f"x0 must have shape (n, d); got {tuple(x0.shape)}")
        tt = as_time("t", t, like=x0, n=x0.shape[0])
        eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        a = self.alpha(tt)
        s = self.sigma(tt)
        if tt.ndim == 1:
            a, s = a[:, None], s[:, None]
        return a * x0 + s * eps, eps

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EDM(ForwardProcess):
    r"""The EDM / variance-exploding process of the main text: :math:`x_t = x_0 + t\varepsilon`.

    :math:`\alpha = 1`, :math:`\sigma = t`, SDE :math:`dx = \sqrt{2t}\,dW`; its Fokker-Planck
    equation is the heat equation :math:`\partial_t p = t\,\Delta p` (paper eq. 18).
    """

    name = "EDM"

    def alpha(self, t):
        t = _t(t)
        return torch.ones_like(t)

    def sigma(self, t):
        return _t(t).clone()

    def dalpha(self, t):
        return torch.zeros_like(_t(t))

    def dsigma(self, t):
        return torch.ones_like(_t(t))

    def t_from_sigma_ratio(self, r):
        return _t(r).clone()


class VP(ForwardProcess):
    r"""The variance-preserving Ornstein-Uhlenbeck process of section 7 (Biroli et al. 2024).

    :math:`x_t = e^{-t}x_0 + \sqrt{\Delta_t}\,z`, :math:`\Delta_t = 1 - e^{-2t}`;
    SDE :math:`dx = -x\,dt + \sqrt{2}\,dW`.
    """

    name = "VP"

    def alpha(self, t):
        return torch.exp(-_t(t))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(-2 * _t(t)))

    def dalpha(self, t):
        return -torch.exp(-_t(t))

    def dsigma(self, t):
        t = _t(t)
        return torch.exp(-2 * t) / torch.sqrt(-torch.expm1(-2 * t))

    def delta(self, t) -> torch.Tensor:
        r""":math:`\Delta_t = 1 - e^{-2t} = \sigma_t^2`."""
        return -torch.expm1(-2 * _t(t))

    def t_from_sigma_ratio(self, r):
        # sigma/alpha = sqrt(e^{2t} - 1)  =>  t = log(1 + r^2) / 2
        return 0.5 * torch.log1p(_t(r) ** 2)


class VE(ForwardProcess):
    r"""Song et al.'s variance-exploding process :math:`\sigma(t) = \sigma_0(\sigma_1/\sigma_0)^t`.

    :math:`\alpha = 1`; ``sigma_min`` = :math:`\sigma_0`, ``sigma_max`` = :math:`\sigma_1`.
    """

    name = "VE"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0):
        if not (0 < sigma_min < sigma_max) or not math.isfinite(sigma_max):
            raise ValueError(
                f"sigma_min and sigma_max must satisfy 0 < sigma_min < sigma_max < inf; got "
                f"{sigma_min}, {sigma_max}"
            )
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t):
        return torch.ones_like(_t(t))

    def sigma(self, t):
        return self.sigma_min * torch.exp(self._log_ratio * _t(t))

    def dalpha(self, t):
        return torch.zeros_like(_t(t))

    def dsigma(self, t):
        return self._log_ratio * self.sigma(t)

    def t_from_sigma_ratio(self, r):
        return torch.log(_t(r) / self.sigma_min) / self._log_ratio

    def __repr__(self) -> str:
        return f"VE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"
