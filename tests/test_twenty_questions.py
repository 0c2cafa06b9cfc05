"""Tests of diffnotes.twenty_questions against closed forms and brute-force enumeration.

Monte Carlo tests are z-tests at 5 standard errors (two-sided false-alarm rate 5.7e-7 per
test for a correct estimator with Gaussian errors) or chi-square tests at alpha = 1e-6, with
fixed seeds: they fail only when the code is wrong (or with that probability).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffnotes.checks import Tally, check_mc, mc_estimate
from diffnotes.device import generator
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM, VP
from diffnotes.twenty_questions import (
    Games,
    binary_entropy,
    bisection_questions,
    box_points,
    check_box_entropy,
    conditional_entropy_bits,
    exact_entropy_trajectory,
    expected_information_gain,
    mask_tail,
    masked_entropy,
    play,
    random_questions,
    sign_question_entropy,
)

F64_ATOL = 1e-12  # exact enumeration in float64: only rounding separates the two sides
ALPHA = 1e-6  # false-alarm rate of the chi-square tests


def cpu(seed: int) -> torch.Generator:
    return generator(seed, device="cpu")


def brute_force_entropy(rows: list[tuple[bool, ...]], n: int) -> float:
    """H_n = sum over answer prefixes of (count/N) log2 count, by plain-Python counting."""
    counts = Counter(row[:n] for row in rows)
    total = len(rows)
    return sum(c / total * math.log2(c) for c in counts.values())


def brute_force_gain(rows: list[tuple[bool, ...]], n: int) -> float:
    """E h2(N+/N_{n-1}) with h2 written out from math.log2 (question n is 1-based)."""
    groups: dict[tuple, list[bool]] = {}
    for row in rows:
        groups.setdefault(row[: n - 1], []).append(row[n - 1])
    total = len(rows)
    out = 0.0
    for members in groups.values():
        p = sum(members) / len(members)
        h = 0.0 if p in (0.0, 1.0) else -p * math.log2(p) - (1 - p) * math.log2(1 - p)
        out += len(members) / total * h
    return out


def all_matrices(n_items: int, n_questions: int):
    for bits in itertools.product([False, True], repeat=n_items * n_questions):
        yield torch.tensor(bits, dtype=torch.bool).reshape(n_items, n_questions)


# --------------------------------------------------------------------------- binary entropy


def test_binary_entropy_values():
    assert binary_entropy(0.0) == 0.0
    assert binary_entropy(1.0) == 0.0
    assert binary_entropy(0.5) == pytest.approx(1.0, abs=F64_ATOL)
    assert binary_entropy(0.25) == pytest.approx(2 - 0.75 * math.log2(3), abs=F64_ATOL)
    t = binary_entropy(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert t.dtype == torch.float64
    assert torch.equal(t, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    assert not torch.signbit(t).any()  # no "-0."


@given(st.floats(min_value=0.0, max_value=1.0))
def test_binary_entropy_properties(p):
    h = binary_entropy(p)
    assert 0.0 <= h <= 1.0 + F64_ATOL
    assert h == pytest.approx(binary_entropy(1.0 - p), abs=1e-9)  # symmetry
    assert h == pytest.approx(scipy.stats.entropy([p, 1.0 - p], base=2), abs=1e-9)


def test_binary_entropy_limits_and_derivative():
    eps = torch.tensor([1e-4, 1e-8, 1e-12], dtype=torch.float64)
    # h2(eps) = eps log2(1/eps) + eps/ln 2 + O(eps^2) (the O term is -eps^2/(2 ln 2) + ...)
    two_terms = eps * torch.log2(1 / eps) + eps / math.log(2)
    # (plus a few ulps of rounding: log1p keeps the eps/ln 2 term accurate)
    assert bool(((binary_entropy(eps) - two_terms).abs() <= eps**2 + 1e-15 * two_terms).all())
    # h2 is maximal at 1/2: finite differences of the tensor version
    p = torch.tensor([0.5 - 1e-3, 0.5, 0.5 + 1e-3], dtype=torch.float64)
    h = binary_entropy(p)
    assert h[1] > h[0] and h[1] > h[2]


# --------------------------------------------------------------------------- strategies


@pytest.mark.parametrize("n_items", [1, 2, 3, 5, 8, 12, 23, 64, 100])
def test_bisection_identifies_every_item_with_near_even_splits(n_items):
    a = bisection_questions(n_items)
    assert a.shape == (n_items, (n_items - 1).bit_length())
    assert a.dtype == torch.bool
    assert len(set(map(tuple, a.tolist()))) == n_items  # all strings distinct
    h = exact_entropy_trajectory(a)
    assert h[0] == pytest.approx(math.log2(n_items), abs=F64_ATOL)
    assert h[-1] == 0.0
    # every split is as even as possible: |N+ - N-| <= 1 in every group at every step
    rows = [tuple(r) for r in a.tolist()]
    for n in range(1, a.shape[1] + 1):
        groups: dict[tuple, list[bool]] = {}
        for row in rows:
            groups.setdefault(row[: n - 1], []).append(row[n - 1])
        for members in groups.values():
            assert abs(2 * sum(members) - len(members)) <= 1


def test_bisection_power_of_two_is_binary_digits():
    a = bisection_questions(16)
    digits = torch.tensor([[(i >> (3 - q)) & 1 for q in range(4)] for i in range(16)]).bool()
    assert torch.equal(a, digits)


def test_random_questions_shape_rate_and_seed():
    a = random_questions(200, 50, 0.3, cpu(1))
    assert a.shape == (200, 50) and a.dtype == torch.bool
    assert torch.equal(a, random_questions(200, 50, 0.3, cpu(1)))
    est = mc_estimate(a.flatten().double())
    check_mc(est, 0.3, label="random_questions rate", verbose=False)
    assert not random_questions(5, 3, 0.0, cpu(0)).any()
    assert random_questions(5, 3, 1.0, cpu(0)).all()


# --------------------------------------------------------------------------- exact entropies


def test_trajectory_and_gain_match_brute_force_on_every_small_strategy():
    for a in itertools.chain(all_matrices(3, 2), all_matrices(4, 2), all_matrices(2, 3)):
        rows = [tuple(r) for r in a.tolist()]
        h = exact_entropy_trajectory(a)
        g = expected_information_gain(a)
        for n in range(a.shape[1] + 1):
            assert h[n].item() == pytest.approx(brute_force_entropy(rows, n), abs=F64_ATOL)
        for n in range(1, a.shape[1] + 1):
            assert g[n - 1].item() == pytest.approx(brute_force_gain(rows, n), abs=F64_ATOL)


@pytest.mark.parametrize("seed", range(5))
def test_trajectory_matches_brute_force_random(seed):
    a = random_questions(37, 9, 0.35, cpu(seed))
    rows = [tuple(r) for r in a.tolist()]
    h = exact_entropy_trajectory(a)
    expected = torch.tensor([brute_force_entropy(rows, n) for n in range(10)],
                            dtype=torch.float64)
    torch.testing.assert_close(h, expected, atol=F64_ATOL, rtol=0)


@pytest.mark.parametrize("seed", range(5))
def test_chain_rule_gain_bound_and_monotonicity(seed):
    a = random_questions(60, 15, 0.2 + 0.1 * seed, cpu(seed))
    h = exact_entropy_trajectory(a)
    g = expected_information_gain(a)  # computed from the splits, never from H
    torch.testing.assert_close(h[:-1] - h[1:], g, atol=F64_ATOL, rtol=0)  # H_{n-1} - H_n
    torch.testing.assert_close(h[0] - h, torch.cat([g.new_zeros(1), g.cumsum(0)]),
                               atol=1e-11, rtol=0)
    assert bool((g >= 0).all()) and bool((g <= 1 + F64_ATOL).all())
    assert h[0] == pytest.approx(math.log2(60), abs=F64_ATOL)


def test_zero_entropy_when_distinguishable_and_not_otherwise():
    a = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).bool()
    assert exact_entropy_trajectory(a).tolist() == pytest.approx([2.0, 1.0, 0.0])
    b = torch.tensor([[0, 0], [0, 0], [1, 0]]).bool()  # two items never separated
    h = exact_entropy_trajectory(b)
    assert h[-1].item() == pytest.approx(2 / 3, abs=F64_ATOL)  # (2/3) log2 2


def test_useless_question_removes_nothing():
    a = torch.zeros(7, 3, dtype=torch.bool)
    assert torch.equal(expected_information_gain(a), torch.zeros(3, dtype=torch.float64))
    h = exact_entropy_trajectory(a)
    torch.testing.assert_close(h, torch.full((4,), math.log2(7), dtype=torch.float64))


def test_integer_answers_accepted():
    a = bisection_questions(6)
    torch.testing.assert_close(exact_entropy_trajectory(a.long()), exact_entropy_trajectory(a))
    torch.testing.assert_close(exact_entropy_trajectory(a.tolist()), exact_entropy_trajectory(a))


# --------------------------------------------------------------------------- masking


def test_mask_tail():
    s = torch.tensor([[1, 0, 1], [0, 0, 1]]).bool()
    y = mask_tail(s, 2)
    assert y.dtype == torch.int8
    assert y.tolist() == [[1, -1, -1], [0, -1, -1]]
    assert mask_tail(s, 0).tolist() == s.to(torch.int8).tolist()
    assert bool((mask_tail(s, 3) == -1).all())


@pytest.mark.parametrize("seed", range(4))
def test_masked_entropy_is_the_reversed_trajectory_and_non_decreasing(seed):
    a = random_questions(50, 12, 0.3, cpu(seed))
    m = masked_entropy(a)
    torch.testing.assert_close(m, exact_entropy_trajectory(a).flip(0), atol=F64_ATOL, rtol=0)
    assert bool((m[1:] - m[:-1] >= -F64_ATOL).all())
    assert m[-1] == pytest.approx(math.log2(50), abs=F64_ATOL)


# --------------------------------------------------------------------------- playing


@given(n_items=st.integers(1, 12), n_questions=st.integers(1, 6), n_games=st.integers(1, 7),
       oracle=st.sampled_from(["lazy", "truthful"]), seed=st.integers(0, 2**31))
@settings(max_examples=40, deadline=None)
def test_play_shapes_and_consistency(n_items, n_questions, n_games, oracle, seed):
    a = random_questions(n_items, n_questions, 0.5, cpu(seed))
    games = play(a, n_games, cpu(seed + 1), oracle=oracle)
    assert isinstance(games, Games)
    assert games.remaining.shape == (n_games, n_questions + 1)
    assert games.answers.shape == (n_games, n_questions)
    assert games.leaf.shape == (n_games,)
    assert bool((games.remaining[:, 0] == n_items).all())
    assert bool((games.remaining[:, 1:] <= games.remaining[:, :-1]).all())
    assert bool((games.remaining >= 1).all())  # the lazy oracle never contradicts itself
    # the counts are those of the answer strings, recounted by brute force
    rows = [tuple(r) for r in a.tolist()]
    for s, rem, leaf in zip(games.answers.tolist(), games.remaining.tolist(),
                            games.leaf.tolist(), strict=True):
        for n in range(n_questions + 1):
            assert rem[n] == sum(row[:n] == tuple(s[:n]) for row in rows)
        assert leaf == min(i for i, row in enumerate(rows) if row == tuple(s))


def _law_of_log_counts(answers, n_games, seed, oracle):
    games = play(answers, n_games, cpu(seed), oracle=oracle)
    return games, torch.log2(games.remaining.double())


@pytest.mark.parametrize("oracle", ["lazy", "truthful"])
def test_play_monte_carlo_matches_exact_trajectory(oracle):
    # 5 sigma per step: false-alarm rate <= 11 * 5.7e-7 ~ 6e-6 for this test
    a = random_questions(90, 10, 0.3, cpu(7))
    exact = exact_entropy_trajectory(a)
    _, logs = _law_of_log_counts(a, 20_000, 11, oracle)
    for n in range(a.shape[1] + 1):
        est = mc_estimate(logs[:, n])
        if est.stderr == 0.0:  # every game saw the same count: the law is a point mass
            assert est.value == pytest.approx(exact[n].item(), abs=F64_ATOL)
        else:
            check_mc(est, exact[n].item(), label=f"H_{n}", verbose=False)


def test_play_realised_gain_matches_expected_gain():
    # mean of log2 N_{n-1} - log2 N_n against the exact gain; 5 sigma z-test per step
    a = random_questions(90, 10, 0.25, cpu(3))
    gain = expected_information_gain(a)
    _, logs = _law_of_log_counts(a, 20_000, 5, "lazy")
    for n in range(1, a.shape[1] + 1):
        check_mc(mc_estimate(logs[:, n - 1] - logs[:, n]), gain[n - 1].item(),
                 label=f"gain_{n}", verbose=False)


def test_lazy_and_truthful_oracles_agree():
    a = random_questions(40, 8, 0.3, cpu(21))
    lazy, lazy_logs = _law_of_log_counts(a, 20_000, 22, "lazy")
    true, true_logs = _law_of_log_counts(a, 20_000, 23, "truthful")
    # two-sample z-tests of the mean log-count per step (5 sigma, skipping point masses)
    for n in range(1, a.shape[1] + 1):
        x, y = mc_estimate(lazy_logs[:, n]), mc_estimate(true_logs[:, n])
        if x.stderr == 0.0 and y.stderr == 0.0:
            assert x.value == y.value
        else:
            check_mc(x, y, label=f"lazy vs truthful H_{n}", verbose=False)
    # chi-square homogeneity test of the final answer strings, false-alarm rate ALPHA
    leaves = sorted(set(lazy.leaf.tolist()) | set(true.leaf.tolist()))
    table = torch.tensor([[int((lazy.leaf == v).sum()) for v in leaves],
                          [int((true.leaf == v).sum()) for v in leaves]])
    result = scipy.stats.chi2_contingency(table.numpy())
    assert result.pvalue > ALPHA


def test_lazy_oracle_leaf_law_is_group_size_over_n():
    # chi-square goodness of fit of the final group against |group| / N, false-alarm ALPHA
    a = random_questions(30, 6, 0.4, cpu(31))
    games = play(a, 30_000, cpu(32), oracle="lazy")
    rows = [tuple(r) for r in a.tolist()]
    sizes = Counter(rows)
    reps = {row: min(i for i, r in enumerate(rows) if r == row) for row in sizes}
    observed = [int((games.leaf == reps[row]).sum()) for row in sizes]
    expected = [30_000 * sizes[row] / 30 for row in sizes]
    assert sum(observed) == 30_000
    assert scipy.stats.chisquare(observed, expected).pvalue > ALPHA


def test_play_reproducible():
    a = bisection_questions(23)
    g1 = play(a, 100, cpu(0))
    g2 = play(a, 100, cpu(0))
    assert torch.equal(g1.answers, g2.answers) and torch.equal(g1.leaf, g2.leaf)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: binary_entropy(-0.1),
        lambda: binary_entropy(1.5),
        lambda: binary_entropy(float("nan")),
        lambda: binary_entropy("0.5"),
        lambda: binary_entropy(torch.tensor([0.2, 1.2])),
        lambda: binary_entropy(torch.tensor([0.2, float("inf")])),
        lambda: bisection_questions(0),
        lambda: bisection_questions(2.0),
        lambda: bisection_questions(True),
        lambda: random_questions(0, 3, 0.5, cpu(0)),
        lambda: random_questions(3, 0, 0.5, cpu(0)),
        lambda: random_questions(3, 3, 1.5, cpu(0)),
        lambda: random_questions(3, 3, 0.5, 0),
        lambda: exact_entropy_trajectory(torch.zeros(3, dtype=torch.bool)),
        lambda: exact_entropy_trajectory(torch.zeros(0, 2, dtype=torch.bool)),
        lambda: exact_entropy_trajectory(torch.zeros(3, 2)),
        lambda: exact_entropy_trajectory(torch.tensor([[0, 2], [1, 0]])),
        lambda: exact_entropy_trajectory("abc"),
        lambda: expected_information_gain(torch.ones(2, 2, 2, dtype=torch.bool)),
        lambda: masked_entropy(torch.rand(3, 3)),
        lambda: mask_tail(torch.zeros(2, 3, dtype=torch.bool), 4),
        lambda: mask_tail(torch.zeros(2, 3, dtype=torch.bool), -1),
        lambda: mask_tail(torch.zeros(2, 3, dtype=torch.bool), 1.0),
        lambda: play(bisection_questions(4), 0, cpu(0)),
        lambda: play(bisection_questions(4), 10, cpu(0), oracle="honest"),
        lambda: play(bisection_questions(4), 10, 0),
        lambda: play(torch.zeros(4), 10, cpu(0)),
        lambda: box_points([]),
        lambda: box_points([1.0, 0.0]),
        lambda: box_points([[1.0]]),
        lambda: sign_question_entropy(-1.0),
        lambda: sign_question_entropy(1.0, n_grid=100),
        lambda: conditional_entropy_bits(GaussianMixture(torch.zeros(2, 1), None, 1.0), 1.0,
                                         EDM(), 10, cpu(0)),
        lambda: conditional_entropy_bits(GaussianMixture.delta(box_points([1.0])), 1.0, EDM(),
                                         0, cpu(0)),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_error_messages_name_the_argument():
    with pytest.raises(ValueError, match="answers"):
        exact_entropy_trajectory(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="n_games"):
        play(bisection_questions(4), -1, cpu(0))
    with pytest.raises(ValueError, match="oracle"):
        play(bisection_questions(4), 5, cpu(0), oracle="honest")
    with pytest.raises(ValueError, match="generator"):
        random_questions(3, 3, 0.5, None)
    with pytest.raises(ValueError, match="p "):
        binary_entropy(2.0)
    with pytest.raises(ValueError, match="k "):
        mask_tail(torch.zeros(2, 3, dtype=torch.bool), 9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_play_on_cuda_matches_exact():
    a = bisection_questions(23)
    games = play(a, 20_000, generator(0, device="cuda"))
    assert games.remaining.device.type == "cuda"
    logs = torch.log2(games.remaining.double().cpu())
    exact = exact_entropy_trajectory(a)
    for n in range(1, a.shape[1]):
        check_mc(mc_estimate(logs[:, n]), exact[n].item(), label=f"H_{n}", verbose=False)


# --------------------------------------------------------------------------- bits under noise


def _sign_entropy_scipy(u: float) -> float:
    """H_b(u) = E h2(sigmoid(2u^2 + 2u eps)) by adaptive quadrature (scipy), in bits."""
    import numpy as np
    from scipy import integrate

    def integrand(e):
        z = 2 * u * u + 2 * u * e
        sig = 1 / (1 + np.exp(-np.clip(z, -700, 700)))
        h = sig * np.logaddexp(0, -z) + (1 - sig) * np.logaddexp(0, z)
        return scipy.stats.norm.pdf(e) * h / math.log(2)

    return integrate.quad(integrand, -40, 40, points=[-u, 0.0], limit=400, epsabs=1e-14,
                          epsrel=1e-12)[0]


def test_box_points_are_the_answer_strings():
    pts = box_points([4.0, 2.0, 1.0])
    assert pts.shape == (8, 3) and pts.dtype == torch.float64
    signs = (pts > 0).long()
    # row k is the binary expansion of k, most significant first
    assert signs.tolist() == [[(k >> (2 - i)) & 1 for i in range(3)] for k in range(8)]
    assert torch.equal(pts.abs(), torch.tensor([4.0, 2.0, 1.0], dtype=torch.float64).expand(8, 3))


@pytest.mark.parametrize("u", [0.0, 1e-3, 0.05, 0.3, 1.0, 2.0, 3.0, 6.0])
def test_sign_question_entropy_matches_adaptive_quadrature(u):
    ref = 1.0 if u == 0 else _sign_entropy_scipy(u)
    assert abs(float(sign_question_entropy(u)) - ref) < 1e-11


def test_sign_question_entropy_limits_and_bounds():
    u = torch.logspace(-3, 1.5, 200, dtype=torch.float64)
    h = sign_question_entropy(u)
    assert bool((h[1:] < h[:-1]).all())                      # strictly decreasing in u
    lower = 1 - 0.5 * torch.log2(1 + u**2)                   # 1 - Gaussian-channel capacity
    upper = binary_entropy(torch.special.ndtr(-u))           # Fano
    assert bool((h >= lower - 1e-12).all()) and bool((h <= upper + 1e-12).all())
    assert 1 - float(h[0]) < 1e-6 and float(h[-1]) < 1e-60


def test_conditional_entropy_bits_one_point_and_limits():
    one = GaussianMixture.delta(torch.zeros(1, 2))
    est = conditional_entropy_bits(one, 1.0, EDM(), 100, cpu(0))
    assert est.value == 0.0 and est.stderr == 0.0
    eight = GaussianMixture.delta(box_points([1.0, 1.0, 1.0]))
    assert conditional_entropy_bits(eight, 1e-2, EDM(), 1000, cpu(1)).value < 1e-12
    assert 3 - conditional_entropy_bits(eight, 1e4, EDM(), 1000, cpu(2)).value < 1e-6


@pytest.mark.parametrize("process", [EDM(), VP()], ids=["EDM", "VP"])
def test_box_entropy_is_the_sum_of_question_entropies(process):
    tally = Tally("box")
    got = check_box_entropy([2.0, 0.5], [0.2, 0.5, 1.0, 2.0], process, 20_000, cpu(3), tally)
    assert len(got) + len(tally.skipped) == 4 and tally.n_mc == len(got) >= 3


@pytest.mark.parametrize(
    "wrong",
    [
        # nats instead of bits
        lambda a, t: float(sign_question_entropy(a / t).sum()) * math.log(2),
        # the separation 2a_i taken for the half-width a_i
        lambda a, t: float(sign_question_entropy(2 * a / t).sum()),
        # the three questions taken as one: the entropy of the coarsest alone
        lambda a, t: float(sign_question_entropy(a.max() / t)) * len(a),
    ],
    ids=["nats", "separation", "one-question"],
)
def test_box_entropy_check_fails_on_a_wrong_formula(wrong):
    scales, times = [10.0, 1.0, 0.1], [0.1, 1.0, 10.0]
    check_box_entropy(scales, times, EDM(), 20_000, cpu(4), Tally("right"))  # passes
    with pytest.raises(AssertionError, match="outside 5σ"):
        check_box_entropy(scales, times, EDM(), 20_000, cpu(4), Tally("wrong"), reference=wrong)


def test_box_entropy_check_skips_unresolved_times():
    tally = Tally("box")
    got = check_box_entropy([1.0], [0.1, 1.0], EDM(), 1000, cpu(5), tally)
    assert list(got) == [1.0] and len(tally.skipped) == 1 and "rare-event" in tally.skipped[0]


def test_masking_increments_are_the_reversed_gains_and_not_the_gains():
    """The masking lemma as the book checks it: M_(k+1) - M_k = G_(Q-k), not G_(k+1)."""
    a = random_questions(40, 12, 0.3, cpu(6))
    up = masked_entropy(a).diff()
    gains = expected_information_gain(a)
    assert torch.allclose(up, gains.flip(0), atol=F64_ATOL, rtol=0)
    assert not torch.allclose(up, gains, atol=1e-3, rtol=0)
