r"""Generative samplers that integrate backwards in time with any score function.

The reverse-time SDE (Anderson 1982; paper eq. 10) and the probability-flow ODE (eq. 11) of a
forward process :math:`dx = f(t)\,x\,dt + g(t)\,dW` are

.. math::
    dx = \big[f x - g^2 s(x, t)\big]\,dt + g\,d\bar W, \qquad
    \frac{dx}{dt} = f x - \tfrac12 g^2 s(x, t),

integrated from ``times[0]`` down to ``times[-1] > 0``. In the EDM, :math:`f = 0`,
:math:`g^2 = 2t`, so the ODE is :math:`\dot x = -t\,s(x,t)`. ``score_fn(x, t)`` takes
``x`` of shape ``(n, d)`` and a scalar time tensor and returns ``(n, d)``; for a mixture use
``lambda x, t: mixture.score(x, t, process)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._validate import as_points, check_positive_int
from .processes import ForwardProcess

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def time_grid(t_max: float, t_min: float, steps: int, *, spacing: str = "geometric",
              rho: float = 7.0, device=None, dtype=torch.float64) -> torch.Tensor:
    r"""A decreasing grid of ``steps + 1`` times from ``t_max`` to ``t_min > 0``.

    ``spacing``: ``"geometric"`` (uniform in :math:`\log t`), ``"linear"``, or ``"edm"``
    (Karras et al.'s :math:`(t_{\max}^{1/\rho} + \tfrac{i}{N}(t_{\min}^{1/\rho} -
    t_{\max}^{1/\rho}))^\rho`, denser at small times).
    """
    check_positive_int("steps", steps)
    if not (0 < t_min < t_max):
        raise ValueError(f"t_min and t_max must satisfy 0 < t_min < t_max; got {t_min}, {t_max}")
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    if spacing == "geometric":
        ts = t_max * (t_min / t_max) ** i
    elif spacing == "linear":
        ts = t_max + i * (t_min - t_max)
    elif spacing == "edm":
        if rho <= 0:
            raise ValueError(f"rho must be positive; got {rho}")
        ts = (t_max ** (1 / rho) + i * (t_min ** (1 / rho) - t_max ** (1 / rho))) ** rho
    else:
        raise ValueError(f"spacing must be 'geometric', 'linear' or 'edm'; got {spacing!r}")
    ts[0], ts[-1] = t_max, t_min
    return ts.to(device=device, dtype=dtype)


def _check_grid(times: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    times = torch.as_tensor(times, dtype=x.dtype).to(x.device)
    if times.ndim != 1 or times.shape[0] < 2:
        raise ValueError(f"times must be a 1-D grid of at least two times; got shape "
                         f"{tuple(times.shape)}")
    if not bool(torch.isfinite(times).all()) or bool((times <= 0).any()):
        raise ValueError("times must be finite and positive")
    if not bool((times[1:] < times[:-1]).all()):
        raise ValueError("times must be strictly decreasing (generation runs backwards)")
    return times


def reverse_sde(score_fn: ScoreFn, process: ForwardProcess, x_start: torch.Tensor,
                times: torch.Tensor, generator: torch.Generator | None = None, *,
                return_trajectory: bool = True) -> torch.Tensor:
    r"""Euler-Maruyama integration of the reverse SDE (eq. 10) along ``times`` (decreasing).

    One step from :math:`t_i` to :math:`t_{i+1}`, :math:`h = t_i - t_{i+1} > 0`:
    :math:`x \leftarrow x - h\,[f x - g^2 s(x, t_i)] + g\sqrt{h}\,z`, all at :math:`t_i`.

    Parameters
    ----------
    score_fn : ``(x (n, d), t scalar) -> (n, d)``.
    process : the forward process giving :math:`f, g`.
    x_start : tensor ``(n, d)``, samples of :math:`p_{t_0}` at ``times[0]``.
    times : tensor ``(steps + 1,)``, strictly decreasing, positive.
    generator : ``torch.Generator`` on ``x_start``'s device (the noise increments).
    return_trajectory : if True return every step, shape ``(steps + 1, n, d)``; else ``(n, d)``.
    """
    x = as_points("x_start", x_start)
    times = _check_grid(times, x)
    traj = [x] if return_trajectory else None
    for i in range(times.shape[0] - 1):
        t, h = times[i], times[i] - times[i + 1]
        f, g2 = process.drift(t), process.diffusion2(t)
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = x - h * (f * x - g2 * score_fn(x, t)) + torch.sqrt(g2 * h) * z
        if return_trajectory:
            traj.append(x)
    return torch.stack(traj) if return_trajectory else x


def probability_flow(score_fn: ScoreFn, process: ForwardProcess, x_start: torch.Tensor,
                     times: torch.Tensor, *, return_trajectory: bool = True) -> torch.Tensor:
    r"""Heun (second-order) integration of the probability-flow ODE (eq. 11), deterministic.

    With :math:`v(x, t) = f x - \tfrac12 g^2 s(x, t)` and :math:`h = t_{i+1} - t_i < 0`:
    :math:`\tilde x = x + h v(x, t_i)`, then :math:`x \leftarrow x + \tfrac h2 [v(x, t_i) +
    v(\tilde x, t_{i+1})]`. Shapes as in :func:`reverse_sde`.
    """
    x = as_points("x_start", x_start)
    times = _check_grid(times, x)

    def v(y, t):
        return process.drift(t) * y - 0.5 * process.diffusion2(t) * score_fn(y, t)

    traj = [x] if return_trajectory else None
    for i in range(times.shape[0] - 1):
        t0, t1 = times[i], times[i + 1]
        h = t1 - t0
        v0 = v(x, t0)
        x_euler = x + h * v0
        x = x + 0.5 * h * (v0 + v(x_euler, t1))
        if return_trajectory:
            traj.append(x)
    return torch.stack(traj) if return_trajectory else x
