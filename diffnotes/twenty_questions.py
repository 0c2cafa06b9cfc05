r"""Twenty Questions: generation as answering binary questions (paper eqs. 1-4, chapter 1).

An item :math:`x` is drawn uniformly from :math:`N` items. A *strategy* of :math:`Q` questions
is a boolean attribute matrix ``answers`` of shape ``(N, Q)``: ``answers[i, q]`` is item
:math:`i`'s truthful answer to question :math:`q`. After :math:`n` answers the interrogator
knows that :math:`x` is one of the :math:`N_n` items that share the first :math:`n` answers, and
her uncertainty is the conditional entropy

.. math::

    H_n = \mathbb{E} \log_2 N_n = \sum_{g} \frac{|g|}{N} \log_2 |g| ,

the sum running over the groups :math:`g` of items that share the first :math:`n` answers.

Everything here is exact enumeration over the ``N`` items (in float64) except :func:`play`,
which simulates a batch of games with a truthful or a *lazy* oracle. The lazy oracle never
chooses an item: it answers question :math:`n` "yes" with probability
:math:`N(a_{<n}, \text{yes}) / N(a_{<n})`, and the interrogator cannot tell the difference.
Device follows the ``answers`` tensor (or the ``generator`` for random functions).

The last part links the game to diffusion: :math:`2^m` equally likely points on the corners of a
box :math:`\prod_i \{\pm a_i\}`, noised by a forward process, carry :math:`m` bits, one per
coordinate, and :math:`H(x_0 \mid x_t)` in bits rises from 0 to :math:`m` as the noise grows
(:func:`box_points`, :func:`conditional_entropy_bits`, :func:`sign_question_entropy`,
:func:`check_box_entropy`).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch

from ._validate import as_time, check_positive_int
from .checks import MCEstimate, Tally, mc_estimate
from .mixtures import GaussianMixture
from .processes import ForwardProcess

__all__ = [
    "Games",
    "binary_entropy",
    "bisection_questions",
    "box_points",
    "check_box_entropy",
    "conditional_entropy_bits",
    "exact_entropy_trajectory",
    "expected_information_gain",
    "mask_tail",
    "masked_entropy",
    "play",
    "random_questions",
    "sign_question_entropy",
]

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------- validation


def _as_answers(answers) -> torch.Tensor:
    """Return ``answers`` as a bool tensor of shape ``(N, Q)``, ``N >= 1``, ``Q >= 0``."""
    if not isinstance(answers, torch.Tensor):
        try:
            answers = torch.as_tensor(answers)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"answers must be a boolean tensor of shape (N, Q); got {type(answers).__name__}"
            ) from err
    if answers.ndim != 2 or answers.shape[0] < 1:
        raise ValueError(
            f"answers must have shape (N, Q) with N >= 1 items; got shape {tuple(answers.shape)}"
        )
    if answers.dtype == torch.bool:
        return answers
    if answers.is_floating_point() or answers.is_complex():
        raise ValueError(f"answers must be boolean (or integer 0/1); got dtype {answers.dtype}")
    if answers.numel() and not bool(((answers == 0) | (answers == 1)).all()):
        raise ValueError("answers must contain only 0/1 (or False/True) entries")
    return answers.to(torch.bool)


def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator (see diffnotes.generator); "
            f"got {type(generator).__name__}"
        )
    return generator


def _check_probability(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise ValueError(f"{name} must be a probability (a float in [0, 1]); got {p!r}")
    p = float(p)
    if not (0.0 <= p <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1]; got {p}")
    return p


# --------------------------------------------------------------------------- the split


def binary_entropy(p):
    r"""Binary entropy in bits, :math:`h_2(p) = -p\log_2 p - (1-p)\log_2(1-p)`.

    The expected number of bits a question removes when it splits the remaining items in
    the fraction :math:`p : 1-p` (paper eq. 2, chapter 1). :math:`h_2(0) = h_2(1) = 0`
    (by continuity, :math:`0 \log 0 = 0`) and :math:`h_2(1/2) = 1` is the maximum.

    Parameters
    ----------
    p : float or tensor of any shape, entries in ``[0, 1]``.

    Returns
    -------
    float for a float ``p``; otherwise a floating tensor of ``p``'s shape (integer tensors are
    promoted to float64).
    """
    if isinstance(p, torch.Tensor):
        t = p if p.is_floating_point() else p.to(torch.float64)
        if not bool(torch.isfinite(t).all()):
            raise ValueError("p must be finite (no NaN or inf)")
        if bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"p must lie in [0, 1]; got entries in [{float(t.min()):.3g}, "
                             f"{float(t.max()):.3g}]")
        # log1p keeps full relative precision for small p; "0.0 -" avoids printing "-0."
        return 0.0 - (torch.xlogy(t, t) + torch.special.xlog1py(1 - t, -t)) / _LN2
    p = _check_probability("p", p)
    return float(binary_entropy(torch.tensor(p, dtype=torch.float64)))


# --------------------------------------------------------------------------- strategies


def bisection_questions(n_items: int, *, device: torch.device | str | None = None
                        ) -> torch.Tensor:
    r"""The bisection strategy: every question splits every group as evenly as possible.

    Items are indexed :math:`0, \dots, N-1`. A group is an index range :math:`[lo, hi)`; the
    question asks "is :math:`i \ge lo + \lceil (hi - lo)/2 \rceil`?", so a group of :math:`m`
    items splits into :math:`\lceil m/2 \rceil` ("no") and :math:`\lfloor m/2 \rfloor` ("yes").
    For :math:`N = 2^Q` these are the binary digits of :math:`i`, most significant first.
    :math:`Q = \lceil \log_2 N \rceil` questions identify every item (chapter 1).

    Parameters
    ----------
    n_items : number of items ``N >= 1``.
    device : where to build the tensor (default CPU).

    Returns
    -------
    answers : bool tensor of shape ``(N, ceil(log2 N))``.
    """
    n = check_positive_int("n_items", n_items)
    n_questions = (n - 1).bit_length()  # = ceil(log2 n), exactly
    idx = torch.arange(n, device=device)
    lo = torch.zeros_like(idx)
    hi = torch.full_like(idx, n)
    out = torch.empty((n, n_questions), dtype=torch.bool, device=idx.device)
    for q in range(n_questions):
        mid = lo + (hi - lo + 1) // 2
        yes = idx >= mid
        out[:, q] = yes
        lo = torch.where(yes, mid, lo)
        hi = torch.where(yes, hi, mid)
    return out


def random_questions(n_items: int, n_questions: int, p: float, generator: torch.Generator
                     ) -> torch.Tensor:
    r"""A random strategy: each item has each attribute independently with probability ``p``.

    ``answers[i, q] ~ Bernoulli(p)``. A question then splits a large group roughly in the
    fraction :math:`p : 1-p` and removes about :math:`h_2(p) \le 1` bits (chapter 1).

    Parameters
    ----------
    n_items : ``N >= 1``.
    n_questions : ``Q >= 1``.
    p : probability in ``[0, 1]`` that an attribute is true.
    generator : the source of randomness; the result lies on its device.

    Returns
    -------
    answers : bool tensor of shape ``(N, Q)``.
    """
    n = check_positive_int("n_items", n_items)
    q = check_positive_int("n_questions", n_questions)
    p = _check_probability("p", p)
    g = _check_generator(generator)
    u = torch.rand((n, q), generator=g, dtype=torch.float64, device=g.device)
    return u < p


# --------------------------------------------------------------------------- exact entropies


def _prefix_labels(answers: torch.Tensor) -> torch.Tensor:
    """Group label of every item after ``n`` answers, shape ``(N, Q+1)``.

    Items share a label at step ``n`` iff they share their first ``n`` answers; labels are
    ``0..G_n-1``. Built by relabelling (label, answer) pairs, so no integer overflows.
    """
    n_items, n_questions = answers.shape
    labels = torch.zeros((n_items, n_questions + 1), dtype=torch.long, device=answers.device)
    for n in range(1, n_questions + 1):
        key = 2 * labels[:, n - 1] + answers[:, n - 1].long()
        labels[:, n] = torch.unique(key, return_inverse=True)[1]
    return labels


def _group_sizes(labels: torch.Tensor) -> torch.Tensor:
    """Size of each item's group, same shape as ``labels`` (one column per step)."""
    out = torch.empty_like(labels)
    for n in range(labels.shape[1]):
        out[:, n] = torch.bincount(labels[:, n])[labels[:, n]]
    return out


def exact_entropy_trajectory(answers) -> torch.Tensor:
    r"""The interrogator's conditional entropy :math:`H_n = \mathbb{E}\log_2 N_n`, exactly.

    .. math::

        H_n = H(x \mid a_1, \dots, a_n) = \sum_{g} \frac{|g|}{N}\log_2 |g|
            = \frac{1}{N}\sum_{i=1}^{N} \log_2 |g_n(i)| ,

    where :math:`g_n(i)` is the group of items that answer the first :math:`n` questions as
    item :math:`i` does (paper eq. 1, chapter 1). :math:`H_0 = \log_2 N`, and :math:`H_Q = 0`
    when the answers identify every item. Exact enumeration, accumulated in float64.

    Parameters
    ----------
    answers : bool tensor of shape ``(N, Q)``.

    Returns
    -------
    H : float64 tensor of shape ``(Q + 1,)``, in bits.
    """
    a = _as_answers(answers)
    sizes = _group_sizes(_prefix_labels(a))
    return torch.log2(sizes.to(torch.float64)).mean(dim=0)


def expected_information_gain(answers) -> torch.Tensor:
    r"""Expected bits removed by each question, :math:`\mathbb{E}\, h_2(N^+_n / N_{n-1})`.

    If the :math:`N_{n-1}` items still possible split into :math:`N^+_n` "yes" and
    :math:`N^-_n` "no" items, question :math:`n` removes on average
    :math:`h_2(N^+_n / N_{n-1})` bits (paper eq. 2, chapter 1); averaging over the uniform item
    :math:`x` gives

    .. math::

        G_n = \frac{1}{N}\sum_{i=1}^N h_2\!\left(\frac{N^+_n(i)}{N_{n-1}(i)}\right)
            = H_{n-1} - H_n .

    Computed from the splits alone (it never forms :math:`H_n`), in float64.

    Parameters
    ----------
    answers : bool tensor of shape ``(N, Q)``.

    Returns
    -------
    gain : float64 tensor of shape ``(Q,)``, each entry in ``[0, 1]`` bits.
    """
    a = _as_answers(answers)
    labels = _prefix_labels(a)
    n_questions = a.shape[1]
    gain = torch.empty(n_questions, dtype=torch.float64, device=a.device)
    for n in range(1, n_questions + 1):
        g = labels[:, n - 1]
        size = torch.bincount(g).to(torch.float64)
        yes = torch.bincount(g[a[:, n - 1]], minlength=size.shape[0]).to(torch.float64)
        gain[n - 1] = binary_entropy(yes / size)[g].mean()
    return gain


# --------------------------------------------------------------------------- the forward process


def mask_tail(strings, k: int) -> torch.Tensor:
    r"""The masking forward process: hide the last ``k`` answers of each answer string.

    :math:`y_k = (a_1, \dots, a_{Q-k}, *, \dots, *)`, with the mask :math:`*` written as
    ``-1``. The map :math:`a \mapsto y_k` is deterministic and, for :math:`k \ge 1`, not
    injective: it destroys information (paper eq. 3, chapter 1).

    Parameters
    ----------
    strings : bool (or 0/1 integer) tensor of shape ``(M, Q)``.
    k : number of masked answers, ``0 <= k <= Q``.

    Returns
    -------
    y : int8 tensor of shape ``(M, Q)`` with entries in ``{0, 1, -1}``.
    """
    s = _as_answers(strings)
    n_questions = s.shape[1]
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n_questions:
        raise ValueError(f"k must be an integer in [0, {n_questions}]; got {k!r}")
    y = s.to(torch.int8)
    if k:
        y[:, n_questions - k:] = -1
    return y


def masked_entropy(answers) -> torch.Tensor:
    r"""Conditional entropy of the item given its masked answer string, for each mask length.

    .. math::

        M_k = H(x \mid y_k) = \sum_{y} P(y_k = y)\,\log_2 \#\{i : y_k(i) = y\},
        \qquad k = 0, \dots, Q,

    computed by grouping the masked strings :func:`mask_tail` of all items (not from
    :func:`exact_entropy_trajectory`). Masking is a function of the string, so
    :math:`M_k` is non-decreasing in :math:`k`; masking :math:`k` answers leaves exactly
    :math:`Q-k` answered, so :math:`M_k = H_{Q-k}` (paper eq. 3, chapter 1). Float64.

    Parameters
    ----------
    answers : bool tensor of shape ``(N, Q)``.

    Returns
    -------
    M : float64 tensor of shape ``(Q + 1,)``, in bits; ``M[0] = H_Q``, ``M[Q] = log2 N``.
    """
    a = _as_answers(answers)
    n_items, n_questions = a.shape
    if n_questions == 0:  # no answers, nothing to mask (torch.unique rejects width 0)
        return torch.full((1,), math.log2(n_items), dtype=torch.float64, device=a.device)
    out = torch.empty(n_questions + 1, dtype=torch.float64, device=a.device)
    for k in range(n_questions + 1):
        y = mask_tail(a, k)
        _, inverse, counts = torch.unique(y, dim=0, return_inverse=True, return_counts=True)
        out[k] = torch.log2(counts[inverse].to(torch.float64)).mean()
    return out


# --------------------------------------------------------------------------- playing


class Games(NamedTuple):
    r"""A batch of games (see :func:`play`).

    Attributes
    ----------
    remaining : int64 tensor ``(n_games, Q + 1)``: :math:`N_n`, the items still possible after
        ``n`` answers (``remaining[:, 0] = N``).
    answers : bool tensor ``(n_games, Q)``: the answer strings.
    leaf : int64 tensor ``(n_games,)``: the smallest index among the items consistent with
        all ``Q`` answers (the item itself when the questions identify every item).
    """

    remaining: torch.Tensor
    answers: torch.Tensor
    leaf: torch.Tensor


def play(answers, n_games: int, generator: torch.Generator,
         oracle: Literal["lazy", "truthful"] = "lazy") -> Games:
    r"""Play ``n_games`` independent games of Twenty Questions with the strategy ``answers``.

    * ``oracle="truthful"``: draw :math:`x` uniformly from the :math:`N` items, then answer
      every question truthfully, :math:`a_n = \text{answers}[x, n]`.
    * ``oracle="lazy"``: never choose an item; answer question :math:`n` "yes" with probability

      .. math::

          P(a_n = 1 \mid a_{<n}) = \frac{N(a_{<n}, 1)}{N(a_{<n})},

      where :math:`N(a_{\le n})` counts the items consistent with the answers so far. This is
      a Markov chain on answer prefixes whose law equals the truthful one, since the product
      telescopes to :math:`N(a_{\le n})/N` (paper eq. 4, chapter 1).

    Batched over games; the only Python loop runs over the ``Q`` questions.

    Parameters
    ----------
    answers : bool tensor of shape ``(N, Q)``, the strategy.
    n_games : number of games, ``>= 1``.
    generator : the source of randomness; the games run on its device.
    oracle : ``"lazy"`` or ``"truthful"``.

    Returns
    -------
    Games
        ``remaining`` ``(n_games, Q+1)``, ``answers`` ``(n_games, Q)``, ``leaf`` ``(n_games,)``.
    """
    g = _check_generator(generator)
    a = _as_answers(answers).to(g.device)
    n_games = check_positive_int("n_games", n_games)
    if oracle not in ("lazy", "truthful"):
        raise ValueError(f"oracle must be 'lazy' or 'truthful'; got {oracle!r}")
    n_items, n_questions = a.shape
    labels = _prefix_labels(a)  # (N, Q+1): the group (answer prefix) of each item
    if oracle == "truthful":
        x = torch.randint(n_items, (n_games,), generator=g, device=g.device)
        path = labels[x]  # (n_games, Q+1)
        strings = a[x]
    else:
        path = torch.zeros((n_games, n_questions + 1), dtype=torch.long, device=g.device)
        strings = torch.empty((n_games, n_questions), dtype=torch.bool, device=g.device)
        for n in range(1, n_questions + 1):
            prev, yes_i = labels[:, n - 1], a[:, n - 1]
            size = torch.bincount(prev).to(torch.float64)  # N(a_<n) for every prefix
            yes = torch.bincount(prev[yes_i], minlength=size.shape[0]).to(torch.float64)
            child = torch.full((size.shape[0], 2), -1, dtype=torch.long, device=g.device)
            child[prev, yes_i.long()] = labels[:, n]  # prefix + answer -> longer prefix
            here = path[:, n - 1]
            u = torch.rand(n_games, generator=g, dtype=torch.float64, device=g.device)
            strings[:, n - 1] = u < yes[here] / size[here]
            path[:, n] = child[here, strings[:, n - 1].long()]
    remaining = torch.empty_like(path)
    for n in range(n_questions + 1):
        remaining[:, n] = torch.bincount(labels[:, n])[path[:, n]]
    last = labels[:, n_questions]
    first_item = torch.full((int(last.max()) + 1,), n_items, dtype=torch.long, device=g.device)
    first_item = first_item.scatter_reduce(0, last, torch.arange(n_items, device=g.device),
                                           reduce="amin")
    return Games(remaining, strings, first_item[path[:, n_questions]])


# --------------------------------------------------------------------------- bits in noise


def box_points(scales) -> torch.Tensor:
    r"""The :math:`2^m` corners of the box :math:`\prod_{i=1}^m \{-a_i, +a_i\}`, shape ``(2^m, m)``.

    Row :math:`k` has coordinate :math:`i` equal to :math:`+a_i` when bit :math:`m-1-i` of
    :math:`k` is one, else :math:`-a_i`: the rows are the answer strings of :math:`m` yes/no
    questions, most significant first (chapter 1). Float64, on the device of ``scales`` when it
    is a tensor.

    Parameters
    ----------
    scales : sequence or tensor of ``m >= 1`` positive half-widths :math:`a_i`.
    """
    a = torch.as_tensor(scales, dtype=torch.float64)
    if a.ndim != 1 or a.shape[0] < 1:
        raise ValueError(f"scales must be a 1-D sequence of m >= 1 numbers; got shape "
                         f"{tuple(a.shape)}")
    if not bool(torch.isfinite(a).all()) or bool((a <= 0).any()):
        raise ValueError("scales must be finite and positive")
    m = a.shape[0]
    k = torch.arange(2**m, device=a.device)
    bits = (k[:, None] >> torch.arange(m - 1, -1, -1, device=a.device)) & 1
    return (2 * bits - 1).to(torch.float64) * a


def conditional_entropy_bits(mixture: GaussianMixture, t: float, process: ForwardProcess,
                             n: int, generator: torch.Generator) -> MCEstimate:
    r"""Monte Carlo estimate of :math:`H(x_0 \mid x_t)` in bits for a delta mixture.

    For data on points :math:`y_k` with weights :math:`\pi_k`, the posterior over the points
    given :math:`x_t = x` is exact, :math:`r_k(x) \propto \pi_k\,\mathcal N(x; \alpha_t y_k,
    \sigma_t^2 I)` (:meth:`~diffnotes.mixtures.GaussianMixture.component_posterior`), so

    .. math::

        H(x_0 \mid x_t) = \mathbb E\big[-\log_2 p(x_0 \mid x_t)\big]
            = \mathbb E_{x_t}\Big[-\sum_k r_k(x_t) \log_2 r_k(x_t)\Big] .

    The estimator draws ``n`` pairs :math:`x_0 \sim p_0`, :math:`x_t = \alpha_t x_0 + \sigma_t
    \varepsilon` and averages the entropy of :math:`r(x_t)` (the inner average over
    :math:`x_0` given :math:`x_t` done exactly, which lowers the variance). Every per-sample
    value lies in :math:`[0, \log_2 K]`. Accumulated in float64 (chapter 1).

    Returns
    -------
    MCEstimate in bits (mean, standard error, ``n``).
    """
    if not mixture.is_delta:
        raise ValueError("mixture must be a delta mixture (GaussianMixture.delta): the "
                         "conditional entropy of continuous data is a differential entropy")
    n = check_positive_int("n", n)
    g = _check_generator(generator)
    x0 = mixture.sample(n, g)
    xt, _ = process.perturb(x0, t, g)
    r = mixture.component_posterior(xt, t, process)
    return mc_estimate(-torch.xlogy(r, r).sum(1) / _LN2)


def sign_question_entropy(u, *, n_grid: int = 20_001, half_width: float = 12.0) -> torch.Tensor:
    r"""The entropy in bits of one yes/no question answered through Gaussian noise.

    A fair sign :math:`b = \pm 1` is seen as :math:`x = a b + \sigma\varepsilon`; with
    :math:`u = a/\sigma` (in a forward process :math:`u = \alpha_t a / \sigma_t`) Bayes' rule
    gives :math:`P(b = +1 \mid x) = \operatorname{sigmoid}(2 a x / \sigma^2)`, and by symmetry

    .. math::

        H_b(u) = H(b \mid x) = \int \varphi(\varepsilon)\,
            h_2\big(\operatorname{sigmoid}(2u^2 + 2u\varepsilon)\big)\,\mathrm d\varepsilon ,

    with :math:`\varphi` the standard normal density. Composite Simpson quadrature on
    :math:`|\varepsilon + u/2| \le` ``half_width``, in float64: the interval holds both the
    bulk of :math:`\varphi` at :math:`\varepsilon = 0` and the bump of width :math:`1/u` at the
    decision boundary :math:`\varepsilon = -u`, where the integrand peaks for large
    :math:`u`. :math:`H_b` falls from 1 bit
    (:math:`u \to 0`) to 0 (:math:`u \to \infty`). An independent reference for
    :func:`conditional_entropy_bits` on :func:`box_points` (chapter 1).

    Parameters
    ----------
    u : non-negative float or tensor of any shape.

    Returns
    -------
    float64 tensor of ``u``'s shape, in bits.
    """
    u = torch.as_tensor(u, dtype=torch.float64)
    if not bool(torch.isfinite(u).all()) or bool((u < 0).any()):
        raise ValueError("u must be finite and non-negative")
    n_grid = check_positive_int("n_grid", n_grid)
    if n_grid < 3 or n_grid % 2 == 0:
        raise ValueError(f"n_grid must be odd and >= 3 (Simpson's rule); got {n_grid}")
    s = torch.linspace(-half_width, half_width, n_grid, dtype=torch.float64, device=u.device)
    w = torch.ones(n_grid, dtype=torch.float64, device=u.device)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w = w * (s[1] - s[0]) / 3
    eps = s - u[..., None] / 2
    z = 2 * u[..., None] ** 2 + 2 * u[..., None] * eps
    sig = torch.sigmoid(z)
    h2 = (sig * torch.nn.functional.softplus(-z) + (1 - sig) * torch.nn.functional.softplus(z))
    phi = torch.exp(-0.5 * eps**2) / math.sqrt(2 * math.pi)
    return (phi * h2 / _LN2 * w).sum(-1)


def check_box_entropy(scales, times, process: ForwardProcess, n: int,
                      generator: torch.Generator, tally: Tally, *, reference=None,
                      max_u: float = 3.0) -> dict[float, MCEstimate]:
    r"""Test :math:`H(x_0 \mid x_t) = \sum_i H_b(\alpha_t a_i / \sigma_t)` on the box corners.

    For :math:`x_0` uniform on :func:`box_points` the coordinates are independent fair signs and
    the noise is isotropic, so the posterior factorises and the entropy is the sum of the
    one-question entropies :func:`sign_question_entropy` (chapter 1). At every time the
    Monte Carlo estimate :func:`conditional_entropy_bits` of the full :math:`2^m`-point mixture
    is compared with ``reference(scales, t)`` by a :math:`z`-test at :math:`5\sigma`
    (``tally.mc``; an ``AssertionError`` when it fails). Times where every
    :math:`u_i = \alpha_t a_i/\sigma_t` exceeds ``max_u`` are skipped and recorded with
    ``tally.skip``: there the entropy comes from boundary crossings of probability below
    :math:`\Phi(-u)`, which ``n`` draws do not resolve.

    Parameters
    ----------
    scales : the half-widths :math:`a_i`.
    times : iterable of positive times.
    process : the forward process.
    n : draws per time.
    generator : the source of randomness.
    tally : a :class:`~diffnotes.checks.Tally` collecting the checks.
    reference : ``(scales tensor, t) -> float`` in bits; default the sum of
        :func:`sign_question_entropy`. A wrong formula here makes the check fail.
    max_u : the largest resolved :math:`u`.

    Returns
    -------
    dict from each tested time to its MCEstimate in bits.
    """
    a = torch.as_tensor(scales, dtype=torch.float64)
    mixture = GaussianMixture.delta(box_points(a))
    if reference is None:
        def reference(scales_, t_):
            return float(sign_question_entropy(_snr_amplitude(scales_, t_, process)).sum())
    out = {}
    for t in times:
        t = float(t)
        if float(_snr_amplitude(a, t, process).min()) > max_u:
            tally.skip(f"rare-event dominated where every u > {max_u:g}")
            continue
        est = conditional_entropy_bits(mixture, t, process, n, generator)
        tally.mc(est, reference(a, t), label=f"H(x0|x_t) at t = {t:.3g}",
                 ref_name="sum of one-question entropies")
        out[t] = est
    return out


def _snr_amplitude(scales: torch.Tensor, t: float, process: ForwardProcess) -> torch.Tensor:
    """u_i = alpha_t a_i / sigma_t for each half-width a_i."""
    tt = as_time("t", t)
    return process.alpha(tt).to(scales) * scales / process.sigma(tt).to(scales)
