"""Tweedie's formula and the DSM constant, checked by Monte Carlo at 5 sigma."""

import pytest
import torch

from diffnotes import (
    EDM,
    VP,
    GaussianMixture,
    check_mc,
    dsm_residuals,
    mc_estimate,
    posterior_mean_importance,
    posterior_variance_term,
)

F64 = torch.float64
MIX = GaussianMixture(torch.tensor([[-2.0, 0.0], [1.5, 1.0], [0.0, 2.0]]),
                      torch.tensor([0.3, 0.5, 0.2]), torch.tensor([0.05, 0.2, 0.0]))


@pytest.mark.parametrize("proc,t", [(EDM(), 0.3), (EDM(), 1.5), (VP(), 0.5)])
def test_dsm_constant_three_ways(proc, t):
    # C(t) = E|s + eps/sigma|^2 = d/sigma^2 - E|s|^2 = alpha^2/sigma^4 E tr Cov[x0|xt]:
    # paired differences have mean zero; z-test at 5 sigma (false alarm 5.7e-7 each)
    g = torch.Generator().manual_seed(3)
    x0 = MIX.sample(100_000, g)
    res, xt, _ = dsm_residuals(lambda x, tt: MIX.score(x, tt, proc), x0, t, proc, g)
    post = posterior_variance_term(MIX, xt, t, proc)
    sig2 = float(proc.sigma(t)) ** 2
    norm = MIX.d / sig2 - (MIX.score(xt, t, proc) ** 2).sum(1)
    check_mc(mc_estimate(res - post), 0.0, verbose=False)
    check_mc(mc_estimate(res - norm), 0.0, verbose=False)


def test_dsm_residuals_per_row_times():
    g = torch.Generator().manual_seed(4)
    x0 = MIX.sample(10, g)
    t = torch.linspace(0.2, 2.0, 10, dtype=F64)
    res, xt, eps = dsm_residuals(lambda x, tt: MIX.score(x, tt, EDM()), x0, t, EDM(), g)
    assert res.shape == (10,) and xt.shape == eps.shape == (10, 2)


def test_importance_posterior_mean_matches_tweedie():
    g = torch.Generator().manual_seed(5)
    x0 = MIX.sample(400_000, g)
    q = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]], dtype=F64)
    mean, se, ess = posterior_mean_importance(x0, q, 0.7, EDM())
    exact = MIX.posterior_mean(q, 0.7, EDM())
    assert bool((ess > 1000).all())
    z = (mean - exact) / se
    assert bool((z.abs() < 5).all()), z
