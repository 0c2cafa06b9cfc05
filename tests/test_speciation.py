"""Chapter 7: pathwise class entropy, its variance V = Phi(gamma), and the speciation time.

Monte Carlo tests are z-tests at 5 standard errors (two-sided false-alarm rate 5.7e-7 each)
with fixed seeds; deterministic references come from scipy.integrate.quad and closed forms.
"""

import math

import pytest
import torch
from scipy import integrate
from scipy.special import expit

from diffnotes import EDM, VP, GaussianMixture, check_mc, generator
from diffnotes.checks import Tally, mc_estimate
from diffnotes.speciation import (
    check_pathwise_variance,
    class_entropy,
    class_entropy_samples,
    draw_variance_estimate,
    draw_variance_gap,
    effective_snr,
    mixture_gram,
    overlap_term_samples,
    pathwise_entropy_samples,
    posterior_draws,
    reduced_class_entropy_samples,
    rescaled_mixture,
    speciation_time,
    top_covariance_eigenvalue,
    two_class_conditional_entropy,
    two_class_phi,
    variance_estimate,
    within_class_entropies,
)

F64 = torch.float64


def pair(d, s2=0.0, random_direction=False):
    """Two equiprobable classes at +-sqrt(d) u (variance s2), u = e_1 or a seeded random unit."""
    if random_direction:
        u = torch.randn(d, dtype=F64, generator=torch.Generator().manual_seed(11))
        u = u / u.norm()
    else:
        u = torch.zeros(d, dtype=F64)
        u[0] = 1.0
    return GaussianMixture(torch.stack([math.sqrt(d) * u, -math.sqrt(d) * u]), None, s2)


def random_classes(d, K, seed, s2=0.0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(K, d, generator=g, dtype=F64)
    u = u / u.norm(dim=1, keepdim=True)
    w = torch.rand(K, generator=g, dtype=F64) + 0.5
    return GaussianMixture(math.sqrt(d) * u, w / w.sum(), s2)


def quad_phi(gamma):
    """Phi(gamma) by scipy quad over xi ~ N(0, 1), independent of the module's trapezoid."""
    def hb(xi):
        a = 2 * gamma + 2 * math.sqrt(gamma) * xi
        p = expit(a)
        return -(p * math.log(p) if p > 0 else 0.0) - ((1 - p) * math.log1p(-p) if p < 1 else 0.0)

    def phi(xi):
        return math.exp(-0.5 * xi * xi) / math.sqrt(2 * math.pi)

    m1 = integrate.quad(lambda x: phi(x) * hb(x), -40, 40, points=[-math.sqrt(gamma)],
                        limit=400, epsabs=1e-14, epsrel=1e-12)[0]
    m2 = integrate.quad(lambda x: phi(x) * hb(x) ** 2, -40, 40, points=[-math.sqrt(gamma)],
                        limit=400, epsabs=1e-14, epsrel=1e-12)[0]
    return m2 - m1**2, m1


# -- Phi(gamma): quadrature, Monte Carlo ------------------------------------------------------
@pytest.mark.parametrize("gamma", [1e-3, 0.1, 0.7, 1.0, 1.3, 3.0, 10.0, 40.0])
def test_two_class_phi_matches_scipy_quad(gamma):
    phi, mean = two_class_phi(gamma, return_mean=True)
    ref_phi, ref_mean = quad_phi(gamma)
    assert float(phi) == pytest.approx(ref_phi, rel=1e-7, abs=1e-12)
    assert float(mean) == pytest.approx(ref_mean, rel=1e-9, abs=1e-12)


def test_two_class_phi_limits():
    phi, mean = two_class_phi(torch.tensor([0.0, 1e-8, 400.0]), return_mean=True)
    assert float(phi[0]) == 0.0 and float(mean[0]) == pytest.approx(math.log(2))
    assert float(phi[1]) < 1e-15
    assert float(phi[2]) < 1e-30 and float(mean[2]) < 1e-30


@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])
def test_reduced_mc_matches_quadrature(gamma):
    g = generator(11, "cpu")
    h = reduced_class_entropy_samples(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]), gamma, 40_000, g)
    check_mc(variance_estimate(h[0]), float(two_class_phi(gamma)), label=f"reduced {gamma}")


@pytest.mark.parametrize("d, random_direction", [(3, False), (200, False), (200, True)])
def test_direct_mc_matches_quadrature(d, random_direction):
    # along e_1 only x_1 enters the class posterior; a random unit direction uses all of x
    proc = VP()
    t = 0.5 * math.log(1 + d / 1.3)  # gamma = 1.3, near the peak
    h = class_entropy_samples(pair(d, random_direction=random_direction), t, proc, 20_000,
                              generator(5, "cpu"), chunk_rows=3_000)
    gamma = float(effective_snr(t, d, proc))
    assert gamma == pytest.approx(1.3)
    check_mc(variance_estimate(h), float(two_class_phi(gamma)), label=f"direct d={d}")


def test_direct_equals_reduced_many_classes():
    """K = 6 random prototypes with unequal weights: the reduction is checked, not assumed."""
    mix = random_classes(40, 6, seed=3)
    t = 1.4
    direct = class_entropy_samples(mix, t, VP(), 20_000, generator(7, "cpu"))
    gamma = effective_snr(t, mix.d, VP())
    reduced = reduced_class_entropy_samples(mixture_gram(mix), gamma, 20_000,
                                            generator(8, "cpu"), weights=mix.weights)[0]
    check_mc(variance_estimate(direct), variance_estimate(reduced), label="V direct vs reduced",
             ref_name="reduced")
    from diffnotes.checks import mc_estimate
    check_mc(mc_estimate(direct), mc_estimate(reduced), label="E h", ref_name="reduced")


def test_gaussian_classes_use_renormalised_snr():
    """Shared isotropic variance s^2: V(t) = Phi(d a^2 / (sigma^2 + s^2 a^2)) (eq. 90).

    Off the flat top of Phi (gamma~ = 3.6 against gamma = 5.0), so that the point-mixture
    alternative Phi(gamma) is rejected by the same data (z about 26)."""
    d, s2, t = 50, 4.0, 1.2
    h = class_entropy_samples(pair(d, s2), t, VP(), 20_000, generator(9, "cpu"))
    gt = float(effective_snr(t, d, VP(), s2=s2))
    e = math.exp(-2 * t)
    assert gt == pytest.approx(d * e / (1 - e + s2 * e))
    est = variance_estimate(h)
    check_mc(est, float(two_class_phi(gt)), label="Gaussian classes")
    z_point = (est.value - float(two_class_phi(float(effective_snr(t, d, VP()))))) / est.stderr
    assert abs(z_point) > 5, f"the point-mixture gamma is not rejected (z = {z_point:+.1f})"


def test_reduced_is_chunk_independent_and_batched_over_gamma():
    G = mixture_gram(random_classes(10, 4, seed=1))
    gam = torch.tensor([0.5, 2.0])
    a = reduced_class_entropy_samples(G, gam, 1000, generator(2, "cpu"))
    b = reduced_class_entropy_samples(G, gam, 1000, generator(2, "cpu"), chunk_rows=37)
    c = reduced_class_entropy_samples(G, gam[1], 1000, generator(2, "cpu"))
    assert a.shape == (2, 1000)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    torch.testing.assert_close(a[1], c[0], rtol=0, atol=1e-13)
    assert bool((a >= 0).all()) and bool((a <= math.log(4) + 1e-12).all())


# -- variance estimate ------------------------------------------------------------------------
def test_variance_estimate_stderr_is_calibrated():
    """For N(0, 1) samples, Var(s^2) = 2/(n-1): the delta-method error must match it, and 200
    replicate estimates must scatter like it (chi-square test on the z-scores at ~5 sigma)."""
    g = torch.Generator().manual_seed(0)
    n, reps = 2000, 200
    x = torch.randn(reps, n, generator=g, dtype=F64)
    ests = [variance_estimate(row) for row in x]
    se_mean = sum(e.stderr for e in ests) / reps
    assert se_mean == pytest.approx(math.sqrt(2 / (n - 1)), rel=0.05)
    z = torch.tensor([(e.value - 1.0) / math.sqrt(2 / (n - 1)) for e in ests])
    chi2 = float((z**2).sum())  # chi2 with 200 dof: mean 200, sd 20
    assert abs(chi2 - reps) < 5 * math.sqrt(2 * reps)


def test_variance_estimate_rejects_bad_input():
    with pytest.raises(ValueError, match="samples"):
        variance_estimate(torch.ones(3))
    with pytest.raises(ValueError, match="samples"):
        variance_estimate(torch.tensor([1.0, float("nan"), 2.0, 3.0]))


# -- speciation time --------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 10, 1000])
def test_speciation_time_of_the_pair_is_half_log_d(d):
    assert speciation_time(pair(d)) == pytest.approx(0.5 * math.log(d))
    assert float(effective_snr(speciation_time(pair(d)), d, VP())) == pytest.approx(d / (d - 1))


@pytest.mark.parametrize("covs", ["delta", "iso", "full"])
def test_speciation_time_from_the_covariance(covs):
    mix = random_classes(12, 5, seed=4)
    if covs == "iso":
        mix = GaussianMixture(mix.means, mix.weights, torch.tensor([0.5, 1, 2, 0.1, 3.0]))
    if covs == "full":
        g = torch.Generator().manual_seed(1)
        A = torch.randn(5, 12, 12, generator=g, dtype=F64) / 4
        mix = GaussianMixture(mix.means, mix.weights, A @ A.transpose(1, 2))
    lam = float(torch.linalg.eigvalsh(mix.covariance())[-1])
    assert top_covariance_eigenvalue(mix) == pytest.approx(lam, rel=1e-10)
    assert speciation_time(mix, VP()) == pytest.approx(0.5 * math.log(lam), rel=1e-10)


def test_speciation_time_rejects_bad_input():
    with pytest.raises(ValueError, match="process"):
        speciation_time(pair(10), EDM())
    small = GaussianMixture.delta(torch.tensor([[0.5], [-0.5]]))
    with pytest.raises(ValueError, match="top eigenvalue"):
        speciation_time(small)
    with pytest.raises(ValueError, match="mixture"):
        speciation_time(torch.zeros(2, 2))


def test_effective_snr_closed_forms():
    t = torch.tensor([0.3, 1.0, 4.0], dtype=F64)
    torch.testing.assert_close(effective_snr(t, 7, EDM()), 7 / t**2)
    torch.testing.assert_close(effective_snr(t, 7, VP()), 7 * torch.exp(-2 * t)
                               / (1 - torch.exp(-2 * t)))
    with pytest.raises(ValueError, match="d"):
        effective_snr(t, -1, VP())
    with pytest.raises(ValueError, match="s2"):
        effective_snr(t, 3, VP(), s2=-1.0)
    with pytest.raises(ValueError, match="t"):
        effective_snr(-1.0, 3, VP())


# -- invariance under the rescaling of eq. 93 ---------------------------------------------------
def test_rescaling_leaves_the_posterior_and_h_unchanged():
    d, K, t = 9, 3, 0.8
    g = torch.Generator().manual_seed(2)
    A = torch.randn(K, d, d, generator=g, dtype=F64) / 3
    base = random_classes(d, K, seed=6)
    mix = GaussianMixture(base.means, base.weights, A @ A.transpose(1, 2))
    proc = VP()
    x = mix.noised(t, proc).sample(300, g)
    resc = rescaled_mixture(mix, t, proc)
    y = x / (math.exp(-t) * math.sqrt(d))
    # posterior of the rescaled law: log pi_c + log N(y; u_c, Sigma_c/d + I/gamma)
    dist = torch.distributions.MultivariateNormal(resc.means, resc.covariances)
    logits = torch.log(resc.weights) + dist.log_prob(y[:, None, :])
    torch.testing.assert_close(torch.softmax(logits, 1), mix.component_posterior(x, t, proc),
                               rtol=1e-9, atol=1e-12)
    gamma = float(effective_snr(t, d, proc))
    eye = torch.eye(d, dtype=F64)
    torch.testing.assert_close(resc.covariances, mix.covariances / d + eye / gamma)
    h_resc = -(torch.softmax(logits, 1) * torch.log_softmax(logits, 1)).sum(1)
    torch.testing.assert_close(h_resc, class_entropy(mix, x, t, proc), rtol=1e-9, atol=1e-12)


def test_overlap_term_vanishes_for_separated_classes_and_not_otherwise():
    proc = VP()
    far, near = pair(100, 1.0), pair(1, 1.0)
    for mix, expect_small in ((far, True), (near, False)):
        x = class_entropy_samples(mix, 1.0, proc, 1, generator(0, "cpu"))  # shape smoke
        assert x.shape == (1,)
        xt = mix.noised(1.0, proc).sample(4000, generator(1, "cpu"))
        delta = overlap_term_samples(mix, xt, 1.0, proc, generator(2, "cpu"))
        assert bool((delta >= 0).all())
        if expect_small:
            assert float(delta.max()) < 1e-20
        else:
            assert float(delta.mean()) > 0.05
    with pytest.raises(ValueError, match="isotropic"):
        overlap_term_samples(pair(3), torch.zeros(2, 3), 1.0, proc)


def test_class_entropy_limits():
    mix = random_classes(20, 5, seed=9)
    x0 = mix.sample(500, generator(3, "cpu"))
    proc = VP()
    xs, _ = proc.perturb(x0, 1e-3, generator(4, "cpu"))
    assert float(class_entropy(mix, xs, 1e-3, proc).max()) < 1e-12
    xl, _ = proc.perturb(x0, 20.0, generator(5, "cpu"))  # sqrt(gamma) ~ 1e-8
    hpi = float(-(mix.weights * mix.weights.log()).sum())
    assert float((class_entropy(mix, xl, 20.0, proc) - hpi).abs().max()) < 1e-6


def test_reduced_rejects_bad_gram():
    g = generator(0, "cpu")
    with pytest.raises(ValueError, match="gram"):
        reduced_class_entropy_samples(torch.tensor([[1.0, 2.0], [2.0, 1.0]]), 1.0, 10, g)
    with pytest.raises(ValueError, match="gram"):
        reduced_class_entropy_samples(torch.ones(2, 3), 1.0, 10, g)
    with pytest.raises(ValueError, match="gamma"):
        reduced_class_entropy_samples(torch.eye(2), -1.0, 10, g)


# -- devices ----------------------------------------------------------------------------------
def test_same_code_on_every_device(device):
    mix = pair(64)
    t = speciation_time(mix)
    h = class_entropy_samples(mix, t, VP(), 8000, generator(12, device))
    assert h.device.type == device.type
    check_mc(variance_estimate(h.cpu()), float(two_class_phi(float(effective_snr(t, 64, VP())))),
             label=f"direct on {device.type}")
    r = reduced_class_entropy_samples(mixture_gram(mix), [0.5, 1.0], 8000, generator(13, device))
    assert r.device.type == device.type and r.shape == (2, 8000)


# -- the chain rule: V (full pathwise entropy) against V_C (class entropy) ---------------------
def unequal_pair(d, v_plus=1.0, v_minus=16.0):
    return GaussianMixture(pair(d).means, None, torch.tensor([v_plus, v_minus], dtype=F64))


def quad_entropy_1d(mean, v):
    """Differential entropy of (N(mean, v) + N(-mean, v))/2 by scipy quad (nats)."""
    def p(y):
        return 0.5 * (math.exp(-(y - mean) ** 2 / (2 * v)) + math.exp(-(y + mean) ** 2 / (2 * v))) \
            / math.sqrt(2 * math.pi * v)

    def f(y):
        py = p(y)
        return -py * math.log(py) if py > 0 else 0.0

    half = mean + 20 * math.sqrt(v)
    return integrate.quad(f, -half, half, points=[-mean, 0.0, mean], limit=400,
                          epsabs=1e-13, epsrel=1e-12)[0]


@pytest.mark.parametrize(("d", "s2", "t"), [(1, 1.0, 0.35), (5, 0.5, 1.0), (100, 1.0, 2.3)])
def test_two_class_conditional_entropy_matches_scipy(d, s2, t):
    proc = VP()
    a, s = math.exp(-t), math.sqrt(1 - math.exp(-2 * t))
    vt = a * a * s2 + s * s
    ref = (quad_entropy_1d(math.sqrt(d), s2) + 0.5 * (d - 1) * math.log(2 * math.pi * math.e * s2)
           + 0.5 * d * math.log(2 * math.pi * math.e * s * s)
           - quad_entropy_1d(a * math.sqrt(d), vt)
           - 0.5 * (d - 1) * math.log(2 * math.pi * math.e * vt))
    assert two_class_conditional_entropy(d, s2, t, proc) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_posterior_draws_match_the_posterior_moments():
    """Mean and trace covariance of exact posterior draws against GaussianMixture's closed forms
    (a different code path), z-tests at 5 sigma."""
    mix = unequal_pair(3)
    proc, t = VP(), 0.6
    x = mix.noised(t, proc).sample(3, generator(20, "cpu"))
    draws = posterior_draws(mix, x, t, proc, generator(21, "cpu"), draws=40_000)  # (m, 3, d)
    mean = mix.posterior_mean(x, t, proc)
    tr = mix.posterior_trace_cov(x, t, proc)
    for i in range(3):
        for j in range(3):
            check_mc(mc_estimate(draws[:, i, j]), float(mean[i, j]), label=f"mean {i},{j}",
                     verbose=False)
        sq = ((draws[:, i] - mean[i]) ** 2).sum(1)
        check_mc(mc_estimate(sq), float(tr[i]), label=f"trace cov {i}", verbose=False)


def test_within_class_entropies_are_the_posterior_entropies():
    proc, t = VP(), 0.9
    mix = unequal_pair(4, 0.5, 3.0)
    H = within_class_entropies(mix, t, proc)
    for c, v in enumerate((0.5, 3.0)):
        one = GaussianMixture(mix.means[c:c + 1], None, v)   # one class: p(x0 | c, x)
        cov = one.posterior_cov(torch.zeros(1, 4, dtype=F64), t, proc)[0]
        ref = 0.5 * float(torch.logdet(2 * math.pi * math.e * cov))
        assert float(H[c]) == pytest.approx(ref, rel=1e-12)


def test_full_pathwise_entropy_mean_matches_quadrature():
    """E[-log p(x0|x)] from posterior draws (no chain rule) against 1-D quadrature."""
    d, s2, t, proc = 5, 0.5, 1.0, VP()
    mix = pair(d, s2)
    xt = mix.noised(t, proc).sample(20_000, generator(22, "cpu"))
    pe = pathwise_entropy_samples(mix, xt, t, proc, generator(23, "cpu"), draws=2)
    check_mc(mc_estimate(pe.full.mean(0)), two_class_conditional_entropy(d, s2, t, proc),
             label="H(x0|xt)", verbose=False)
    check_mc(mc_estimate((pe.full - pe.chain).mean(0)), 0.0, label="chain rule", verbose=False)


def test_draw_variance_estimate_removes_the_draw_noise():
    g = torch.Generator().manual_seed(4)
    n, m = 20_000, 6
    a = torch.randn(n, generator=g, dtype=F64) * 0.5               # Var E[y|x] = 0.25
    y = a[None] + 3.0 * torch.randn(m, n, generator=g, dtype=F64)   # noise var 9 per draw
    check_mc(draw_variance_estimate(y), 0.25, label="between-draw variance", verbose=False)
    naive = variance_estimate(y[0])                                # includes the noise
    assert naive.value > 5
    one = draw_variance_estimate(a)                                # m = 1: the sample variance
    assert one.value == pytest.approx(variance_estimate(a).value, rel=1e-12)
    gap = draw_variance_gap(y, a)
    check_mc(gap, 0.0, label="paired gap", verbose=False)
    with pytest.raises(ValueError, match="same n"):
        draw_variance_gap(y, a[:10])
    with pytest.raises(ValueError, match="samples"):
        draw_variance_estimate(torch.ones(2, 3))


def test_check_pathwise_variance_accepts_the_chain_rule_with_unequal_covariances():
    tally = Tally("unequal")
    out = check_pathwise_variance(unequal_pair(10), 1.0, VP(), 20_000, generator(24, "cpu"),
                                  reference="chain", tally=tally)
    assert tally.n_mc == 2
    assert out["V"].value > 100 * out["V_C"].value        # W carries almost all of V


def test_check_pathwise_variance_fails_when_V_C_is_claimed_for_unequal_covariances():
    """The claim broken once: V = V_C with v = (1, 16) must raise, at > 5 sigma."""
    with pytest.raises(AssertionError, match="outside 5σ"):
        check_pathwise_variance(unequal_pair(10), 1.0, VP(), 20_000, generator(24, "cpu"),
                                reference="class")


def test_check_pathwise_variance_fails_when_the_overlap_is_ignored():
    """Equal covariances but overlapping classes (d = 1): V = V_C is false as well."""
    with pytest.raises(AssertionError, match="outside 5σ"):
        check_pathwise_variance(pair(1, 1.0), 0.35, VP(), 20_000, generator(25, "cpu"),
                                reference="class")


def test_check_pathwise_variance_accepts_V_C_for_equal_separated_classes():
    out = check_pathwise_variance(pair(10, 1.0), 1.1, VP(), 20_000, generator(26, "cpu"),
                                  draws=16, reference="class")
    # power against gross alternatives only: 5 se is about a third of V_C here, so V = V_C
    # is resolved to within roughly ±35 %, not finer
    assert 5 * out["gap"].stderr < 0.5 * out["V_C"].value


def test_pathwise_entropy_rejects_bad_input():
    proc = VP()
    with pytest.raises(ValueError, match="isotropic"):
        pathwise_entropy_samples(pair(3), torch.zeros(2, 3), 1.0, proc)
    with pytest.raises(ValueError, match="draws"):
        posterior_draws(pair(3, 1.0), torch.zeros(2, 3), 1.0, proc, draws=0)
    with pytest.raises(ValueError, match="reference"):
        check_pathwise_variance(pair(3, 1.0), 1.0, proc, 100, reference="V")
    with pytest.raises(ValueError, match="draws"):
        check_pathwise_variance(pair(3, 1.0), 1.0, proc, 100, draws=1)
    with pytest.raises(ValueError, match="s2"):
        two_class_conditional_entropy(3, 0.0, 1.0, proc)


def test_two_class_phi_is_resolved_at_small_gamma():
    """Phi(gamma) = gamma^2/2 (1 + O(gamma)) as gamma -> 0 (expand H_b(sig(a)) = log 2 - a^2/8
    + O(a^4) with a = 2 gamma + 2 sqrt(gamma) xi). E h^2 - (E h)^2 would lose this in rounding
    (~(log 2)^2 eps ~ 1e-16 against Phi ~ 5e-15 at gamma = 1e-7)."""
    gam = torch.tensor([1e-7, 3e-7, 1e-6], dtype=torch.float64)
    phi = two_class_phi(gam)
    assert torch.allclose(phi, gam**2 / 2, rtol=1e-4, atol=0.0), phi / (gam**2 / 2)
