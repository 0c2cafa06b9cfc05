"""Chapter 6: the Fisher information of the posterior against its definition and closed forms.

Monte Carlo tests are z-tests at 5 sigma (two-sided false-alarm rate 5.7e-7 each) with fixed
seeds; deterministic comparisons use tolerances named per check.
"""

import math

import pytest
import torch

from diffnotes import EDM, VP, GaussianMixture, check_mc, mc_estimate
from diffnotes.fisher import (
    check_fisher_definition,
    entropy_production_shares,
    entropy_rate_fisher,
    entropy_rate_jacobian,
    estimate_dimension,
    fisher_information,
    gaussian_fisher_spectrum,
    normalized_fisher_spectrum,
    posterior_score,
    posterior_score_autograd,
    posterior_score_samples,
    sample_posterior,
)

F64 = torch.float64
EXACT_RTOL = 1e-9     # two closed forms of the same float64 quantity
CANCEL_ATOL = 1e-10   # J + I/sigma^2 cancels to this absolute level at sigma ~ 0.3
EIG_RTOL = 1e-12      # eigvalsh: error relative to the largest eigenvalue
COV_RTOL = 1e-13      # posterior covariance: rounding relative to the squared data scale


def _gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _full_mixture(device="cpu"):
    g = _gen(0)
    root = torch.randn(3, 3, 3, generator=g, dtype=F64)
    covs = 0.3 * root @ root.transpose(1, 2)
    covs[1] = 0.5 * torch.outer(root[1, 0], root[1, 0])          # rank one
    means = torch.tensor([[-1.0, 0.0, 0.5], [1.0, 1.0, 0.0], [0.0, -1.0, 1.0]], dtype=F64)
    return GaussianMixture(means.to(device), torch.tensor([0.3, 0.4, 0.3], dtype=F64).to(device),
                           covs.to(device))


MIXTURES = {
    "full": _full_mixture(),
    "isotropic": GaussianMixture(torch.tensor([[-1.0, 0.5], [1.0, 0.0], [0.0, 2.0]]),
                                 torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.1, 0.0, 0.4])),
    "delta": GaussianMixture.delta(torch.tensor([[-1.0, 0.0], [1.0, 0.2], [0.3, 1.5],
                                                 [0.0, -0.8]])),
}


@pytest.mark.parametrize("name", list(MIXTURES))
@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_fisher_is_jacobian_plus_identity(name, process):
    mix = MIXTURES[name]
    x = torch.randn(20, mix.d, generator=_gen(1), dtype=F64)
    t = 0.4
    F = fisher_information(mix, x, t, process)
    s2 = float(process.sigma(torch.tensor(t, dtype=F64))) ** 2
    J = mix.score_jacobian(x, t, process)
    torch.testing.assert_close(F, J + torch.eye(mix.d, dtype=F64) / s2, rtol=EXACT_RTOL,
                               atol=CANCEL_ATOL)
    assert torch.allclose(F, F.transpose(1, 2))
    assert float(torch.linalg.eigvalsh(F).min()) > -CANCEL_ATOL


@pytest.mark.parametrize("name", ["full", "delta"])
@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_fisher_matches_monte_carlo_definition(name, process):
    mix = MIXTURES[name]
    x = torch.randn(2, mix.d, generator=_gen(2), dtype=F64)
    t = 0.6
    F = fisher_information(mix, x, t, process)
    grads = posterior_score_samples(mix, x, t, process, 40_000, _gen(3))
    for p in range(2):
        check_mc(mc_estimate(grads[p, :, 0]), 0.0, label="posterior score has mean 0",
                 verbose=False)
        for i in range(mix.d):
            for j in range(i, mix.d):
                check_mc(mc_estimate(grads[p, :, i] * grads[p, :, j]), float(F[p, i, j]),
                         label=f"{name} F[{i},{j}]", verbose=False)


@pytest.mark.parametrize("name", list(MIXTURES))
@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_posterior_score_identity_against_autograd(name, process):
    """(alpha x0 - x)/sigma^2 - s(x) equals autograd of log N(x; alpha x0, sigma^2) - log p_t."""
    mix = MIXTURES[name]
    x = torch.randn(4, mix.d, generator=_gen(90), dtype=F64)
    x0 = torch.randn(4, 5, mix.d, generator=_gen(91), dtype=F64)       # any x0, not only draws
    for t in (0.3, torch.tensor([0.2, 0.5, 1.0, 2.0], dtype=F64)):
        torch.testing.assert_close(posterior_score(mix, x, x0, t, process),
                                   posterior_score_autograd(mix, x, x0, t, process),
                                   rtol=EXACT_RTOL, atol=CANCEL_ATOL)
    with pytest.raises(ValueError, match="x0 must have shape"):
        posterior_score_autograd(mix, x, x0[:2], 0.3, process)


@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_check_fisher_definition_passes(process):
    tally = check_fisher_definition(MIXTURES["full"], torch.randn(2, 3, generator=_gen(92),
                                                                  dtype=F64),
                                    0.5, process, 40_000, _gen(93))
    assert tally.n_mc == 2 * (3 + 6) and tally.n_exact == 1


def _wrong_sign_score(mixture, x, x0, t, process):
    """The identity with the sign of the evidence term flipped: (alpha x0 - x)/sigma^2 + s."""
    return posterior_score(mixture, x, x0, t, process) + 2 * mixture.score(x, t, process)[:, None]


def _wrong_sign_fisher(mixture, x, t, process):
    """F = J - I/sigma^2 instead of J + I/sigma^2."""
    s2 = process.sigma(torch.as_tensor(t, dtype=F64)) ** 2
    return mixture.score_jacobian(x, t, process) - torch.eye(mixture.d, dtype=F64) / s2


def _wrong_factor_fisher(mixture, x, t, process):
    """alpha^2 Cov / sigma^4 off by 10%: the Monte Carlo must see it at 40 000 draws."""
    return 1.1 * fisher_information(mixture, x, t, process)


@pytest.mark.parametrize("broken", [
    {"score": _wrong_sign_score},
    {"fisher": _wrong_sign_fisher},
    {"fisher": _wrong_factor_fisher},
], ids=["score-sign", "fisher-sign", "fisher-factor"])
def test_check_fisher_definition_fails_when_the_claim_is_broken(broken):
    """The chapter's check (same function) raises once either identity is wrong."""
    x = torch.tensor([[0.2, -0.3, 0.8], [1.5, 0.4, -0.2]], dtype=F64)
    with pytest.raises(AssertionError, match="✗"):
        check_fisher_definition(MIXTURES["full"], x, 0.7, EDM(), 40_000, _gen(94), **broken)


def test_kernel_is_the_complement_of_the_affine_hull():
    """Lemma lem-fi-degenerate: points spanning a 2-plane of R^4 (a triangle and its centre)."""
    basis, _ = torch.linalg.qr(torch.randn(4, 2, generator=_gen(95), dtype=F64))
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.3, 0.3]], dtype=F64) @ basis.T
    mix = GaussianMixture.delta(pts + 0.5)
    normal = torch.linalg.svd(basis, full_matrices=True)[0][:, 2:]      # (4, 2)
    for t in (0.3, 1.0):   # positive definite in exact arithmetic at every t; at t << spacing
        x = mix.noised(t, EDM()).sample(10, _gen(96))   # the weights underflow to one point
        F = t**2 * fisher_information(mix, x, t, EDM())
        assert float((F @ normal).abs().max()) < COV_RTOL * 10 / t**2
        on_hull = torch.linalg.eigvalsh(basis.T @ F @ basis)
        assert bool((on_hull > 1e-8).all())


def test_posterior_sampler_moments():
    mix = MIXTURES["full"]
    x = torch.tensor([[0.2, -0.3, 0.8]], dtype=F64)
    x0 = sample_posterior(mix, x, 0.5, EDM(), 50_000, _gen(4))[0]
    mean = mix.posterior_mean(x, 0.5, EDM())[0]
    for i in range(3):
        check_mc(mc_estimate(x0[:, i]), float(mean[i]), label=f"mean {i}", verbose=False)


def test_posterior_sampler_is_reproducible_and_validates():
    mix = MIXTURES["isotropic"]
    x = torch.zeros(3, 2, dtype=F64)
    a = sample_posterior(mix, x, 0.5, EDM(), 10, _gen(5))
    b = sample_posterior(mix, x, 0.5, EDM(), 10, _gen(5))
    assert a.shape == (3, 10, 2) and torch.equal(a, b)
    with pytest.raises(ValueError, match="m must be a positive integer"):
        sample_posterior(mix, x, 0.5, EDM(), 0, _gen(5))
    with pytest.raises(ValueError, match="x must have shape"):
        fisher_information(mix, torch.zeros(3, 5), 0.5, EDM())
    with pytest.raises(ValueError, match="positive"):
        fisher_information(mix, x, -1.0, EDM())
    with pytest.raises(ValueError, match="threshold"):
        estimate_dimension(mix, x, 0.5, EDM(), threshold=1.5)
    with pytest.raises(ValueError, match="mixture must be a GaussianMixture"):
        fisher_information("data", x, 0.5, EDM())


@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_gaussian_closed_form(process):
    ladder = torch.tensor([4.0, 1.0, 0.25, 0.0, 0.0], dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(5, 5, generator=_gen(6), dtype=F64))
    mix = GaussianMixture(torch.ones(1, 5, dtype=F64), None, (q * ladder) @ q.T)
    for t in (0.05, 0.5, 2.0):
        x = torch.randn(7, 5, generator=_gen(7), dtype=F64) * 3
        ev = torch.linalg.eigvalsh(fisher_information(mix, x, t, process)).flip(-1)
        expected = gaussian_fisher_spectrum(t, ladder, process).expand(7, 5)
        # zero eigenvalues come out at rounding level relative to the largest, ~1/sigma^2
        torch.testing.assert_close(ev, expected, rtol=EXACT_RTOL,
                                   atol=EIG_RTOL * float(expected.max()))
    # EDM closed form and limits
    t = torch.tensor([1e-3, 1.0, 1e3], dtype=F64)
    lam = gaussian_fisher_spectrum(t, torch.tensor([1.0, 0.0], dtype=F64), EDM())
    torch.testing.assert_close(lam[:, 0], 1 / (t**2 * (1 + t**2)), rtol=1e-12, atol=0)
    assert float(lam[0, 0] * 1e-6) == pytest.approx(1.0, rel=1e-5)   # flat: 1/t^2
    assert bool((lam[:, 1] == 0).all())                               # off the data: 0


def test_gaussian_spectrum_validates():
    with pytest.raises(ValueError, match="non-negative"):
        gaussian_fisher_spectrum(1.0, torch.tensor([1.0, -1.0]), EDM())
    with pytest.raises(ValueError, match="spectrum must have shape"):
        gaussian_fisher_spectrum(1.0, torch.ones(2, 2), EDM())


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_dimension_of_a_subspace(k):
    d = 8
    basis, _ = torch.linalg.qr(torch.randn(d, k, generator=_gen(10 + k), dtype=F64))
    means = torch.randn(3, d, generator=_gen(20 + k), dtype=F64) @ basis @ basis.T * 2
    mix = GaussianMixture(means, None, basis @ basis.T)                # a union on one k-flat
    g = _gen(30 + k)
    for t in (1e-3, 0.05, 0.3):
        x = mix.noised(t, EDM()).sample(300, g)
        k_hat = estimate_dimension(mix, x, t, EDM())
        assert bool((k_hat == k).all()), f"t = {t}: counts {torch.bincount(k_hat).tolist()}"
        nu = normalized_fisher_spectrum(mix, x, t, EDM())
        # exact kernel, up to rounding of Cov relative to |m|^2, divided by t^2 in nu
        scale = 1 + float((means**2).sum(1).max())
        assert float(nu[:, k:].abs().max()) < COV_RTOL * scale / t**2


def test_dimension_of_a_sampled_circle_in_its_window():
    g = _gen(40)
    angle = 2 * math.pi * torch.rand(1000, generator=g, dtype=F64)
    pts = torch.zeros(1000, 6, dtype=F64)
    pts[:, 0], pts[:, 1] = angle.cos(), angle.sin()
    mix = GaussianMixture.delta(pts)
    x0 = mix.sample(300, g)
    eps = torch.randn(x0.shape, generator=g, dtype=F64)
    inside = estimate_dimension(mix, x0 + 0.1 * eps, 0.1, EDM())       # h = 0.006 << t << R
    assert float((inside == 1).double().mean()) > 0.95
    # posterior collapsed onto one sample; random samples have rare pairs closer than t
    below = estimate_dimension(mix, x0 + 1e-4 * eps, 1e-4, EDM())
    assert float((below == 0).double().mean()) > 0.95


@pytest.mark.parametrize("name", list(MIXTURES))
@pytest.mark.parametrize("process", [EDM(), VP()], ids=["edm", "vp"])
def test_trace_identity_per_sample(name, process):
    mix = MIXTURES[name]
    x = mix.noised(0.5, process).sample(200, _gen(50))
    rate = entropy_rate_fisher(mix, x, 0.5, process)
    torch.testing.assert_close(entropy_rate_jacobian(mix, x, 0.5, process), rate,
                               rtol=EXACT_RTOL, atol=CANCEL_ATOL)
    shares = entropy_production_shares(mix, x, 0.5, process)
    torch.testing.assert_close(shares.sum(1), rate, rtol=EXACT_RTOL, atol=CANCEL_ATOL)
    assert bool((shares[:, :-1] >= shares[:, 1:] - 1e-12).all())       # sorted decreasingly
    # I-MMSE (chapter 3): w(t) tr F = -1/2 dlambda/dt tr Cov
    tr_cov = mix.posterior_trace_cov(x, 0.5, process)
    t = torch.tensor(0.5, dtype=F64)
    torch.testing.assert_close(rate, -0.5 * process.dsnr(t) * tr_cov, rtol=EXACT_RTOL, atol=0)


def test_trace_identity_against_score_norm_estimator():
    """E t tr F equals E (d/t - t |s|^2) (chapter 3), a paired z-test on one batch."""
    mix = MIXTURES["isotropic"]
    edm, t = EDM(), 0.7
    x = mix.noised(t, edm).sample(20_000, _gen(60))
    score_norm = mix.d / t - t * (mix.score(x, t, edm) ** 2).sum(1)
    check_mc(mc_estimate(entropy_rate_fisher(mix, x, t, edm) - score_norm), 0.0,
             label="t tr F - (d/t - t|s|^2)", verbose=False)


def test_gaussian_subspace_entropy_rate():
    """Eq. 38: k directions of variance l give t tr F = k l / (t (l + t^2)), at every x."""
    d, k, ell = 6, 2, 0.5
    basis, _ = torch.linalg.qr(torch.randn(d, k, generator=_gen(70), dtype=F64))
    mix = GaussianMixture(torch.zeros(1, d, dtype=F64), None, ell * basis @ basis.T)
    for t in (0.1, 1.0):
        x = torch.randn(5, d, generator=_gen(71), dtype=F64)
        expected = torch.full((5,), k * ell / (t * (ell + t**2)), dtype=F64)
        torch.testing.assert_close(entropy_rate_fisher(mix, x, t, EDM()), expected,
                                   rtol=EXACT_RTOL, atol=0)


def test_device_and_dtype_follow_input(device):
    mix = GaussianMixture(MIXTURES["isotropic"].means.to(device), None,
                          MIXTURES["isotropic"].variances.to(device))
    x = torch.zeros(4, 2, dtype=torch.float32, device=device)
    F = fisher_information(mix, x, 0.5, EDM())
    assert F.device.type == device.type and F.dtype == torch.float32
    grads = posterior_score_samples(mix, x, 0.5, EDM(), 8, _gen(80, device=device.type))
    assert grads.shape == (4, 8, 2) and grads.device.type == device.type


@pytest.mark.parametrize("k, n", [(0, 200), (184, 200), (200, 200), (1, 3), (7, 7)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    from diffnotes.fisher import wilson_interval
    ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
    lo, hi = wilson_interval(k, n, z=float(__import__("scipy").stats.norm.ppf(0.975)))
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)
    assert hi > lo                       # non-zero width, also at k in {0, n}


def test_wilson_interval_rejects_bad_input():
    from diffnotes.fisher import wilson_interval
    for k, n in ((201, 200), (-1, 200), (1.5, 3), (1, 0)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)
    with pytest.raises(ValueError, match="z"):
        wilson_interval(1, 2, z=0.0)
