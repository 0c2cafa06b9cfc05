"""Chapter 9's home module: the digits, their exact posterior, the collapse time, training."""

import math
import sys

import pytest
import torch

from diffnotes.checks import MCEstimate
from diffnotes.device import generator
from diffnotes.digits import (
    DigitDenoiser,
    class_tree,
    collapse_time,
    collapse_time_spectrum,
    crossing_time,
    exact_reverse_paths,
    load_digits,
    nearest_neighbour_ratio,
    paired_crossing_difference,
    posterior_statistics,
    split_digits,
    train_classifier,
    train_digit_denoiser,
    wiener_score,
)
from diffnotes.processes import VP
from diffnotes.samplers import time_grid

F64 = torch.float64


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def small(digits, per_class=6):
    """A few images of every class: the same Digits, cut down, for fast tests."""
    keep = torch.cat([(digits.labels == c).nonzero()[:per_class, 0] for c in range(10)])
    return digits._replace(images=digits.images[keep], labels=digits.labels[keep])


# -- the data ------------------------------------------------------------------------------------
def test_normalisation(digits):
    P, d = digits.images.shape
    assert (P, d) == (1797, 64)
    assert digits.images.dtype == F64 and digits.labels.dtype == torch.long
    assert torch.allclose(digits.images.mean(0), torch.zeros(d, dtype=F64), atol=1e-12)
    assert float(digits.images.pow(2).sum() / P) == pytest.approx(d, rel=1e-12)  # tr Cov = d
    assert sorted(digits.labels.unique().tolist()) == list(range(10))
    pixels = digits.to_pixels(digits.images[:3])
    assert pixels.shape == (3, 8, 8)
    assert float(pixels.min()) == pytest.approx(0.0, abs=1e-9) or float(pixels.min()) >= 0
    assert float(pixels.max()) <= 16 + 1e-9


def test_missing_sklearn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="scikit-learn"):
        load_digits()


def test_class_means_and_frequencies(digits):
    means, freqs = digits.class_means()
    for c in (0, 7):
        assert torch.allclose(means[c], digits.images[digits.labels == c].mean(0))
    assert float(freqs.sum()) == pytest.approx(1.0)


# -- the exact posterior ---------------------------------------------------------------------
@pytest.mark.parametrize("t", [0.05, 0.6, 3.0])
def test_posterior_against_the_mixture_and_a_direct_sum(digits, t):
    vp, mix = VP(), digits.mixture()
    x = vp.perturb(digits.images[:40], t, generator(0, "cpu"))[0]
    st = posterior_statistics(digits, x, t, vp, keep_weights=True)
    w = mix.component_posterior(x, t, vp)
    assert torch.allclose(st.weights, w, atol=1e-13)
    # the class posterior by a direct loop over classes of the unnormalised Gaussian weights
    a, s = math.exp(-t), math.sqrt(1 - math.exp(-2 * t))
    logk = -((x[:, None, :] - a * digits.images[None]) ** 2).sum(-1) / (2 * s**2)
    direct = torch.stack([torch.logsumexp(logk[:, digits.labels == c], 1) for c in range(10)], 1)
    assert torch.allclose(st.class_posterior, torch.softmax(direct, 1), atol=1e-12)
    assert torch.allclose(st.score, mix.score(x, t, vp), atol=1e-10)
    assert torch.allclose(st.trace_cov, mix.posterior_trace_cov(x, t, vp), atol=1e-9)
    assert torch.allclose(st.entropy, -torch.xlogy(w, w).sum(1), atol=1e-10)
    assert torch.allclose(st.concentration, (w**2).sum(1), atol=1e-13)
    assert bool((st.class_entropy <= st.entropy + 1e-12).all())


def test_posterior_bad_input(digits):
    with pytest.raises(ValueError, match="shape"):
        posterior_statistics(digits, torch.zeros(3, 5, dtype=F64), 0.5, VP())
    with pytest.raises(ValueError, match="positive"):
        posterior_statistics(digits, torch.zeros(3, 64, dtype=F64), -1.0, VP())
    with pytest.raises(ValueError, match="scalar"):
        posterior_statistics(digits, torch.zeros(3, 64, dtype=F64), torch.ones(3), VP())


def test_exact_paths_end_on_training_images(digits):
    sub = small(digits)
    g = generator(1, "cpu")
    paths = exact_reverse_paths(sub, VP(), torch.randn(20, 64, generator=g, dtype=F64),
                                time_grid(3.0, 0.02, 60), g)
    assert paths.states.shape == (61, 20, 64)
    assert paths.class_posterior.shape == (61, 20, 10)
    assert torch.allclose(paths.class_posterior.sum(-1), torch.ones(61, 20, dtype=F64))
    assert bool((nearest_neighbour_ratio(paths.denoised, sub.images) < 1e-3).all())
    assert bool((paths.concentration[-1] > 0.99).all())


def test_nearest_neighbour_ratio():
    y = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=F64)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0]], dtype=F64)
    r = nearest_neighbour_ratio(x, y)
    assert r.tolist() == pytest.approx([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="two rows"):
        nearest_neighbour_ratio(x, y[:1])


# -- the collapse time -------------------------------------------------------------------------
def test_collapse_time_closed_form_and_spectrum():
    for P, d, s2 in ((1797, 64, 1.0), (10, 2, 0.5), (1e6, 1000, 3.0), (2, 1, 1.0)):
        t = float(collapse_time(P, d, s2))
        # the defining equation: log P = (d/2) log(1 + s² e^{-2t}/Δ_t)
        info = d / 2 * math.log1p(s2 * math.exp(-2 * t) / -math.expm1(-2 * t))
        assert info == pytest.approx(math.log(P), rel=1e-12)
        assert collapse_time_spectrum(P, [s2] * d) == pytest.approx(t, rel=1e-9)


def test_collapse_time_limits():
    assert float(collapse_time(1e300, 4)) < 1e-70                     # P -> oo: t_C -> 0
    P = 1000.0
    for d in (1e4, 1e6):                                               # d -> oo
        lead = 0.5 * math.log(d / (2 * math.log(P)))
        assert float(collapse_time(P, d)) - lead == pytest.approx(0.0, abs=2 * math.log(P) / d)
    ts = collapse_time(torch.tensor([10.0, 100.0, 1e4]), 16)
    assert bool((ts[1:] < ts[:-1]).all())                              # more points, earlier
    # a spectrum with more variance collapses later (at larger t)
    assert collapse_time_spectrum(100, [2.0] * 8) > collapse_time_spectrum(100, [1.0] * 8)


@pytest.mark.parametrize("args, words", [((1, 4), "P must"), ((10, 0), "d must"),
                                         ((10, 4, -1.0), "s2 must")])
def test_collapse_time_bad_input(args, words):
    with pytest.raises(ValueError, match=words):
        collapse_time(*args)


def test_collapse_time_spectrum_bad_input():
    with pytest.raises(ValueError, match="eigenvalues"):
        collapse_time_spectrum(10, [-1.0])
    with pytest.raises(ValueError, match="P must"):
        collapse_time_spectrum(1, [1.0])


# -- crossing times ---------------------------------------------------------------------------
def test_crossing_time_linear_in_log_t():
    ts = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=F64)
    v = -torch.log(ts)                                     # straight in log t
    est = crossing_time(ts, v, torch.full_like(v, 0.01), -math.log(1.5))
    assert isinstance(est, MCEstimate)
    assert est.value == pytest.approx(1.5, rel=1e-12)
    # delta method: se(t) = t se(v) / |dv/dlog t| with the two endpoint errors mixed
    f = math.log(1.5) / math.log(2.0)
    assert est.stderr == pytest.approx(1.5 * 0.01 * math.hypot(1 - f, f), rel=1e-9)
    # common random numbers: the worst case over non-negative correlations, the errors added
    corr = crossing_time(ts, v, torch.full_like(v, 0.01), -math.log(1.5), correlated=True)
    assert corr.value == est.value
    assert corr.stderr == pytest.approx(1.5 * 0.01 * (1 - f + f), rel=1e-9)
    # and it is the largest standard error of a bivariate normal with correlation in [0, 1]
    g0, g1 = 0.01 * (1 - f) / math.log(2.0), 0.01 * f / math.log(2.0)
    worst = max(math.sqrt(g0**2 + g1**2 + 2 * rho * g0 * g1) for rho in (0.0, 0.5, 1.0))
    assert corr.stderr == pytest.approx(1.5 * worst * math.log(2.0), rel=1e-9)
    with pytest.raises(ValueError, match="does not cross"):
        crossing_time(ts, v, torch.zeros(4), 5.0)


# -- the tree and the networks ---------------------------------------------------------------
def test_class_tree_is_an_ultrametric(digits):
    times = torch.logspace(math.log10(0.8), math.log10(1.3), 8, dtype=F64)
    B = class_tree(digits, VP(), times)
    assert B.shape == (10, 10) and torch.equal(B, B.T)
    ultra = B[:, :, None] <= torch.maximum(B[:, None, :], B.T[None, :, :]) + 1e-12
    assert bool(ultra.all())
    with pytest.raises(ValueError, match="increasing"):
        class_tree(digits, VP(), times.flip(0))


def test_training_is_deterministic_for_a_seed(digits):
    sub = small(digits)
    kw = {"t_min": 0.05, "t_max": 3.0, "steps": 30, "batch": 32, "hidden": 16}
    m1, l1 = train_digit_denoiser(sub, VP(), generator=generator(5, "cpu"), **kw)
    m2, l2 = train_digit_denoiser(sub, VP(), generator=generator(5, "cpu"), **kw)
    assert torch.equal(l1, l2)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                  m2.state_dict().values(), strict=True))
    c1, k1 = train_classifier(sub, VP(), generator=generator(6, "cpu"), **kw)
    c2, k2 = train_classifier(sub, VP(), generator=generator(6, "cpu"), **kw)
    assert torch.equal(k1, k2)
    x = torch.randn(4, 64, dtype=F64)
    assert torch.equal(c1.log_probs(x, 0.5), c2.log_probs(x, 0.5))
    assert torch.allclose(c1.log_probs(x, 0.5).exp().sum(1), torch.ones(4, dtype=F64))


def test_training_learns(digits):
    sub = small(digits, per_class=3)
    _, losses = train_classifier(sub, VP(), t_min=0.05, t_max=0.3, steps=200, batch=64,
                                 hidden=32, generator=generator(7, "cpu"))
    assert float(losses[-20:].mean()) < 0.5 * float(losses[:20].mean())


def test_preconditioning_limits_and_the_wiener_denoiser():
    # with the last layer zeroed, the preconditioned denoiser is c_skip x / alpha: the posterior
    # mean of N(0, v I), i.e. the Wiener denoiser of an isotropic Gaussian, at every t
    vp, v = VP(), 1.7
    model = DigitDenoiser(64, vp, hidden=8, data_var=v, generator=generator(0, "cpu"), dtype=F64)
    x = torch.randn(5, 64, generator=generator(1, "cpu"), dtype=F64)
    with torch.no_grad():
        model.layers[-1].weight.zero_()
    for t in (1e-3, 0.3, 2.0):
        assert torch.allclose(model.score(x, t), wiener_score(x, t, vp, v * torch.eye(64)),
                              atol=1e-10)
    # small noise: c_out -> 0 and c_skip -> 1, so any network returns x / alpha;
    # large noise: c_skip -> 0, so the skip path x / alpha (here e^30 |x|, about 1e13) is gone
    # and the output is sqrt(v) F of an input of unit scale
    fresh = DigitDenoiser(64, vp, hidden=8, data_var=v, generator=generator(2, "cpu"), dtype=F64)
    with torch.no_grad():
        t = 1e-7
        assert torch.allclose(fresh(x, t), x / math.exp(-t), atol=1e-5)
        far = fresh(x, 30.0)
    assert float(far.abs().max()) < 50 * math.sqrt(v)


def test_training_lowers_the_held_out_loss(digits):
    # the denoiser learns: after training, its denoising loss on images it never saw is below
    # that of the same network untrained, on the same noisy states (paired, 5 standard errors)
    vp = VP()
    train, test = split_digits(digits, 200, generator(3, "cpu"))
    kw = {"t_min": 0.05, "t_max": 3.0, "hidden": 32}
    net, _ = train_digit_denoiser(train, vp, steps=300, batch=128, generator=generator(4, "cpu"),
                                  **kw)
    fresh = DigitDenoiser(64, vp, hidden=32, generator=generator(4, "cpu"))
    g = generator(5, "cpu")
    for t in (0.2, 0.8):
        xt, eps = vp.perturb(test.images, t, g)
        s = math.sqrt(1 - math.exp(-2 * t))
        diff = (((net.score(xt, t) + eps / s) ** 2).sum(1)
                - ((fresh.score(xt, t) + eps / s) ** 2).sum(1))
        assert float(diff.mean()) + 5 * float(diff.std() / math.sqrt(len(diff))) < 0


def test_split_digits(digits):
    train, test = split_digits(digits, 300, generator(0, "cpu"))
    assert train.images.shape == (1497, 64) and test.images.shape == (300, 64)
    assert train.scale == test.scale == digits.scale
    rows = torch.cat([train.images, test.images])
    # disjoint and together every image once: match each row to its index in the full set
    idx = torch.cdist(rows, digits.images).argmin(1)
    assert sorted(idx.tolist()) == list(range(1797))
    assert torch.equal(digits.labels[idx], torch.cat([train.labels, test.labels]))
    again = split_digits(digits, 300, generator(0, "cpu"))[1]
    assert torch.equal(again.images, test.images)
    for bad in (0, 1796, 2.5):
        with pytest.raises(ValueError, match="n_test"):
            split_digits(digits, bad, generator(0, "cpu"))


def test_wiener_score_is_the_gaussian_score():
    # independent: autograd of the log density of N(alpha m, alpha² Sigma + sigma² I)
    vp, t, d = VP(), 0.4, 6
    g = generator(0, "cpu")
    A = torch.randn(d, d, generator=g, dtype=F64)
    cov = A @ A.T / d
    m = torch.randn(d, generator=g, dtype=F64)
    x = torch.randn(7, d, generator=g, dtype=F64, requires_grad=True)
    a, s = math.exp(-t), math.sqrt(1 - math.exp(-2 * t))
    law = torch.distributions.MultivariateNormal(a * m, a**2 * cov + s**2 * torch.eye(d))
    (grad,) = torch.autograd.grad(law.log_prob(x).sum(), x)
    assert torch.allclose(wiener_score(x.detach(), t, vp, cov, m), grad, atol=1e-12)
    with pytest.raises(ValueError, match="cov"):
        wiener_score(x.detach(), t, vp, torch.eye(3))
    with pytest.raises(ValueError, match="mean"):
        wiener_score(x.detach(), t, vp, cov, torch.zeros(3))


@pytest.mark.parametrize("kw, words", [({"t_min": 0.0, "t_max": 1.0}, "t_min"),
                                       ({"t_min": 0.1, "t_max": 1.0, "steps": 0}, "steps")])
def test_training_bad_input(digits, kw, words):
    with pytest.raises(ValueError, match=words):
        train_classifier(digits, VP(), **kw)


def test_paired_crossing_difference_keeps_the_pairing():
    """Two curves sharing their per-sample noise: the paired error of the difference of the
    crossings is far below the independent combination; identical curves differ by exactly 0."""
    g = torch.Generator().manual_seed(5)
    ts = torch.logspace(-1, 1, 9, dtype=torch.float64)
    n = 400
    common = torch.randn(1, n, generator=g, dtype=torch.float64)    # per-sample, every time
    a = -torch.log(ts)[:, None] + 0.5 * common
    b = a + 0.1 + 0.05 * torch.randn(9, n, generator=g, dtype=torch.float64)
    est = paired_crossing_difference(ts, a, b, 0.0, n_boot=400,
                                     generator=torch.Generator().manual_seed(1))
    # the means are -log t + c (+0.1 for b): crossings exp(c) and exp(c + 0.1), independently
    c = float(0.5 * common.mean())
    ind_a = crossing_time(ts, a.mean(1), a.std(1) / math.sqrt(n), 0.0)
    ind_b = crossing_time(ts, b.mean(1), b.std(1) / math.sqrt(n), 0.0)
    assert est.value == pytest.approx(ind_a.value - ind_b.value, abs=1e-12)
    assert ind_a.value == pytest.approx(math.exp(c), rel=1e-2)      # log-linear interpolation
    assert est.stderr < 0.3 * math.hypot(ind_a.stderr, ind_b.stderr)
    same = paired_crossing_difference(ts, a, a.clone(), 0.0, n_boot=50)
    assert same.value == 0.0 and same.stderr == 0.0
    with pytest.raises(ValueError, match="a and b"):
        paired_crossing_difference(ts, a, b[:, :-1], 0.0)
    with pytest.raises(ValueError, match="n_boot"):
        paired_crossing_difference(ts, a, b, 0.0, n_boot=1)
