"""diffnotes.guidance: the guided score against autograd and closed forms, schedules, the guided
Curie–Weiss roots, the exact guided moments against sympy-free closed forms, and bad input."""

import math

import pytest
import torch

from diffnotes.checks import mc_estimate
from diffnotes.guidance import (
    GuidedScore,
    class_entropy,
    class_mixture,
    class_posterior,
    constant,
    fit_negative_weight,
    gaussian_guided_moments,
    guided_curie_weiss_roots,
    interval,
    mean_shift,
    negative_window,
    random_classes,
    sliced_wasserstein,
    variance_ratio,
)
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM, VP
from diffnotes.samplers import probability_flow, time_grid

F64 = torch.float64


@pytest.fixture
def labelled():
    means = torch.tensor([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0], [0.8, 2.6]], dtype=F64)
    mix = GaussianMixture(means, torch.tensor([0.15, 0.3, 0.3, 0.25]),
                          torch.tensor([0.3, 0.8, 0.5, 0.3]))
    return mix, torch.tensor([0, 1, 2, 0])


def test_class_mixture_renormalises(labelled):
    mix, lab = labelled
    c0 = class_mixture(mix, lab, 0)
    assert c0.K == 2
    torch.testing.assert_close(c0.weights, torch.tensor([0.375, 0.625], dtype=F64))
    torch.testing.assert_close(c0.means, mix.means[[0, 3]])


def test_class_posterior_sums_components(labelled):
    mix, lab = labelled
    x = torch.randn(10, 2, dtype=F64)
    p = class_posterior(mix, lab, x, 0.7, EDM())
    r = mix.component_posterior(x, 0.7, EDM())
    torch.testing.assert_close(p[:, 0], r[:, 0] + r[:, 3])
    torch.testing.assert_close(p.sum(1), torch.ones(10, dtype=F64))
    h = class_entropy(mix, lab, x, 0.7, EDM())
    torch.testing.assert_close(h, -(p * p.log()).sum(1))


@pytest.mark.parametrize("process", [EDM(), VP()])
@pytest.mark.parametrize("w", [-1.0, 0.0, 2.5])
def test_guided_score_is_gradient_of_tilted_log_density(labelled, process, w):
    mix, lab = labelled
    x = (2 * torch.randn(16, 2, dtype=F64)).requires_grad_(True)
    t = 0.6
    logq = (1 + w) * class_mixture(mix, lab, 0).log_prob(x, t, process) - w * mix.log_prob(
        x, t, process)
    (grad,) = torch.autograd.grad(logq.sum(), x)
    s_w = GuidedScore.from_labels(mix, lab, 0, w, process)(x.detach(), t)
    torch.testing.assert_close(s_w, grad, rtol=1e-9, atol=1e-10)


def test_weights_zero_and_minus_one_are_conditional_and_unconditional(labelled):
    mix, lab = labelled
    x, t = torch.randn(5, 2, dtype=F64), 1.3
    torch.testing.assert_close(GuidedScore.from_labels(mix, lab, 1, 0.0, EDM())(x, t),
                               class_mixture(mix, lab, 1).score(x, t, EDM()))
    torch.testing.assert_close(GuidedScore.from_labels(mix, lab, 1, -1.0, EDM())(x, t),
                               mix.score(x, t, EDM()))


def test_velocity_is_probability_flow_field(labelled):
    mix, lab = labelled
    vp = VP()
    g = GuidedScore.from_labels(mix, lab, 2, 1.5, vp)
    x, t = torch.randn(4, 2, dtype=F64), 0.4
    expected = vp.drift(t) * x - 0.5 * vp.diffusion2(t) * g(x, t)
    torch.testing.assert_close(g.velocity(x, t), expected)


def test_schedules():
    assert constant(2.0)(123.0) == 2.0
    s = interval(3.0, 1.0, 2.0)
    assert (s(0.5), s(1.0), s(1.99), s(2.0)) == (0.0, 3.0, 3.0, 0.0)
    nw = negative_window(2.0, -0.5, 0.1, 1.0, 5.0)
    assert (nw(0.05), nw(0.5), nw(1.0), nw(4.0), nw(6.0)) == (0.0, -0.5, 2.0, 2.0, 0.0)
    # integral of w k over the pieces, k = 1: 2 * 4 - 0.5 * 0.9
    assert abs(nw.integral(lambda t: 1.0, 0.0, 10.0) - (8.0 - 0.45)) < 1e-10


@pytest.mark.parametrize("bad", [
    lambda: constant(float("nan")), lambda: constant(-1.5), lambda: constant(True),
    lambda: interval(1.0, 2.0, 1.0), lambda: interval(1.0, -1.0, 1.0),
    lambda: negative_window(1.0, 0.5, 0.1, 0.5, 1.0),
    lambda: negative_window(1.0, -2.0, 0.1, 0.5, 1.0),
    lambda: negative_window(float("inf"), -0.5, 0.1, 0.5, 1.0),
])
def test_bad_schedules(bad):
    with pytest.raises(ValueError):
        bad()


def test_bad_labels_and_classes(labelled):
    mix, lab = labelled
    with pytest.raises(ValueError, match="unknown class"):
        class_mixture(mix, lab, 3)
    with pytest.raises(ValueError, match="unknown class"):
        GuidedScore.from_labels(mix, lab, -1, 1.0, EDM())
    with pytest.raises(ValueError, match="shape"):
        class_mixture(mix, torch.tensor([0, 1]), 0)
    with pytest.raises(ValueError, match="every class"):
        class_mixture(mix, torch.tensor([0, 2, 2, 0]), 0)
    with pytest.raises(ValueError, match="integers"):
        class_mixture(mix, torch.tensor([0.0, 1.0, 2.0, 0.0]), 0)
    g = GuidedScore.from_labels(mix, lab, 0, lambda t: float("nan"), EDM())
    with pytest.raises(ValueError, match="not finite"):
        g(torch.zeros(1, 2, dtype=F64), 1.0)


def test_guided_curie_weiss_roots_match_closed_form():
    # gamma = 0: the pitchfork, one root above T = 1, three below
    assert len(guided_curie_weiss_roots(1.2, 0.0)[0]) == 1
    roots, stable = guided_curie_weiss_roots(0.5, 0.0)
    assert len(roots) == 3 and stable.tolist() == [True, False, True]
    # independent of F: the roots are the zeros of the guided score of the two-point mixture
    # +-1 (EDM, T = t^2), which the mixture code computes from its log-density, and there are as
    # many as the score has sign changes on a fine grid; the slope's sign gives the stability
    pair = GaussianMixture.delta(torch.tensor([[1.0], [-1.0]], dtype=F64))
    for temp, gam in ((0.2, 0.3), (0.7, 2.0), (0.05, 0.1), (0.3, 0.25)):
        roots, stable = guided_curie_weiss_roots(temp, gam)
        guided = GuidedScore.from_labels(pair, torch.tensor([0, 1]), 0, gam - 1.0, EDM())
        t_now = math.sqrt(temp)
        assert float(guided(roots[:, None], t_now).abs().max()) < 1e-8
        u = torch.linspace(-4.0, 4.0, 40001, dtype=F64)[:, None]
        s = guided(u, t_now)[:, 0]
        assert int(((s[:-1] > 0) != (s[1:] > 0)).sum()) == len(roots)
        h = 1e-6
        slope = (guided(roots[:, None] + h, t_now) - guided(roots[:, None] - h, t_now))[:, 0]
        assert torch.equal(slope < 0, stable)
    # gamma > 1: one mode, beyond the class centre
    roots, stable = guided_curie_weiss_roots(0.3, 3.0)
    assert len(roots) == 1 and bool(stable[0]) and float(roots[0]) > 1
    with pytest.raises(ValueError):
        guided_curie_weiss_roots(0.0, 0.5)


def test_gaussian_moments_closed_forms():
    edm = EDM()
    vc, vu, mu = 0.25, 1.25, 1.0
    for w in (0.0, 0.5, 2.0):
        m, v = gaussian_guided_moments([mu], vc, [0.0], vu, w, edm, 1e4, 1e-7, sampler="ode")
        assert abs(v / (vc * (vc / vu) ** w) - 1) < 1e-6
    m0, v0 = gaussian_guided_moments([mu], vc, [0.0], vu, 0.0, edm, 50.0, 1e-3, sampler="sde")
    assert abs(float(m0[0]) - mu) < 1e-9 and abs(v0 - (vc + 1e-6)) < 1e-9
    # SDE, w = 1: V = (v_c^4 / v_u^2) int_0^inf (v_u + u)^2 / (v_c + u)^4 du, by quadrature
    from scipy.integrate import quad

    ref = vc**4 / vu**2 * quad(lambda u: (vu + u) ** 2 / (vc + u) ** 4, 0, math.inf)[0]
    _, v1 = gaussian_guided_moments([mu], vc, [0.0], vu, 1.0, edm, 1e4, 1e-7, sampler="sde")
    assert abs(v1 / ref - 1) < 1e-5


def test_gaussian_moments_match_a_fine_probability_flow():
    """The moment ODE against the package's own sampler on a fine grid (deterministic)."""
    edm = EDM()
    cls = GaussianMixture(torch.tensor([[1.0, -0.5]], dtype=F64), None, 0.3)
    unc = GaussianMixture(torch.tensor([[0.2, 0.0]], dtype=F64), None, 1.1)
    sched = interval(1.5, 0.3, 3.0)
    x0 = cls.noised(20.0, edm).sample(4000, torch.Generator().manual_seed(0))
    x0 = (x0 - x0.mean(0)) / x0.std(0) * math.sqrt(0.3 + 400) + torch.tensor([1.0, -0.5])
    x = probability_flow(GuidedScore(cls, unc, sched, edm), edm, x0,
                         time_grid(20.0, 0.01, 800, spacing="edm"), return_trajectory=False)
    m, v = gaussian_guided_moments([1.0, -0.5], 0.3, [0.2, 0.0], 1.1, sched, edm, 20.0, 0.01)
    # a linear flow maps exact first and second moments to exact ones
    torch.testing.assert_close(x.mean(0), m, rtol=0, atol=2e-3)
    torch.testing.assert_close(x.var(0), torch.full((2,), v, dtype=F64), rtol=5e-3, atol=0)


def test_gaussian_moments_bad_input():
    with pytest.raises(ValueError):
        gaussian_guided_moments([0.0], -1.0, [0.0], 1.0, 1.0, EDM(), 1.0, 0.1)
    with pytest.raises(ValueError):
        gaussian_guided_moments([0.0], 1.0, [0.0, 1.0], 1.0, 1.0, EDM(), 1.0, 0.1)
    with pytest.raises(ValueError):
        gaussian_guided_moments([0.0], 1.0, [0.0], 1.0, 1.0, EDM(), 1.0, 0.1, sampler="x")
    with pytest.raises(ValueError):
        gaussian_guided_moments([0.0], 1.0, [0.0], 1.0, 1.0, EDM(), 0.1, 1.0)


def test_variance_ratio_and_sliced_wasserstein():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20000, 3, generator=g, dtype=F64) * 2
    est = variance_ratio(x, 4 * torch.eye(3, dtype=F64))
    assert abs(est.value - 1) < 5 * est.stderr
    y = torch.randn(20000, 3, generator=g, dtype=F64) * 2
    floor = sliced_wasserstein(x, y, 32, torch.Generator().manual_seed(2))
    shifted = sliced_wasserstein(x, y + torch.tensor([1.0, 0.0, 0.0], dtype=F64), 32,
                                 torch.Generator().manual_seed(2))
    assert floor < 0.1 < shifted
    with pytest.raises(ValueError):
        variance_ratio(x, torch.eye(2, dtype=F64))
    with pytest.raises(ValueError):
        sliced_wasserstein(x, y[:10])


def test_random_classes_covariance_and_seed():
    mix, lab = random_classes(7, 3, 1.5, 0.25, torch.Generator().manual_seed(3))
    assert mix.means.shape == (7, 3) and torch.equal(lab, torch.arange(7))
    torch.testing.assert_close(mix.weights, torch.full((7,), 1 / 7, dtype=F64))
    # the law of total covariance, written out by hand: v I + (1/K) sum (mu_k - mu)(mu_k - mu)^T
    centred = mix.means - mix.means.mean(0)
    by_hand = 0.25 * torch.eye(3, dtype=F64) + centred.T @ centred / 7
    torch.testing.assert_close(mix.covariance(), by_hand, rtol=1e-12, atol=1e-12)
    # one seed gives the same class 0 for every K
    big, _ = random_classes(50, 3, 1.5, 0.25, torch.Generator().manual_seed(3))
    torch.testing.assert_close(big.means[0], mix.means[0], rtol=0, atol=0)


def test_random_classes_means_have_the_stated_spread():
    mix, _ = random_classes(20000, 2, 1.5, 1.0, torch.Generator().manual_seed(4))
    est = mc_estimate((mix.means**2).reshape(-1))            # E mu^2 = r^2 per coordinate
    assert abs(est.value - 1.5**2) < 5 * est.stderr


def test_guidance_between_identical_classes_is_conditional_sampling():
    # spread 0: every class has the same law, p_t(c | x) = 1/K, so s_w = s(x | c) for every w
    mix, lab = random_classes(5, 3, 0.0, 0.5, torch.Generator().manual_seed(5))
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    cond = class_mixture(mix, lab, 2)
    for w in (0.5, 4.0):
        torch.testing.assert_close(GuidedScore.from_labels(mix, lab, 2, w, EDM())(x, 0.7),
                                   cond.score(x, 0.7, EDM()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [dict(n_classes=0), dict(d=1.5), dict(spread=-1.0),
                                 dict(variance=0.0), dict(spread=math.inf)])
def test_random_classes_bad_input(bad):
    args = dict(n_classes=3, d=2, spread=1.0, variance=1.0) | bad
    with pytest.raises(ValueError):
        random_classes(**args)


def test_mean_shift_against_known_shift():
    g = torch.Generator().manual_seed(7)
    m = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    e = torch.tensor([3.0, 4.0, 0.0], dtype=F64)                 # unit vector (0.6, 0.8, 0)
    x = m + 0.3 * e / 5 + torch.randn(40000, 3, generator=g, dtype=F64)
    est = mean_shift(x, m, e)
    assert abs(est.value - 0.3) < 5 * est.stderr
    assert abs(est.stderr * math.sqrt(40000) - 1.0) < 0.02      # the projection has variance 1
    with pytest.raises(ValueError, match="non-zero"):
        mean_shift(x, m, torch.zeros(3, dtype=F64))
    with pytest.raises(ValueError, match="shape"):
        mean_shift(x, m[:2], e)


@pytest.mark.parametrize("v_c, v_u, window", [(1.0, 3.0, (0.2, 2.5, 8.0)),
                                               (0.25, 1.25, (0.05, 1.5, 10.0))])
def test_fit_negative_weight_keeps_the_variance_of_its_sampler(v_c, v_u, window):
    edm = EDM()
    t_max, t_min = 40.0, 0.01
    fitted = {s: fit_negative_weight(v_c, v_u, 2.0, *window, edm, sampler=s, t_max=t_max,
                                     t_min=t_min) for s in ("ode", "sde")}
    for s, w_neg in fitted.items():
        assert -1.0 <= w_neg < 0.0
        sched = negative_window(2.0, w_neg, *window)
        _, v = gaussian_guided_moments([0.0], v_c, [0.0], v_u, sched, edm, 1e4 if s == "ode"
                                       else t_max, 1e-7 if s == "ode" else t_min, sampler=s)
        assert v == pytest.approx(v_c if s == "ode" else v_c + t_min**2, rel=1e-6)
    # the ODE's window (exponent zero) over-corrects the SDE: the SDE needs a weaker one
    assert fitted["sde"] > fitted["ode"]
    sched = negative_window(2.0, fitted["ode"], *window)
    _, v_cross = gaussian_guided_moments([0.0], v_c, [0.0], v_u, sched, edm, t_max, t_min,
                                         sampler="sde")
    assert v_cross > v_c
    # the defining formula re-typed: this checks only the log antiderivative of K against
    # quadrature; the fit itself is checked against the moment ODE above
    from scipy.integrate import quad
    big_k = [quad(lambda t: 2 * t * (1 / (v_c + t * t) - 1 / (v_u + t * t)), a, b)[0]
             for a, b in ((window[1], window[2]), (window[0], window[1]))]
    assert 2.0 * big_k[0] + fitted["ode"] * big_k[1] == pytest.approx(0.0, abs=1e-10)


def test_fit_negative_weight_bad_input():
    edm = EDM()
    with pytest.raises(ValueError, match="var_u"):
        fit_negative_weight(2.0, 1.0, 2.0, 0.2, 2.5, 8.0, edm)
    with pytest.raises(ValueError, match="sampler"):
        fit_negative_weight(1.0, 3.0, 2.0, 0.2, 2.5, 8.0, edm, sampler="heun")
    with pytest.raises(ValueError, match="positive"):
        fit_negative_weight(1.0, 3.0, 0.0, 0.2, 2.5, 8.0, edm)
    with pytest.raises(ValueError, match="increasing"):
        fit_negative_weight(1.0, 3.0, 2.0, 2.5, 0.2, 8.0, edm)
    with pytest.raises(ValueError, match="no w_-"):        # too short a negative window
        fit_negative_weight(1.0, 3.0, 2.0, 2.4, 2.5, 8.0, edm, sampler="ode")
