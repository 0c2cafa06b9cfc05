"""Fixed points of the score (chapter 4): residuals, stability, critical times, continuation."""

import math

import pytest
import torch

from diffnotes import EDM, VP, GaussianMixture
from diffnotes.fixed_points import (
    FixedPointPaths,
    branch_information,
    branching_times,
    check_branch_stability,
    find_fixed_points,
    follow_fixed_points,
    split_after_merge,
)

F64 = torch.float64
FIVE = torch.tensor([[-1.6, -0.4], [1.4, -0.6], [0.1, 1.3], [0.4, 0.1], [2.6, 1.6]], dtype=F64)
PAIR = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=F64)


def _critical_time(mix, proc, lo, hi, iters=45):
    """Bisection on the stability of the symmetric fixed point (the origin), as classified by
    find_fixed_points: stable above t_c, unstable below."""
    origin = torch.zeros(1, mix.d, dtype=F64)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fp = find_fixed_points(mix, mid, proc, starts=origin)
        assert len(fp) == 1 and fp.points.abs().max() == 0  # the origin is a fixed point
        lo, hi = (lo, mid) if bool(fp.stable[0]) else (mid, hi)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("proc,t", [(EDM(), 0.45), (EDM(), 0.8), (VP(), 0.2)])
def test_residuals_vanish_and_self_consistency(proc, t):
    mix = GaussianMixture.delta(FIVE, torch.tensor([0.1, 0.3, 0.2, 0.25, 0.15], dtype=F64))
    fp = find_fixed_points(mix, t, proc)
    assert len(fp) >= 1
    alpha = float(proc.alpha(t))
    torch.testing.assert_close(mix.score(fp.points, t, proc), torch.zeros_like(fp.points),
                               atol=1e-7, rtol=0)
    # x* = alpha sum_j w_j(x*) y_j (eq. 42-43), directly from the component posterior
    w = mix.component_posterior(fp.points, t, proc)
    torch.testing.assert_close(fp.points, alpha * w @ FIVE, atol=1e-9, rtol=0)


def test_stability_agrees_with_autograd_hessian():
    mix = GaussianMixture.delta(FIVE)
    t = 0.45
    fp = find_fixed_points(mix, t, EDM())
    assert fp.index.tolist() == [0] * 5 + [1] * 5 + [2]  # 5 modes, 5 saddles, 1 minimum
    for p, eig, stable in zip(fp.points, fp.eigvals, fp.stable, strict=True):
        hess = torch.autograd.functional.hessian(
            lambda z: mix.log_prob(z[None], t, EDM())[0], p)
        ev = torch.linalg.eigvalsh(hess)
        torch.testing.assert_close(ev, eig, atol=1e-8, rtol=1e-8)
        assert bool(stable) == bool((ev < 0).all())


def test_modes_by_ascent_are_local_maxima():
    mix = GaussianMixture.delta(FIVE)
    fp = find_fixed_points(mix, 0.45, EDM())
    g = torch.Generator().manual_seed(0)
    for p in fp.points[fp.stable]:
        near = p + 1e-3 * torch.randn(64, 2, generator=g, dtype=F64)
        assert bool((mix.log_prob(near, 0.45, EDM()) < mix.log_prob(p[None], 0.45, EDM())).all())


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_two_point_critical_time_edm_and_vp(a):
    mix = GaussianMixture.delta(a * PAIR)
    t_edm = _critical_time(mix, EDM(), 0.5 * a, 1.5 * a)
    assert abs(t_edm - a) < 1e-10 * a
    tc_vp = 0.5 * math.log1p(a * a)
    t_vp = _critical_time(mix, VP(), 0.5 * tc_vp, 1.5 * tc_vp)
    assert abs(t_vp - tc_vp) < 1e-10 * tc_vp


def test_two_point_branches_solve_curie_weiss_and_merge_at_tc():
    times = torch.linspace(0.1, 1.5, 141, dtype=F64)
    paths = follow_fixed_points(GaussianMixture.delta(PAIR), PAIR, times, EDM())
    m = paths.points[:, 0, 0]
    torch.testing.assert_close(m, torch.tanh(m / times**2), atol=1e-8, rtol=0)
    b = branching_times(paths)[0, 1].item()
    assert 1.0 <= b <= 1.0 + 0.01 + 1e-12  # the first grid time at or above t_c = 1
    assert bool(paths.stable.all())


def test_continuation_does_not_jump_between_branches():
    # symmetric pair, followed below t_c: each path stays on its own side, moving smoothly
    times = torch.linspace(0.2, 0.95, 151, dtype=F64)
    paths = follow_fixed_points(GaussianMixture.delta(PAIR), PAIR, times, EDM())
    assert bool((paths.points[:, 0, 0] > 0).all()) and bool((paths.points[:, 1, 0] < 0).all())
    assert paths.jumps().max() < 0.05
    # the unstable origin followed by Newton stays there
    origin = follow_fixed_points(GaussianMixture.delta(PAIR), torch.zeros(1, 2, dtype=F64),
                                 times, EDM(), method="newton")
    assert origin.points.abs().max() < 1e-12
    assert not bool(origin.stable.any())


def test_field_metastable_branch_jumps_at_saddle_node():
    pi_plus = 0.7
    h = 0.5 * math.log(pi_plus / (1 - pi_plus))
    # saddle-node: h = artanh(m) - m/(1 - m^2) for m < 0, by bisection (g is decreasing)
    lo, hi = -1 + 1e-12, 0.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        g = math.atanh(mid) - mid / (1 - mid**2)
        lo, hi = (mid, hi) if g > h else (lo, mid)
    t_sn = math.sqrt(1 - lo**2)
    mix = GaussianMixture.delta(PAIR, torch.tensor([pi_plus, 1 - pi_plus], dtype=F64))
    times = torch.linspace(0.2, 1.5, 261, dtype=F64)
    paths = follow_fixed_points(mix, PAIR, times, EDM())
    jumps = paths.jumps()
    k = int(jumps[:, 1].argmax())
    assert times[k] < t_sn <= times[k + 1]
    assert jumps[k, 1] > 1.0           # a finite jump of the metastable path
    assert jumps[:, 0].max() < 0.01    # the stable path is smooth


def test_sphere_centre_loses_stability_at_r_over_sqrt_d():
    d, r = 6, 1.5
    eye = torch.eye(d, dtype=F64)
    mix = GaussianMixture.delta(r * torch.cat([eye, -eye]))
    tc = r / math.sqrt(d)
    centre = torch.zeros(1, d, dtype=F64)
    above = find_fixed_points(mix, 1.01 * tc, EDM(), starts=centre)
    below = find_fixed_points(mix, 0.99 * tc, EDM(), starts=centre)
    assert above.index.tolist() == [0] and below.index.tolist() == [d]
    div = mix.score_jacobian(centre, tc, EDM())[0].diagonal().sum()
    assert abs(float(div)) < 1e-10


def test_branching_times_form_an_ultrametric():
    """A property of the definition (coincidence at all later times), true of any paths: this
    tests the implementation of branching_times, not the determinism of the continuation,
    which test_split_after_merge_* test."""
    g = torch.Generator().manual_seed(1)
    y = torch.randn(8, 2, generator=g, dtype=F64) * torch.tensor([3.0, 1.0], dtype=F64)
    mix = GaussianMixture.delta(y)
    times = torch.logspace(-1.5, 1.0, 120, dtype=F64)
    b = branching_times(follow_fixed_points(mix, y, times, EDM()))
    assert torch.allclose(b, b.T)
    assert bool((b[:, :, None] <= torch.maximum(b[:, None, :], b.T[None]) + 1e-12).all())


def test_follow_decreasing_times_and_float32():
    times = torch.linspace(1.5, 0.2, 40, dtype=F64)
    paths = follow_fixed_points(GaussianMixture.delta(PAIR), torch.zeros(1, 2), times, EDM())
    assert isinstance(paths, FixedPointPaths)
    assert paths.points.dtype == torch.float32 and paths.points.shape == (40, 1, 2)
    assert paths.residual.max() < 1e-4


def test_bad_input_raises():
    mix = GaussianMixture.delta(PAIR)
    with pytest.raises(ValueError, match="t must be positive"):
        find_fixed_points(mix, -1.0, EDM())
    with pytest.raises(ValueError, match="starts must have shape"):
        find_fixed_points(mix, 1.0, EDM(), starts=torch.zeros(3, 5))
    with pytest.raises(ValueError, match="method"):
        follow_fixed_points(mix, PAIR, torch.tensor([0.5, 1.0]), EDM(), method="bogus")
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        follow_fixed_points(mix, PAIR, torch.tensor([0.5, 1.0, 0.7]), EDM())
    with pytest.raises(ValueError, match="process"):
        find_fixed_points(mix, 1.0, "EDM")
    with pytest.raises(ValueError, match="paths must be"):
        branching_times(torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="tol"):
        find_fixed_points(mix, 1.0, EDM(), tol=0.0)


@pytest.mark.parametrize("proc,times", [(EDM(), [0.4, 0.7, 0.95]), (VP(), [0.1, 0.3])])
def test_branch_stability_check_passes_with_the_book_inequality(proc, times):
    """Chapter 4: the non-zero Curie-Weiss branches are modes, and artanh(m)/m < 1/(1 - m^2)."""
    tally = check_branch_stability(times, proc)
    assert tally.n_exact == 3 * len(times)


def test_branch_stability_check_fails_with_the_reversed_inequality():
    """The reversed inequality (artanh(m)/m > 1/(1 - m^2)) is False at every 0 < |m| < 1, so
    this shows only that the criterion is consulted; the informative part of the check is the
    Jacobian's verdict, tested by test_branch_stability_check_fails_on_an_unstable_claim."""
    with pytest.raises(AssertionError, match="by the criterion \\(False\\)"):
        check_branch_stability([0.6], EDM(),
                               criterion=lambda m: torch.atanh(m) / m > 1 / (1 - m**2))


def test_branch_stability_check_bad_input():
    with pytest.raises(ValueError, match="T < 1"):
        check_branch_stability([1.5], EDM())          # above t_c = a = 1
    with pytest.raises(ValueError, match="a must be positive"):
        check_branch_stability([0.5], EDM(), a=-1.0)


def test_a_mode_is_created_as_t_grows_in_two_dimensions():
    """Chapter 4's remark (Carreira-Perpinan and Williams): three points on an equilateral
    triangle (circumradius 1) have 3 modes just below t = 1/sqrt(2) and 4 just above, the centre
    turning from a minimum into a mode while the outer modes persist."""
    ang = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=F64)
    tri = GaussianMixture.delta(torch.stack([ang.cos(), ang.sin()], 1))
    counts = [int(find_fixed_points(tri, f / math.sqrt(2), EDM(), n_random=32,
                                    generator=torch.Generator().manual_seed(0)).stable.sum())
              for f in (0.98, 1.01)]
    assert counts == [3, 4]


def test_branch_stability_check_fails_on_an_unstable_claim():
    """A planted wrong criterion that calls some branches unstable (|m| > 0.9) is caught."""
    with pytest.raises(AssertionError, match="by the criterion \\(False\\)"):
        check_branch_stability([0.4], EDM(), criterion=lambda m: m.abs() < 0.9)


def test_split_after_merge_none_on_a_traced_tree():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(8, 2, generator=g, dtype=F64) * torch.tensor([3.0, 1.0], dtype=F64)
    times = torch.logspace(-1.5, 1.0, 120, dtype=F64)
    paths = follow_fixed_points(GaussianMixture.delta(y), y, times, EDM())
    assert not bool(split_after_merge(paths).any())


def test_split_after_merge_flags_a_path_that_separates_again():
    """Planted non-determinism: two paths coincide, separate, and coincide again. The
    branching time is still an ultrametric (it looks only at the last coincidence), but
    split_after_merge flags the pair."""
    times = torch.linspace(0.1, 1.0, 10, dtype=F64)
    pts = torch.zeros(10, 3, 1, dtype=F64)
    pts[:, 0, 0], pts[:, 1, 0], pts[:, 2, 0] = 1.0, 1.0, -1.0
    pts[5:, 2, 0] = 1.0                   # path 2 joins at t = 0.6
    pts[3, 1, 0] = 2.0                    # path 1 leaves path 0 once, at t = 0.4
    paths = FixedPointPaths(times, pts, torch.zeros_like(pts), torch.zeros(10, 3, dtype=F64))
    flag = split_after_merge(paths)
    assert flag.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    b = branching_times(paths)
    assert bool((b[:, :, None] <= torch.maximum(b[:, None, :], b.T[None]) + 1e-12).all())
    with pytest.raises(ValueError, match="paths must be"):
        split_after_merge(pts)


def test_branch_information_against_quadrature():
    """I(C; x_t) of the two-point bridge against scipy quadrature written apart."""
    from scipy import integrate

    t_start = 4.0

    def ref(t, p, a):
        r, h = 1 - t * t / t_start**2, 0.5 * math.log(p / (1 - p))
        sd = math.sqrt(r) * t
        hc = -(p * math.log2(p) + (1 - p) * math.log2(1 - p))

        def f(x):
            q = 1 / (1 + math.exp(-max(min(2 * a * x / t**2 + 2 * h, 700), -700)))
            hh = 0.0 if q in (0.0, 1.0) else -(q * math.log2(q) + (1 - q) * math.log2(1 - q))
            dens = (p * math.exp(-(x - r * a) ** 2 / (2 * sd * sd))
                    + (1 - p) * math.exp(-(x + r * a) ** 2 / (2 * sd * sd)))
            return hh * dens / math.sqrt(2 * math.pi) / sd

        return hc - integrate.quad(f, -r * a - 12 * sd, r * a + 12 * sd, limit=400,
                                   points=[0.0])[0]

    for p, a in ((0.5, 1.0), (0.9, 1.0), (0.7, 2.0)):
        ts = [3.0, 2.0, 1.0, 0.6, 0.3]
        got = branch_information(torch.tensor(ts, dtype=F64), t_start, a, p)
        for t, g_ in zip(ts, got.tolist(), strict=True):
            assert abs(g_ - ref(t, p, a)) < 1e-6, (p, a, t)
    # the limits: nothing at t -> T, all of H(C) at t -> 0
    assert float(branch_information(0.999 * t_start, t_start)) < 1e-4
    assert abs(float(branch_information(0.02, t_start, 1.0, 0.9)) - 0.4689955935892812) < 1e-9


def test_branch_information_bad_input():
    with pytest.raises(ValueError, match="t must lie"):
        branch_information(5.0, 4.0)
    with pytest.raises(ValueError, match="pi_plus"):
        branch_information(1.0, 4.0, pi_plus=1.0)
    with pytest.raises(ValueError, match="t_start"):
        branch_information(1.0, -4.0)
