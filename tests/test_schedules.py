"""diffnotes.schedules: closed forms, quadrature, invariance across processes, validation."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.optimize import brentq

from diffnotes.device import generator
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM, VE, VP
from diffnotes.samplers import probability_flow, reverse_sde
from diffnotes.schedules import (
    SCHEDULES,
    EntropyProfile,
    class_chi2,
    compare_schedules,
    cosine_grid,
    edm_grid,
    entropic_grid,
    gaussian_entropic_r,
    gaussian_profile,
    integrate_rows,
    log_snr_grid,
    loss_profile_samples,
    mixture_profile_samples,
    noise_ratio,
    paired_difference,
    probability_flow_euler,
    rescaled_entropic_grid,
    schedule_grid,
    sliced_wasserstein,
    split_interval,
    steps_for_budget,
    uniform_grid,
)

F64 = torch.float64
T_MIN, T_MAX = 0.02, 40.0
LOG_R = torch.linspace(math.log(T_MIN) - 0.05, math.log(T_MAX) + 0.05, 400, dtype=F64)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _ends(proc):
    if isinstance(proc, EDM):
        return T_MIN, T_MAX
    return float(proc.t_from_sigma_ratio(T_MIN)), float(proc.t_from_sigma_ratio(T_MAX))


PROCS = [EDM(), VP(), VE(0.01, 50.0)]


@pytest.mark.parametrize("proc", PROCS, ids=lambda p: p.name)
@pytest.mark.parametrize("rescaled", [False, True])
def test_gaussian_entropic_grid_matches_closed_form(proc, rescaled):
    prof = gaussian_profile(torch.full((3,), 1.5, dtype=F64), LOG_R)
    lo, hi = _ends(proc)
    fn = rescaled_entropic_grid if rescaled else entropic_grid
    r = noise_ratio(fn(proc, 10, lo, hi, prof), proc)
    ref = gaussian_entropic_r(10, T_MIN, T_MAX, 1.5, rescaled=rescaled)
    torch.testing.assert_close(r, ref, rtol=2e-4, atol=0)


def test_gaussian_closed_form_by_quadrature():
    # H(r) = d/2 log(s² r²/(s² + r²)) + const: equal steps at the closed-form points
    s2, d = 0.7, 4
    r = gaussian_entropic_r(6, 0.05, 10.0, s2).numpy()

    def rate(lr):                                               # dH/dlog r by hand
        return d * s2 / (s2 + math.exp(2 * lr))

    incr = [quad(rate, math.log(b), math.log(a))[0] for a, b in zip(r[:-1], r[1:], strict=True)]
    np.testing.assert_allclose(incr, incr[0], rtol=1e-9)
    r_res = gaussian_entropic_r(6, 0.05, 10.0, s2, rescaled=True).numpy()
    incr = [quad(lambda lr: math.exp(lr) * rate(lr), math.log(b), math.log(a))[0]
            for a, b in zip(r_res[:-1], r_res[1:], strict=True)]
    np.testing.assert_allclose(incr, incr[0], rtol=1e-9)


SPECTRUM = [0.5, 2.0, 8.0]


def _vp_reference_times(name, steps):
    """The schedule solved in the VP process's own time, with numpy/scipy alone: for the
    entropic ones H_VP(t) = sum_i 1/2 log(l_i (e^{2t} - 1)/(l_i + e^{2t} - 1)) + const, solved by
    brentq in t, never through r; for the fixed ones r_i in closed form, t = log(1 + r²)/2."""
    lo, hi = 0.5 * math.log1p(T_MIN**2), 0.5 * math.log1p(T_MAX**2)
    i = np.linspace(0.0, 1.0, steps + 1)
    if name in ("entropic", "rescaled"):
        def rate_t(t):                                  # dH/dt (entropic) or r dH/dt (rescaled)
            e = math.expm1(2 * t)
            dh = sum(0.5 * (2 * (e + 1) / e - 2 * (e + 1) / (lv + e)) for lv in SPECTRUM)
            return dh * (math.sqrt(e) if name == "rescaled" else 1.0)

        def cum(t):
            return quad(rate_t, lo, t, limit=200)[0]

        total = cum(hi)
        ts = [hi] + [brentq(lambda t, f=f: cum(t) - (1 - f) * total, lo, hi, xtol=1e-14)
                     for f in i[1:-1]] + [lo]
        return np.array(ts)
    r_lo, r_hi = T_MIN, T_MAX
    if name == "log_snr":
        r = r_hi * (r_lo / r_hi) ** i
    elif name == "edm":
        r = (r_hi ** (1 / 7) + i * (r_lo ** (1 / 7) - r_hi ** (1 / 7))) ** 7
    elif name == "cosine":
        r = np.tan(np.arctan(r_hi) + i * (np.arctan(r_lo) - np.arctan(r_hi)))
    else:
        raise AssertionError(name)
    return 0.5 * np.log1p(r**2)


@pytest.mark.parametrize("name", [n for n in SCHEDULES if n != "uniform"])
def test_same_points_in_snr_for_every_process(name):
    # the VP grid against its own-time solution (independent of the r <-> t map), then the
    # three processes against each other in r
    prof = gaussian_profile(torch.tensor(SPECTRUM, dtype=F64), LOG_R)
    lo, hi = _ends(VP())
    t_vp = schedule_grid(name, VP(), 7, lo, hi, prof).numpy()
    rtol = 2e-4 if name in ("entropic", "rescaled") else 1e-10   # 400-node profile vs quadrature
    np.testing.assert_allclose(t_vp, _vp_reference_times(name, 7), rtol=rtol)
    rs = [noise_ratio(schedule_grid(name, proc, 7, *_ends(proc), prof), proc) for proc in PROCS]
    for r in rs[1:]:
        torch.testing.assert_close(r, rs[0], rtol=1e-9, atol=0)


def test_uniform_is_the_one_schedule_that_depends_on_the_process():
    rs = [noise_ratio(uniform_grid(proc, 7, *_ends(proc)), proc) for proc in PROCS]
    for r in rs[1:]:
        torch.testing.assert_close(r[[0, -1]], rs[0][[0, -1]], rtol=1e-9, atol=0)  # same ends
        assert float((r[1:-1] / rs[0][1:-1] - 1).abs().max()) > 0.1             # not the same


def test_cosine_grid_is_uniform_in_u_of_the_cosine_schedule():
    # alpha = cos(pi u / 2) in VP form: r = tan(pi u / 2); equal steps in u
    r = noise_ratio(cosine_grid(EDM(), 6, T_MIN, T_MAX), EDM()).numpy()
    u = 2 / math.pi * np.arctan(r)
    np.testing.assert_allclose(np.diff(u), np.diff(u)[0], rtol=1e-10)


def test_split_interval():
    g = torch.tensor([40.0, 2.0, 0.9, 0.02], dtype=F64)
    last = split_interval(g, -1, 4)
    np.testing.assert_allclose(last.numpy(), [40, 2, 0.9, 0.9 * (0.02 / 0.9) ** 0.25,
                                              0.9 * (0.02 / 0.9) ** 0.5,
                                              0.9 * (0.02 / 0.9) ** 0.75, 0.02], rtol=1e-12)
    first = split_interval(g, 0, 2)
    np.testing.assert_allclose(first.numpy(), [40, math.sqrt(80.0), 2, 0.9, 0.02], rtol=1e-12)
    with pytest.raises(ValueError, match="index"):
        split_interval(g, 3, 2)
    with pytest.raises(ValueError, match="decreasing"):
        split_interval(g.flip(0), 0, 2)


def test_entropy_drop_integrates_the_interval_not_the_nodes():
    s2, d = 1.5, 3
    prof = gaussian_profile(torch.full((d,), s2, dtype=F64), LOG_R)
    exact = quad(lambda lr: d * s2 / (s2 + math.exp(2 * lr)), math.log(T_MIN), math.log(T_MAX))[0]
    assert prof.drop(T_MIN, T_MAX) == pytest.approx(exact, rel=1e-4)
    assert float(prof.cumulative()[-1]) > exact + 0.1          # the padded nodes add more
    with pytest.raises(ValueError, match="covers"):
        prof.drop(T_MIN, 1e3)


def test_paired_difference_against_numpy():
    mix = GaussianMixture(torch.tensor([[-3.0], [3.0]], dtype=F64), None, 0.3)
    prof = gaussian_profile(torch.tensor([9.3], dtype=F64), LOG_R)
    cells, floors = compare_schedules({"pair": (mix, prof)}, EDM(), T_MIN, T_MAX, budgets=(8,),
                                      samplers=("euler",), n=50, seeds=12,
                                      generator=generator(6, "cpu"))
    by = {c.schedule: c for c in cells}
    a, b = by["edm"], by["log_snr"]
    assert a.nll_each.shape == (600,) and a.sw_each.shape == (12,)
    assert float(a.nll_each.mean()) == pytest.approx(a.nll[0], rel=1e-12)
    assert float(a.sw_each.mean()) == pytest.approx(a.sw[0], rel=1e-12)
    dd = (a.nll_each - b.nll_each).numpy()
    m, se = paired_difference(a, b)
    assert m == pytest.approx(dd.mean(), rel=1e-12)
    assert se == pytest.approx(dd.std(ddof=1) / math.sqrt(600), rel=1e-9)
    # same starting points: the paired error is far below the unpaired one
    assert se < 0.2 * math.hypot(a.nll_each.std() / math.sqrt(600),
                                 b.nll_each.std() / math.sqrt(600))
    assert floors["pair"]["nll_each"].shape == (600,)
    with pytest.raises(ValueError, match="measure"):
        paired_difference(a, b, "chi2")


def test_sliced_wasserstein_floor_of_separated_modes_falls_like_one_over_sqrt_n():
    # two exact samples of well-separated modes: the mode masses differ by O(1/sqrt n)
    mix = GaussianMixture(torch.tensor([[-4.0, 0.0], [4.0, 0.0]], dtype=F64), None, 0.01)
    g = generator(8, "cpu")
    fl = {n: np.mean([sliced_wasserstein(mix.sample(n, g), mix.sample(n, g), 16, g)
                      for _ in range(60)]) for n in (100, 1600)}
    ratio = fl[100] / fl[1600]          # 4 for a 1/sqrt(n) law, 16 for 1/n
    assert 2.5 < ratio < 6.5, ratio


def test_fixed_schedules():
    edm = EDM()
    torch.testing.assert_close(uniform_grid(edm, 4, 1.0, 5.0),
                               torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0], dtype=F64))
    torch.testing.assert_close(log_snr_grid(edm, 2, 1.0, 100.0),
                               torch.tensor([100.0, 10.0, 1.0], dtype=F64))
    g = edm_grid(edm, 3, 0.002, 80.0)
    ref = (80.0 ** (1 / 7) + torch.arange(4, dtype=F64) / 3 * (0.002 ** (1 / 7)
                                                               - 80.0 ** (1 / 7))) ** 7
    torch.testing.assert_close(g, ref, rtol=1e-12, atol=0)


def test_grids_run_in_the_core_samplers():
    mix = GaussianMixture(torch.tensor([[-2.0], [2.0]], dtype=F64), None, 0.1)
    prof = gaussian_profile(torch.tensor([4.1], dtype=F64), LOG_R)
    x = mix.noised(T_MAX, EDM()).sample(16, generator(0, "cpu"))
    for name in SCHEDULES:
        times = schedule_grid(name, EDM(), 6, T_MIN, T_MAX, prof)
        assert probability_flow(lambda y, t: mix.score(y, t, EDM()), EDM(), x, times,
                                return_trajectory=False).shape == x.shape
        assert reverse_sde(lambda y, t: mix.score(y, t, EDM()), EDM(), x, times,
                           generator(1, "cpu"), return_trajectory=False).shape == x.shape


@pytest.mark.parametrize("sampler", ["heun", "euler", "em"])
def test_integrate_rows_matches_the_core_samplers(sampler):
    mix = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=F64), None, 0.1)
    proc = VP()
    lo, hi = _ends(proc)
    times = log_snr_grid(proc, 5, lo, hi)
    x = mix.noised(hi, proc).sample(8, generator(0, "cpu"))

    def score(y, t):
        return mix.score(y, t, proc)

    rows = integrate_rows(sampler, score, proc, x, times[:, None].expand(-1, 8).clone(),
                          generator(3, "cpu"))
    if sampler == "heun":
        ref = probability_flow(score, proc, x, times, return_trajectory=False)
    elif sampler == "euler":
        ref = probability_flow_euler(score, proc, x, times)
    else:
        ref = reverse_sde(score, proc, x, times, generator(3, "cpu"), return_trajectory=False)
    torch.testing.assert_close(rows, ref, rtol=1e-12, atol=1e-12)


def test_profiles_agree_within_errors():
    # the posterior-variance and the loss estimators of dH/dlog r, independent samples, 5 sigma
    mix = GaussianMixture(torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 3.0, 0.0]],
                                       dtype=F64), None, 0.2)
    lr = torch.linspace(-2.0, 2.5, 10, dtype=F64)
    g = generator(7, "cpu")
    a = mixture_profile_samples(mix, lr, 4000, g)
    b = loss_profile_samples(lambda x, t: mix.score(x, t, EDM()), mix, lr, 4000, g)
    z = (a.mean(1) - b.mean(1)) / torch.sqrt(a.var(1) / 4000 + b.var(1) / 4000)
    assert bool((z.abs() < 5).all()), z


def test_gaussian_profile_matches_monte_carlo():
    mix = GaussianMixture(torch.zeros(1, 4, dtype=F64), None, 1.3)
    lr = torch.linspace(-2.0, 2.0, 6, dtype=F64)
    a = mixture_profile_samples(mix, lr, 200, generator(2, "cpu"))
    # the posterior covariance of a Gaussian does not depend on x: exact to rounding
    torch.testing.assert_close(a.mean(1), gaussian_profile(torch.full((4,), 1.3, dtype=F64),
                                                           lr).rate, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_device(device):
    mix = GaussianMixture(torch.tensor([[-2.0], [2.0]], dtype=F64), None, 0.1)
    lr = torch.linspace(math.log(T_MIN), math.log(T_MAX), 12, dtype=F64)
    s = mixture_profile_samples(mix, lr, 50, generator(0, device))
    assert s.device.type == device
    prof = EntropyProfile(lr, s.mean(1).cpu(), s.std(1).cpu() / 7)
    times = entropic_grid(EDM(), 4, T_MIN, T_MAX, prof, device=device)
    assert times.device.type == device
    x = mix.noised(T_MAX, EDM()).sample(10, generator(1, device))
    out = integrate_rows("heun", lambda y, t: mix.score(y, t, EDM()), EDM(), x,
                         times[:, None].expand(-1, 10), generator(2, device))
    assert out.device.type == device
    assert sliced_wasserstein(out, x, 4, generator(3, device)) >= 0


def test_comparison_runs_and_orders():
    mix = GaussianMixture(torch.tensor([[-3.0], [3.0]], dtype=F64), None, 0.3)
    prof = gaussian_profile(torch.tensor([9.3], dtype=F64), LOG_R)
    cells, floors = compare_schedules({"pair": (mix, prof)}, EDM(), T_MIN, T_MAX,
                                      budgets=(4, 32), samplers=("heun",), n=200, seeds=3,
                                      generator=generator(5, "cpu"))
    assert len(cells) == 2 * len(SCHEDULES)
    by = {(c.schedule, c.nfe): c for c in cells}
    # 32 evaluations beat 4 for the EDM schedule, by paired samples (same starting points)
    m, se = paired_difference(by[("edm", 4)], by[("edm", 32)], "nll")
    assert m > 5 * se
    # and 32 evaluations of Heun are close to exact: excess NLL within 5 sigma of the floor's
    h = floors["pair"]["nll_each"]
    e = by[("edm", 32)].nll_each
    assert abs(float(e.mean() - h.mean())) < 5 * math.hypot(float(e.std()) / math.sqrt(600),
                                                            float(h.std()) / math.sqrt(600))


def test_class_chi2_of_exact_samples_is_small():
    mix = GaussianMixture(torch.tensor([[-1.0], [1.0]], dtype=F64), torch.tensor([0.3, 0.7]),
                          0.5)
    x = mix.noised(0.5, EDM()).sample(20000, generator(4, "cpu"))
    # mean at most K - 1 = 1; exceeding 30 has negligible probability under exact sampling
    assert class_chi2(mix, x, 0.5, EDM()) < 30


def test_class_chi2_mean_is_sum_of_responsibility_variances():
    # two-sided: over repeats, E[n sum_k (pi_hat_k - pi_k)^2 / pi_k] = sum_k Var r_k / pi_k,
    # with Var r_k from an independent large sample of responsibilities
    edm, t = EDM(), 0.5
    mix = GaussianMixture(torch.tensor([[-1.0], [1.0]], dtype=F64), torch.tensor([0.3, 0.7]),
                          0.5)
    g = generator(11, "cpu")
    vals = torch.tensor([class_chi2(mix, mix.noised(t, edm).sample(400, g), t, edm)
                         for _ in range(300)], dtype=F64)
    r = mix.component_posterior(mix.noised(t, edm).sample(200000, generator(12, "cpu")),
                                torch.tensor(t, dtype=F64), edm)
    expected = float((r.var(0) / mix.weights).sum())
    assert abs(float(vals.mean()) - expected) < 5 * float(vals.std() / math.sqrt(len(vals)))
    # and it can fail: proportions off by 0.03 shift the mean by up to n * 4.3e-3 = 1.7
    shifted = GaussianMixture(mix.means, torch.tensor([0.33, 0.67]), 0.5)
    vals_s = torch.tensor([class_chi2(mix, shifted.noised(t, edm).sample(400, g), t, edm)
                           for _ in range(300)], dtype=F64)
    assert abs(float(vals_s.mean()) - expected) > 5 * float(vals_s.std() / math.sqrt(300))


def test_validation():
    edm = EDM()
    prof = gaussian_profile(torch.ones(2, dtype=F64), LOG_R)
    with pytest.raises(ValueError, match="steps"):
        uniform_grid(edm, 0, 1.0, 2.0)
    with pytest.raises(ValueError, match="t_min < t_max"):
        log_snr_grid(edm, 3, 2.0, 1.0)
    with pytest.raises(ValueError, match="t_min < t_max"):
        edm_grid(edm, 3, 1.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        uniform_grid(edm, 3, 0.1, math.inf)
    with pytest.raises(ValueError, match="profile"):
        entropic_grid(edm, 3, 0.1, 1.0, None)
    with pytest.raises(ValueError, match="covers"):
        entropic_grid(edm, 3, 0.1, 1e4, prof)
    with pytest.raises(ValueError, match="finite"):
        EntropyProfile(LOG_R[:3], torch.tensor([1.0, math.nan, 1.0]), torch.zeros(3))
    with pytest.raises(ValueError, match="monotone"):
        EntropyProfile(LOG_R[:3], torch.tensor([1.0, -0.5, 1.0]), torch.zeros(3))
    with pytest.raises(ValueError, match="flat"):
        EntropyProfile(LOG_R[:3], torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="increasing"):
        EntropyProfile(LOG_R[:3].flip(0), torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="name"):
        schedule_grid("linear", edm, 3, 0.1, 1.0)
    with pytest.raises(ValueError, match="multiple"):
        steps_for_budget("heun", 5)
    with pytest.raises(ValueError, match="sampler"):
        steps_for_budget("rk4", 4)
