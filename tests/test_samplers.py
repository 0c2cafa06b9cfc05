"""Samplers: exact Gaussian flows, and the law of generated samples by a statistical test."""

import math

import pytest
import torch
from scipy import stats

from diffnotes import EDM, VP, GaussianMixture, probability_flow, reverse_sde, time_grid

F64 = torch.float64
MIX = GaussianMixture(torch.tensor([[-2.0, 0.0], [1.5, 1.0]]), torch.tensor([0.3, 0.7]),
                      torch.tensor([0.05, 0.2]))


def test_time_grid():
    for spacing in ["geometric", "linear", "edm"]:
        ts = time_grid(10.0, 0.01, 50, spacing=spacing)
        assert ts.shape == (51,) and float(ts[0]) == 10.0 and float(ts[-1]) == 0.01
        assert bool((ts[1:] < ts[:-1]).all())
    with pytest.raises(ValueError, match="t_min"):
        time_grid(1.0, 2.0, 10)
    with pytest.raises(ValueError, match="spacing"):
        time_grid(1.0, 0.1, 10, spacing="cosine")
    with pytest.raises(ValueError, match="steps"):
        time_grid(1.0, 0.1, 0)


def test_flow_of_a_gaussian_is_exact_and_heun_is_second_order():
    # data N(0, v): the EDM probability-flow map is x_t -> x_t * sqrt((v + t1^2)/(v + t0^2))
    v = 0.5
    gauss = GaussianMixture(torch.zeros(1, 1), None, torch.tensor([v]))
    x = torch.linspace(-3, 3, 6, dtype=F64)[:, None]
    exact = x * math.sqrt((v + 0.01) / (v + 25.0))
    errs = []
    for steps in [100, 400]:
        out = probability_flow(lambda y, t: gauss.score(y, t, EDM()), EDM(), x,
                               time_grid(5.0, 0.1, steps), return_trajectory=False)
        errs.append(float(((out - exact) / exact).abs().max()))
    assert errs[1] < 3e-5
    order = math.log(errs[0] / errs[1]) / math.log(4.0)
    assert 1.8 < order < 2.2, order


@pytest.mark.parametrize("proc,t_max,steps", [(EDM(), 40.0, 400), (VP(), 6.0, 800)],
                         ids=["EDM", "VP"])
def test_generated_law_ks(proc, t_max, steps):
    # Start from the exact p_T, integrate to t_min, and compare a 1-D projection with the exact
    # CDF of p_{t_min} by a Kolmogorov-Smirnov test at false-alarm rate 1e-5.
    g = torch.Generator().manual_seed(0)
    n, t_min = 20_000, 0.02
    x_T = MIX.noised(t_max, proc).sample(n, g)
    ts = time_grid(t_max, t_min, steps, spacing="edm")
    u = torch.tensor([0.6, 0.8], dtype=F64)
    exact = MIX.noised(t_min, proc).project(u)
    score = lambda y, t: MIX.score(y, t, proc)  # noqa: E731
    for x in [probability_flow(score, proc, x_T, ts, return_trajectory=False),
              reverse_sde(score, proc, x_T, ts, g, return_trajectory=False)]:
        p = stats.kstest((x @ u).numpy(), lambda v: exact.cdf(torch.as_tensor(v)).numpy()).pvalue
        assert p > 1e-5, p


def test_trajectory_shapes_and_seeds():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, dtype=F64, generator=g)
    ts = time_grid(3.0, 0.1, 10)
    score = lambda y, t: MIX.score(y, t, EDM())  # noqa: E731
    tr = reverse_sde(score, EDM(), x, ts, torch.Generator().manual_seed(2))
    assert tr.shape == (11, 5, 2) and torch.equal(tr[0], x)
    tr2 = reverse_sde(score, EDM(), x, ts, torch.Generator().manual_seed(2))
    assert torch.equal(tr, tr2)
    assert probability_flow(score, EDM(), x, ts).shape == (11, 5, 2)


def test_bad_grids_raise():
    x = torch.zeros(3, 2, dtype=F64)
    score = lambda y, t: -y  # noqa: E731
    with pytest.raises(ValueError, match="strictly decreasing"):
        probability_flow(score, EDM(), x, torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="positive"):
        reverse_sde(score, EDM(), x, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="at least two"):
        reverse_sde(score, EDM(), x, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="x_start"):
        reverse_sde(score, EDM(), torch.zeros(3), torch.tensor([1.0, 0.5]))
