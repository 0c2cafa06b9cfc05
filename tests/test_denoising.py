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
from diffnotes.denoising import dsm_constant_terms, gaussian_dsm_constant

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


# -- the three estimators as one call, and the Gaussian reference ---------------------------

@pytest.mark.parametrize("proc,t", [(EDM(), 0.4), (VP(), 0.8)])
def test_dsm_constant_terms_agree_paired(proc, t):
    # paired z-tests at 5 sigma (false alarm 5.7e-7 each), as in the chapter
    g = torch.Generator().manual_seed(6)
    terms = dsm_constant_terms(MIX, MIX.sample(100_000, g), t, proc, g)
    check_mc(mc_estimate(terms.residual - terms.posterior), 0.0, verbose=False)
    check_mc(mc_estimate(terms.score_norm - terms.posterior), 0.0, verbose=False)


def test_dsm_constant_terms_match_the_separate_functions():
    # same generator state => same noise => the same residuals as dsm_residuals
    x0 = MIX.sample(50, torch.Generator().manual_seed(7))
    t = torch.linspace(0.1, 3.0, 50, dtype=F64)
    terms = dsm_constant_terms(MIX, x0, t, EDM(), torch.Generator().manual_seed(8))
    res, xt, _ = dsm_residuals(lambda x, tt: MIX.score(x, tt, EDM()), x0, t, EDM(),
                               torch.Generator().manual_seed(8))
    torch.testing.assert_close(terms.residual, res)
    torch.testing.assert_close(terms.xt, xt)
    torch.testing.assert_close(terms.posterior, posterior_variance_term(MIX, xt, t, EDM()))
    norm = 2 / t**2 - (MIX.score(xt, t, EDM()) ** 2).sum(1)
    torch.testing.assert_close(terms.score_norm, norm)


@pytest.mark.parametrize("proc", [EDM(), VP()])
def test_gaussian_dsm_constant_matches_mixture_posterior(proc):
    # one Gaussian component: Cov[x0|xt] does not depend on xt, so the per-point term is C(t)
    cov = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=F64)
    gauss = GaussianMixture(torch.tensor([[0.7, -1.0]]), None, cov[None])
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(9))
    for t in (0.1, 0.7, 3.0):
        ref = posterior_variance_term(gauss, x, t, proc)
        got = gaussian_dsm_constant(torch.linalg.eigvalsh(cov), t, proc)
        torch.testing.assert_close(ref, got.expand(5), rtol=1e-10, atol=0.0)


def test_gaussian_dsm_constant_edm_formula_and_shapes():
    v = 0.8
    t = torch.tensor([0.2, 1.0, 4.0], dtype=F64)
    torch.testing.assert_close(gaussian_dsm_constant([v], t, EDM()), v / (t**2 * (v + t**2)))
    assert gaussian_dsm_constant([1.0, 2.0], 0.5, EDM()).shape == ()
    # a direction with zero variance adds nothing; large noise: C ~ tr(Sigma)/t^4
    torch.testing.assert_close(gaussian_dsm_constant([v, 0.0], t, EDM()),
                               gaussian_dsm_constant([v], t, EDM()))
    big = gaussian_dsm_constant([1.0, 2.0], 1e3, EDM())
    assert abs(float(big) * 1e12 / 3.0 - 1) < 1e-5


@pytest.mark.parametrize("bad", [[], [[1.0]], [-1.0], [float("nan")]])
def test_gaussian_dsm_constant_rejects_bad_variances(bad):
    with pytest.raises(ValueError, match="variances"):
        gaussian_dsm_constant(torch.tensor(bad, dtype=F64), 1.0, EDM())


def test_dsm_constant_terms_rejects_wrong_dimension():
    with pytest.raises(ValueError, match="x0"):
        dsm_constant_terms(MIX, torch.zeros(4, 3, dtype=F64), 1.0, EDM())
