"""Local Lyapunov spectra and the expected divergence (chapter 5).

Closed-form Jacobians against autograd (jacrev of the score, and the Hessian of the log
density, an independent code path); symmetry; spectra batched against one at a time; the
Hutchinson estimator exactly (all Rademacher probes enumerated) and statistically (z-tests at
5 sigma, two-sided false-alarm rate 5.7e-7 each, fixed seeds); the divergence identities for
Gaussian data in closed form and for a 1-D mixture by quadrature.
"""

import itertools
import math

import pytest
import torch
from scipy import integrate

from diffnotes import EDM, VP, GaussianMixture, check_mc, mc_estimate
from diffnotes.information import gaussian_entropy_rate
from diffnotes.lyapunov import (
    check_variance_bound,
    divergence_parts,
    entropy_rate_divergence,
    flow_divergence,
    generative_exponents,
    hutchinson_divergence,
    hutchinson_variance,
    jacobian_vector_product,
    local_spectrum,
    score_jacobian_autograd,
    spectrum_along_trajectories,
    velocity_jacobian,
)

F64 = torch.float64
ROUNDOFF = 1e-9       # relative, float64 closed forms against autograd
QUAD_RTOL = 1e-7      # quadrature of smooth integrands


def _gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _mixtures():
    g = _gen(0)
    means = torch.randn(4, 3, generator=g, dtype=F64)
    a = torch.randn(4, 3, 3, generator=g, dtype=F64)
    full = a @ a.transpose(1, 2) / 3
    singular = torch.zeros(4, 3, 3, dtype=F64)
    singular[:, 0, 0] = 0.5                                            # data on a line
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    return {
        "delta": GaussianMixture.delta(means, weights),
        "isotropic": GaussianMixture(means, weights, torch.tensor([0.1, 0.0, 0.5, 0.2])),
        "full": GaussianMixture(means, weights, full),
        "singular": GaussianMixture(means, weights, singular),
    }


MIXTURES = _mixtures()


# -- Jacobians -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MIXTURES))
@pytest.mark.parametrize("proc", [EDM(), VP()])
def test_closed_form_jacobian_equals_autograd(name, proc):
    mix = MIXTURES[name]
    x = 1.5 * torch.randn(6, 3, generator=_gen(1), dtype=F64)
    t = torch.tensor([0.3, 0.5, 0.8, 1.0, 1.7, 3.0], dtype=F64)      # one time per row
    closed = mix.score_jacobian(x, t, proc)
    jac = score_jacobian_autograd(mix, x, t, proc)
    jacrev = torch.func.jacrev
    hess = torch.stack([  # reverse over reverse: an independent path through log_prob
        jacrev(jacrev(lambda y, ti=ti: mix.log_prob(y[None], ti, proc)[0]))(xi)
        for xi, ti in zip(x, t, strict=True)])
    scale = float(closed.abs().max())
    torch.testing.assert_close(jac, closed, rtol=ROUNDOFF, atol=ROUNDOFF * scale)
    torch.testing.assert_close(hess, closed, rtol=1e-7, atol=1e-7 * scale)


@pytest.mark.parametrize("name", list(MIXTURES))
def test_jacobians_are_symmetric(name):
    mix = MIXTURES[name]
    x = torch.randn(50, 3, generator=_gen(2), dtype=F64)
    for proc in (EDM(), VP()):
        for jac in (mix.score_jacobian(x, 0.6, proc), velocity_jacobian(mix, x, 0.6, proc),
                    score_jacobian_autograd(mix, x[:5], 0.6, proc)):
            torch.testing.assert_close(jac, jac.transpose(1, 2), rtol=0,
                                       atol=1e-12 * float(jac.abs().max()))


def test_velocity_jacobian_edm_and_vp():
    mix = MIXTURES["isotropic"]
    x = torch.randn(8, 3, generator=_gen(3), dtype=F64)
    t = 0.7
    jac = mix.score_jacobian(x, t, EDM())
    torch.testing.assert_close(velocity_jacobian(mix, x, t, EDM()), -t * jac, rtol=1e-14,
                               atol=0)
    jac_vp = mix.score_jacobian(x, t, VP())
    eye = torch.eye(3, dtype=F64)
    torch.testing.assert_close(velocity_jacobian(mix, x, t, VP()), -eye - jac_vp,
                               rtol=1e-12, atol=1e-12)


# forward-mode autograd loads torch's jvp decompositions through torch.jit.script on first use,
# which torch >= 2.12 reports as deprecated: an internal warning, not ours
FORWARD_AD = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")


@FORWARD_AD
def test_velocity_jacobian_is_the_derivative_of_the_sampler_velocity():
    """∇v against forward-mode autograd of v = f x - g²/2 s (VP: f = -1, g² = 2)."""
    mix, proc, t = MIXTURES["full"], VP(), 0.4
    x = torch.randn(5, 3, generator=_gen(4), dtype=F64)
    jac = velocity_jacobian(mix, x, t, proc)
    for k in range(3):
        e = torch.zeros_like(x)
        e[:, k] = 1.0
        col = torch.func.jvp(lambda y: -y - mix.score(y, t, proc), (x,), (e,))[1]
        torch.testing.assert_close(col, jac[:, :, k], rtol=1e-10, atol=1e-10)


# -- spectra ---------------------------------------------------------------------------------------
def test_local_spectrum_batched_equals_one_at_a_time_and_chunks():
    mix = MIXTURES["full"]
    x = torch.randn(40, 3, generator=_gen(5), dtype=F64)
    t = torch.linspace(0.2, 2.0, 40, dtype=F64)
    lam = local_spectrum(mix, x, t, EDM())
    one = torch.stack([torch.linalg.eigvalsh(mix.score_jacobian(x[i:i + 1], t[i], EDM()))[0]
                       for i in range(40)])
    torch.testing.assert_close(lam, one, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(local_spectrum(mix, x, t, EDM(), chunk_elements=20), lam,
                               rtol=1e-13, atol=1e-13)
    assert bool((lam[:, 1:] >= lam[:, :-1]).all())


@pytest.mark.parametrize("name", list(MIXTURES))
def test_exponents_bounded_below_by_single_point(name):
    """t^2 lambda_i = -1 + eig(Cov)/t^2 >= -1 in the EDM."""
    mix = MIXTURES[name]
    x = 2 * torch.randn(200, 3, generator=_gen(6), dtype=F64)
    t = torch.exp(torch.linspace(-2.0, 1.5, 200, dtype=F64))
    kappa = generative_exponents(mix, x, t, EDM(), clock="log_noise")
    assert float(kappa.min()) >= -1 - 1e-9
    mu = generative_exponents(mix, x, t, EDM(), clock="time")
    torch.testing.assert_close(kappa, t[:, None] * mu, rtol=1e-12, atol=1e-12)


def test_single_point_exponents_are_minus_one():
    point = GaussianMixture.delta(torch.tensor([[0.3, -1.0, 2.0]], dtype=F64))
    x = torch.randn(10, 3, generator=_gen(7), dtype=F64)
    kappa = generative_exponents(point, x, 0.37, EDM(), clock="log_noise")
    torch.testing.assert_close(kappa, -torch.ones_like(kappa), rtol=0, atol=1e-12)
    # VP: generative rate -e^{-2t}/Delta_t per unit time; per unit log(sigma/alpha),
    # d/dt log(sigma/alpha) = 1/Delta_t, so kappa = -e^{-2t}
    t = 0.37
    delta = -math.expm1(-2 * t)
    mu = generative_exponents(point, x, t, VP(), clock="time")
    torch.testing.assert_close(mu, torch.full_like(mu, -math.exp(-2 * t) / delta), rtol=1e-12,
                               atol=0)
    kappa_vp = generative_exponents(point, x, t, VP(), clock="log_noise")
    torch.testing.assert_close(kappa_vp, torch.full_like(mu, -math.exp(-2 * t)), rtol=1e-12,
                               atol=0)


def test_two_point_symmetric_branch_spectrum():
    """J(0, t) = -I/t^2 + (a^2/t^4) e_1 e_1^T: one exponent crosses zero at t_c = a."""
    a = 1.3
    mix = GaussianMixture.delta(torch.tensor([[a, 0.0, 0.0], [-a, 0.0, 0.0]], dtype=F64))
    origin = torch.zeros(1, 3, dtype=F64)
    for t in (0.5, 1.0, a, 2.0):
        lam = local_spectrum(mix, origin, t, EDM())[0]
        expected = torch.tensor(sorted([-1 / t**2, -1 / t**2, (a**2 - t**2) / t**4]), dtype=F64)
        torch.testing.assert_close(lam, expected, rtol=1e-12, atol=1e-12)


def test_no_expansion_above_half_the_diameter():
    """Popoviciu: t^2 u^T J u <= -1 + w(u)^2 / (4 t^2), w(u) <= diameter."""
    pts = torch.randn(12, 4, generator=_gen(8), dtype=F64)
    mix = GaussianMixture.delta(pts)
    half = float(torch.cdist(pts, pts).max()) / 2
    x = 3 * torch.randn(500, 4, generator=_gen(9), dtype=F64)
    t = half * torch.exp(torch.linspace(-1.5, 1.0, 500, dtype=F64))
    kappa = generative_exponents(mix, x, t, EDM(), clock="log_noise")[:, -1]
    assert bool((kappa <= -1 + half**2 / t**2 + 1e-9).all())
    assert bool((kappa[t > half] < 0).all())


def test_spectrum_along_trajectories_matches_slices():
    mix = MIXTURES["isotropic"]
    traj = torch.randn(5, 7, 3, generator=_gen(10), dtype=F64)
    times = torch.tensor([2.0, 1.0, 0.5, 0.25, 0.1], dtype=F64)
    out = spectrum_along_trajectories(mix, traj, times, EDM())
    kap = spectrum_along_trajectories(mix, traj, times, EDM(), clock="log_noise")
    for i in range(5):
        lam = local_spectrum(mix, traj[i], times[i], EDM())
        torch.testing.assert_close(out[i], lam, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(kap[i], times[i] ** 2 * lam, rtol=1e-12, atol=1e-12)


def test_spectrum_on_device_matches_cpu(device):
    mix = MIXTURES["full"]
    x = torch.randn(300, 3, generator=_gen(11), dtype=F64)
    lam_cpu = local_spectrum(mix, x, 0.8, EDM())
    lam_dev = local_spectrum(mix, x.to(device), 0.8, EDM())
    assert lam_dev.device.type == device.type
    torch.testing.assert_close(lam_dev.cpu(), lam_cpu, rtol=1e-10, atol=1e-10)
    h = hutchinson_divergence(lambda y: mix.score(y, 0.8, EDM()), x.to(device), 2,
                              _gen(12, device))
    assert h.device.type == device.type and h.shape == (300, 2)


# -- Hutchinson ------------------------------------------------------------------------------------
@FORWARD_AD
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_jacobian_vector_product_equals_closed_form(mode):
    mix, t = MIXTURES["full"], 0.6
    x = torch.randn(20, 3, generator=_gen(13), dtype=F64)
    v = torch.randn(20, 3, generator=_gen(14), dtype=F64)
    jv = jacobian_vector_product(lambda y: mix.score(y, t, EDM()), x, v, mode=mode)
    expected = (mix.score_jacobian(x, t, EDM()) @ v[:, :, None])[:, :, 0]
    torch.testing.assert_close(jv, expected, rtol=1e-10, atol=1e-10)


def test_hutchinson_exact_by_enumeration():
    """All 2^d Rademacher probes: mean tr J and variance 2 sum_{i != j} J_ij^2, exactly."""
    mix, t = MIXTURES["isotropic"], 0.5
    x = torch.randn(3, 3, generator=_gen(15), dtype=F64)
    jac = mix.score_jacobian(x, t, EDM())
    probes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)), dtype=F64)  # (8, 3)
    quad = torch.einsum("pi,nij,pj->np", probes, jac, probes)
    torch.testing.assert_close(quad.mean(1), mix.score_divergence(x, t, EDM()), rtol=1e-12,
                               atol=1e-12)
    var = quad.var(1, unbiased=False)
    torch.testing.assert_close(var, hutchinson_variance(jac, "rademacher"), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased_with_lemma_variance(probe):
    """z-tests: mean of z^T J z - tr J is 0; mean of (z^T J z - tr J)^2 - Var_lemma is 0."""
    mix, t = MIXTURES["full"], 0.7
    x = torch.randn(2000, 3, generator=_gen(16), dtype=F64)
    est = hutchinson_divergence(lambda y: mix.score(y, t, EDM()), x, 10, _gen(17), probe=probe)
    dev = est - mix.score_divergence(x, t, EDM())[:, None]
    check_mc(mc_estimate(dev.mean(1)), 0.0, label=f"{probe} unbiased", verbose=False)
    var = hutchinson_variance(mix.score_jacobian(x, t, EDM()), probe)
    check_mc(mc_estimate((dev**2 - var[:, None]).mean(1)), 0.0, label=f"{probe} variance",
             verbose=False)


def test_hutchinson_probes_are_reproducible_and_rademacher_signs():
    mix, t = MIXTURES["delta"], 0.9
    x = torch.randn(4, 3, generator=_gen(18), dtype=F64)
    fn = lambda y: mix.score(y, t, EDM())  # noqa: E731
    a = hutchinson_divergence(fn, x, 3, _gen(19))
    b = hutchinson_divergence(fn, x, 3, _gen(19))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # a point mass: J = -I/t^2, so every Rademacher estimate is exactly tr J = -d/t^2
    point = GaussianMixture.delta(torch.zeros(1, 3, dtype=F64))
    est = hutchinson_divergence(lambda y: point.score(y, t, EDM()), x, 5, _gen(20))
    torch.testing.assert_close(est, torch.full_like(est, -3 / t**2), rtol=1e-12, atol=0)


# -- divergence and entropy ------------------------------------------------------------------------
def test_divergence_identities_for_gaussian_data():
    """N(0, diag(l)): div s = -sum 1/(l_i + t^2); t D~ = chapter 3's H-dot; -t D = dH(x_t)/dt."""
    ell = torch.tensor([0.0, 0.3, 1.0, 4.0], dtype=F64)
    mix = GaussianMixture(torch.zeros(1, 4, dtype=F64), None, torch.diag(ell)[None])
    x = torch.randn(6, 4, generator=_gen(21), dtype=F64)
    for t in (0.2, 1.0, 3.0):
        parts = divergence_parts(mix, x, t, EDM())
        div = -(1 / (ell + t**2)).sum()
        torch.testing.assert_close(parts.total, div.expand(6), rtol=1e-12, atol=0)
        torch.testing.assert_close(parts.trivial, torch.full((6,), -4 / t**2, dtype=F64),
                                   rtol=1e-14, atol=0)
        rate = entropy_rate_divergence(mix, x, t, EDM())
        h_dot = gaussian_entropy_rate(t, ell, EDM())
        torch.testing.assert_close(rate, h_dot.expand(6), rtol=1e-10, atol=1e-12)
        marginal = (t / (ell + t**2)).sum()                  # d/dt of sum log(l_i + t^2) / 2
        torch.testing.assert_close(flow_divergence(mix, x, t, EDM()), marginal.expand(6),
                                   rtol=1e-12, atol=0)


def test_divergence_data_part_is_posterior_variance():
    mix = MIXTURES["full"]
    x = torch.randn(30, 3, generator=_gen(22), dtype=F64)
    for proc, t in ((EDM(), 0.8), (VP(), 0.5)):
        a, s = float(proc.alpha(t)), float(proc.sigma(t))
        data = divergence_parts(mix, x, t, proc).data
        torch.testing.assert_close(data, a**2 * mix.posterior_trace_cov(x, t, proc) / s**4,
                                   rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("t", [0.3, 0.9])
def test_expected_divergence_is_minus_mean_squared_score_by_quadrature(t):
    """D = E div s = -E ||s||^2 (integration by parts), both by quadrature in 1-D."""
    mix = GaussianMixture(torch.tensor([[-1.0], [0.4], [1.5]], dtype=F64),
                          torch.tensor([0.3, 0.3, 0.4], dtype=F64),
                          torch.tensor([0.05, 0.0, 0.2], dtype=F64))
    proc = EDM()

    def density(u):
        return math.exp(float(mix.log_prob(torch.tensor([[u]], dtype=F64), t, proc)))

    def div(u):
        return density(u) * float(mix.score_divergence(torch.tensor([[u]], dtype=F64), t, proc))

    def sq(u):
        return density(u) * float(mix.score(torch.tensor([[u]], dtype=F64), t, proc)) ** 2

    def post(u):
        y = torch.tensor([[u]], dtype=F64)
        return density(u) * float(mix.posterior_trace_cov(y, t, proc)) / t**4

    lo, hi = -8.0, 8.0
    D = integrate.quad(div, lo, hi, limit=200, epsabs=1e-12)[0]
    S = integrate.quad(sq, lo, hi, limit=200, epsabs=1e-12)[0]
    P = integrate.quad(post, lo, hi, limit=200, epsabs=1e-12)[0]
    assert D == pytest.approx(-S, rel=QUAD_RTOL)
    # item 2: the data part D + d/t^2 is E tr Cov[x_0|x_t]/t^4, by its own quadrature
    assert D + 1 / t**2 == pytest.approx(P, rel=QUAD_RTOL)


def test_flow_divergence_mean_is_t_mean_squared_score_by_monte_carlo():
    """E[-t div s] = t E||s||^2: item 1 (integration by parts) for the flow's divergence.

    A z-test on paired samples of a 2-D mixture; the marginal entropy rate itself is tested in
    closed form in ``test_divergence_identities_for_gaussian_data``.
    """
    mix = MIXTURES["isotropic"]
    t = 0.8
    x = mix.noised(t, EDM()).sample(20000, _gen(23))
    flow = flow_divergence(mix, x, t, EDM())
    sq = t * (mix.score(x, t, EDM()) ** 2).sum(1)
    check_mc(mc_estimate(flow - sq), 0.0, label="-t D vs t E|s|^2", verbose=False)


# -- validation ------------------------------------------------------------------------------------
def test_bad_input_raises():
    mix = MIXTURES["delta"]
    x = torch.zeros(2, 3, dtype=F64)
    fn = lambda y: mix.score(y, 0.5, EDM())  # noqa: E731
    with pytest.raises(ValueError, match="mixture"):
        local_spectrum("not a mixture", x, 0.5, EDM())
    with pytest.raises(ValueError, match="process"):
        local_spectrum(mix, x, 0.5, "EDM")
    with pytest.raises(ValueError, match="x must have shape"):
        local_spectrum(mix, torch.zeros(2, 4, dtype=F64), 0.5, EDM())
    with pytest.raises(ValueError, match="positive"):
        local_spectrum(mix, x, -1.0, EDM())
    with pytest.raises(ValueError, match="clock"):
        generative_exponents(mix, x, 0.5, EDM(), clock="seconds")
    with pytest.raises(ValueError, match="probe"):
        hutchinson_divergence(fn, x, 2, probe="uniform")
    with pytest.raises(ValueError, match="mode"):
        hutchinson_divergence(fn, x, 2, mode="sideways")
    with pytest.raises(ValueError, match="mode"):
        jacobian_vector_product(fn, x, x, mode="sideways")
    with pytest.raises(ValueError, match="n_probes"):
        hutchinson_divergence(fn, x, 0)
    with pytest.raises(ValueError, match="symmetric"):
        hutchinson_variance(torch.tensor([[[0.0, 1.0], [0.0, 0.0]]], dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        hutchinson_variance(torch.zeros(2, 3, dtype=F64))
    with pytest.raises(ValueError, match="trajectory"):
        spectrum_along_trajectories(mix, x, torch.ones(2, dtype=F64), EDM())
    with pytest.raises(ValueError, match="times"):
        spectrum_along_trajectories(mix, x[None], torch.ones(3, dtype=F64), EDM())
    with pytest.raises(ValueError, match="v must"):
        jacobian_vector_product(fn, x, torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="chunk_elements"):
        local_spectrum(mix, x, 0.5, EDM(), chunk_elements=0)


def test_variance_bound_check_passes_and_is_strict_inside():
    """Chapter 5: Popoviciu's inequality on random laws, strict for interior atoms."""
    tally = check_variance_bound(-2.0, 5.0, _gen(30))
    assert tally.n_exact == 2


def test_variance_bound_check_without_strictness_counts_one_check():
    """strict=False (chapter 5) drops the check that cannot fail and keeps the one that can."""
    assert check_variance_bound(-2.0, 5.0, _gen(30), strict=False).n_exact == 1
    with pytest.raises(AssertionError, match="variances on"):
        check_variance_bound(-2.0, 5.0, _gen(31), bound=lambda w: w**2 / 4.01, strict=False)


@pytest.mark.parametrize("wrong", [lambda w: w**2 / 4.01, lambda w: w**2 / 8, lambda w: w / 4])
def test_variance_bound_check_fails_with_a_wrong_bound(wrong):
    """The check can fail: a bound below (b - a)^2/4 (or of the wrong form) is exceeded by the
    near-fair two-point laws, and the chapter's check raises."""
    with pytest.raises(AssertionError, match="variances on"):
        check_variance_bound(-2.0, 5.0, _gen(31), bound=wrong)


def test_variance_bound_check_bad_input():
    with pytest.raises(ValueError, match="lo < hi"):
        check_variance_bound(1.0, 1.0, _gen(0))
    with pytest.raises(ValueError, match="n_laws"):
        check_variance_bound(0.0, 1.0, _gen(0), n_laws=0)
