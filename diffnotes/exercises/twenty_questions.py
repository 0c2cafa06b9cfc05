"""Answer keys for the exercises of chapter 1, *Twenty Questions* (``book/01_twenty_questions.md``).

Each reference is computed without the :mod:`diffnotes.twenty_questions` calls that the book's
solutions make: the three-way entropy is written out by hand, and the gains of the binary-digit
strategy come from counting the splits of :math:`N = 12` items on paper.
"""

import functools
import math

import sympy as sp
import torch

from ..selfcheck import Choice, Draw, Symbolic, Tensor, Variant, register

CHAPTER = "twenty_questions"

# ---------------------------------------------------------------- ex-tq-derive: three-way split

p, q = sp.symbols("p q", positive=True)
N = sp.Symbol("N", positive=True)  # an uncancelled log2 N_(n-1) term is accepted if it cancels
_r = 1 - p - q
_H3_BITS = -(p * sp.log(p) + q * sp.log(q) + _r * sp.log(_r)) / sp.log(2)

register(
    "ex-tq-derive",
    Symbolic(
        _H3_BITS,
        symbols=(p, q, N),
        probe_range=(0.05, 0.45),  # p + q < 1: all three fractions positive
        mistakes=[
            (_H3_BITS * sp.log(2),
             "that is the entropy in nats (natural log): measure it in bits, with log base 2",
             "ln2"),
            (-(p * sp.log(p) + q * sp.log(q)) / sp.log(2),
             "the third answer, 'sometimes', with probability 1 - p - q, contributes a term too",
             "missing-term"),
            (-(p * sp.log(p) + (1 - p) * sp.log(1 - p)) / sp.log(2),
             "that is the binary entropy h2(p) of a yes/no question; a three-way split has three "
             "terms, one per answer", "missing-term"),
        ],
        expects="a sympy expression in p and q (bits)",
    ),
    chapter=CHAPTER,
    kind="derive", minutes=15, difficulty="routine",
)

# ---------------------------------------------------------------- ex-tq-compute: binary digits


def _h2(x: float) -> float:
    return -x * math.log2(x) - (1 - x) * math.log2(1 - x)


# The book's N = 12 on paper: items 0..11 in binary, most significant digit first. Digit 1
# splits 8 (0xxx) against 4 (10xx); digit 2 splits 0..7 evenly (one bit for 8/12 of the items)
# and leaves 8..11 (all 10xx) unsplit; digits 3 and 4 split every group evenly.
_DIGIT_GAINS_12 = [_h2(1 / 3), 8 / 12, 1.0, 1.0]
N_DIGITS = 4


def _digit_gains(n_items: int, most_significant_first: bool = True) -> list[float]:
    """The bits each of the four binary-digit questions removes, by counting: after n questions
    the items sharing an answer prefix form a group g, and H_n = sum_g |g|/N log2 |g|."""
    order = range(N_DIGITS - 1, -1, -1) if most_significant_first else range(N_DIGITS)

    def remaining(bits) -> float:
        groups: dict[tuple, int] = {}
        for i in range(n_items):
            prefix = tuple((i >> b) & 1 for b in bits)
            groups[prefix] = groups.get(prefix, 0) + 1
        return sum(c / n_items * math.log2(c) for c in groups.values())

    order = list(order)
    h = [remaining(order[:n]) for n in range(N_DIGITS + 1)]
    return [h[n - 1] - h[n] for n in range(1, N_DIGITS + 1)]


def _tq_compute_key(v) -> Tensor:
    n_items = v.N
    gains = _digit_gains(n_items)
    total = math.log2(n_items)
    cumulative = [sum(gains[: n + 1]) for n in range(N_DIGITS)]
    reversed_gains = _digit_gains(n_items, most_significant_first=False)
    as_tensor = functools.partial(torch.tensor, dtype=torch.float64)
    # for N = 15 (all 4-digit strings but 1111) the two orders give the same gains
    reversed_order = [] if all(math.isclose(a, b) for a, b in zip(
        gains, reversed_gains, strict=True)) else [
        (as_tensor(reversed_gains),
         "those are the gains of the binary digits asked least significant first (for "
         "N = 12 they are bisection's): ask the most significant digit first",
         "the questions are asked in another order than the one the exercise describes")]
    return Tensor(
        as_tensor(gains),
        rtol=1e-6,
        atol=1e-9,
        mistakes=[
            *reversed_order,
            (as_tensor(cumulative),
             "cumulative: that is H_0 - H_n after n questions; give the gain of each question, "
             "H_(n-1) - H_n", "running totals where the value of each question is asked for"),
            (as_tensor([total - c for c in cumulative]),
             "those are the entropies H_1, ..., H_4 left after each question, not the bits each "
             "question removes", "quantity"),
            (as_tensor(gains) * math.log(2),
             "in nats: use log base 2, the gains are in bits", "ln2"),
        ],
        expects="a tensor of shape (4,): the gain in bits of each binary-digit question",
    )


# N from 9 to 15 items: always four binary digits, and never the even split of N = 16
register(
    "ex-tq-compute",
    None,
    variant=Variant({"N": Draw(12, 9, 15, 1)}, _tq_compute_key),
    chapter=CHAPTER,
    kind="compute", minutes=25, difficulty="standard",
)

# ---------------------------------------------------------------- ex-tq-explain: careless oracle

RUBRIC_TQ_EXPLAIN = [
    (3, "What the interrogator notices",
     "Some answer strings are consistent with no item (the count N_n drops to 0): she catches a "
     "contradiction."),
    (3, "Wrong proportions",
     "Consistent answer prefixes come up equally often (probability 2^-n each) instead of in "
     "proportion to their group sizes |g|/N, so items in small groups turn up too often."),
    (2, "What the counts do",
     "The odds N(a_<n, yes)/N(a_<n) are exactly what makes the random answers produce samples of "
     "the data distribution."),
    (2, "The diffusion analogue",
     "The score plays the role of the counts; a wrong score pushes samples to places of low data "
     "probability or gives the modes the wrong proportions."),
]

register(
    "ex-tq-explain",
    Choice(
        "b",
        {
            "a": "Every answer is a fair coin flip, so every question removes exactly one bit and "
                 "the entropy falls faster than with the truthful oracle.",
            "b": "Some answer strings are consistent with no item (N_n = 0); and the answer "
                 "prefixes that are consistent come up equally often, not in proportion to their "
                 "group sizes, so items in small groups turn up too often.",
            "c": "Nothing: the lazy oracle flips a coin as well, so the two games look the same.",
            "d": "Nothing, as long as she asks bisection questions, which split every group "
                 "evenly.",
        },
        hints={
            "a": "the bits a question removes depend on how it splits the items consistent so "
                 "far, not on the oracle's coin; and a careless answer can leave no item at all",
            "c": "the lazy oracle's coin is biased by N(a_<n, yes)/N(a_<n); that bias keeps the "
                 "answers consistent and makes the identified item uniform",
            "d": "bisection splits an odd group unevenly, and a group of one item cannot be split "
                 "at all: a fair coin then answers what no item would",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=15, difficulty="routine", rubric=RUBRIC_TQ_EXPLAIN,
)

# ---------------------------------------------------------------- ex-tq-twenty: why twenty?

RUBRIC_TQ_TWENTY = [
    (3, "One bit per answer",
     "By the chain rule (lem-tq-chain) each yes/no answer removes at most one bit, so twenty "
     "answers remove at most 20 bits."),
    (3, "Bits needed",
     "Singling out one of N items needs log2 N bits: 2^20 = 1 048 576 suffices for about a "
     "million, while log2(2 000 000) ≈ 20.93 > 20."),
    (2, "Adaptive questions do not help",
     "Questions chosen after earlier answers are still yes/no answers: twenty of them have only "
     "2^20 possible strings."),
    (2, "Lazy oracle does not help",
     "A lazy oracle's game cannot be told from the truthful one (thm-tq-lazy), so it changes "
     "nothing."),
]

register(
    "ex-tq-twenty",
    Choice(
        "c",
        {
            "a": "Bisection can single out one of 2 000 000 items with twenty questions, since "
                 "ceil(log2 2 000 000) = 20.",
            "b": "Bisection cannot, but cleverer questions, chosen after seeing the earlier "
                 "answers, can.",
            "c": "No strategy can: each answer removes at most one bit, so twenty answers remove "
                 "at most 20 bits, and log2 2 000 000 is about 20.93 bits.",
            "d": "It can be done if the oracle answers lazily, since then no item has to be "
                 "fixed in advance.",
        },
        hints={
            "a": "2^20 = 1 048 576 < 2 000 000, so ceil(log2 2 000 000) = 21",
            "b": "choosing questions adaptively is still one yes/no answer per question, at most "
                 "one bit each (the chain rule); twenty answers have only 2^20 possible strings",
            "d": "the lazy oracle plays a game nobody can tell from the truthful one: the same "
                 "answer strings with the same law, so the same limit of one bit per answer",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=10, difficulty="routine", rubric=RUBRIC_TQ_TWENTY,
)
