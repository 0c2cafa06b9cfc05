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
from diffnotes.checks import Tally
from diffnotes.denoising import (
    check_gaussian_dsm_constant,
    dsm_constant_terms,
    gaussian_dsm_constant,
    gaussian_dsm_constant_forms,
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


# ------------------------------------------------------------------ the sympy derivation of C


@pytest.fixture(scope="module")
def forms():
    return gaussian_dsm_constant_forms()


def test_derived_forms_agree_with_the_numeric_gaussian_constant(forms):
    # the sympy forms, evaluated, against gaussian_dsm_constant (a separate closed form in torch)
    al, sg, v = forms["alpha"], forms["sigma"], forms["v"]
    for proc, t, var in ((EDM(), 0.7, 2.0), (VP(), 0.4, 0.5)):
        a = float(proc.alpha(torch.tensor(t, dtype=F64)))
        s = float(proc.sigma(torch.tensor(t, dtype=F64)))
        ref = float(gaussian_dsm_constant(torch.tensor([var], dtype=F64), t, proc))
        for name in ("residual", "score_norm", "posterior"):
            got = float(forms[name].subs({al: a, sg: s, v: var}))
            assert got == pytest.approx(ref, rel=1e-12)


def test_dsm_constant_check_passes_on_the_lemma():
    tally = Tally("C")
    check_gaussian_dsm_constant(lambda al, sg, v: al**2 * v / (sg**2 * (al**2 * v + sg**2)),
                                tally)
    assert tally.n_exact == 3


@pytest.mark.parametrize(
    "wrong",
    [
        lambda al, sg, v: v / (sg**2 * (v + sg**2)),                 # alpha forgotten
        lambda al, sg, v: al**2 * v / (sg**4 * (al**2 * v + sg**2)),  # sigma^4 for sigma^2
        lambda al, sg, v: 1 / sg**2,                                 # the upper bound d/sigma^2
        lambda al, sg, v: sg**2 * v / (al**2 * v + sg**2),            # the posterior variance
    ],
    ids=["no-alpha", "sigma4", "bound", "posterior-variance"],
)
def test_dsm_constant_check_fails_on_a_wrong_formula(wrong):
    with pytest.raises(AssertionError, match="fails"):
        check_gaussian_dsm_constant(wrong, Tally("wrong"))
    with pytest.raises(AssertionError, match="fails"):
        check_gaussian_dsm_constant(wrong)
