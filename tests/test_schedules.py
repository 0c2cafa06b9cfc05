"""diffnotes.schedules: closed forms, quadrature, invariance across processes, validation."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from diffnotes.device import generator
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM, VE, VP
from diffnotes.samplers import probability_flow, reverse_sde
from diffnotes.schedules import (
    SCHEDULES,
    EntropyProfile,
    class_chi2,
    compare_schedules,
    edm_grid,
    entropic_grid,
    gaussian_entropic_r,
    gaussian_profile,
    integrate_rows,
    log_snr_grid,
    loss_profile_samples,
    mixture_profile_samples,
    noise_ratio,
    probability_flow_euler,
    rescaled_entropic_grid,
    schedule_grid,
    sliced_wasserstein,
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


@pytest.mark.parametrize("name", SCHEDULES)
def test_same_points_in_snr_for_every_process(name):
    prof = gaussian_profile(torch.tensor([0.5, 2.0, 8.0], dtype=F64), LOG_R)
    rs = []
    for proc in PROCS:
        if name == "uniform":
            continue
        lo, hi = _ends(proc)
        rs.append(noise_ratio(schedule_grid(name, proc, 7, lo, hi, prof), proc))
    for r in rs[1:]:
        torch.testing.assert_close(r, rs[0], rtol=1e-9, atol=0)


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
    # more steps never hurt the EDM schedule here by more than noise
    a, b = by[("edm", 4)].sw, by[("edm", 32)].sw
    assert b[0] <= a[0] + 5 * math.hypot(a[1], b[1])
    assert floors["pair"]["chi2"][0] >= 0


def test_class_chi2_of_exact_samples_is_small():
    mix = GaussianMixture(torch.tensor([[-1.0], [1.0]], dtype=F64), torch.tensor([0.3, 0.7]),
                          0.5)
    x = mix.noised(0.5, EDM()).sample(20000, generator(4, "cpu"))
    # mean at most K - 1 = 1; exceeding 30 has negligible probability under exact sampling
    assert class_chi2(mix, x, 0.5, EDM()) < 30


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
        schedule_grid("cosine", edm, 3, 0.1, 1.0)
    with pytest.raises(ValueError, match="multiple"):
        steps_for_budget("heun", 5)
    with pytest.raises(ValueError, match="sampler"):
        steps_for_budget("rk4", 4)
