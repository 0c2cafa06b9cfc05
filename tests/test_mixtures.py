"""GaussianMixture closed forms against autograd, Bayes by hand, quadrature and Gaussian limits."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import diffnotes.mixtures as mixtures
from diffnotes import EDM, VE, VP, GaussianMixture

PROCS = [EDM(), VP(), VE(0.02, 30.0)]
F64 = torch.float64


def _spd(k, d, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(k, d, d, dtype=F64, generator=g)
    return A @ A.transpose(1, 2) / d + 0.05 * torch.eye(d, dtype=F64)


def _mixtures(d=3, K=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = 2 * torch.randn(K, d, dtype=F64, generator=g)
    w = torch.softmax(torch.randn(K, dtype=F64, generator=g), 0)
    singular = _spd(K, d, seed + 1)
    singular[:, :, 0] = 0  # rank-deficient: data on a subspace
    singular[:, 0, :] = 0
    return {
        "delta": GaussianMixture.delta(m, w),
        "iso": GaussianMixture(m, w, torch.rand(K, dtype=F64, generator=g) + 0.1),
        "full": GaussianMixture(m, w, _spd(K, d, seed + 2)),
        "singular": GaussianMixture(m, w, singular),
    }


MIXES = _mixtures()


@pytest.fixture(params=list(MIXES), ids=list(MIXES))
def mix(request):
    return MIXES[request.param]


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.name)
def test_score_is_gradient_of_log_prob(mix, proc, device):
    g = torch.Generator().manual_seed(1)
    x = (2 * torch.randn(7, mix.d, dtype=F64, generator=g)).to(device).requires_grad_(True)
    t = (0.2 + torch.rand(7, dtype=F64, generator=g)).to(device)
    (grad,) = torch.autograd.grad(mix.log_prob(x, t, proc).sum(), x)
    assert torch.allclose(mix.score(x, t, proc), grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.name)
def test_jacobian_autograd_symmetric_and_tweedie(mix, proc):
    g = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(5, mix.d, dtype=F64, generator=g)
    t = 0.3 + torch.rand(5, dtype=F64, generator=g)
    J = mix.score_jacobian(x, t, proc)
    # input validation is data-dependent, so autograd runs per point (jacrev, no vmap)
    J_ad = torch.stack([torch.func.jacrev(lambda xi, ti=t[i]: mix.score(xi[None], ti, proc)[0])(
        x[i]) for i in range(5)])
    assert torch.allclose(J, J_ad, rtol=1e-8, atol=1e-9)
    assert torch.allclose(J, J.transpose(1, 2), atol=1e-12)
    a, s = proc.alpha(t)[:, None, None], proc.sigma(t)[:, None, None]
    eye = torch.eye(mix.d, dtype=F64)
    J_cov = (a**2 * mix.posterior_cov(x, t, proc) - s**2 * eye) / s**4
    assert torch.allclose(J, J_cov, rtol=1e-8, atol=1e-9)
    # Tweedie: s = (alpha E[x0|x] - x) / sigma^2
    tw = (a[:, :, 0] * mix.posterior_mean(x, t, proc) - x) / s[:, :, 0] ** 2
    assert torch.allclose(mix.score(x, t, proc), tw, rtol=1e-9, atol=1e-10)


def test_component_posterior_is_bayes_by_hand(mix):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, mix.d, dtype=F64, generator=g)
    t, proc = 0.7, VP()
    a, s = float(proc.alpha(t)), float(proc.sigma(t))
    covs = mix.covariances.numpy()
    dens = np.array([[mix.weights[k].item() * stats.multivariate_normal(
        a * mix.means[k].numpy(), a * a * covs[k] + s * s * np.eye(mix.d)).pdf(xi.numpy())
        for k in range(mix.K)] for xi in x])
    r = mix.component_posterior(x, t, proc)
    assert torch.allclose(r.sum(1), torch.ones(6, dtype=F64))
    np.testing.assert_allclose(r.numpy(), dens / dens.sum(1, keepdims=True), rtol=1e-9)
    np.testing.assert_allclose(mix.log_prob(x, t, proc).numpy(), np.log(dens.sum(1)), rtol=1e-10)


def test_posterior_moments_against_quadrature_1d():
    mix = GaussianMixture(torch.tensor([[-1.5], [0.5], [2.0]]), torch.tensor([0.2, 0.5, 0.3]),
                          torch.tensor([0.3, 0.05, 0.6]))
    prior = lambda y: sum(  # noqa: E731
        mix.weights[k].item() * stats.norm(mix.means[k, 0].item(),
                                           math.sqrt(mix.variances[k].item())).pdf(y)
        for k in range(3))
    for proc, t in [(EDM(), 0.4), (VP(), 0.9), (EDM(), 2.0)]:
        a, s = float(proc.alpha(t)), float(proc.sigma(t))
        for xv in [-2.0, 0.1, 1.3]:
            def moment(j, xv=xv, a=a, s=s):
                f = lambda y: y**j * prior(y) * stats.norm(a * y, s).pdf(xv)  # noqa: E731
                return integrate.quad(f, -12, 12, limit=200)[0]

            z = moment(0)
            m1, m2 = moment(1) / z, moment(2) / z
            x = torch.tensor([[xv]], dtype=F64)
            assert math.isclose(float(mix.posterior_mean(x, t, proc)), m1, rel_tol=1e-7,
                                abs_tol=1e-9)
            assert math.isclose(float(mix.posterior_cov(x, t, proc)), m2 - m1 * m1,
                                rel_tol=1e-6, abs_tol=1e-9)
            assert math.isclose(float(mix.log_prob(x, t, proc)), math.log(z), rel_tol=1e-8)


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.name)
def test_batched_equals_one_at_a_time(mix, proc):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, mix.d, dtype=F64, generator=g)
    t = 0.2 + torch.rand(5, dtype=F64, generator=g)
    for name in ["log_prob", "score", "posterior_mean", "posterior_cov", "score_jacobian",
                 "component_posterior", "posterior_trace_cov", "score_divergence"]:
        f = getattr(mix, name)
        batched = f(x, t, proc)
        single = torch.cat([f(x[i:i + 1], float(t[i]), proc) for i in range(5)])
        assert torch.allclose(batched, single, rtol=1e-12, atol=1e-12), name


def test_chunked_equals_unchunked(mix, monkeypatch):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, mix.d, dtype=F64, generator=g)
    full = [mix.posterior_cov(x, 0.5, EDM()), mix.score_jacobian(x, 0.5, EDM()),
            mix.score(x, 0.5, EDM())]
    monkeypatch.setattr(mixtures, "CHUNK_ELEMENTS", 7)  # one or two rows per chunk
    small = [mix.posterior_cov(x, 0.5, EDM()), mix.score_jacobian(x, 0.5, EDM()),
             mix.score(x, 0.5, EDM())]
    for a, b in zip(full, small, strict=True):
        assert torch.allclose(a, b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.name)
def test_divergence_is_trace_of_jacobian(mix, proc):
    x = 2 * torch.randn(9, mix.d, dtype=F64, generator=torch.Generator().manual_seed(13))
    t = 0.2 + torch.rand(9, dtype=F64, generator=torch.Generator().manual_seed(14))
    J = mix.score_jacobian(x, t, proc)
    assert torch.allclose(mix.score_divergence(x, t, proc), J.diagonal(dim1=1, dim2=2).sum(-1),
                          rtol=1e-10, atol=1e-10)


def test_trace_matches_full_covariance(mix):
    x = torch.randn(8, mix.d, dtype=F64, generator=torch.Generator().manual_seed(6))
    C = mix.posterior_cov(x, 0.6, VP())
    assert torch.allclose(mix.posterior_trace_cov(x, 0.6, VP()),
                          C.diagonal(dim1=1, dim2=2).sum(-1), rtol=1e-12)
    assert bool((torch.linalg.eigvalsh(C) > -1e-12).all())


def test_single_gaussian_limits():
    g = torch.Generator().manual_seed(7)
    mu = torch.randn(1, 3, dtype=F64, generator=g)
    S = _spd(1, 3, 8)
    gauss = GaussianMixture(mu, None, S)
    x = torch.randn(4, 3, dtype=F64, generator=g)
    for proc, t in [(EDM(), 0.5), (VP(), 1.2)]:
        a, s = float(proc.alpha(t)), float(proc.sigma(t))
        C = a * a * S[0] + s * s * torch.eye(3, dtype=F64)
        Ci = torch.linalg.inv(C)
        assert torch.allclose(gauss.score(x, t, proc), -(x - a * mu) @ Ci, rtol=1e-10)
        assert torch.allclose(gauss.score_jacobian(x, t, proc), -Ci.expand(4, 3, 3), rtol=1e-10)
        post_mean = mu + a * (x - a * mu) @ Ci @ S[0]
        assert torch.allclose(gauss.posterior_mean(x, t, proc), post_mean, rtol=1e-10)
        post_cov = S[0] - a * a * S[0] @ Ci @ S[0]
        assert torch.allclose(gauss.posterior_cov(x, t, proc), post_cov.expand(4, 3, 3),
                              rtol=1e-9, atol=1e-12)


def test_large_and_small_time_limits(mix):
    x = torch.randn(6, mix.d, dtype=F64, generator=torch.Generator().manual_seed(9))
    # VP forgets the data: score -> -x (standard normal) as t -> infinity
    assert torch.allclose(mix.score(x, 20.0, VP()), -x, atol=1e-12)
    # EDM at large t: t^2 s -> -(x - E x0)
    t = 1e4
    assert torch.allclose(t * t * mix.score(x, t, EDM()), -(x - mix.mean()), atol=1e-3)
    # posterior covariance -> data covariance as t -> infinity
    assert torch.allclose(mix.posterior_cov(x, 40.0, VP()), mix.covariance().expand(6, -1, -1),
                          atol=1e-10)


def test_small_time_tends_to_data_density():
    mix = MIXES["full"]
    x = torch.randn(5, mix.d, dtype=F64, generator=torch.Generator().manual_seed(10))
    assert torch.allclose(mix.log_prob(x, 1e-7, EDM()), mix.log_density(x), atol=1e-6)
    noisy = mix.noised(0.8, VP())
    assert torch.allclose(noisy.log_density(x), mix.log_prob(x, 0.8, VP()), rtol=1e-12)


def test_stable_far_away_and_at_small_noise():
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=F64)
    mix = GaussianMixture.delta(pts)
    far = torch.tensor([[1e4, -3e3], [2e2, 2e2]], dtype=F64)
    for name in ["log_prob", "score", "posterior_mean", "posterior_cov", "score_jacobian"]:
        out = getattr(mix, name)(far, 1e-3, EDM())
        assert bool(torch.isfinite(out).all()), name
    r = mix.component_posterior(torch.tensor([[0.9, 0.05]], dtype=F64), 1e-3, EDM())
    assert torch.allclose(r, torch.tensor([[0.0, 1.0, 0.0]], dtype=F64))
    # at a data point the posterior mean is that point and the covariance vanishes
    x = torch.tensor([[1.0, 0.0]], dtype=F64)
    assert torch.allclose(mix.posterior_mean(x, 1e-3, EDM()), x)
    assert float(mix.posterior_trace_cov(x, 1e-3, EDM())) < 1e-100


def test_float32_and_device_follow_input(device):
    mix = MIXES["iso"]
    x = torch.randn(4, mix.d, device=device)
    for name in ["log_prob", "score", "posterior_mean", "posterior_cov", "score_jacobian"]:
        out = getattr(mix, name)(x, 0.5, EDM())
        assert out.dtype == torch.float32 and out.device.type == device.type, name
    ref = mix.score(x.double(), 0.5, EDM())
    assert torch.allclose(mix.score(x, 0.5, EDM()).double(), ref, rtol=1e-4, atol=1e-5)


def test_sampling_moments_statistical(device):
    # z-tests at 5 sigma on each coordinate of the mean (two-sided false alarm 5.7e-7 each)
    mix = MIXES["full"]
    g = torch.Generator(device=device).manual_seed(11)
    n = 200_000
    x, k = mix.sample(n, g, return_labels=True)
    assert x.shape == (n, mix.d) and x.device.type == device.type
    x = x.cpu()
    z = (x.mean(0) - mix.mean()) / (x.std(0) / math.sqrt(n))
    assert bool((z.abs() < 5).all()), z
    # covariance: compare each entry's estimate with its own standard error
    xc = x - x.mean(0)
    prods = xc[:, :, None] * xc[:, None, :]
    se = prods.std(0) / math.sqrt(n)
    zc = (prods.mean(0) - mix.covariance()) / se
    assert bool((zc.abs() < 5).all()), zc
    # labels: chi-square test of the component counts, false-alarm rate 1e-5
    counts = torch.bincount(k.cpu(), minlength=mix.K).numpy()
    assert stats.chisquare(counts, n * mix.weights.numpy()).pvalue > 1e-5


def test_project_and_cdf():
    mix = MIXES["full"]
    u = torch.tensor([0.6, 0.0, 0.8], dtype=F64)
    p = mix.project(u)
    assert p.d == 1 and p.isotropic
    g = torch.Generator().manual_seed(12)
    y = (mix.sample(100_000, g) @ u).numpy()
    assert stats.kstest(y, lambda v: p.cdf(torch.as_tensor(v)).numpy()).pvalue > 1e-5
    delta = GaussianMixture.delta(torch.tensor([[0.0], [1.0]]))
    assert torch.allclose(delta.cdf(torch.tensor([-1.0, 0.5, 2.0])),
                          torch.tensor([0.0, 0.5, 1.0], dtype=F64))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 9), K=st.integers(1, 5), d=st.integers(1, 4),
       kind=st.sampled_from(["delta", "iso", "full"]), t=st.floats(0.05, 10.0))
def test_shapes_property(n, K, d, kind, t):
    g = torch.Generator().manual_seed(n * 100 + K * 10 + d)
    m = torch.randn(K, d, dtype=F64, generator=g)
    covs = {"delta": None, "iso": torch.rand(K, dtype=F64, generator=g),
            "full": _spd(K, d, K + d)}[kind]
    mix = GaussianMixture(m, None, covs)
    x = torch.randn(n, d, dtype=F64, generator=g)
    proc = VP()
    assert mix.log_prob(x, t, proc).shape == (n,)
    assert mix.score(x, t, proc).shape == (n, d)
    r = mix.component_posterior(x, t, proc)
    assert r.shape == (n, K) and torch.allclose(r.sum(1), torch.ones(n, dtype=F64))
    assert mix.posterior_mean(x, t, proc).shape == (n, d)
    assert mix.posterior_cov(x, t, proc).shape == (n, d, d)
    assert mix.score_jacobian(x, t, proc).shape == (n, d, d)
    assert mix.posterior_trace_cov(x, t, proc).shape == (n,)
    assert mix.sample(3, g).shape == (3, d)


# -- bad input ---------------------------------------------------------------------------

def test_bad_constructor_input_raises():
    m = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="weights must sum to one"):
        GaussianMixture(m, torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="weights must be non-negative"):
        GaussianMixture(m, torch.tensor([1.5, -0.5]))
    with pytest.raises(ValueError, match="weights must have shape"):
        GaussianMixture(m, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="means must have shape"):
        GaussianMixture(torch.zeros(3))
    with pytest.raises(ValueError, match="means must be finite"):
        GaussianMixture(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        GaussianMixture(m, None, torch.tensor([[1.0, 0.0], [0.0, -0.2]]))
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture(m, None, torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        GaussianMixture(m, None, torch.tensor([0.1, -0.1]))
    with pytest.raises(ValueError, match="covs"):
        GaussianMixture(m, None, torch.ones(3, 2, 2))


def test_bad_call_input_raises():
    mix = MIXES["iso"]
    x = torch.zeros(2, mix.d, dtype=F64)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        mix.score(torch.zeros(2, 2), 0.5, EDM())
    with pytest.raises(ValueError, match="x must be finite"):
        mix.score(torch.full((2, 3), float("nan")), 0.5, EDM())
    with pytest.raises(ValueError, match="t must be positive"):
        mix.score(x, -0.1, EDM())
    with pytest.raises(ValueError, match="t must be positive"):
        mix.score(x, 0.0, EDM())
    with pytest.raises(ValueError, match="t must be"):
        mix.score(x, torch.ones(3), EDM())
    with pytest.raises(ValueError, match="process must be"):
        mix.score(x, 0.5, "EDM")
    with pytest.raises(ValueError, match="positive-definite"):
        MIXES["delta"].log_density(x)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        mix.sample(0)
