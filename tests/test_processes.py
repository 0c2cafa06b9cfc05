"""Forward processes against their closed forms and their SDE coefficients."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffnotes import EDM, VE, VP

PROCESSES = [EDM(), VP(), VE(0.02, 30.0)]
T = torch.linspace(0.05, 3.0, 25, dtype=torch.float64)


def test_closed_forms():
    assert torch.equal(EDM().sigma(T), T)
    assert torch.allclose(VP().alpha(T), torch.exp(-T))
    assert torch.allclose(VP().sigma(T) ** 2, 1 - torch.exp(-2 * T))
    assert torch.allclose(VP().delta(T), 1 - torch.exp(-2 * T))
    ve = VE(0.02, 30.0)
    assert torch.allclose(ve.sigma(torch.tensor([0.0, 1.0], dtype=torch.float64)),
                          torch.tensor([0.02, 30.0], dtype=torch.float64))


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: p.name)
def test_derivatives_match_autograd(proc):
    t = T.clone().requires_grad_(True)
    a = proc.alpha(t)
    # a constant alpha (EDM, VE) carries no graph: its derivative is zero
    da = torch.autograd.grad(a.sum(), t)[0] if a.requires_grad else torch.zeros_like(T)
    (ds,) = torch.autograd.grad(proc.sigma(t).sum(), t)
    assert torch.allclose(proc.dalpha(T), da, atol=1e-12)
    assert torch.allclose(proc.dsigma(T), ds, rtol=1e-10)


@pytest.mark.parametrize("proc", PROCESSES, ids=lambda p: p.name)
def test_snr_derivative_and_inverse(proc):
    t = T.clone().requires_grad_(True)
    (dl,) = torch.autograd.grad(proc.snr(t).sum(), t)
    assert torch.allclose(proc.dsnr(T), dl, rtol=1e-9)
    assert torch.allclose(proc.t_from_snr(proc.snr(T)), T, rtol=1e-9)
    assert torch.allclose(proc.t_from_sigma_ratio(proc.sigma(T) / proc.alpha(T)), T, rtol=1e-9)


def test_sde_coefficients():
    # EDM: f = 0, g^2 = 2t; VP: f = -1, g^2 = 2 (MATH.md conventions)
    assert torch.allclose(EDM().drift(T), torch.zeros_like(T))
    assert torch.allclose(EDM().diffusion2(T), 2 * T)
    assert torch.allclose(VP().drift(T), -torch.ones_like(T))
    assert torch.allclose(VP().diffusion2(T), 2 * torch.ones_like(T))


def test_vp_critical_time_conversion():
    # VP with points +-a has sigma/alpha = a at t = log(1 + a^2)/2
    a = 1.7
    assert math.isclose(float(VP().t_from_sigma_ratio(a)), 0.5 * math.log(1 + a * a))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20), d=st.integers(1, 6), t=st.floats(0.01, 5.0))
def test_perturb_shapes_and_moments(n, d, t):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, d, dtype=torch.float64, generator=g)
    for proc in PROCESSES:
        xt, eps = proc.perturb(x0, t, g)
        assert xt.shape == eps.shape == (n, d)
        assert torch.allclose(xt, proc.alpha(t) * x0 + proc.sigma(t) * eps)
        xt2, eps2 = proc.perturb(x0, torch.full((n,), t, dtype=torch.float64), g)
        assert xt2.shape == (n, d)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_times_raise(bad):
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="t must"):
        VP().perturb(x0, bad)
    with pytest.raises(ValueError, match="snr"):
        EDM().t_from_snr(-1.0)


def test_bad_ve_and_shapes_raise():
    with pytest.raises(ValueError, match="sigma_min"):
        VE(1.0, 0.5)
    with pytest.raises(ValueError, match="x0"):
        EDM().perturb(torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match="t must be"):
        EDM().perturb(torch.zeros(3, 2), torch.ones(4))
