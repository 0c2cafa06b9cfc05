r"""Answer keys for the exercises of chapter 9, *Real data: handwritten digits*
(``book/09_digits.md``). The references are computed without the chapter's code: the mutual
information of a Gaussian state is the closed form written out by hand (the solution derives it
with sympy from two entropies), and the speciation time of the pair 3/9 comes from the raw
scikit-learn pixels with numpy (the solution uses the normalised torch tensors of
:func:`diffnotes.digits.load_digits`). The explain exercise is a multiple-choice question.
"""

import functools
import math

import numpy as np
import sympy as sp

from ..selfcheck import Choice, Draw, Number, Symbolic, Variant, register

CHAPTER = "digits"

# ---------------------------------------------------------------- ex-dg-information (derive)

t, s, d = sp.symbols("t s d", positive=True)
_SNR = s**2 * sp.exp(-2 * t) / (1 - sp.exp(-2 * t))

register(
    "ex-dg-information",
    Symbolic(
        d / 2 * sp.log(1 + _SNR),
        symbols=(t, s, d),
        variable="t",
        mistakes=[
            (sp.log(1 + _SNR) / 2,
             "that is the information of one coordinate: the d coordinates are independent, so "
             "their informations add, a factor d", "dimension"),
            (d * sp.log(1 + _SNR),
             "the entropy of N(mu, v I_d) is (d/2) log(2 pi e v): a factor 1/2 is missing",
             "factor-2"),
            (d / 2 * sp.log(1 + s**2 / t**2),
             "that is the EDM (x_t = x_0 + t z); in the VP process the signal is scaled by "
             "e^{-t} and the noise variance is 1 - e^{-2t}", "convention"),
            (d / 2 * sp.log(1 + s**2 * sp.exp(-2 * t)),
             "the noise variance of the VP process is 1 - e^{-2t}, not 1",
             "the noise variance of the forward process is wrong"),
            (d / 2 * sp.log(1 + _SNR) / sp.log(2),
             "the exercise asks for nats (natural logarithm), not bits", "ln2"),
        ],
        expects="a sympy expression in t, s, d: I(x_0; x_t) in nats",
    ),
    chapter=CHAPTER,
    kind="derive", minutes=20, difficulty="standard",
)

# ---------------------------------------------------------------- ex-dg-pair (compute)


@functools.cache
def _raw_digits() -> tuple[np.ndarray, np.ndarray, float]:
    """The raw scikit-learn pixels (float64), their labels, and rho² = mean squared deviation."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    pixels = pixels.astype(np.float64)
    return pixels, labels, float(((pixels - pixels.mean(0)) ** 2).mean())


def _top_eigenvalue(x: np.ndarray) -> float:
    return float(np.linalg.svd(x - x.mean(0), compute_uv=False)[0] ** 2 / len(x))


@functools.cache
def _pair_lambdas(a: int = 3, b: int = 9) -> tuple[float, float, float]:
    """(Lambda of the pair a/b, Lambda of all digits, rho²), from the raw pixels with numpy."""
    pixels, labels, rho2 = _raw_digits()
    pair = pixels[(labels == a) | (labels == b)]
    return _top_eigenvalue(pair) / rho2, _top_eigenvalue(pixels) / rho2, rho2


def pair_speciation_time(a: int = 3, b: int = 9) -> float:
    """t_s = ½ log Lambda of the digits a and b in the chapter's normalisation."""
    return 0.5 * math.log(_pair_lambdas(a, b)[0])


def _pair_key(v) -> Number:
    a, b = v.a, v.b
    lam = functools.partial(_pair_lambdas, a, b)
    return Number(
        functools.partial(pair_speciation_time, a, b),
        rtol=1e-6,
        mistakes=[
            (lambda: lam()[0],
             "that is Lambda itself; the speciation time is t_s = ½ log Lambda", "quantity"),
            (lambda: math.log(lam()[0]),
             "t_s = ½ log Lambda: the factor ½ is missing (e^{-2t} Lambda = 1)", "factor-2"),
            (lambda: 0.5 * math.log10(lam()[0]),
             "use the natural logarithm: e^{-2t} Lambda = 1 gives t = ½ ln Lambda",
             "a logarithm in the wrong base"),
            (lambda: 0.5 * math.log(lam()[1]),
             f"that is t_s of all ten digits; keep only the images of {a} and {b}",
             "the wrong subset of the data"),
            (lambda: 0.5 * math.log(lam()[0] * lam()[2]),
             "you used raw grey levels; divide the pixels by the chapter's scale rho first",
             "the data are not scaled as the chapter prescribes"),
        ],
        expects=f"a float: t_s = ½ log Lambda of the pair {a}/{b}",
    )


# any pair of two different digits a < b (the book's 3 and 9 is one the paths confuse longest)
register(
    "ex-dg-pair",
    None,
    variant=Variant({"a": Draw(3, 0, 9, 1), "b": Draw(9, 0, 9, 1)}, _pair_key,
                    valid=lambda v: v.a < v.b, note="a < b"),
    chapter=CHAPTER,
    kind="compute", minutes=30, difficulty="standard",
)

# ---------------------------------------------------------------- ex-dg-memorise (explain)

RUBRIC_DG_MEMORISE = [
    (3, "The network is not at the minimiser",
     "The loss is minimised by the empirical score, whose value at the minimum is the exact rate "
     "of the empirical distribution of the 1497 training images (small below the collapse but "
     "not zero: about 1.2 of its log 1497 = 7.31 nats are still unspent near t_mem); the "
     "network's loss is the exact rate plus E‖s_θ − s‖² (thm-it-loss)."),
    (3, "Evidence",
     "The figure shows the network's loss far above the exact rate at small t: it does not "
     "resolve the scores pointing at single training images."),
    (2, "Why that generalises",
     "Not reaching the minimiser at small t is what keeps the network's samples from being "
     "copies (none of its samples is one); its held-out loss, close to its training loss, shows "
     "it has not memorised the training set either."),
    (2, "Ruling out the alternatives",
     "Same training images for both, same reverse SDE, and the exact score is the true score of "
     "the empirical distribution at every t > 0."),
]

register(
    "ex-dg-memorise",
    Choice(
        "b",
        {
            "a": "The network was trained on fewer images than the empirical distribution holds.",
            "b": "The network does not reach the minimiser: at t below the collapse time the "
                 "exact score points at single training images, which a small network trained "
                 "briefly does not resolve, and its loss there stays above the exact rate by its "
                 "score error.",
            "c": "The reverse SDE of the network uses a different noise than that of the exact "
                 "score.",
            "d": "The exact score is not a valid score at small t, so its samples are wrong.",
        },
        hints={
            "a": "no: the network saw the same training images the memorising score is built "
                 "from, sampled again and again; their empirical distribution is exactly what "
                 "its loss is minimised for",
            "c": "no: both samplers integrate the same reverse SDE with the same kind of "
                 "Brownian noise; only the score differs",
            "d": "no: the exact score is the score of the empirical distribution noised to time "
                 "t, valid at every t > 0; its samples are correct samples of that "
                 "distribution, which is why they are copies",
        },
    ),
    chapter=CHAPTER,
    kind="explain", minutes=15, difficulty="standard", rubric=RUBRIC_DG_MEMORISE,
)
