r"""Self-checks for the exercises: a student's answer in, right or wrong with a hint out.

A student calls :func:`check` in the notebook with the exercise's label (the name shown in the
book, e.g. ``"ex-tq-derive"``) and an answer: a sympy expression (or a string sympy can
parse), a number, a tensor, a Python function, or the letter of a multiple-choice option::

    from diffnotes.selfcheck import check
    check("ex-tq-derive", H3)        # ✓ ex-tq-derive: correct.

No server is involved: the answer keys are the ``Key`` objects registered by the modules of
:mod:`diffnotes.exercises`, one module per chapter. Each key compares an answer with the
reference in the way the exercise needs:

* :class:`Symbolic` -- ``sympy.simplify(answer - reference) == 0``, falling back to agreement
  at random points when sympy cannot finish the simplification;
* :class:`Number` and :class:`Tensor` -- agreement within a stated ``rtol``/``atol``;
* :class:`Function` -- agreement at a grid of probe arguments;
* :class:`Choice` -- the right option(s) of a multiple-choice question.

When the answer is wrong the verdict carries a hint: the key's own list of typical mistakes is
tried first, then generic diagnoses (a constant factor such as 2 or :math:`\ln 2`, a flipped
sign, an additive constant, agreement only at ``t = 1``, a wrong shape, ...).

In **graded mode** (:func:`set_mode`, or ``DIFFNOTES_GRADED=1`` in the environment before the
package is imported) a wrong answer's hint names only the *kind* of mistake -- a factor of 2,
nats instead of bits, a transposed matrix, a sign, a typical mistake of the exercise -- and never
its direction or size (no "too large", no ratio, no value), so a student cannot bisect to the
answer. Self-study mode, the default, keeps the readable hints. Each typical mistake of a key
may carry its graded wording as a third element, either free text or a name of
:data:`MISTAKE_KINDS`.

**Per-student variants.** An exercise whose data are numbers (a radius, a weight, a time, a
dimension) may take them from :func:`variant`: ``v = variant("ex-gd-saddle")`` gives the
numbers of the current seed (:func:`set_seed`, or ``DIFFNOTES_SEED=<n>`` in the environment),
and :func:`check` judges the answer against the key computed from the same numbers
(:meth:`Exercise.key_for`). Seed 0, the default, gives the numbers the book uses; another seed
draws them deterministically from the ranges of the exercise's :class:`Variant`. Under a
seed other than 0 a wrong answer to a varying exercise gets its graded-mode hint.

Each registered :class:`Exercise` also carries what an instructor needs: an estimated time in
minutes, a difficulty (:data:`DIFFICULTIES`) and, for an explain exercise, a rubric of
:class:`Criterion` for its written answer.

The book's own solutions end with ``check(label, answer).require()``, which raises
``AssertionError`` when the reference solution does not pass: every key is executed against a
correct answer in CI, and ``tests/test_exercises.py`` feeds each key typical wrong answers.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sympy as sp
import torch

__all__ = [
    "DIFFICULTIES",
    "MISTAKE_KINDS",
    "MODES",
    "Choice",
    "Criterion",
    "Draw",
    "Exercise",
    "Function",
    "Key",
    "Number",
    "Symbolic",
    "Tensor",
    "Variant",
    "VariantValues",
    "Verdict",
    "check",
    "exercise",
    "exercises",
    "get_mode",
    "get_seed",
    "register",
    "set_mode",
    "set_seed",
    "variant",
]

Status = Literal["correct", "wrong", "missing", "invalid"]
KINDS = ("derive", "compute", "explain")
DIFFICULTIES = ("routine", "standard", "challenging")
MODES = ("self-study", "graded")

# --------------------------------------------------------------------------------------------
# Modes: self-study (readable hints) and graded (the kind of mistake only)

_TRUE = {"1", "true", "yes", "on", "graded"}
_MODE = {"mode": "graded" if os.environ.get("DIFFNOTES_GRADED", "").strip().lower() in _TRUE
         else "self-study"}


def set_mode(mode: str) -> str:
    """Set the self-check's mode, ``"self-study"`` (default) or ``"graded"``; return the old one.

    In graded mode a wrong answer's hint names the kind of mistake only (a factor of 2, nats vs
    bits, a transposed matrix, a sign, a typical mistake of the exercise), never whether the
    answer is too large or too small, by how much, or any value. The environment variable
    ``DIFFNOTES_GRADED=1`` selects graded mode when the package is imported.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    old, _MODE["mode"] = _MODE["mode"], mode
    return old


def get_mode() -> str:
    """The self-check's current mode: ``"self-study"`` or ``"graded"``."""
    return _MODE["mode"]


# --------------------------------------------------------------------------------------------
# Seeds: which variant of the exercises' numbers a student works with (0 = the book's)


def _valid_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    return seed


def _seed_from_environment() -> int:
    text = os.environ.get("DIFFNOTES_SEED", "").strip()
    if not text:
        return 0
    try:
        return _valid_seed(int(text))
    except ValueError:
        raise ValueError(f"DIFFNOTES_SEED must be a non-negative integer (a seed); got "
                         f"{text!r}") from None


_SEED = {"seed": _seed_from_environment()}


def set_seed(seed: int) -> int:
    """Set the seed of the exercises' variants (:func:`variant`); return the old one.

    Seed 0, the default, gives the numbers the book uses. An instructor gives each student a
    seed; the student's notebook sets it in its first cell (or ``DIFFNOTES_SEED=<n>`` in the
    environment before the package is imported), and the grader, using the same seed, checks
    the answers against the keys of that variant.
    """
    old, _SEED["seed"] = _SEED["seed"], _valid_seed(seed)
    return old


def get_seed() -> int:
    """The current seed of the exercises' variants (0: the book's numbers)."""
    return _SEED["seed"]


# Graded-mode wordings of typical mistakes: a key names one of these as a mistake's third
# element (or writes its own text). None of them says which way or how far an answer is off.
MISTAKE_KINDS = {
    "factor-2": "off by a factor of 2",
    "factor-4": "off by a factor of 4 (a square, or a factor of 2 twice)",
    "factor": "off by a constant factor",
    "sign": "a sign is wrong",
    "sign-factor-2": "a sign and a factor of 2 are wrong",
    "ln2": "nats vs bits: a logarithm in the wrong base (a factor of ln 2)",
    "additive": "off by an additive constant",
    "transpose": "a matrix is transposed: rows and columns are swapped",
    "inverted": "a ratio is inverted: numerator and denominator are swapped",
    "exponent": "a power or an exponent is wrong",
    "square": "a quantity is squared where it should not be, or not squared where it should",
    "limit": "an approximation or a limit where the exact result is asked for",
    "dependence": "the dependence on one of the variables is wrong",
    "dimension": "a wrong dimension or count (of the space, the manifold, the points or the "
                 "components)",
    "convention": "another convention: a different forward process, clock, or noise or log "
                  "parametrisation",
    "quantity": "a related quantity, not the one the exercise asks for",
    "missing-term": "a term or a factor is missing",
    "estimator": "the wrong estimator, average or normalisation",
    "procedure": "a step of the procedure is not the one the exercise describes",
}

_GRADED_WRONG = "not right"


class _Hint(str):
    """A hint in self-study wording that also knows its graded-mode wording."""

    graded: str

    def __new__(cls, text: str, graded: str):
        obj = super().__new__(cls, text)
        obj.graded = graded
        return obj


def _mistake_hint(entry) -> tuple[Any, _Hint]:
    """``(value, hint)`` or ``(value, hint, graded)`` as ``(value, _Hint)``; ``graded`` is a
    name of :data:`MISTAKE_KINDS` or free text, and defaults to "not right"."""
    if len(entry) == 2:
        (value, hint), graded = entry, _GRADED_WRONG
    elif len(entry) == 3:
        value, hint, graded = entry
    else:
        raise ValueError(f"a mistake must be (value, hint) or (value, hint, graded); got "
                         f"{len(entry)} elements")
    return value, _Hint(hint, MISTAKE_KINDS.get(graded, graded))


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`; true when the answer is right, shown as one line."""

    name: str
    status: Status
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        mark = {"correct": "✓", "wrong": "✗", "missing": "…", "invalid": "?"}[self.status]
        return f"{mark} {self.name}: {self.message}"

    __repr__ = __str__

    def require(self) -> Verdict:
        """Return ``self`` if correct, else raise ``AssertionError`` with the hint.

        The book's reference solutions end with ``check(...).require()`` so that CI fails when
        a key rejects a correct answer.
        """
        if not self.correct:
            raise AssertionError(str(self))
        return self


# --------------------------------------------------------------------------------------------
# Keys


class Key:
    """Base class of an answer key. ``expects`` says what kind of answer the student gives."""

    expects: str = "an answer"

    def judge(self, answer: Any, mode: str | None = None) -> tuple[Status, str]:
        """``(status, message)`` for ``answer``, worded for ``mode`` (default: the current
        one, :func:`get_mode`). In graded mode a wrong answer's message names the kind of
        mistake only; a message with no graded wording becomes "not right"."""
        mode = get_mode() if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        status, message = self._judge(answer)
        if mode == "graded" and status == "wrong":
            message = message.graded if isinstance(message, _Hint) else _GRADED_WRONG
        return status, str(message)

    def _judge(self, answer: Any) -> tuple[Status, str]:  # pragma: no cover - interface
        raise NotImplementedError

    def typical_mistakes(self) -> list[tuple[Any, str, str]]:
        """The key's own typical wrong answers: ``(answer, self-study hint, graded hint)``."""
        return [(value(), str(h), h.graded) for value, h in getattr(self, "_mistakes", [])]


def _lazy(x):
    """A zero-argument callable returning ``x`` (or ``x()`` once, cached, if it is callable)."""
    if callable(x) and not isinstance(x, sp.Basic | torch.Tensor):
        return functools.cache(x)
    return lambda: x


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


_FACTORS = (   # (answer / reference, self-study hint, graded kind)
    (2.0, "off by a factor of 2: your answer is twice the right one", "factor-2"),
    (0.5, "off by a factor of 2: your answer is half the right one", "factor-2"),
    (-1.0, "the sign is flipped", "sign"),
    # answer / reference = ln 2: the answer is in nats where bits were asked for, and back
    (math.log(2), "off by a factor of ln 2: a natural log where log base 2 belongs "
                  "(nats instead of bits)?", "ln2"),
    (1 / math.log(2), "off by a factor of 1/ln 2: a log base 2 where the natural log belongs "
                      "(bits instead of nats)?", "ln2"),
    (4.0, "off by a factor of 4: a square (or a doubled factor of 2) too many?", "factor-4"),
    (0.25, "off by a factor of 4: a square (or a factor of 2) too few?", "factor-4"),
    (-2.0, "off by a factor of -2: check the sign and a factor of 2", "sign-factor-2"),
    (-0.5, "off by a factor of -1/2: check the sign and a factor of 2", "sign-factor-2"),
)


def _factor_hint(ratio: float, rtol: float = 1e-6) -> _Hint | None:
    for c, hint, kind in _FACTORS:
        if abs(ratio - c) <= rtol * abs(c):
            return _Hint(hint, MISTAKE_KINDS[kind])
    return None


def _as_float(answer: Any) -> float | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, torch.Tensor):
        return float(answer.detach().cpu().double()) if answer.numel() == 1 else None
    if isinstance(answer, sp.Basic):
        try:
            return float(answer.evalf())
        except (TypeError, ValueError):
            return None
    try:
        return float(answer)
    except (TypeError, ValueError):
        return None


@dataclass
class Number(Key):
    r"""A number, right when :math:`|a - r| \le \mathrm{atol} + \mathrm{rtol}\,|r|`.

    ``reference`` is a number or a zero-argument callable (evaluated once, lazily).
    ``mistakes`` pairs typical wrong values (numbers or callables) with their hints.
    """

    reference: Any
    rtol: float = 1e-6
    atol: float = 0.0
    mistakes: Sequence[tuple] = ()
    expects: str = "a number"

    def __post_init__(self):
        self._ref = _lazy(self.reference)
        self._mistakes = [(_lazy(v), h) for v, h in map(_mistake_hint, self.mistakes)]

    def _judge(self, answer):
        a = _as_float(answer)
        if a is None:
            return "invalid", f"expected {self.expects}; got {type(answer).__name__}"
        if not math.isfinite(a):
            return "invalid", f"your answer is {a}; expected a finite number"
        r = float(self._ref())
        if _close(a, r, self.rtol, self.atol):
            return "correct", "correct."
        for value, hint in self._mistakes:
            if _close(a, float(value()), self.rtol, self.atol):
                return "wrong", hint
        if r != 0:
            # a factor is named only when the ratio is that factor to 2% (or 10 rtol if tighter)
            hint = _factor_hint(a / r, min(max(self.rtol, 1e-9) * 10, 0.02))
            if hint:
                return "wrong", hint
        # graded: the same words whether the answer is near or far, above or below
        graded = f"not right: outside the tolerance (rtol={self.rtol:g}, atol={self.atol:g})"
        if _close(a, r, 3 * self.rtol, 3 * self.atol):
            return "wrong", _Hint("close, but outside the tolerance "
                                  f"(rtol={self.rtol:g}, atol={self.atol:g}): more samples or "
                                  "more digits?", graded)
        side = "too large" if a > r else "too small"
        return "wrong", _Hint(f"not right: your value {a:.6g} is {side}", graded)


def _as_tensor(answer: Any) -> torch.Tensor | None:
    if isinstance(answer, torch.Tensor):
        return answer.detach().cpu().to(torch.float64)
    try:
        return torch.as_tensor(answer, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def _compare_arrays(a: torch.Tensor, r: torch.Tensor, rtol: float,
                    atol: float) -> _Hint | None:
    """None when ``a`` matches ``r``; else a hint (shapes are equal)."""
    ok = (a - r).abs() <= atol + rtol * r.abs()
    if bool(ok.all()):
        return None
    nz = r.abs() > atol + 1e-300
    if bool(nz.any()):
        ratios = a[nz] / r[nz]
        if float(ratios.max() - ratios.min()) <= 1e-6 * float(ratios.abs().max()):
            hint = _factor_hint(float(ratios.mean()), 1e-5)
            if hint:
                return hint
            if bool((a[~nz].abs() <= atol + 1e-12).all()):
                return _Hint(f"off by a constant factor of about {float(ratios.mean()):.4g}",
                             MISTAKE_KINDS["factor"])
    diff = (a - r).flatten()
    if a.numel() > 1 and float(diff.max() - diff.min()) <= atol + rtol * float(r.abs().max()):
        return _Hint(f"off by an additive constant of about {float(diff.mean()):.4g}",
                     MISTAKE_KINDS["additive"])
    bad = (~ok).flatten().nonzero().flatten()
    first = tuple(int(i) for i in torch.unravel_index(bad[0], ok.shape)) if ok.ndim else ()
    return _Hint(f"{len(bad)} of {ok.numel()} entries are wrong; the first at index {first}: "
                 f"yours {float(a[first]):.6g}",
                 f"not right: {len(bad)} of {ok.numel()} entries are outside the tolerance")


@dataclass
class Tensor(Key):
    """A tensor (or anything ``torch.as_tensor`` accepts), compared entrywise within tolerance.

    ``reference`` is a tensor or a zero-argument callable returning one (evaluated lazily).
    """

    reference: Any
    rtol: float = 1e-6
    atol: float = 1e-9
    mistakes: Sequence[tuple] = ()
    expects: str = "a tensor"

    def __post_init__(self):
        self._ref = _lazy(self.reference)
        self._mistakes = [(_lazy(v), h) for v, h in map(_mistake_hint, self.mistakes)]

    def _judge(self, answer):
        a = _as_tensor(answer)
        if a is None:
            return "invalid", f"expected {self.expects}; got {type(answer).__name__}"
        r = torch.as_tensor(self._ref()).detach().cpu().to(torch.float64)
        if a.shape != r.shape:
            if a.ndim == 2 and a.T.shape == r.shape and _compare_arrays(a.T, r, self.rtol,
                                                                        self.atol) is None:
                return "wrong", _Hint("transposed: rows and columns are swapped",
                                      MISTAKE_KINDS["transpose"])
            if a.numel() == r.numel() and _compare_arrays(a.reshape(r.shape), r, self.rtol,
                                                          self.atol) is None:
                shape = f"expected {tuple(r.shape)}, got {tuple(a.shape)}"
                return "wrong", _Hint(f"right values, wrong shape: {shape}",
                                      f"wrong shape: {shape}")
            return "invalid", f"expected shape {tuple(r.shape)}; got {tuple(a.shape)}"
        if not bool(torch.isfinite(a).all()):
            return "invalid", "your answer has NaN or infinite entries"
        hint = _compare_arrays(a, r, self.rtol, self.atol)
        if hint is None:
            return "correct", "correct."
        for value, mistake_hint in self._mistakes:
            w = torch.as_tensor(value()).to(torch.float64)
            if w.shape == a.shape and _compare_arrays(a, w, self.rtol, self.atol) is None:
                return "wrong", mistake_hint
        return "wrong", hint


@dataclass
class Function(Key):
    """A Python function, compared with the reference at a list of probe arguments.

    ``probes`` is a list of argument tuples (or dicts of keyword arguments). When
    ``variable`` names an argument position (``at=(index, value)``), an answer that agrees only
    at the probes where that argument equals ``value`` gets the hint "right at t = 1 but not in
    general".
    """

    reference: Callable
    probes: Sequence[Any]
    rtol: float = 1e-6
    atol: float = 1e-9
    at: tuple[int, float, str] | None = None   # (argument index, value, argument name)
    mistakes: Sequence[tuple] = ()
    expects: str = "a Python function"

    def __post_init__(self):
        # a mistake here is a function: kept as it is (``_lazy`` would call it)
        self._mistakes = [((lambda f=f: f), h) for f, h in map(_mistake_hint, self.mistakes)]

    @staticmethod
    def _call(f, probe):
        if isinstance(probe, Mapping):
            return f(**probe)
        return f(*probe)

    def _values(self, f):
        return [torch.as_tensor(self._call(f, p)).detach().cpu().to(torch.float64)
                for p in self.probes]

    def _matches(self, ys, refs):
        return [y.shape == r.shape and _compare_arrays(y, r, self.rtol, self.atol) is None
                for y, r in zip(ys, refs, strict=True)]

    def _judge(self, answer):
        if not callable(answer) or isinstance(answer, sp.Basic):
            return "invalid", f"expected {self.expects}; got {type(answer).__name__}"
        refs = self._values(self.reference)
        try:
            ys = self._values(answer)
        except Exception as err:  # noqa: BLE001 - the student's code may raise anything
            return "invalid", f"your function raised {type(err).__name__}: {err}"
        ok = self._matches(ys, refs)
        if all(ok):
            return "correct", "correct."
        for wrong, hint in self._mistakes:
            if all(self._matches(ys, self._values(wrong()))):
                return "wrong", hint
        if all(y.shape == r.shape for y, r in zip(ys, refs, strict=True)):
            a = torch.cat([y.flatten() for y in ys])
            r = torch.cat([r.flatten() for r in refs])
            hint = _compare_arrays(a, r, self.rtol, self.atol)
            if hint and ("factor" in hint or "sign" in hint or "additive" in hint):
                return "wrong", hint
        if self.at is not None:
            index, value, argname = self.at
            at_value = [float(torch.as_tensor(p[index] if not isinstance(p, Mapping)
                                              else p[argname]).flatten()[0]) == value
                        for p in self.probes]
            if any(at_value) and all(o == v for o, v in zip(ok, at_value, strict=True)):
                text = (f"right at {argname} = {value:g} but not in general: check the "
                        f"{argname}-dependence")
                return "wrong", _Hint(text, text)
        first = ok.index(False)
        text = f"wrong at {sum(not o for o in ok)} of {len(ok)} probe arguments"
        return "wrong", _Hint(f"{text}, e.g. {self.probes[first]!r}", text)


@dataclass
class Symbolic(Key):
    r"""A sympy expression, right when ``simplify(answer - reference) == 0``.

    ``symbols`` maps names to the exercise's symbols (strings are parsed with them, and an
    answer's symbols are matched to them by name, whatever their assumptions). When sympy
    cannot simplify the difference to zero, the two are compared at ``n_probes`` random points
    in ``probe_range`` (an answer equal at all of them to 12 digits is accepted). ``variable``
    names the symbol for the hint "right at t = 1 but not in general".
    """

    reference: Any
    symbols: Sequence[sp.Symbol] = ()
    variable: str | None = None
    mistakes: Sequence[tuple] = ()
    probe_range: tuple[float, float] = (0.2, 2.5)
    n_probes: int = 6
    expects: str = "a sympy expression"

    def __post_init__(self):
        self._ref = _lazy(self.reference)
        self._mistakes = [(_lazy(v), h) for v, h in map(_mistake_hint, self.mistakes)]
        self._by_name = {s.name: s for s in self.symbols}

    def _parse(self, answer) -> sp.Expr | None:
        if isinstance(answer, str):
            try:
                answer = sp.sympify(answer, locals=dict(self._by_name))
            except (sp.SympifyError, SyntaxError, TypeError):
                return None
        elif isinstance(answer, int | float) and not isinstance(answer, bool):
            answer = sp.nsimplify(answer)
        if not isinstance(answer, sp.Basic):
            return None
        rename = {s: self._by_name[s.name] for s in answer.free_symbols
                  if s.name in self._by_name and s != self._by_name[s.name]}
        return answer.xreplace(rename) if rename else answer

    def _points(self, syms) -> list[dict]:
        rng = random.Random(20261124)
        lo, hi = self.probe_range
        return [{s: sp.Float(rng.uniform(lo, hi), 30) for s in syms}
                for _ in range(self.n_probes)]

    @staticmethod
    def _value(expr, point) -> complex | None:
        try:
            v = complex(sp.N(expr.subs(point), 20))
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return v if math.isfinite(v.real) and math.isfinite(v.imag) else None

    def _equal(self, a, r) -> bool:
        try:
            if sp.simplify(a - r) == 0:
                return True
        except (TypeError, ValueError, NotImplementedError):
            pass
        syms = sorted(a.free_symbols | r.free_symbols, key=lambda s: s.name)
        points = self._points(syms)
        vals = [(self._value(a, p), self._value(r, p)) for p in points]
        if any(va is None or vr is None for va, vr in vals):
            return False
        return all(abs(va - vr) <= 1e-12 * max(1.0, abs(vr)) for va, vr in vals)

    def _judge(self, answer):
        a = self._parse(answer)
        if a is None:
            return "invalid", (f"expected {self.expects}; could not read "
                               f"{type(answer).__name__} {answer!r:.60}")
        r = sp.sympify(self._ref())
        extra = {s.name for s in a.free_symbols} - {s.name for s in r.free_symbols} - set(
            self._by_name)
        if extra:
            names = ", ".join(sorted(self._by_name)) or "none"
            text = (f"your answer uses symbol(s) {', '.join(sorted(extra))} that this "
                    f"exercise does not have (its symbols: {names})")
            return "wrong", _Hint(text, text)
        if self._equal(a, r):
            return "correct", "correct."
        for wrong, hint in self._mistakes:
            if self._equal(a, sp.sympify(wrong())):
                return "wrong", hint
        return "wrong", self._diagnose(a, r)

    def _diagnose(self, a, r) -> _Hint:
        syms = sorted(a.free_symbols | r.free_symbols, key=lambda s: s.name)
        points = self._points(syms)
        vals = [(self._value(a, p), self._value(r, p)) for p in points]
        vals = [(va, vr) for va, vr in vals if va is not None and vr is not None]
        if vals and all(abs(vr) > 1e-12 for _, vr in vals):
            ratios = [va / vr for va, vr in vals]
            if all(abs(q - ratios[0]) <= 1e-9 * max(1, abs(ratios[0])) for q in ratios):
                q = ratios[0].real
                hint = _factor_hint(q, 1e-8)
                return hint or _Hint(f"off by a constant factor of about {q:.6g}",
                                     MISTAKE_KINDS["factor"])
        if len(vals) > 1:
            diffs = [va - vr for va, vr in vals]
            if all(abs(d - diffs[0]) <= 1e-9 * max(1, abs(diffs[0])) for d in diffs):
                return _Hint(f"off by an additive constant of about {diffs[0].real:.6g}",
                             MISTAKE_KINDS["additive"])
        if self.variable is not None and self.variable in {s.name for s in syms}:
            var = next(s for s in syms if s.name == self.variable)
            at_one = [{**p, var: sp.Integer(1)} for p in points]
            v1 = [(self._value(a, p), self._value(r, p)) for p in at_one]
            if all(va is not None and vr is not None and abs(va - vr) <= 1e-10 * max(1, abs(vr))
                   for va, vr in v1):
                text = (f"right at {self.variable} = 1 but not in general: check the "
                        f"{self.variable}-dependence")
                return _Hint(text, text)
        plain = "not equivalent to the expected expression"
        if vals:
            point = {s.name: round(float(v), 3) for s, v in points[0].items()}
            va, vr = vals[0]
            return _Hint(f"{plain}; e.g. at {point} yours is {va.real:.6g}, expected "
                         f"{vr.real:.6g}", plain)
        return _Hint(plain, plain)


def _letters(answer) -> frozenset[str] | None:
    if isinstance(answer, str):
        parts = answer.replace(",", " ").replace("(", " ").replace(")", " ").split()
        if len(parts) == 1 and len(parts[0]) > 1 and parts[0].isalpha():
            parts = list(parts[0])
        return frozenset(p.strip().lower() for p in parts if p.strip())
    if isinstance(answer, Iterable):
        items = [a for a in answer if isinstance(a, str)]
        return frozenset(a.strip().lower() for a in items) if items else None
    return None


@dataclass
class Choice(Key):
    """A multiple-choice answer: the letter(s) of the right option(s), e.g. ``"b"`` or ``"ac"``.

    ``options`` maps letters to option texts; ``hints`` maps a wrong letter to what it misses.
    """

    correct: str
    options: Mapping[str, str]
    hints: Mapping[str, str] = field(default_factory=dict)
    expects: str = "the letter of an option, e.g. 'a'"

    def __post_init__(self):
        self._right = frozenset(self.correct.lower())
        unknown = self._right - set(self.options)
        if unknown:
            raise ValueError(f"correct must be letters of options; got {sorted(unknown)}")

    def _judge(self, answer):
        chosen = _letters(answer)
        if not chosen:
            return "invalid", f"expected {self.expects}; got {answer!r:.60}"
        unknown = chosen - set(self.options)
        if unknown:
            return "invalid", (f"no option {', '.join(sorted(unknown))}; the options are "
                               f"{', '.join(sorted(self.options))}")
        if chosen == self._right:
            return "correct", "correct."
        wrong = sorted(chosen - self._right)
        # graded: which option is wrong, not why (the why points at the right one)
        if wrong and wrong[0] in self.hints:
            return "wrong", _Hint(self.hints[wrong[0]], f"option {wrong[0]} is not right")
        if chosen < self._right:
            text = "part of it: more than one option is right"
            return "wrong", _Hint(text, text)
        if wrong:
            text = f"option {wrong[0]} is not right"
            return "wrong", _Hint(text, text)
        return "wrong", _Hint("not right", "not right")


# --------------------------------------------------------------------------------------------
# Variants: the numbers of an exercise, drawn from a seed


@dataclass(frozen=True)
class Draw:
    """How one number of a :class:`Variant` is drawn.

    Seed 0 gives ``default``; another seed draws uniformly from the grid ``low, low + step,
    ..., high`` (both ends included), so that the numbers a student sees are short decimals.
    An integer ``default`` and ``step`` give integers.
    """

    default: float
    low: float
    high: float
    step: float

    def __post_init__(self):
        if not self.step > 0:
            raise ValueError(f"step must be positive; got {self.step!r}")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default must lie in [low, high] = [{self.low}, {self.high}]; "
                             f"got {self.default!r}")

    @property
    def integer(self) -> bool:
        return all(isinstance(x, int) for x in (self.default, self.low, self.step))

    def values(self) -> list[float]:
        """Every value a seed can draw."""
        n = int(round((self.high - self.low) / self.step))
        if self.integer:
            return [self.low + i * self.step for i in range(n + 1)]
        # rounded to the step's decimals: 0.1 + 2 * 0.05 is 0.2, not 0.20000000000000001
        digits = max(0, -math.floor(math.log10(self.step)) + 1)
        return [round(self.low + i * self.step, digits) for i in range(n + 1)]

    def describe(self) -> str:
        return f"{self.low:g} to {self.high:g} in steps of {self.step:g}"


class VariantValues(Mapping):
    """The read-only numbers of one variant of an exercise: ``v["r"]`` or ``v.r``."""

    __slots__ = ("_label", "_seed", "_values")

    def __init__(self, label: str, seed: int, values: Mapping[str, float]):
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_seed", seed)
        object.__setattr__(self, "_values", dict(values))

    @property
    def label(self) -> str:
        return self._label

    @property
    def seed(self) -> int:
        return self._seed

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __getattr__(self, name: str) -> float:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"the variant of {self._label} has no number {name!r}; it "
                                 f"has {', '.join(self._values)}") from None

    def __setattr__(self, name, value):
        raise AttributeError("a variant is read-only")

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"variant({self._label!r}, seed={self._seed}): {values}"


@dataclass(frozen=True)
class Variant:
    """The numbers an exercise varies, and its key as a function of them.

    ``draws`` names each number with its :class:`Draw`; ``key`` builds the answer key from the
    numbers (a :class:`VariantValues`), by the key's own route, never by the book's solution;
    ``valid`` (optional) rejects a combination of numbers, which is then drawn again, and
    ``note`` says in words what it requires (for the teaching page's table). Seed 0 gives the
    defaults, and ``key`` of the defaults is the exercise's :attr:`Exercise.key`.
    """

    draws: Mapping[str, Draw]
    key: Callable[[VariantValues], Key]
    valid: Callable[[VariantValues], bool] | None = None
    note: str = ""

    def __post_init__(self):
        if not self.draws:
            raise ValueError("draws must name at least one number")

    def defaults(self) -> dict[str, float]:
        return {name: d.default for name, d in self.draws.items()}

    def values(self, label: str, seed: int) -> VariantValues:
        """The numbers of seed ``seed``: the defaults for 0, else drawn by a ``random.Random``
        seeded from the SHA-256 of ``f"{label}:{seed}"`` (the same on every machine)."""
        seed = _valid_seed(seed)
        if seed == 0:
            return VariantValues(label, 0, self.defaults())
        digest = hashlib.sha256(f"{label}:{seed}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        for _ in range(1000):
            v = VariantValues(label, seed, {name: rng.choice(d.values())
                                            for name, d in self.draws.items()})
            if self.valid is None or self.valid(v):
                return v
        raise ValueError(f"the variant of {label!r} found no valid numbers for seed {seed}")


# --------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Criterion:
    """One graded criterion of an explain exercise's rubric: its points, what it assesses, and
    what an answer that earns all of them says."""

    points: int
    criterion: str
    full_credit: str

    def __post_init__(self):
        if not isinstance(self.points, int) or self.points <= 0:
            raise ValueError(f"points must be a positive integer; got {self.points!r}")
        if not self.criterion.strip() or not self.full_credit.strip():
            raise ValueError("criterion and full_credit must be non-empty text")


@dataclass(frozen=True)
class Exercise:
    """A registered exercise: its label, chapter home module, kind and answer key, and for the
    instructor an estimated time in minutes, a difficulty and (explain exercises) a rubric."""

    label: str
    chapter: str
    kind: str
    key: Key
    minutes: int | None = None
    difficulty: str | None = None
    rubric: tuple[Criterion, ...] = ()
    variant: Variant | None = None

    @property
    def points(self) -> int:
        """The rubric's total (0 without a rubric)."""
        return sum(c.points for c in self.rubric)

    @property
    def varies(self) -> bool:
        """Whether the exercise's numbers come from :func:`variant` (a seed per student)."""
        return self.variant is not None

    def key_for(self, seed: int | None = None) -> Key:
        """The key of the variant of ``seed`` (default: the current seed, :func:`get_seed`).

        :attr:`key` for seed 0 and for an exercise that does not vary.
        """
        seed = get_seed() if seed is None else _valid_seed(seed)
        if self.variant is None or seed == 0:
            return self.key
        return _variant_key(self.label, seed)


_REGISTRY: dict[str, Exercise] = {}


@functools.lru_cache(maxsize=512)
def _variant_key(label: str, seed: int) -> Key:
    ex = _REGISTRY[label]
    return ex.variant.key(ex.variant.values(label, seed))


def register(label: str, key: Key | None, *, chapter: str, kind: str,
             minutes: int | None = None, difficulty: str | None = None,
             rubric: Sequence[Criterion | tuple[int, str, str]] = (),
             variant: Variant | None = None) -> Exercise:
    """Register the answer key of exercise ``label`` (called by :mod:`diffnotes.exercises`).

    ``minutes`` is the time a student is expected to need, ``difficulty`` one of
    :data:`DIFFICULTIES`; an explain exercise's ``rubric`` is 3 or 4 :class:`Criterion` (or
    ``(points, criterion, full_credit)`` tuples) for grading its written answer. An exercise
    whose numbers vary per student gives its :class:`Variant`; its ``key`` is then ``None``
    (the variant's key of the book's numbers is used).
    """
    if not isinstance(label, str) or not label.startswith("ex-"):
        raise ValueError(f"label must be a string starting with 'ex-'; got {label!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if variant is not None and not isinstance(variant, Variant):
        raise ValueError(f"variant must be a selfcheck Variant; got {type(variant).__name__}")
    if key is None and variant is not None:
        key = variant.key(variant.values(label, 0))
    if not isinstance(key, Key):
        raise ValueError(f"key must be a selfcheck Key; got {type(key).__name__}")
    if label in _REGISTRY:
        raise ValueError(f"label {label!r} is already registered")
    if minutes is not None and (not isinstance(minutes, int) or minutes <= 0):
        raise ValueError(f"minutes must be a positive integer; got {minutes!r}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}; got {difficulty!r}")
    criteria = tuple(c if isinstance(c, Criterion) else Criterion(*c) for c in rubric)
    if criteria and kind != "explain":
        raise ValueError(f"rubric is for explain exercises; {label!r} is a {kind} exercise")
    if criteria and not 3 <= len(criteria) <= 4:
        raise ValueError(f"rubric must have 3 or 4 criteria; got {len(criteria)}")
    ex = Exercise(label, chapter, kind, key, minutes, difficulty, criteria, variant)
    _REGISTRY[label] = ex
    return ex


def exercises() -> dict[str, Exercise]:
    """Every registered exercise, by label (imports :mod:`diffnotes.exercises` first)."""
    from . import exercises as _load  # noqa: F401 - registers the keys

    return dict(_REGISTRY)


def exercise(name: str) -> Exercise:
    """The registered exercise ``name``; a ValueError suggests close labels when unknown."""
    known = exercises()
    if name not in known:
        close = difflib.get_close_matches(str(name), list(known), n=3)
        also = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"name must be an exercise label such as 'ex-tq-derive'; "
                         f"no exercise {name!r}{also}")
    return known[name]


def variant(label: str, seed: int | None = None) -> VariantValues:
    """The numbers of exercise ``label`` for ``seed`` (default: the current seed,
    :func:`get_seed`), a read-only mapping with attribute access::

        v = variant("ex-gd-saddle")     # seed 0: the book's numbers
        v.gamma, v["gamma"]             # 0.25, 0.25

    Seed 0 gives the numbers the book uses; another seed draws them, the same on every machine.
    A label whose exercise does not vary raises ``ValueError``.
    """
    ex = exercise(label)
    if not ex.varies:
        varying = ", ".join(sorted(n for n, e in exercises().items() if e.varies))
        raise ValueError(f"label {label!r} names an exercise without variants; the exercises "
                         f"that vary are {varying}")
    seed = get_seed() if seed is None else _valid_seed(seed)
    return ex.variant.values(label, seed)


def check(name: str, answer: Any, seed: int | None = None) -> Verdict:
    """Check a student's ``answer`` to exercise ``name``; the verdict prints as one line.

    ``answer=None`` (the starting value in the notebooks' answer cells) gives a reminder of
    what the exercise expects rather than a verdict. The answer is judged against the key of the
    variant of ``seed`` (default: the current seed, :func:`get_seed`; it matters only for an
    exercise that varies). A wrong answer's hint is worded for the current mode
    (:func:`set_mode`): readable in self-study, the kind of mistake only when graded, and also
    for a varying exercise under a seed other than 0 (a student's own numbers, whose answer the
    book does not print), so that no verdict gives that answer away.
    """
    ex = exercise(name)
    seed = get_seed() if seed is None else _valid_seed(seed)
    key = ex.key_for(seed)
    if answer is None or answer is Ellipsis:
        return Verdict(name, "missing",
                       f"no answer yet: set `answer` to {key.expects} and run the cell again.")
    own_variant = ex.varies and seed != 0
    status, message = key.judge(answer, "graded" if own_variant else None)
    return Verdict(name, status, message)
