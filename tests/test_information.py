"""Chapter 3 estimators against closed forms (Gaussian data) and 1-D quadrature (mixtures).

Monte Carlo tests are z-tests at 5 sigma (two-sided false-alarm rate 5.7e-7 each) with fixed
seeds; deterministic comparisons use tolerances named per check.
"""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from diffnotes import EDM, VE, VP, GaussianMixture, check_mc, mc_estimate
from diffnotes.checks import Tally
from diffnotes.information import (
    check_entropy_rate_1d,
    coherence,
    conditional_entropy_path,
    dsm_factor,
    entropy_rate_finite_difference,
    entropy_rate_from_loss,
    entropy_rate_posterior,
    entropy_rate_samples,
    entropy_rate_score_norm,
    expect_1d,
    gaussian_entropy_rate,
    immse_factor,
    max_bandwidth,
    paired_kurtosis,
    paired_z_test,
    posterior_concentration,
    train_denoiser,
)

F64 = torch.float64
QUAD_RTOL = 1e-7      # quadrature of smooth integrands
FD_RTOL = 1e-5        # central difference of quadrature values, step 1e-4 t

MIX_1D = {
    "delta": GaussianMixture.delta(torch.tensor([[-1.5], [0.3], [2.0]]),
                                   torch.tensor([0.2, 0.5, 0.3])),
    "gauss": GaussianMixture(torch.tensor([[-1.5], [0.3], [2.0]]), torch.tensor([0.2, 0.5, 0.3]),
                             torch.tensor([0.05, 0.3, 0.1])),
}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- time factors and closed forms ------------------------------------------------------------
@pytest.mark.parametrize("t", [0.1, 0.7, 3.0])
def test_factors_edm_and_vp(t):
    delta = -math.expm1(-2 * t)
    assert float(immse_factor(t, EDM())) == pytest.approx(1 / t**3, rel=1e-12)
    assert float(dsm_factor(t, EDM())) == pytest.approx(t, rel=1e-12)
    assert float(immse_factor(t, VP())) == pytest.approx(math.exp(-2 * t) / delta**2, rel=1e-12)
    assert float(dsm_factor(t, VP())) == pytest.approx(1.0, rel=1e-12)
    assert float(max_bandwidth(t, 7, EDM())) == pytest.approx(7 / t, rel=1e-12)
    assert float(max_bandwidth(t, 7, VP())) == pytest.approx(7 / delta, rel=1e-12)


def test_gaussian_entropy_rate_closed_forms():
    t = torch.tensor([0.05, 0.3, 1.0, 4.0], dtype=F64)
    d, k, s2 = 50, 7, 2.5
    spectrum = torch.cat([torch.full((k,), s2, dtype=F64), torch.zeros(d - k, dtype=F64)])
    edm = gaussian_entropy_rate(t, spectrum, EDM())
    torch.testing.assert_close(edm, k * s2 / (t * (s2 + t**2)), rtol=1e-12, atol=0)
    vp = gaussian_entropy_rate(t, spectrum, VP())
    e2, delta = torch.exp(-2 * t), -torch.expm1(-2 * t)
    torch.testing.assert_close(vp, k * e2 * s2 / (delta * (e2 * s2 + delta)), rtol=1e-12, atol=0)
    # a very broad Gaussian approaches the maximum bandwidth from below
    broad = gaussian_entropy_rate(t, torch.full((d,), 1e8, dtype=F64), EDM())
    assert bool((broad < max_bandwidth(t, d, EDM())).all())
    torch.testing.assert_close(broad, max_bandwidth(t, d, EDM()), rtol=1e-6, atol=0)


@pytest.mark.parametrize("proc,t", [(EDM(), 0.4), (EDM(), 2.0), (VP(), 0.3), (VE(0.05, 20.0), 0.5)])
def test_estimators_on_gaussian_data(proc, t):
    # N(0, diag(l)) with a zero eigenvalue: the posterior covariance is constant, so (b) is exact
    lam = torch.tensor([2.0, 0.5, 0.1, 0.0], dtype=F64)
    mix = GaussianMixture(torch.zeros(1, 4, dtype=F64), None, torch.diag(lam))
    exact = float(gaussian_entropy_rate(t, lam, proc))
    r = entropy_rate_samples(mix, t, proc, 20_000, _gen(1), rel_step=0.005)
    torch.testing.assert_close(r.posterior, torch.full_like(r.posterior, exact), rtol=1e-10,
                               atol=1e-12)
    check_mc(mc_estimate(r.score_norm), exact, verbose=False)
    check_mc(mc_estimate(r.finite_difference), exact, verbose=False)


# -- 1-D quadrature for mixtures ----------------------------------------------------------------
def _quad_expect(mix, f, t, proc):
    """∫ p_t(x) f(x) dx by adaptive quadrature, with the modes as break points."""
    a, s = float(proc.alpha(t)), float(proc.sigma(t))
    centres = sorted(a * float(m) for m in mix.means[:, 0])
    lo, hi = centres[0] - 14 * (s + 1), centres[-1] + 14 * (s + 1)

    def integrand(x):
        xx = torch.tensor([[x]], dtype=F64)
        return float(mix.log_prob(xx, t, proc).exp() * f(xx))

    val, _ = integrate.quad(integrand, lo, hi, points=centres, limit=400, epsabs=1e-13,
                            epsrel=1e-11)
    return val


@pytest.mark.parametrize("kind", ["delta", "gauss"])
@pytest.mark.parametrize("proc,t", [(EDM(), 0.4), (EDM(), 1.3), (VP(), 0.2), (VP(), 0.8)])
def test_three_routes_agree_by_quadrature(kind, proc, t):
    mix = MIX_1D[kind]
    score_route = _quad_expect(mix, lambda x: entropy_rate_score_norm(mix, x, t, proc), t, proc)
    post_route = _quad_expect(mix, lambda x: entropy_rate_posterior(mix, x, t, proc), t, proc)
    assert score_route == pytest.approx(post_route, rel=QUAD_RTOL)
    # derivative of the conditional entropy (up to a constant) by a central difference
    h = 1e-4 * t
    cond = [_quad_expect(mix, lambda x, tau=tau: conditional_entropy_path(mix, x, tau, proc),
                         tau, proc) for tau in (t + h, t - h)]
    assert (cond[0] - cond[1]) / (2 * h) == pytest.approx(post_route, rel=FD_RTOL)


def test_immse_links_vp_to_edm_by_quadrature():
    mix = MIX_1D["gauss"]
    t = 0.35
    tau = math.sqrt(math.expm1(2 * t))
    dtau = math.exp(2 * t) / tau
    vp = _quad_expect(mix, lambda x: entropy_rate_posterior(mix, x, t, VP()), t, VP())
    edm = _quad_expect(mix, lambda x: entropy_rate_posterior(mix, x, tau, EDM()), tau, EDM())
    assert vp == pytest.approx(edm * dtau, rel=QUAD_RTOL)


def test_posterior_and_marginal_entropies_differ_by_data_entropy():
    mix = MIX_1D["delta"]
    w = mix.weights
    h0 = float(-(w * w.log()).sum())
    for t in (0.3, 1.0):
        post = _quad_expect(mix, lambda x, t=t: conditional_entropy_path(
            mix, x, t, EDM(), method="posterior"), t, EDM())
        marg = _quad_expect(mix, lambda x, t=t: conditional_entropy_path(
            mix, x, t, EDM(), method="marginal"), t, EDM())
        assert post - marg == pytest.approx(h0, rel=QUAD_RTOL)


# -- the book's quadrature check of the I-MMSE rate, and what breaks it ---------------------------
TWO_POINTS = GaussianMixture.delta(torch.tensor([[-1.0], [1.0]], dtype=F64))


def test_expect_1d_matches_adaptive_quadrature():
    mix = MIX_1D["gauss"]
    for proc, t in ((EDM(), 0.3), (VP(), 0.6)):
        f = lambda x, t=t, proc=proc: entropy_rate_posterior(mix, x, t, proc)  # noqa: E731
        assert expect_1d(mix, f, t, proc) == pytest.approx(_quad_expect(mix, f, t, proc),
                                                             rel=QUAD_RTOL)


@pytest.mark.parametrize("mix", [TWO_POINTS, MIX_1D["delta"], MIX_1D["gauss"]],
                         ids=["two points", "three points", "three Gaussians"])
@pytest.mark.parametrize("proc,t", [(EDM(), 0.2), (EDM(), 1.5), (VP(), 0.05), (VP(), 0.7),
                                    (VE(0.05, 20.0), 0.3)])
def test_check_entropy_rate_1d_holds(mix, proc, t):
    tally = Tally("I-MMSE")
    assert check_entropy_rate_1d(mix, t, proc, tally=tally) < 1e-7
    assert tally.n_exact == 1


@pytest.mark.parametrize("factor", [
    lambda t, p: 1 / t**2,                        # one power of t lost (the F'(τ) step wrong)
    lambda t, p: 1 / (2 * t**3),                  # the ½ of the I-MMSE relation applied twice
    lambda t, p: (1 + 1e-5) / t**3,               # right form, wrong by one part in 10^5
], ids=["1/t^2", "1/(2t^3)", "1.00001/t^3"])
def test_check_entropy_rate_1d_fails_on_a_wrong_rate(factor):
    # the claim broken once: the same check with a wrong I-MMSE factor must raise
    with pytest.raises(AssertionError, match="dH/dt"):
        check_entropy_rate_1d(TWO_POINTS, 0.7, EDM(), factor=factor)


def test_paired_z_test_reports_zero_and_rare_cases_as_skipped():
    g = _gen(20)
    tally = Tally("paired")
    zeros = torch.zeros(500, dtype=F64)
    assert paired_z_test(zeros, zeros.clone(), tally) is None     # identical: not a test
    spikes = torch.zeros(500, dtype=F64)
    spikes[:3] = 1e3                                               # three paths carry it all
    assert paired_z_test(spikes, zeros, tally) is None
    assert tally.n_checks == 0 and len(tally.skipped) == 2
    with pytest.raises(AssertionError, match="no check ran"):
        tally.report(verbose=False)
    a = torch.randn(2000, dtype=F64, generator=g)
    b = a + 0.1 * torch.randn(2000, dtype=F64, generator=g)
    z = paired_z_test(a, b, tally, label="same mean")
    assert z is not None and abs(z) < 5 and tally.n_mc == 1
    line = tally.report(verbose=False)
    assert "1 check passed" in line and "2 skipped" in line
    # a real difference of means fails
    with pytest.raises(AssertionError):
        paired_z_test(a + 0.1, b, tally, label="shifted")


def test_paired_kurtosis_against_numpy_and_the_normal_value():
    g = _gen(21)
    x = torch.randn(200_000, dtype=F64, generator=g)
    assert abs(paired_kurtosis(x) - 3.0) < 0.05                  # normal: 3 (SE about 0.011)
    y = np.random.default_rng(3).standard_t(5, 1000)
    c = y - y.mean()
    assert paired_kurtosis(torch.as_tensor(y)) == pytest.approx(
        np.mean(c**4) / np.mean(c**2) ** 2, rel=1e-12)
    assert paired_kurtosis(torch.ones(5, dtype=F64)) == 0.0
    with pytest.raises(ValueError, match="diff"):
        paired_kurtosis(torch.ones(1, dtype=F64))


def test_paired_z_test_kurtosis_rule_skips_heavy_tails_only_when_asked():
    g = _gen(22)
    tally = Tally("kurtosis")
    base = torch.randn(2000, dtype=F64, generator=g)
    heavy = base.clone()
    heavy[:30] *= 40.0                # thirty large paths: share of ten below half, kurtosis high
    size = heavy.abs()
    assert float(size.topk(10).values.sum()) <= 0.5 * float(size.sum())
    assert paired_kurtosis(heavy) > 50
    assert paired_z_test(heavy, torch.zeros_like(heavy), tally, max_kurtosis=50) is None
    assert "kurtosis" in tally.skipped[-1]
    assert paired_z_test(heavy, torch.zeros_like(heavy), tally) is not None   # default: off
    assert paired_z_test(base, torch.zeros_like(base), tally, max_kurtosis=50) is not None


# -- Monte Carlo estimators in higher dimension -------------------------------------------------
@pytest.mark.parametrize("proc,t", [(EDM(), 1.2), (VP(), 0.4)])
def test_finite_difference_matches_posterior_route(proc, t):
    g = _gen(2)
    pts = torch.randn(6, 5, dtype=F64, generator=g)
    for mix in (GaussianMixture.delta(pts), GaussianMixture(pts, None, 0.2)):
        r = entropy_rate_samples(mix, t, proc, 20_000, g, rel_step=0.005)
        check_mc(mc_estimate(r.finite_difference - r.posterior), 0.0, verbose=False)
        check_mc(mc_estimate(r.score_norm - r.posterior), 0.0, verbose=False)


def test_finite_difference_step_only_biases_at_second_order():
    g = _gen(3)
    mix = GaussianMixture(torch.randn(4, 3, dtype=F64, generator=g), None, 0.1)
    x0 = mix.sample(5000, g)
    eps = torch.randn(x0.shape, dtype=F64, generator=g)
    fd = [entropy_rate_finite_difference(mix, x0, eps, 1.0, EDM(), step=h).mean()
          for h in (0.04, 0.02, 0.01)]
    # differences of a central difference scale like h^2: ratio of successive gaps about 4
    ratio = float((fd[0] - fd[1]) / (fd[1] - fd[2]))
    assert ratio == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize("proc,t", [(EDM(), 0.8), (VP(), 0.5)])
def test_entropy_rate_from_exact_loss(proc, t):
    g = _gen(4)
    mix = GaussianMixture(torch.randn(5, 3, dtype=F64, generator=g), None, 0.1)
    x0 = mix.sample(20_000, g)
    xt, eps = proc.perturb(x0, t, g)
    sig = float(proc.sigma(t))
    res = ((mix.score(xt, t, proc) + eps / sig) ** 2).sum(1)
    diff = entropy_rate_from_loss(res, t, proc) - entropy_rate_posterior(mix, xt, t, proc)
    check_mc(mc_estimate(diff), 0.0, verbose=False)


# -- posterior concentration --------------------------------------------------------------------
def test_concentration_orthogonal_points_exact_decomposition():
    d, k, r = 40, 6, 3.0
    mix = GaussianMixture.delta(r * torch.eye(d, dtype=F64)[:k])
    x = mix.sample(300, _gen(5)) + 2.0 * torch.randn(300, d, dtype=F64, generator=_gen(6))
    q = posterior_concentration(mix, x, 2.0, EDM())
    assert bool((q >= 1 / k - 1e-12).all() and (q <= 1 + 1e-12).all())
    torch.testing.assert_close(mix.posterior_trace_cov(x, 2.0, EDM()), r**2 * (1 - q),
                               rtol=1e-10, atol=1e-12)


def test_coherence_bounds_the_orthogonal_approximation():
    g = _gen(7)
    pts = torch.randn(8, 200, dtype=F64, generator=g)
    pts = pts / pts.norm(dim=1, keepdim=True) * 4.0
    mu = coherence(pts)
    u = pts / pts.norm(dim=1, keepdim=True)
    cos = (u @ u.T - torch.eye(8, dtype=F64)).abs()
    assert mu == pytest.approx(float(cos.max()), rel=1e-12)
    mix = GaussianMixture.delta(pts)
    x = mix.sample(500, g) + 0.3 * torch.randn(500, 200, dtype=F64, generator=g)
    q = posterior_concentration(mix, x, 0.3, EDM())
    approx = 16.0 * (1 - q)
    err = (mix.posterior_trace_cov(x, 0.3, EDM()) - approx).abs()
    assert bool((err <= mu * approx + 1e-10).all())


def test_merged_groups_give_one_over_m():
    centres = torch.randn(3, 10, dtype=F64, generator=_gen(8)) * 5
    mix = GaussianMixture.delta(centres.repeat_interleave(4, 0))
    x = mix.sample(200, _gen(9)) + 0.5 * torch.randn(200, 10, dtype=F64, generator=_gen(10))
    w = mix.component_posterior(x, 0.5, EDM())
    mass = w.reshape(200, 3, 4).sum(2)
    torch.testing.assert_close(posterior_concentration(mix, x, 0.5, EDM()),
                               (mass**2).sum(1) / 4, rtol=1e-12, atol=1e-14)


# -- the tiny denoiser --------------------------------------------------------------------------
def test_train_denoiser_is_seeded_learns_and_restores_threads():
    mix = GaussianMixture(torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), None, 0.05)
    threads = torch.get_num_threads()
    kw = {"t_min": 0.05, "t_max": 5.0, "steps": 150, "batch": 128, "hidden": 16}
    m1, l1 = train_denoiser(mix, EDM(), generator=_gen(11), **kw)
    m2, l2 = train_denoiser(mix, EDM(), generator=_gen(11), **kw)
    assert torch.get_num_threads() == threads
    torch.testing.assert_close(l1, l2, rtol=0, atol=0)
    assert float(l1[-30:].mean()) < float(l1[:30].mean())
    x = torch.randn(7, 2, dtype=F64, generator=_gen(12))
    s = m1.score(x, 0.5)
    assert s.shape == (7, 2) and s.dtype == F64
    torch.testing.assert_close(s, m2.score(x, 0.5), rtol=0, atol=0)
    assert m1.score(x, torch.full((7,), 0.5, dtype=F64)).shape == (7, 2)


def test_bad_input_raises():
    mix = MIX_1D["gauss"]
    x0 = torch.zeros(4, 1, dtype=F64)
    with pytest.raises(ValueError, match="step"):
        entropy_rate_finite_difference(mix, x0, x0, 0.5, EDM(), step=0.6)
    with pytest.raises(ValueError, match="eps"):
        entropy_rate_finite_difference(mix, x0, torch.zeros(3, 1, dtype=F64), 0.5, EDM(),
                                       step=0.1)
    with pytest.raises(ValueError, match="posterior"):
        conditional_entropy_path(mix, x0, 0.5, EDM(), method="posterior")
    with pytest.raises(ValueError, match="method"):
        conditional_entropy_path(mix, x0, 0.5, EDM(), method="mean")
    with pytest.raises(ValueError, match="spectrum"):
        gaussian_entropy_rate(1.0, torch.tensor([1.0, -0.1]), EDM())
    with pytest.raises(ValueError, match="t must be positive"):
        entropy_rate_posterior(mix, x0, -1.0, EDM())
    with pytest.raises(ValueError, match="x must have shape"):
        entropy_rate_score_norm(mix, torch.zeros(4, 2, dtype=F64), 0.5, EDM())
    with pytest.raises(ValueError, match="rel_step"):
        entropy_rate_samples(mix, 0.5, EDM(), 10, _gen(0), rel_step=1.5)
    with pytest.raises(ValueError, match="points"):
        coherence(torch.ones(1, 3))
    with pytest.raises(ValueError, match="t_min"):
        train_denoiser(mix, EDM(), t_min=1.0, t_max=0.5, steps=1)
    with pytest.raises(ValueError, match="num_threads"):
        train_denoiser(mix, EDM(), t_min=0.1, t_max=1.0, steps=1, num_threads=0)
    with pytest.raises(ValueError, match="residuals"):
        entropy_rate_from_loss(torch.zeros(3, 2), 1.0, EDM())


def test_estimators_follow_device_and_dtype(device):
    g = torch.Generator(device=device).manual_seed(15)
    mix = GaussianMixture(torch.randn(3, 4, dtype=F64), None, 0.1)
    r = entropy_rate_samples(mix, 0.7, EDM(), 64, g)
    for v in r:
        assert v.shape == (64,) and v.device.type == device.type and v.dtype == F64
    x = torch.randn(5, 4, device=device, dtype=torch.float32)
    q = posterior_concentration(mix, x, 0.7, EDM())
    assert q.device.type == device.type and q.dtype == torch.float32
