"""Input checks shared by every module: each raises a ValueError naming the argument."""

from __future__ import annotations

import math

import torch


def check_finite(name: str, x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf); got non-finite entries")


def as_points(name: str, x, d: int | None = None) -> torch.Tensor:
    """Return ``x`` as a floating tensor of shape ``(n, d)``, checking shape and finiteness."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x, dtype=torch.float64)
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d); got shape {tuple(x.shape)}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, {d}); got shape {tuple(x.shape)}")
    check_finite(name, x)
    return x


def as_time(name: str, t, like: torch.Tensor | None = None, n: int | None = None) -> torch.Tensor:
    """Return a positive time as a tensor: a scalar, or shape ``(n,)`` for one time per point.

    The tensor follows ``like``'s device and dtype when given, else it is float64 on the CPU.
    """
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    if isinstance(t, torch.Tensor):
        tt = t.to(device=device if device is not None else t.device, dtype=dtype)
    else:
        if isinstance(t, float | int) and (math.isnan(t) or math.isinf(t)):
            raise ValueError(f"{name} must be a finite positive time; got {t}")
        tt = torch.as_tensor(t, dtype=dtype, device=device)
    if tt.ndim > 1 or (tt.ndim == 1 and n is not None and tt.shape[0] not in (1, n)):
        want = f"a scalar or shape ({n},)" if n is not None else "a scalar or a 1-D tensor"
        raise ValueError(f"{name} must be {want}; got shape {tuple(tt.shape)}")
    if not bool(torch.isfinite(tt).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if bool((tt <= 0).any()):
        raise ValueError(f"{name} must be positive (t > 0); got min {float(tt.min()):.3g}")
    return tt


def check_weights(name: str, w: torch.Tensor, k: int, atol: float = 1e-6) -> None:
    if w.ndim != 1 or w.shape[0] != k:
        raise ValueError(f"{name} must have shape ({k},); got shape {tuple(w.shape)}")
    check_finite(name, w)
    if bool((w < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    total = float(w.sum())
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to one; they sum to {total:.6g}")


def check_positive_int(name: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{name} must be a positive integer; got {n!r}")
    return n


def check_process(process) -> None:
    """Raise unless ``process`` is a :class:`~diffnotes.processes.ForwardProcess` instance."""
    from .processes import ForwardProcess  # local import: processes imports this module

    if not isinstance(process, ForwardProcess):
        raise ValueError(f"process must be a ForwardProcess (EDM(), VP(), VE()); got {process!r}")


def check_spectrum(name: str, spectrum, like: torch.Tensor) -> torch.Tensor:
    """Return a non-empty, finite, non-negative spectrum ``(d,)`` on ``like``'s device/dtype."""
    lam = torch.as_tensor(spectrum, dtype=like.dtype, device=like.device)
    if lam.ndim != 1 or lam.shape[0] == 0:
        raise ValueError(f"{name} must have shape (d,); got {tuple(lam.shape)}")
    check_finite(name, lam)
    if bool((lam < 0).any()):
        raise ValueError(f"{name} must be non-negative (eigenvalues of a covariance)")
    return lam


def check_mixture_call(mixture, x, t, process):
    """Validate the common ``(mixture, x (n, d), t, process)`` arguments; return ``(x, t)``."""
    from .mixtures import GaussianMixture  # local import: mixtures imports this module

    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    check_process(process)
    x = as_points("x", x, mixture.d)
    return x, as_time("t", t, like=x, n=x.shape[0])
